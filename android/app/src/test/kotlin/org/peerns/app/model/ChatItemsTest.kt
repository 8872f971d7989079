package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertNull
import org.junit.Test
import org.peerns.ffi.CallKinds
import org.peerns.ffi.CallLogEntry
import org.peerns.ffi.ChatMessage
import org.peerns.ffi.FileInfo
import org.peerns.ffi.MessageKind
import org.peerns.ffi.MessageStatus

/** The chat's lines without a node: invite links, calls among messages, how calls read. */
class ChatItemsTest {
    private val link = "peerns2-group:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

    private fun message(
        id: String,
        sentMs: Long,
        text: String,
        outgoing: Boolean = false,
        deleted: Boolean = false,
        file: FileInfo? = null,
    ) = ChatMessage(
        conversation = "ab".repeat(32), id = id, outgoing = outgoing, seq = 0u,
        kind = if (file == null) MessageKind.TEXT else MessageKind.FILE, text = text, sentMs = sentMs.toULong(),
        receivedMs = null, status = MessageStatus.DELIVERED, edited = false, deleted = deleted, file = file,
    )

    private fun call(
        id: String,
        startedMs: Long,
        outcome: String,
        outgoing: Boolean = true,
        video: Boolean = false,
        durationMs: Long = 0,
    ) = CallLogEntry(
        call = id,
        fingerprint = "ab".repeat(32),
        outgoing = outgoing,
        kinds = CallKinds(audio = true, video = video, screen = false),
        startedMs = startedMs.toULong(),
        durationMs = durationMs.toULong(),
        outcome = outcome,
        reason = "",
    )

    @Test
    fun inviteLinksAreTold() {
        assertEquals(link, inviteLinkIn(link))
        assertEquals(link, inviteLinkIn("  $link\n"))
        assertNull(inviteLinkIn("peerns2-group:"))
        assertNull(inviteLinkIn("join us: $link"))
        assertNull(inviteLinkIn("$link see you there"))
        assertNull(inviteLinkIn("peerns2:AAAA"))
        assertNull(inviteLinkIn("hello"))
        assertNull(inviteLinkIn(""))
        assertEquals(link, inviteLinkOf(message("1", 1, link)))
        assertNull(inviteLinkOf(message("1", 1, link, deleted = true)))
        assertNull(inviteLinkOf(message("1", 1, "", file = FileInfo("a.txt", 3u, "text/plain"))))
    }

    @Test
    fun callsAreInterleavedWithMessagesByTime() {
        val hello = message("m1", 1_000, "hello")
        val invite = message("m2", 5_000, link, outgoing = true)
        val late = message("m3", 9_000, "bye")
        // The call log comes newest first.
        val missed = call("c2", 7_000, "missed", outgoing = false)
        val talked = call("c1", 3_000, "completed", video = true, durationMs = 125_000)
        val tie = call("c3", 9_000, "declined")
        val items = chatItems(listOf(hello, invite, late), listOf(tie, missed, talked))
        assertEquals(
            listOf(
                ChatItem.Message(hello),
                ChatItem.Call(talked),
                ChatItem.Invitation(invite, link),
                ChatItem.Call(missed),
                ChatItem.Message(late),
                ChatItem.Call(tie),
            ),
            items,
        )
        assertEquals(listOf(1_000L, 3_000, 5_000, 7_000, 9_000, 9_000), items.map { it.timeMs.toLong() })
        assertEquals(emptyList(), chatItems(emptyList(), emptyList()))
        assertEquals(listOf<ChatItem>(ChatItem.Call(missed)), chatItems(emptyList(), listOf(missed)))
    }

    @Test
    fun callsReadAsTheyEnded() {
        assertEquals("Outgoing video call · 2 min", describeCall(call("c", 0, "completed", video = true, durationMs = 125_000)))
        assertEquals("Incoming call · 45 s", describeCall(call("c", 0, "completed", outgoing = false, durationMs = 45_900)))
        assertEquals("Outgoing call · 1 h 5 min", describeCall(call("c", 0, "completed", durationMs = 3_930_000)))
        assertEquals("Missed call", describeCall(call("c", 0, "missed", outgoing = false)))
        assertEquals("Missed video call", describeCall(call("c", 0, "no_answer", outgoing = false, video = true)))
        assertEquals("Outgoing call · no answer", describeCall(call("c", 0, "no_answer")))
        assertEquals("Outgoing call · declined", describeCall(call("c", 0, "declined")))
        assertEquals("Incoming call · busy", describeCall(call("c", 0, "busy", outgoing = false)))
        assertEquals("Outgoing video call · cancelled", describeCall(call("c", 0, "cancelled", video = true)))
        assertEquals("Outgoing call · failed", describeCall(call("c", 0, "failed")))
        assertEquals("0 s", callDuration(0u))
        assertEquals("59 s", callDuration(59_999u))
        assertEquals("1 min", callDuration(60_000u))
    }
}
