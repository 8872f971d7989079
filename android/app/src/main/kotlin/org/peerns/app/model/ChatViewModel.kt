package org.peerns.app.model

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.CallLogEntry
import org.peerns.ffi.ChatMessage
import org.peerns.ffi.FileTransferInfo
import org.peerns.ffi.FileTransferState
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
    /** Where each file message's transfer stands, by message ID. */
    val files: Map<String, FileTransferInfo> = emptyMap(),
    /** What the screen lists, oldest first: [messages] (invite links as invitations) and [calls] by time ([chatItems]). */
    val items: List<ChatItem> = emptyList(),
    val online: Boolean = false,
    /**
     * Why we may not be reaching the contact ([warningOf]): someone else answered at its
     * address, or it runs a version of PeerNS we cannot talk to. Kept while the chat is shown.
     */
    val warning: String? = null,
    val error: String? = null,
) {
    /** This chat (with [conversation]) after [event]: a known transfer that moves shows the bytes it reached. */
    fun withProgress(conversation: String, event: NodeEvent.FileProgress): ChatState {
        val t = files[event.id]
        if (event.conversation != conversation || t == null || t.state != FileTransferState.TRANSFERRING ||
            t.bytes == event.bytes
        ) {
            return this
        }
        val moved = files + (event.id to t.copy(bytes = event.bytes))
        return copy(files = moved, items = chatItems(messages, calls, moved))
    }
}

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
        // Finished transfers (done, refused) do not change: only the others are read again.
        val known = mutableState.value.files
        val fetched = messages.filter {
            it.file != null && !it.deleted &&
                known[it.id].let { t -> t == null || t.state == FileTransferState.TRANSFERRING }
        }
            .mapNotNull { m -> node.fileTransfer(m.id)?.let { m.id to it } }.toMap()
        mutableState.update {
            val files = messages.mapNotNull { m ->
                (fetched[m.id] ?: it.files[m.id])?.let { t -> m.id to newer(it.files[m.id], t) }
            }.toMap()
            it.copy(
                title = name ?: conversation.take(8),
                messages = messages,
                calls = calls,
                files = files,
                items = chatItems(messages, calls, files),
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

    /**
     * A transfer of this chat moved on: its line shows how far, without reading the chat again
     * (progress comes often). A transfer not known yet comes with the next [refresh].
     */
    fun onProgress(event: NodeEvent.FileProgress) = mutableState.update { it.withProgress(conversation, event) }

    /**
     * A warning about this contact ([warningOf]) is shown with the chat, until the contact
     * itself is linked (its key proved in a handshake).
     */
    fun onWarning(event: NodeEvent) {
        if (event is NodeEvent.PeerConnected && event.fingerprint == conversation) return mutableState.update { it.copy(warning = null) }
        val warning = warningOf(event, conversation) ?: return
        mutableState.update { it.copy(warning = warning) }
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

/** One line of a message as the screen shows it; a file's with where its [transfer] stands. */
fun describe(message: ChatMessage, transfer: FileTransferInfo? = null): String {
    val file = message.file
    val body = when {
        message.deleted -> "(deleted)"
        file != null -> "📎 ${file.name} · ${fileSize(file.size)}" + transferNote(message.outgoing, file.size, transfer)
        else -> message.text
    }
    val who = if (message.outgoing) "me" else "them"
    val marks = listOfNotNull(
        "edited".takeIf { message.edited && !message.deleted },
        message.status.name.lowercase().takeIf { message.outgoing },
    ).joinToString(", ")
    return if (marks.isEmpty()) "$who: $body" else "$who: $body  [$marks]"
}

/** Where a file's transfer stands, after its name: sending or receiving how much, or refused; nothing once done. */
private fun transferNote(outgoing: Boolean, size: ULong, t: FileTransferInfo?): String = when (t?.state) {
    null, FileTransferState.DONE -> ""
    FileTransferState.REFUSED -> if (outgoing) " · refused by them (too large?)" else " · not received (too large, or damaged)"
    FileTransferState.TRANSFERRING -> when {
        t.bytes == 0uL && outgoing -> " · sent when you are both online"
        t.bytes == 0uL -> " · comes when you are both online"
        outgoing -> " · sending ${percent(t.bytes, size)} %"
        else -> " · receiving ${percent(t.bytes, size)} %"
    }
}

/**
 * What the chat with [conversation] says about [event], if it concerns it: another key answered
 * at the contact's address (not the contact: granted nothing), or the contact's app speaks a
 * wire version ours cannot (one of the two needs an update).
 */
fun warningOf(event: NodeEvent, conversation: String): String? = when {
    event is NodeEvent.KeyChanged && event.known == conversation ->
        "Someone else answered at this contact's address (fingerprint ${event.presented.take(8)}), not them: nothing of yours " +
            "reaches it. If they reinstalled PeerNS, ask them for their new link and verify it."
    event is NodeEvent.IncompatiblePeer && event.fingerprint == conversation ->
        "Their PeerNS speaks version ${event.theirs.major}, this one ${event.ours.major}: one of you needs an update to talk."
    else -> null
}

/**
 * The later of two reads of one transfer: a read that came in while progress events moved it on
 * does not take its bytes back, nor a finished transfer back to transferring (reads run at once).
 */
private fun newer(shown: FileTransferInfo?, read: FileTransferInfo): FileTransferInfo = when {
    // Finished (done, refused) stays finished: a read that started before cannot undo it.
    shown != null && shown.state != FileTransferState.TRANSFERRING -> shown
    shown != null && read.state == FileTransferState.TRANSFERRING && shown.bytes > read.bytes -> read.copy(bytes = shown.bytes)
    else -> read
}
