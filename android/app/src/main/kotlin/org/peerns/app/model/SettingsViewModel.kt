package org.peerns.app.model

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.PeernsException
import org.peerns.ffi.PeernsNodeInterface

/** Where the app keeps its settings (SharedPreferences on the phone). */
interface SettingsStore {
    var signalingUrl: String

    /** Come back online after the phone restarts (off unless the user turns it on). */
    var startAtBoot: Boolean
}

/** What the settings screen shows. */
data class SettingsState(
    val name: String = "",
    val shortFingerprint: String = "",
    val fingerprint: String = "",
    /** Our share link, shown as a QR code for others to scan. */
    val shareLink: String = "",
    val signalingUrl: String = "",
    val startAtBoot: Boolean = false,
    /** The signaling server changed: it applies when the node starts again. */
    val restartNeeded: Boolean = false,
    val error: String? = null,
)

/** Settings: display name, the identity's fingerprint and share link, the signaling server, start at boot. Pure Kotlin. */
class SettingsViewModel(private val node: PeernsNodeInterface, private val store: SettingsStore) {
    private val mutableState = MutableStateFlow(SettingsState(signalingUrl = store.signalingUrl, startAtBoot = store.startAtBoot))
    val state: StateFlow<SettingsState> = mutableState.asStateFlow()

    fun refresh() {
        try {
            val identity = node.identity()
            val link = node.shareLink()
            mutableState.update {
                it.copy(
                    name = identity.displayName ?: "",
                    shortFingerprint = identity.short,
                    fingerprint = identity.fingerprint,
                    shareLink = link,
                    signalingUrl = store.signalingUrl,
                    error = null,
                )
            }
        } catch (e: PeernsException) {
            mutableState.update { it.copy(error = e.message) }
        }
    }

    /** Sets the display name peers see. */
    suspend fun saveName(name: String): Boolean = try {
        node.setDisplayName(name.trim())
        refresh()
        true
    } catch (e: PeernsException) {
        mutableState.update { it.copy(error = e.message) }
        false
    }

    /** Stores a new signaling server URL (ws:// or wss://); used from the next start. */
    fun saveSignalingUrl(url: String): Boolean {
        val trimmed = url.trim()
        if (!validSignalingUrl(trimmed)) {
            mutableState.update { it.copy(error = "a signaling server URL starts with ws:// or wss://") }
            return false
        }
        if (trimmed != store.signalingUrl) {
            store.signalingUrl = trimmed
            mutableState.update { it.copy(signalingUrl = trimmed, restartNeeded = true, error = null) }
        }
        return true
    }

    /** Turns coming back online after a restart on or off. */
    fun setStartAtBoot(on: Boolean) {
        store.startAtBoot = on
        mutableState.update { it.copy(startAtBoot = on) }
    }

    companion object {
        /** ws:// or wss:// with a host. */
        fun validSignalingUrl(url: String): Boolean {
            val rest = url.removePrefix("wss://").removePrefix("ws://")
            return rest != url && rest.isNotEmpty() && !rest.startsWith("/") && rest.none { it.isWhitespace() }
        }
    }
}

/** A fingerprint in groups of four characters, as people compare them aloud or side by side. */
fun grouped(fingerprint: String): String = fingerprint.chunked(4).joinToString(" ")
