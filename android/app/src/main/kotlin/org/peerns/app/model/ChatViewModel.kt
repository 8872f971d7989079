package org.peerns.app.model

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.CallLogEntry
import org.peerns.ffi.ChatMessage
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.PeernsException
import org.peerns.ffi.PeernsNodeInterface

/** What the chat screen shows. */
data class ChatState(
    val title: String = "",
    /** Oldest first. */
    val messages: List<ChatMessage> = emptyList(),
    /** The calls with the contact, newest first (as the node's call log gives them). */
    val calls: List<CallLogEntry> = emptyList(),
    /** What the screen lists, oldest first: [messages] (invite links as invitations) and [calls] by time ([chatItems]). */
    val items: List<ChatItem> = emptyList(),
    val online: Boolean = false,
    val error: String? = null,
)

/**
 * One chat: messages, edits, deletes, files, the calls with the contact among them, and group
 * invitations to join. Pure Kotlin.
 */
class ChatViewModel(private val node: PeernsNodeInterface, val conversation: String) {
    private val mutableState = MutableStateFlow(ChatState(title = conversation.take(8)))
    val state: StateFlow<ChatState> = mutableState.asStateFlow()

    /** The screen is visible: no notifications for this chat, its messages are read. */
    suspend fun open() = guard {
        node.setOpenChat(conversation)
        refresh()
        node.markRead(conversation)
    }

    /** The screen is gone: notifications for this chat again. */
    fun close() {
        try {
            node.setOpenChat(null)
        } catch (e: PeernsException) {
            // Stopped: nothing to tell.
        }
    }

    suspend fun refresh() = guard {
        val name = node.contacts().firstOrNull { it.fingerprint == conversation }?.name
        val messages = node.messages(conversation, LIMIT.toUInt()).sortedBy { m -> m.sentMs }
        val calls = node.callLog(conversation, LIMIT.toUInt())
        mutableState.update {
            it.copy(
                title = name ?: conversation.take(8),
                messages = messages,
                calls = calls,
                items = chatItems(messages, calls),
                online = node.isOnline(conversation),
                error = null,
            )
        }
    }

    /**
     * Joins the group of an invitation in this chat ([ChatItem.Invitation.link]; opening it is
     * the user's consent); the group's ID, or null (a link not for us: the state's error).
     */
    suspend fun joinGroup(link: String): String? {
        var gid: String? = null
        guard {
            gid = node.groupJoin(inviteLinkIn(link) ?: throw IllegalArgumentException("not a group invitation"))
            mutableState.update { it.copy(error = null) }
        }
        return gid
    }

    /** Sends [text] (blank text is not sent). */
    suspend fun send(text: String) = guard {
        if (text.isBlank()) throw IllegalArgumentException("nothing to send")
        node.sendMessage(conversation, text.trim())
        refresh()
    }

    /** Replaces the text of our message [id]. */
    suspend fun edit(id: String, text: String) = guard {
        if (text.isBlank()) throw IllegalArgumentException("an edit needs text; delete the message instead")
        node.editMessage(conversation, id, text.trim())
        refresh()
    }

    /** Deletes our message [id] for both sides. */
    suspend fun delete(id: String) = guard {
        node.deleteMessage(conversation, id)
        refresh()
    }

    /** Sends the file at [path]. */
    suspend fun sendFile(path: String) = guard {
        node.sendFile(conversation, path)
        refresh()
    }

    /** Whether [event] changes this chat. */
    fun concerns(event: NodeEvent): Boolean = when (event) {
        is NodeEvent.MessageReceived -> event.message.conversation == conversation
        is NodeEvent.MessageChanged -> event.message.conversation == conversation
        is NodeEvent.MessageStatus -> event.conversation == conversation
        is NodeEvent.FileReceived -> event.conversation == conversation
        is NodeEvent.FileDone -> event.conversation == conversation
        is NodeEvent.PeerConnected -> event.fingerprint == conversation
        is NodeEvent.PeerDisconnected -> event.fingerprint == conversation
        // A call with the contact ended and was logged.
        is NodeEvent.CallLogged -> event.entry.fingerprint == conversation
        else -> false
    }

    private suspend fun guard(block: suspend () -> Unit): Boolean = try {
        block()
        true
    } catch (e: PeernsException) {
        mutableState.update { it.copy(error = e.message) }
        false
    } catch (e: IllegalArgumentException) {
        mutableState.update { it.copy(error = e.message) }
        false
    }

    private companion object {
        const val LIMIT = 200
    }
}

/** One line of a message as the screen shows it. */
fun describe(message: ChatMessage): String {
    val body = when {
        message.deleted -> "(deleted)"
        message.file != null -> "📎 ${message.file!!.name} (${message.file!!.size} bytes)"
        else -> message.text
    }
    val who = if (message.outgoing) "me" else "them"
    val marks = listOfNotNull(
        "edited".takeIf { message.edited && !message.deleted },
        message.status.name.lowercase().takeIf { message.outgoing },
    ).joinToString(", ")
    return if (marks.isEmpty()) "$who: $body" else "$who: $body  [$marks]"
}
