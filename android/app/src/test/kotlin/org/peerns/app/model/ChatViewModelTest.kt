package org.peerns.app.model

import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.test.runTest
import org.junit.Test
import org.peerns.ffi.FileTransferState
import org.peerns.ffi.MessageKind
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.WireVersion
import org.peerns.testing.eventually
import org.peerns.testing.tempDir
import org.peerns.testing.withAnnAndBob

class ChatViewModelTest {
    @Test
    fun messagesEditsDeletesAndFiles() = runTest(timeout = 120.seconds) {
        withAnnAndBob { ann, bob ->
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint
            val annChat = ChatViewModel(ann, bobFp)
            val bobChat = ChatViewModel(bob, annFp)
            annChat.open()
            assertEquals("bob", annChat.state.value.title)

            assertFalse(annChat.send("   "))
            assertNotNull(annChat.state.value.error)
            assertTrue(annChat.send(" hello "))
            val sent = annChat.state.value.messages.single()
            assertEquals("hello", sent.text)
            assertTrue(sent.outgoing)

            val received = eventually {
                bobChat.refresh()
                bobChat.state.value.messages.singleOrNull()
            }
            assertEquals("hello", received.text)
            assertFalse(received.outgoing)
            assertTrue(bobChat.concerns(NodeEvent.MessageReceived(received)))
            assertFalse(annChat.concerns(NodeEvent.MessageReceived(received)))

            assertTrue(annChat.edit(sent.id, "hello, bob"))
            assertTrue(annChat.state.value.messages.single().edited)
            eventually {
                bobChat.refresh()
                bobChat.state.value.messages.singleOrNull()?.takeIf { it.text == "hello, bob" && it.edited }
            }

            assertTrue(annChat.delete(sent.id))
            assertTrue(annChat.state.value.messages.single().deleted)
            assertEquals(
                "me: (deleted)  [${annChat.state.value.messages.single().status.name.lowercase()}]",
                describe(annChat.state.value.messages.single()),
            )
            eventually {
                bobChat.refresh()
                bobChat.state.value.messages.singleOrNull()?.takeIf { it.deleted }
            }

            val file = File(tempDir("files"), "notes.txt").apply { writeText("some notes") }
            assertTrue(annChat.sendFile(file.path))
            val fileMessage = annChat.state.value.messages.last()
            assertEquals(MessageKind.FILE, fileMessage.kind)
            assertEquals("notes.txt", fileMessage.file?.name)
            // Bob's chat, read after the file's events went by, finds it whole, with its path
            // to open; ann's says nothing more once it is done (her status mark says delivered).
            val arrived = eventually {
                bobChat.refresh()
                val m = bobChat.state.value.messages.lastOrNull()?.takeIf { it.kind == MessageKind.FILE }
                m?.let { bobChat.state.value.files[it.id] }?.takeIf { it.state == FileTransferState.DONE }
            }
            assertEquals(fileMessage.id, arrived.id)
            assertEquals("some notes", File(assertNotNull(arrived.path)).readText())
            val line = bobChat.state.value.items.last() as ChatItem.Message
            assertEquals(arrived, line.transfer)
            assertEquals("them: 📎 notes.txt · 10 B", describe(line.message, line.transfer))
            eventually {
                annChat.refresh()
                annChat.state.value.files[fileMessage.id]?.takeIf { it.state == FileTransferState.DONE && it.path == null }
            }

            // Progress of a transfer that moves shows on its line without reading the chat again.
            val moving = arrived.copy(state = FileTransferState.TRANSFERRING, bytes = 0uL, path = null)
            val waiting = bobChat.state.value.copy(files = mapOf(arrived.id to moving))
            assertEquals(
                "them: 📎 notes.txt · 10 B · comes when you are both online",
                describe(line.message, waiting.files[arrived.id]),
            )
            val progressedState = waiting.withProgress(annFp, NodeEvent.FileProgress(annFp, arrived.id, 4uL, 10uL, false))
            val progressed = progressedState.items.last() as ChatItem.Message
            assertEquals(4uL, progressed.transfer?.bytes)
            assertEquals("them: 📎 notes.txt · 10 B · receiving 40 %", describe(progressed.message, progressed.transfer))
            // Another chat's progress is not this one's; a finished transfer's line stays.
            assertEquals(progressedState, progressedState.withProgress(annFp, NodeEvent.FileProgress(bobFp, arrived.id, 8uL, 10uL, false)))
            assertEquals(
                bobChat.state.value,
                bobChat.state.value.withProgress(annFp, NodeEvent.FileProgress(annFp, arrived.id, 8uL, 10uL, false)),
            )
            annChat.close()
        }
    }

    @Test
    fun anotherKeyAtTheContactsAddressOrAnIncompatibleAppIsSaidInItsChat() {
        val bob = "b".repeat(64)
        val someone = "5".repeat(64)
        val changed = warningOf(NodeEvent.KeyChanged("peerns2-x", bob, someone), bob)
        assertTrue(changed!!.contains("55555555") && changed.contains("not them"), changed)
        assertNull(warningOf(NodeEvent.KeyChanged("peerns2-x", someone, bob), bob))
        val newer = NodeEvent.IncompatiblePeer("peerns2-x", bob, WireVersion(1u, 9u, 0uL), WireVersion(2u, 0u, 0uL))
        assertEquals("Their PeerNS speaks version 2, this one 1: one of you needs an update to talk.", warningOf(newer, bob))
        assertNull(warningOf(NodeEvent.IncompatiblePeer("peerns2-x", null, WireVersion(1u, 9u, 0uL), WireVersion(2u, 0u, 0uL)), bob))
        assertNull(warningOf(NodeEvent.PeerConnected("peerns2-x", bob), bob))
    }
}
