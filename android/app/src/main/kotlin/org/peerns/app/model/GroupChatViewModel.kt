package org.peerns.app.model

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.Contact
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.GroupFileRef
import org.peerns.ffi.GroupFileTransfer
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
    /** Where each shared file of [messages] stands on this phone, by file ID. */
    val files: Map<String, GroupFileStatus> = emptyMap(),
    /** This is the meeting room nearby: it shares no files. */
    val room: Boolean = false,
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

    /** What the chat calls [fingerprint]: our name for a contact, else its first 8 characters. */
    fun nameOf(fingerprint: String): String = contactName(contacts, fingerprint)

    /** The contacts an admin may invite: not members yet. */
    val invitable: List<Contact> get() = contacts.filter { c -> members.none { it.fingerprint == c.fingerprint } }

    /** What the chat lists: [messages], the file messages as files with their [files] status. */
    val items: List<GroupChatItem> get() = groupChatItems(messages, files)

    /** The screen offers to share a file: not in a meeting room, not once we left. */
    val canShareFiles: Boolean get() = !room && membership != GroupMembership.FORMER

    /** The screen offers to leave: we are a member (a pending one deletes the group instead). */
    val canLeave: Boolean get() = !room && (membership == GroupMembership.ADMIN || membership == GroupMembership.MEMBER)

    /** The screen offers to delete the group from this phone: any stored group, not the meeting room. */
    val canDelete: Boolean get() = !room
}

/**
 * One group: its messages and members, kept up to date from [GroupEvent]s ([onGroupEvent]),
 * sending text and files (each file's progress from [GroupEvent.FileProgress] and
 * [GroupEvent.FileDone], or from the node on [refresh] and [loadFile]), inviting contacts and
 * removing members (admins), leaving, deleting. Pure Kotlin.
 */
class GroupChatViewModel(private val node: PeernsNodeInterface, val group: String) {
    private val mutableState = MutableStateFlow(GroupChatState(name = group.take(8)))
    val state: StateFlow<GroupChatState> = mutableState.asStateFlow()

    /** Reloads the group and its newest messages from the node. */
    suspend fun refresh() = guard {
        // Known first: a meeting room is no stored group, and shares no files.
        val room = node.meetingRoom() == group
        mutableState.update { it.copy(room = room) }
        val g = node.groups().firstOrNull { it.id == group } ?: throw IllegalArgumentException("no group $group")
        val page = node.groupHistory(group, null, LIMIT.toUInt())
        val contacts = node.contacts().filter { it.trust != Trust.BLOCKED }.sortedBy { it.name.lowercase() }
        val files = page.messages.mapNotNull { it.file }.associate { f -> f.id to status(f) }
        mutableState.update {
            it.copy(
                name = g.name,
                members = g.members,
                membership = g.membership,
                router = g.router,
                messages = page.messages,
                // Events applied while the node answered are newer than its answers.
                files = files.mapValues { (id, loaded) -> it.files[id]?.newer(loaded) ?: loaded },
                room = room,
                contacts = contacts,
                error = null,
            )
        }
    }

    /**
     * Shares the file at [path] with the group (the core copies it into the profile; every member
     * fetches it); `NotAllowed` (shown as the error) in a meeting room or until the group's log
     * has reached us.
     */
    suspend fun sendFile(path: String) = guard {
        val message = node.groupSendFile(group, path)
        add(message)
        message.file?.let { setStatus(it.id, status(it)) }
        mutableState.update { it.copy(error = null) }
    }

    /** Asks the node where the file [file] (a [GroupFileRef.id]) of this group stands. */
    suspend fun loadFile(file: String) = guard {
        node.groupFile(group, file)?.let { setStatus(file, GroupFileStatus.of(it)) }
    }

    /**
     * The file a new file message in [event] announces, whose state to ask the node for
     * ([loadFile]): one over our size limit is refused at once, with no event to tell.
     */
    fun fileToLoad(event: GroupEvent): String? = (event as? GroupEvent.Message)?.takeIf { it.group == group }?.message?.file?.id

    /** Where [file] stands here: the node's answer, or [GroupFileStatus.WAITING] if it has none yet. */
    private suspend fun status(file: GroupFileRef): GroupFileStatus =
        node.groupFile(group, file.id)?.let(GroupFileStatus::of) ?: GroupFileStatus.WAITING

    /**
     * Sends our contact [fingerprint] the group's invite link as a chat message (admins only):
     * delivered when they are reachable; a contact who trusts us (level 2 or more) joins at
     * once, others see an invitation to open in our chat.
     */
    suspend fun sendInvite(fingerprint: String) = guard {
        node.groupSendInvite(group, fingerprint)
        val name = mutableState.value.nameOf(fingerprint)
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

    /**
     * Deletes the group from this phone: its messages and files (a member leaves it first; the
     * others hear of it if the group's router is reachable now). True once deleted.
     */
    suspend fun delete() = guard {
        node.groupDelete(group)
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
            is GroupEvent.Purged -> if (event.group == group) {
                mutableState.update { s ->
                    s.copy(messages = s.messages.filter { it.author != event.author || it.seq <= event.cutoff })
                }
            }
            is GroupEvent.FileProgress -> if (event.group == group) {
                setStatus(event.file, GroupFileStatus(GroupFileTransfer.TRANSFERRING, event.received))
            }
            is GroupEvent.FileDone -> if (event.group == group) {
                val size = mutableState.value.messages.firstNotNullOfOrNull { m -> m.file?.takeIf { it.id == event.file }?.size } ?: 0uL
                // No path: given up, no holder's bytes matched the author's signed hash.
                setStatus(
                    event.file,
                    event.path?.let { GroupFileStatus(GroupFileTransfer.DONE, size, it) } ?: GroupFileStatus(GroupFileTransfer.REFUSED),
                )
            }
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

    /**
     * Adds [message] unless it is there (our own arrives both from send and as an event); a file
     * it announces waits for its status ([GroupFileStatus.WAITING]) unless one is known.
     */
    private fun add(message: GroupMessage) = mutableState.update { s ->
        if (s.messages.any { it.id == message.id }) {
            s
        } else {
            val file = message.file
            val files = if (file == null || file.id in s.files) s.files else s.files + (file.id to GroupFileStatus.WAITING)
            s.copy(messages = s.messages + message, files = files)
        }
    }

    /** Sets where [file] stands, unless what is known is newer ([GroupFileStatus.newer]). */
    private fun setStatus(file: String, status: GroupFileStatus) = mutableState.update { s ->
        s.copy(files = s.files + (file to (s.files[file]?.newer(status) ?: status)))
    }

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)

    private companion object {
        const val LIMIT = 200
    }
}

/** Our name for contact [fingerprint] among [contacts], else its first 8 characters (not a contact, or unnamed). */
fun contactName(contacts: List<Contact>, fingerprint: String): String =
    contacts.firstOrNull { it.fingerprint == fingerprint }?.name?.takeIf { it.isNotBlank() } ?: fingerprint.take(8)
