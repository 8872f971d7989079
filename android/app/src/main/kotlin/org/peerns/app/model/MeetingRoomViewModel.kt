package org.peerns.app.model

import java.util.concurrent.ConcurrentHashMap
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.GroupMessage
import org.peerns.ffi.PeernsNodeInterface

/** What the meeting room screen shows. */
data class MeetingRoomState(
    /** The room we are in (32 hex characters), or null. */
    val room: String? = null,
    /** The room's messages in display order (the node keeps them in memory only). */
    val messages: List<GroupMessage> = emptyList(),
    /** This phone routes the room now. */
    val router: Boolean = false,
    /** Opening the room: looking for one advertised nearby (a few seconds). */
    val joining: Boolean = false,
    val error: String? = null,
)

/**
 * The meeting room for everyone nearby (stadium mode): join the room advertised nearby or start
 * one, its messages kept up to date from [GroupEvent]s ([onGroupEvent]), sending, leaving. When
 * two rooms merge, [GroupEvent.Room] names the one we moved to: the state switches to it and
 * [needsRefresh] asks for its history. Pure Kotlin.
 */
class MeetingRoomViewModel(private val node: PeernsNodeInterface) {
    private val mutableState = MutableStateFlow(MeetingRoomState())
    val state: StateFlow<MeetingRoomState> = mutableState.asStateFlow()

    /** The last role seen per group: a room's may arrive before we know we are in it. */
    private val roles = ConcurrentHashMap<String, Boolean>()

    /**
     * Joins the room advertised nearby or starts one (stadium mode must be on with a position,
     * else the error says so); its ID, or null on failure.
     */
    suspend fun join(): String? {
        var room: String? = null
        mutableState.update { it.copy(joining = true, error = null) }
        try {
            guard {
                room = node.meetingRoomJoin()
                refresh()
            }
        } finally {
            mutableState.update { it.copy(joining = false) }
        }
        return room
    }

    /** Reloads the room we are in and its messages from the node (none: the state is cleared). */
    suspend fun refresh() = guard {
        val room = node.meetingRoom()
        val history = if (room == null) emptyList() else node.meetingRoomHistory()
        // Moved on meanwhile (a merge): the Room event that tells it asks for another refresh.
        if (node.meetingRoom() != room) return@guard
        mutableState.update { s ->
            if (room == null) {
                MeetingRoomState(joining = s.joining)
            } else {
                // Messages that arrived as events after the history was read stay.
                val ids = history.map { it.id }.toSet()
                val later = if (s.room == room) s.messages.filter { it.id !in ids } else emptyList()
                s.copy(room = room, messages = history + later, router = roles[room] ?: false, error = null)
            }
        }
    }

    /** Sends [text] to everyone in the room. */
    suspend fun send(text: String) = guard {
        if (text.isBlank()) throw IllegalArgumentException("nothing to send")
        val room = mutableState.value.room ?: throw IllegalArgumentException("not in the meeting room")
        add(room, node.groupSend(room, text.trim()))
    }

    /** Leaves the room (its messages go with it). */
    suspend fun leave() = guard {
        node.meetingRoomLeave()
        mutableState.update { MeetingRoomState() }
    }

    /** Applies an event of the node's group stream; other groups' events are ignored. */
    fun onGroupEvent(event: GroupEvent) {
        when (event) {
            is GroupEvent.Message -> add(event.group, event.message)
            is GroupEvent.Role -> {
                roles[event.group] = event.router
                mutableState.update { if (it.room == event.group) it.copy(router = event.router) else it }
            }
            is GroupEvent.Room -> mutableState.update { s ->
                val room = event.group
                when (room) {
                    null -> MeetingRoomState(joining = s.joining)
                    s.room -> s
                    // Entered, or moved to the lower room of a merge: its history comes with a refresh.
                    else -> s.copy(room = room, messages = emptyList(), router = roles[room] ?: false)
                }
            }
            else -> {}
        }
    }

    /**
     * Whether [event] needs a [refresh]: we entered a room or moved to another (its history), or
     * a backfill of the room finished (its messages came one by one; the history has their
     * display order).
     */
    fun needsRefresh(event: GroupEvent): Boolean = when (event) {
        is GroupEvent.Room -> event.group != null
        is GroupEvent.Backfill -> event.group == mutableState.value.room && !event.more
        else -> false
    }

    /** Adds [message] of [room] if it is ours now and not there yet (our own come from send and as an event). */
    private fun add(room: String, message: GroupMessage) = mutableState.update { s ->
        if (s.room != room || s.messages.any { it.id == message.id }) s else s.copy(messages = s.messages + message)
    }

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)
}
