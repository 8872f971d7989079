package org.peerns.app.model

import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.DiscoveredPeer
import org.peerns.ffi.PeernsException
import org.peerns.ffi.PeernsNodeInterface

/** What the nearby screen shows. */
data class NearbyState(
    val on: Boolean = false,
    /** Nearest first; people whose distance is unknown last. */
    val people: List<DiscoveredPeer> = emptyList(),
    val error: String? = null,
) {
    /** How many of the people nearby are in a meeting room (the one to join, normally). */
    val inRoom: Int get() = people.count { it.room != null }
}

/**
 * Stadium mode: people nearby, sorted by distance. Turning it on and off goes through the
 * platform (permission, foreground type), which reports it with [setOn]. While [powerSaver] is
 * on, positions come about once a minute (the platform's location provider), so the screen reloads
 * the list less often ([pollMs]) and says why ([notice]). Pure Kotlin.
 */
class NearbyViewModel(private val node: PeernsNodeInterface, private val powerSaver: StateFlow<Boolean> = BatterySaver.OFF) {
    private val mutableState = MutableStateFlow(NearbyState())
    val state: StateFlow<NearbyState> = mutableState.asStateFlow()

    /** The screen's battery saver notice, null while it is off. */
    val notice: Flow<String?> = BatterySaver.notice(powerSaver, BatterySaver.NEARBY)

    /** How long the screen waits before it reloads the list again ([refresh]). */
    val pollMs: Long get() = if (powerSaver.value) LOW_POWER_POLL_MS else POLL_MS

    /** Stadium mode is now [on]; off clears the list. */
    fun setOn(on: Boolean) = mutableState.update { if (on) it.copy(on = true) else NearbyState() }

    /** Reloads the people nearby (nothing while stadium mode is off). */
    suspend fun refresh() {
        if (!mutableState.value.on) return
        try {
            val people = sortByDistance(node.nearby())
            mutableState.update { it.copy(people = people, error = null) }
        } catch (e: PeernsException) {
            mutableState.update { it.copy(error = e.message) }
        }
    }

    companion object {
        /** How often the screen reloads the list. */
        const val POLL_MS = 5_000L

        /** How often under battery saver. */
        const val LOW_POWER_POLL_MS = 20_000L

        /** Nearest first, unknown distances last, then by name. */
        fun sortByDistance(people: List<DiscoveredPeer>): List<DiscoveredPeer> =
            people.sortedWith(compareBy<DiscoveredPeer>({ it.distanceM ?: Double.MAX_VALUE }, { it.name }))

        /** "12 m", "1.3 km" or "?". */
        fun distance(peer: DiscoveredPeer): String {
            val m = peer.distanceM ?: return "?"
            return if (m < 1000) "${m.toInt()} m" else "%.1f km".format(java.util.Locale.ROOT, m / 1000)
        }
    }
}
