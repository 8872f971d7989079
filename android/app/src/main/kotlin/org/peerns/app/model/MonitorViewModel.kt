package org.peerns.app.model

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.Contact
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.PeernsNodeInterface
import org.peerns.ffi.Trust

/** A sound alert from a monitor we may watch. */
data class MonitorAlert(val fingerprint: String, val levelDbfs: Int, val atMs: Long)

/** What the baby-monitor screen shows. */
data class MonitorState(
    /** Contacts at Full access: the ones that may be allowed to watch, or be watched. */
    val contacts: List<Contact> = emptyList(),
    /** Contacts allowed to watch this phone's camera. */
    val watchers: Set<String> = emptySet(),
    /** This phone is armed with this camera (`environment` or `user`), or null. */
    val armed: String? = null,
    /** The armed phone's sound alert threshold, dBFS, or null (off). */
    val alertDbfs: Float? = null,
    /** The call in which we watch a monitor, and whom. */
    val watchCall: String? = null,
    val watching: String? = null,
    /** Newest first. */
    val alerts: List<MonitorAlert> = emptyList(),
    val error: String? = null,
)

/** The microphone's sound level, in dBFS, every ~100 ms while started (`AudioEncoder` on a phone). */
interface SoundLevels {
    fun start(onLevel: (Float) -> Unit)

    fun stop()
}

/**
 * The baby monitor: arm this phone (allow contacts to watch, sound alert) or watch a contact's
 * armed phone, and the alerts it sends ([onEvent]). Watching is a call the monitor places back:
 * its picture and sound come like any call's. While armed with a sound alert, the [microphone]'s
 * levels go to the node, which decides when to alert. Pure Kotlin.
 */
class MonitorViewModel(private val node: PeernsNodeInterface, private val microphone: SoundLevels? = null) {
    private val mutableState = MutableStateFlow(MonitorState())
    val state: StateFlow<MonitorState> = mutableState.asStateFlow()

    suspend fun refresh() = guard {
        val full = node.contacts().filter { it.trust == Trust.FULL_ACCESS }.sortedBy { it.name.lowercase() }
        val watchers = node.rpcGrants().filter { it.scope.startsWith(STREAM_SCOPE) }.map { it.fingerprint }.toSet()
        mutableState.update { it.copy(contacts = full, watchers = watchers, error = null) }
    }

    /** Lets contact [fingerprint] (at Full access) watch this phone's cameras. */
    suspend fun allow(fingerprint: String) = guard {
        node.rpcGrant(fingerprint, FACINGS.map { "$STREAM_SCOPE:$it" })
        refresh()
    }

    /** Takes back [fingerprint]'s permission to watch. */
    suspend fun disallow(fingerprint: String) = guard {
        node.rpcRevoke(fingerprint, FACINGS.map { "$STREAM_SCOPE:$it" })
        refresh()
    }

    /**
     * Arms this phone with its [facing] camera, and a sound alert at [alertDbfs] (-120 to 0)
     * unless null. The node answers RPC requests (no folders served: only the camera).
     */
    suspend fun arm(facing: String, alertDbfs: Float?) = guard {
        require(facing in FACINGS) { "a camera is environment or user" }
        node.rpcServe(emptyList())
        node.rpcArmCamera(facing)
        node.rpcSoundAlert(alertDbfs)
        microphone?.stop()
        if (alertDbfs != null) microphone?.start(node::rpcSoundLevel)
        mutableState.update { it.copy(armed = facing, alertDbfs = alertDbfs, error = null) }
    }

    suspend fun disarm() = guard {
        microphone?.stop()
        node.rpcSoundAlert(null)
        node.rpcArmCamera(null)
        mutableState.update { it.copy(armed = null, alertDbfs = null, error = null) }
    }

    /** Watches contact [fingerprint]'s armed phone through its [facing] camera. */
    suspend fun watch(fingerprint: String, facing: String = "environment") = guard {
        val call = node.rpcWatch(fingerprint, facing, WATCH_TIMEOUT_MS.toULong())
        mutableState.update { it.copy(watchCall = call, watching = fingerprint, error = null) }
    }

    suspend fun stopWatching() = guard {
        mutableState.value.watchCall?.let { node.hangUp(it) }
        mutableState.update { it.copy(watchCall = null, watching = null) }
    }

    /** Applies an alert, or the end of the watching call; true when the state changed. */
    fun onEvent(event: NodeEvent, nowMs: Long = System.currentTimeMillis()): Boolean {
        val before = mutableState.value
        when (event) {
            is NodeEvent.MonitorAlert -> mutableState.update {
                it.copy(alerts = (listOf(MonitorAlert(event.fingerprint, event.levelDbfs.toInt(), nowMs)) + it.alerts).take(MAX_ALERTS))
            }
            is NodeEvent.CallState -> if (event.call == before.watchCall && event.status.state == "ended") {
                mutableState.update { it.copy(watchCall = null, watching = null) }
            }
            else -> {}
        }
        return mutableState.value != before
    }

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)

    companion object {
        /** The cameras a monitor may use. */
        val FACINGS = listOf("environment", "user")
        private const val STREAM_SCOPE = "media:stream:camera"
        private const val WATCH_TIMEOUT_MS = 15_000L
        private const val MAX_ALERTS = 50
    }
}
