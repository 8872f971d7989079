package org.peerns.app.model

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import org.peerns.ffi.Contact
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.PeernsException
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
    /** The contact our armed camera streams to now, or null. */
    val streamingTo: String? = null,
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
 * its picture and sound come like any call's. The armed phone sends its camera and microphone
 * ([media]) into that call once its media is up (`MonitorStream`, then `CallMediaConnected`),
 * until it ends or the phone is disarmed. While armed with a sound alert, the [microphone]'s
 * levels go to the node, which decides when to alert. Pure Kotlin; [close] when the screen goes.
 */
class MonitorViewModel(
    private val node: PeernsNodeInterface,
    private val microphone: SoundLevels? = null,
    private val media: CallMedia? = null,
) {
    private val mutableState = MutableStateFlow(MonitorState())
    val state: StateFlow<MonitorState> = mutableState.asStateFlow()

    /** Where the stream's start and stop run (events arrive on the collector's thread). */
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val streamLock = Mutex()

    /** The call that streams our camera, and which camera. */
    private data class Stream(val call: String, val watcher: String, val facing: String)

    @Volatile
    private var stream: Stream? = null

    /** Armed (changed under [streamLock]): a stream starts, and the alert listens, only while it is. */
    @Volatile
    private var armedNow = false

    /** The calls whose media came up lately (the stream's may come up before we hear of it). */
    private val mediaUp = ArrayDeque<String>()

    /** Our encoded frames, into the stream's tracks (none while it is not sent). */
    private val sources = CallSources()

    suspend fun refresh() = guard {
        val full = node.contacts().filter { it.trust == Trust.FULL_ACCESS }.sortedBy { it.name.lowercase() }
        val watchers = node.rpcGrants().filter { it.scope.startsWith(STREAM_SCOPE) }.map { it.fingerprint }.toSet()
        // The alerts the node took before this screen followed its events (opened from an
        // alert's notification), newest first; those heard since stay.
        val taken = node.monitorAlerts().map { MonitorAlert(it.fingerprint, it.levelDbfs.toInt(), it.atMs.toLong()) }.reversed()
        mutableState.update { s ->
            val newest = taken.firstOrNull()?.atMs ?: Long.MIN_VALUE
            val alerts = (s.alerts.filter { it.atMs > newest } + taken).take(MAX_ALERTS)
            s.copy(contacts = full, watchers = watchers, alerts = alerts, error = null)
        }
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
        streamLock.withLock {
            armedNow = true
            mutableState.update { it.copy(armed = facing, alertDbfs = alertDbfs, error = null) }
            microphone?.stop()
            // While a stream runs the microphone is the call's; the alert listens after it.
            if (alertDbfs != null && sources.isEmpty) microphone?.start(node::rpcSoundLevel)
        }
    }

    /** Disarms: no new stream, and the one running ends (a person disarming expects it to stop). */
    suspend fun disarm() = guard {
        // First, under the lock: no stream starts and the alert stops listening from here on.
        val ending = streamLock.withLock {
            armedNow = false
            microphone?.stop()
            stopStream(resumeAlert = false)
        }
        node.rpcSoundAlert(null)
        node.rpcArmCamera(null)
        ending?.let { runCatching { node.hangUp(it.call) } }
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
            is NodeEvent.CallState -> if (event.status.state == "ended") {
                if (event.call == before.watchCall) mutableState.update { it.copy(watchCall = null, watching = null) }
                if (event.call == stream?.call) {
                    // Only that call's stream: the watcher may already watch again.
                    scope.launch { streamLock.withLock { if (stream?.call == event.call) stopStream() } }
                }
            }
            is NodeEvent.MonitorStream -> if (armedNow) {
                val next = Stream(event.call, event.fingerprint, event.facing)
                stream = next
                mutableState.update { it.copy(streamingTo = event.fingerprint) }
                if (synchronized(mediaUp) { event.call in mediaUp }) startStream(next)
            } else {
                // Placed as we disarmed: nobody is to stream into it.
                scope.launch { runCatching { node.hangUp(event.call) } }
            }
            is NodeEvent.CallMediaConnected -> {
                synchronized(mediaUp) {
                    mediaUp.addLast(event.call)
                    if (mediaUp.size > RECENT_CALLS) mediaUp.removeFirst()
                }
                stream?.takeIf { it.call == event.call }?.let(::startStream)
            }
            else -> {}
        }
        return mutableState.value != before
    }

    /** Sends the camera and the microphone into [s]'s call (once). */
    private fun startStream(s: Stream) {
        val media = media ?: return
        scope.launch {
            streamLock.withLock {
                if (!armedNow || stream != s || !sources.isEmpty) return@withLock
                try {
                    val audio = node.callMediaSource(s.call, "audio", NoEncoderControl)
                    val video = node.callMediaSource(s.call, "video", media.videoControl)
                    sources.set(mapOf("audio" to audio, "video" to video))
                    // The watcher hears the sound live: the alert pauses while the microphone
                    // is the call's (one capture at a time), and resumes after.
                    microphone?.stop()
                    media.setMuted(false)
                    media.start(s.facing, sources.out)
                    // Which way up the picture is, told to the watcher as the phone turns.
                    media.setRotationListener { degrees ->
                        try {
                            node.setVideoRotation(s.call, degrees.toUShort())
                        } catch (_: PeernsException) {
                            // The call ended meanwhile.
                        }
                    }
                } catch (e: PeernsException) {
                    // The call ended meanwhile: its CallState event stops the rest.
                    mutableState.update { it.copy(error = e.message) }
                }
            }
        }
    }

    /**
     * Stops sending into the stream's call (under [streamLock]), and listens for the sound alert
     * again when [resumeAlert] and it is on; the stream that was.
     */
    private fun stopStream(resumeAlert: Boolean = true): Stream? {
        val ended = stream ?: return null
        stream = null
        val sent = !sources.isEmpty
        media?.setRotationListener(null)
        media?.stop()
        sources.close()
        mutableState.update { it.copy(streamingTo = null) }
        if (sent && resumeAlert && armedNow && mutableState.value.alertDbfs != null) {
            microphone?.start(node::rpcSoundLevel)
        }
        return ended
    }

    /** Stops the stream's media (the call itself ends with the watcher); done when the returned job is. */
    fun close(): Job = scope.launch { streamLock.withLock { stopStream(resumeAlert = false) } }.also { job ->
        job.invokeOnCompletion { scope.cancel() }
    }

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)

    companion object {
        /** The cameras a monitor may use. */
        val FACINGS = listOf("environment", "user")
        private const val STREAM_SCOPE = "media:stream:camera"
        private const val WATCH_TIMEOUT_MS = 15_000L
        private const val MAX_ALERTS = 50
        private const val RECENT_CALLS = 8
    }
}
