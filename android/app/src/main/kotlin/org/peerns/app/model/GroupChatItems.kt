package org.peerns.app.model

import java.util.Locale
import org.peerns.ffi.GroupFileInfo
import org.peerns.ffi.GroupFileRef
import org.peerns.ffi.GroupFileTransfer
import org.peerns.ffi.GroupMessage

/** Where a group file stands on this phone, as the chat shows it. */
data class GroupFileStatus(
    val state: GroupFileTransfer,
    /** Bytes on disk so far. */
    val received: ULong = 0u,
    /** The file, once [GroupFileTransfer.DONE]. */
    val path: String? = null,
) {
    /** Arrived whole and verified (or ours), at [path]. */
    val done: Boolean get() = state == GroupFileTransfer.DONE && path != null

    /**
     * The more advanced of this and [other], so that an older answer of the node never undoes a
     * newer event: a finished state (done or refused) wins, otherwise the one with more bytes.
     */
    fun newer(other: GroupFileStatus): GroupFileStatus = when {
        state != GroupFileTransfer.TRANSFERRING -> this
        other.state != GroupFileTransfer.TRANSFERRING -> other
        other.received > received -> other
        else -> this
    }

    companion object {
        /** Announced; nothing on this phone yet. */
        val WAITING = GroupFileStatus(GroupFileTransfer.TRANSFERRING)

        fun of(info: GroupFileInfo) = GroupFileStatus(info.state, info.received, info.path)
    }
}

/** One line of a group chat: a text message, or a shared file with where it stands here. */
sealed class GroupChatItem {
    abstract val message: GroupMessage

    data class Message(override val message: GroupMessage) : GroupChatItem()

    data class File(override val message: GroupMessage, val file: GroupFileRef, val status: GroupFileStatus) : GroupChatItem()
}

/** [messages] as the chat lists them: file messages as [GroupChatItem.File] with their status from [files] (by file ID). */
fun groupChatItems(messages: List<GroupMessage>, files: Map<String, GroupFileStatus>): List<GroupChatItem> = messages.map { m ->
    m.file?.let { GroupChatItem.File(m, it, files[it.id] ?: GroupFileStatus.WAITING) } ?: GroupChatItem.Message(m)
}

/**
 * A shared file as the chat shows it: "📎 notes.txt · 12 KB", and while it comes "· receiving
 * 40 %" (or "· waiting for a member who has it" before any byte), or "· could not be verified"
 * when it was given up (no holder's bytes matched the author's signed hash) or refused.
 */
fun describeGroupFile(file: GroupFileRef, status: GroupFileStatus): String {
    val head = "📎 ${file.name} · ${fileSize(file.size)}"
    return when (status.state) {
        GroupFileTransfer.DONE -> head
        GroupFileTransfer.REFUSED -> "$head · could not be verified"
        GroupFileTransfer.TRANSFERRING -> when {
            status.received == 0uL -> "$head · waiting for a member who has it"
            else -> "$head · receiving ${percent(status.received, file.size)} %"
        }
    }
}

/** [received] of [size] in whole percent, 0–100. */
fun percent(received: ULong, size: ULong): Int = if (size == 0uL) 100 else (received.coerceAtMost(size) * 100uL / size).toInt()

/** A size for people: "512 B", "12 KB", "3.4 MB", "1.2 GB" (1 KB = 1024 B). */
fun fileSize(bytes: ULong): String {
    val b = bytes.toDouble()
    return when {
        bytes < 1024uL -> "$bytes B"
        bytes < 1024uL * 1024uL -> "${(b / 1024).toLong()} KB"
        bytes < 1024uL * 1024uL * 1024uL -> "%.1f MB".format(Locale.ROOT, b / (1024 * 1024))
        else -> "%.1f GB".format(Locale.ROOT, b / (1024 * 1024 * 1024))
    }
}
