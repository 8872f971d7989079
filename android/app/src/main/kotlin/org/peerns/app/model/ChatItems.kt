package org.peerns.app.model

import org.peerns.ffi.CallLogEntry
import org.peerns.ffi.ChatMessage
import org.peerns.ffi.FileTransferInfo
import org.peerns.qr.PeernsLinks

/** One line of a 1:1 chat: a message, a group invitation (a message that is an invite link), or a call. */
sealed class ChatItem {
    /** When it happened, Unix ms: a message's sending time, a call's start. */
    abstract val timeMs: ULong

    /** A message; a file message with where its [transfer] stands (null until known). */
    data class Message(val message: ChatMessage, val transfer: FileTransferInfo? = null) : ChatItem() {
        override val timeMs get() = message.sentMs
    }

    /** A message whose whole text is a group invite link ([link]); opening it joins the group. */
    data class Invitation(val message: ChatMessage, val link: String) : ChatItem() {
        override val timeMs get() = message.sentMs
    }

    data class Call(val entry: CallLogEntry) : ChatItem() {
        override val timeMs get() = entry.startedMs
    }
}

/**
 * The group invite link [text] is, or null: the trimmed text starts with `peerns2-group:` and
 * is nothing but the link (no spaces), as the core sends it with `groupSendInvite`.
 */
fun inviteLinkIn(text: String): String? = text.trim().takeIf {
    PeernsLinks.isGroup(it) && it.length > PeernsLinks.GROUP.length && it.none(Char::isWhitespace)
}

/** The invite link [message] carries (not a file, not deleted), or null. */
fun inviteLinkOf(message: ChatMessage): String? = if (message.deleted || message.file != null) null else inviteLinkIn(message.text)

/**
 * The chat's lines, oldest first: [messages] and [calls] (in any order) interleaved by time; at
 * the same time a message comes before a call, and each keeps the order it was given in. A file
 * message carries its transfer from [files] (by message ID).
 */
fun chatItems(messages: List<ChatMessage>, calls: List<CallLogEntry>, files: Map<String, FileTransferInfo> = emptyMap()): List<ChatItem> {
    val lines = messages.map { m -> inviteLinkOf(m)?.let { ChatItem.Invitation(m, it) } ?: ChatItem.Message(m, files[m.id]) } +
        calls.map { ChatItem.Call(it) }
    return lines.sortedBy { it.timeMs }
}

/** A call as the chat shows it: "Outgoing video call · 2 min", "Missed call", "Incoming call · declined". */
fun describeCall(entry: CallLogEntry): String {
    val kind = if (entry.kinds.video) "video call" else "call"
    val dir = if (entry.outgoing) "Outgoing" else "Incoming"
    return when (entry.outcome) {
        "completed" -> "$dir $kind · ${callDuration(entry.durationMs)}"
        "missed" -> "Missed $kind"
        "no_answer" -> if (entry.outgoing) "$dir $kind · no answer" else "Missed $kind"
        else -> "$dir $kind · ${entry.outcome.replace('_', ' ')}"
    }
}

/** A call's length: "45 s" under a minute, "2 min" under an hour, "1 h 5 min" above. */
fun callDuration(ms: ULong): String {
    val s = (ms / 1000u).toLong()
    return when {
        s < 60 -> "$s s"
        s < 3600 -> "${s / 60} min"
        else -> "${s / 3600} h ${s % 3600 / 60} min"
    }
}
