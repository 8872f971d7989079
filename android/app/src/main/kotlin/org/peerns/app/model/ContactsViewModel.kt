package org.peerns.app.model

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.Contact
import org.peerns.ffi.ContactRequest
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.PeernsException
import org.peerns.ffi.PeernsNodeInterface
import org.peerns.ffi.Trust
import org.peerns.ffi.WaitingLink

/** What the contacts screen shows. */
data class ContactsState(
    val contacts: List<Contact> = emptyList(),
    /** Requests to us, newest first. */
    val incoming: List<ContactRequest> = emptyList(),
    /** Requests we sent and that are not answered yet. */
    val outgoing: List<ContactRequest> = emptyList(),
    /** Links we added while their owner could not be reached: asked once both are online. */
    val waiting: List<WaitingLink> = emptyList(),
    /** Our share link, for others to add us. */
    val shareLink: String = "",
    val error: String? = null,
    /** What the last add did when it could not send the request yet. */
    val notice: String? = null,
)

/** Contacts: add by share link, answer requests, set trust. Pure Kotlin. */
class ContactsViewModel(private val node: PeernsNodeInterface) {
    private val mutableState = MutableStateFlow(ContactsState())
    val state: StateFlow<ContactsState> = mutableState.asStateFlow()

    /** Reloads everything from the node. */
    suspend fun refresh() = guard {
        val requests = node.requests().sortedByDescending { it.createdMs }
        mutableState.update {
            it.copy(
                contacts = node.contacts().sortedBy { c -> c.name.lowercase() },
                incoming = requests.filter { r -> !r.outgoing },
                outgoing = requests.filter { r -> r.outgoing },
                waiting = node.waitingLinks(),
                shareLink = node.shareLink(),
                error = null,
                notice = null,
            )
        }
    }

    /**
     * Asks the owner of [link] (a share link, pasted or scanned) to become a contact. When they cannot be reached
     * now, the link is kept and the request goes out once both are online: that is a success with a [ContactsState.notice].
     */
    suspend fun add(link: String) = guard {
        val trimmed = link.trim()
        if (trimmed.isEmpty()) throw IllegalArgumentException("paste a share link first")
        val waiting = try {
            node.requestContact(trimmed)
            false
        } catch (e: PeernsException.Waiting) {
            true
        }
        refresh()
        if (waiting) mutableState.update { it.copy(notice = WAITING_NOTICE) }
    }

    /** Cancels our request to [fingerprint], or our link to it that waits to be reached. */
    suspend fun cancel(fingerprint: String) = changing { node.cancelRequest(fingerprint) }

    suspend fun accept(fingerprint: String) = changing { node.acceptRequest(fingerprint) }

    suspend fun reject(fingerprint: String) = changing { node.rejectRequest(fingerprint) }

    /** Leaves the request of [fingerprint] for later: kept, and listed as later. */
    suspend fun later(fingerprint: String) = changing { node.laterRequest(fingerprint) }

    /** Removes contact [fingerprint] (its trust goes; the chat stays). */
    suspend fun remove(fingerprint: String) = changing { node.removeContact(fingerprint) }

    /**
     * Marks contact [fingerprint] verified (the user compared its fingerprint with the one the
     * contact's own phone shows, face to face or on a channel they trust), or not.
     */
    suspend fun setVerified(fingerprint: String, verified: Boolean) = changing { node.setVerified(fingerprint, verified) }

    suspend fun setTrust(fingerprint: String, trust: Trust) = changing { node.setTrust(fingerprint, trust) }

    /** Whether [event] changes what this screen shows. */
    fun concerns(event: NodeEvent) =
        event is NodeEvent.ContactRequest || event is NodeEvent.ContactAdded || event is NodeEvent.ContactRequestSent

    /** Runs [change] on the node, then reads the screen's lists again. True when it succeeded. */
    private suspend fun changing(change: suspend () -> Unit) = guard {
        change()
        refresh()
    }

    /** Runs [block]; a failure becomes [ContactsState.error]. True when it succeeded. */
    private suspend fun guard(block: suspend () -> Unit): Boolean = mutableState.guard({ copy(error = it) }, block)

    companion object {
        /** Shown after adding someone who could not be reached. */
        const val WAITING_NOTICE = "They cannot be reached now: the request is sent when you are both online."

        /** The trust levels the selector offers, with their labels. */
        val trustChoices: List<Pair<Trust, String>> = listOf(
            Trust.BLOCKED to "Blocked",
            Trust.KNOWN to "Known: messages and files",
            Trust.TRUSTED to "Trusted: also calls and groups",
            Trust.FULL_ACCESS to "Full access: also remote control",
        )
    }
}
