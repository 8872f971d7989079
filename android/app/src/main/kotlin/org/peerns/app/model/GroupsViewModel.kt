package org.peerns.app.model

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.Group
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.GroupMembership
import org.peerns.ffi.PeernsNodeInterface

/** What the groups screen shows. */
data class GroupsState(
    /** Our groups (not the ones we left), by name. */
    val groups: List<Group> = emptyList(),
    /** The invite link made last, for the user to send to the invited person. */
    val inviteLink: String? = null,
    /**
     * A contact's invite joined us to a group: "Joined Trip, invited by bob" (their name, or a
     * short fingerprint), for the screen to show once and clear ([noticeShown]).
     */
    val notice: String? = null,
    val error: String? = null,
)

/** Groups: list, create, invite by fingerprint, join by link, joined by a contact's invite. Pure Kotlin. */
class GroupsViewModel(private val node: PeernsNodeInterface) {
    private val mutableState = MutableStateFlow(GroupsState())
    val state: StateFlow<GroupsState> = mutableState.asStateFlow()

    /** Reloads the groups: ours, then the ones we left or were removed from (their history stays until deleted). */
    suspend fun refresh() = guard {
        val groups = node.groups().sortedWith(compareBy({ it.membership == GroupMembership.FORMER }, { it.name.lowercase() }))
        mutableState.update { it.copy(groups = groups, error = null) }
    }

    /** Creates a group named [name] with us as its admin; its ID, or null on failure. */
    suspend fun create(name: String): String? {
        var gid: String? = null
        guard {
            if (name.isBlank()) throw IllegalArgumentException("a group needs a name")
            gid = node.groupCreate(name.trim())
            refresh()
        }
        return gid
    }

    /**
     * Invites the identity [fingerprint] (64 hex, also in the groups of four the settings show)
     * to [group]; the link lands in [GroupsState.inviteLink].
     */
    suspend fun invite(group: String, fingerprint: String) = guard {
        val link = node.groupInvite(group, fingerprint.filterNot { it.isWhitespace() }.lowercase())
        mutableState.update { it.copy(inviteLink = link, error = null) }
    }

    /** Joins by an invite link naming us; the group's ID, or null on failure. */
    suspend fun join(link: String): String? {
        var gid: String? = null
        guard {
            if (link.isBlank()) throw IllegalArgumentException("paste an invite link first")
            gid = node.groupJoin(link.trim())
            refresh()
        }
        return gid
    }

    /**
     * Applies an event of the node's group stream: the list is reloaded when [event] changes it
     * ([concerns]); an [GroupEvent.Invited] also sets [GroupsState.notice].
     */
    suspend fun onGroupEvent(event: GroupEvent) {
        if (!concerns(event)) return
        refresh()
        if (event is GroupEvent.Invited) invited(event)
    }

    /** The screen has shown [GroupsState.notice]. */
    fun noticeShown() = mutableState.update { it.copy(notice = null) }

    private suspend fun invited(event: GroupEvent.Invited) = guard {
        val by = node.contacts().firstOrNull { it.fingerprint == event.by }?.name?.takeIf { it.isNotBlank() } ?: event.by.take(8)
        val group = mutableState.value.groups.firstOrNull { it.id == event.group }?.name ?: event.group.take(8)
        mutableState.update { it.copy(notice = "Joined $group, invited by $by") }
    }

    /** Whether [event] changes the list (members, our membership, routing); not messages, calls or files. */
    fun concerns(event: GroupEvent): Boolean = event !is GroupEvent.Message && event !is GroupEvent.Backfill &&
        event !is GroupEvent.CallRoster && event !is GroupEvent.CallPhase && event !is GroupEvent.CallSpeakers &&
        event !is GroupEvent.Presence && event !is GroupEvent.FileProgress && event !is GroupEvent.FileDone

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)
}
