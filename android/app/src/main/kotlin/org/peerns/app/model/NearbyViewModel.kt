package org.peerns.app.model

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
 * platform (permission, foreground type), which reports it with [setOn]. Pure Kotlin.
 */
class NearbyViewModel(private val node: PeernsNodeInterface) {
    private val mutableState = MutableStateFlow(NearbyState())
    val state: StateFlow<NearbyState> = mutableState.asStateFlow()

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
