package org.peerns.app.model

import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.test.runTest
import org.junit.Test
import org.peerns.ffi.MessageKind
import org.peerns.ffi.NodeEvent
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
            eventually {
                bobChat.refresh()
                bobChat.state.value.messages.lastOrNull()?.takeIf { it.kind == MessageKind.FILE }
            }
            annChat.close()
        }
    }
}
