package org.peerns.app.model

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.Contact
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.GroupMember
import org.peerns.ffi.GroupMembership
import org.peerns.ffi.GroupMessage
import org.peerns.ffi.PeernsException
import org.peerns.ffi.PeernsNodeInterface
import org.peerns.ffi.Trust

/** What a group's chat shows. */
data class GroupChatState(
    val name: String = "",
    val members: List<GroupMember> = emptyList(),
    val membership: GroupMembership = GroupMembership.PENDING,
    /** This phone routes the group now. */
    val router: Boolean = false,
    /** In display order (the same on every member). */
    val messages: List<GroupMessage> = emptyList(),
    /** Our contacts (not the blocked ones), by name. */
    val contacts: List<Contact> = emptyList(),
    /** The contacts we sent an invitation from this screen. */
    val invited: Set<String> = emptySet(),
    /** What the last invitation did: "Invitation sent to bob". */
    val notice: String? = null,
    val error: String? = null,
) {
    /** We may invite and remove members. */
    val admin: Boolean get() = membership == GroupMembership.ADMIN

    /** The contacts an admin may invite: not members yet. */
    val invitable: List<Contact> get() = contacts.filter { c -> members.none { it.fingerprint == c.fingerprint } }
}

/**
 * One group: its messages and members, kept up to date from [GroupEvent]s ([onGroupEvent]),
 * sending, inviting contacts and removing members (admins), leaving. Pure Kotlin.
 */
class GroupChatViewModel(private val node: PeernsNodeInterface, val group: String) {
    private val mutableState = MutableStateFlow(GroupChatState(name = group.take(8)))
    val state: StateFlow<GroupChatState> = mutableState.asStateFlow()

    /** Reloads the group and its newest messages from the node. */
    suspend fun refresh() = guard {
        val g = node.groups().firstOrNull { it.id == group } ?: throw IllegalArgumentException("no group $group")
        val page = node.groupHistory(group, null, LIMIT.toUInt())
        val contacts = node.contacts().filter { it.trust != Trust.BLOCKED }.sortedBy { it.name.lowercase() }
        mutableState.update {
            it.copy(
                name = g.name,
                members = g.members,
                membership = g.membership,
                router = g.router,
                messages = page.messages,
                contacts = contacts,
                error = null,
            )
        }
    }

    /**
     * Sends our contact [fingerprint] the group's invite link as a chat message (admins only):
     * delivered when they are reachable; a contact who trusts us (level 2 or more) joins at
     * once, others see an invitation to open in our chat.
     */
    suspend fun sendInvite(fingerprint: String) = guard {
        node.groupSendInvite(group, fingerprint)
        val name = mutableState.value.contacts.firstOrNull { it.fingerprint == fingerprint }?.name ?: fingerprint.take(8)
        mutableState.update { it.copy(invited = it.invited + fingerprint, notice = "Invitation sent to $name", error = null) }
    }

    /** The screen is visible: no notifications for this group, then [refresh]. */
    suspend fun open() = guard {
        node.setOpenChat(group)
        refresh()
    }

    /** The screen is gone: notifications for this group again. */
    fun close() {
        try {
            node.setOpenChat(null)
        } catch (e: PeernsException) {
            // Stopped: nothing to tell.
        }
    }

    /** Sends [text]; `NotAllowed` (shown as the error) until the group's log has reached us. */
    suspend fun send(text: String) = guard {
        if (text.isBlank()) throw IllegalArgumentException("nothing to send")
        add(node.groupSend(group, text.trim()))
    }

    /** Removes [fingerprint] from the group (admins only). */
    suspend fun remove(fingerprint: String) = guard {
        node.groupRemove(group, fingerprint)
        refresh()
    }

    /** Leaves the group. */
    suspend fun leave() = guard {
        node.groupLeave(group)
        refresh()
    }

    /** Applies an event of the node's group stream; events of other groups are ignored. */
    fun onGroupEvent(event: GroupEvent) {
        when (event) {
            is GroupEvent.Message -> if (event.group == group) add(event.message)
            is GroupEvent.MemberJoined -> if (event.group == group) {
                mutableState.update { s ->
                    if (s.members.any { it.fingerprint == event.fingerprint }) {
                        s
                    } else {
                        s.copy(members = s.members + GroupMember(event.fingerprint, false))
                    }
                }
            }
            is GroupEvent.MemberLeft -> if (event.group == group) {
                mutableState.update { s ->
                    s.copy(members = s.members.filter { it.fingerprint != event.fingerprint })
                }
            }
            is GroupEvent.Presence -> if (event.group == group) {
                mutableState.update { s ->
                    s.copy(members = s.members.map { if (it.fingerprint == event.fingerprint) it.copy(online = event.online) else it })
                }
            }
            is GroupEvent.Role -> if (event.group == group) mutableState.update { it.copy(router = event.router) }
            is GroupEvent.Departed -> if (event.group == group) mutableState.update { it.copy(membership = GroupMembership.FORMER) }
            else -> {}
        }
    }

    /**
     * Whether [event] needs a [refresh]: a backfill finished (its messages came one by one and
     * the history has their display order), or our membership may have changed (pending → member).
     */
    fun needsRefresh(event: GroupEvent): Boolean = when (event) {
        is GroupEvent.Backfill -> event.group == group && !event.more
        is GroupEvent.MemberJoined -> event.group == group && mutableState.value.membership == GroupMembership.PENDING
        else -> false
    }

    /** Adds [message] unless it is there (our own arrives both from send and as an event). */
    private fun add(message: GroupMessage) = mutableState.update { s ->
        if (s.messages.any { it.id == message.id }) s else s.copy(messages = s.messages + message)
    }

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)

    private companion object {
        const val LIMIT = 200
    }
}
