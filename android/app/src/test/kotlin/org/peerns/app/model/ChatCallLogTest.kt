package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import org.junit.Test
import org.peerns.testing.eventually
import org.peerns.testing.withAnnAndBob

/** The calls with a contact among the chat's messages, between real nodes. */
class ChatCallLogTest {
    @Test
    fun endedCallsShowInTheChat() = runTest(timeout = 120.seconds) {
        withAnnAndBob { ann, bob ->
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint
            val annChat = ChatViewModel(ann, bobFp)
            val bobChat = ChatViewModel(bob, annFp)
            val annCall = CallViewModel(ann)
            val bobCall = CallViewModel(bob)
            // Each follows its node's events as the screens do: the chat reloads when an event
            // concerns it (a call with the contact logged). Unconfined: each flow subscribes
            // before launch returns, so no event sent next is missed.
            val follow = listOf(ann to (annCall to annChat), bob to (bobCall to bobChat)).map { (node, models) ->
                launch(Dispatchers.Unconfined) {
                    node.events.collect { e ->
                        models.first.onEvent(e)
                        if (models.second.concerns(e)) models.second.refresh()
                    }
                }
            }
            assertTrue(annChat.open())
            assertTrue(bobChat.open())
            assertTrue(annChat.send("call you now"))

            assertTrue(annCall.call(bobFp, video = true))
            eventually { bobCall.state.value.takeIf { it.ringingHere } }
            assertTrue(bobCall.accept(video = false))
            eventually { annCall.state.value.takeIf { it.status == "connected" } }
            assertTrue(bobCall.hangUp())

            // Nothing but the events refreshes the chats from here.
            val annEntry = eventually(what = "the call in ann's chat") {
                annChat.state.value.items.filterIsInstance<ChatItem.Call>().singleOrNull()
            }.entry
            assertEquals(listOf(true, "completed", true), listOf(annEntry.outgoing, annEntry.outcome, annEntry.kinds.video))
            assertTrue(describeCall(annEntry).startsWith("Outgoing video call · "), describeCall(annEntry))
            // The message sent before the call comes before it.
            assertEquals(listOf(ChatItem.Message::class, ChatItem.Call::class), annChat.state.value.items.map { it::class })
            val bobEntry = eventually(what = "the call in bob's chat") {
                bobChat.state.value.items.filterIsInstance<ChatItem.Call>().singleOrNull()
            }.entry
            assertEquals(listOf(annEntry.call, false, "completed"), listOf(bobEntry.call, bobEntry.outgoing, bobEntry.outcome))
            assertTrue(describeCall(bobEntry).startsWith("Incoming video call · "), describeCall(bobEntry))
            assertEquals(listOf(bobEntry), bobChat.state.value.calls)

            // A declined call, after a message: the newest line.
            assertTrue(bobChat.send("busy, later"))
            eventually(what = "bob's message at ann") {
                annChat.state.value.items.lastOrNull()?.takeIf { it is ChatItem.Message && !it.message.outgoing }
            }
            assertTrue(annCall.call(bobFp, video = false))
            eventually { bobCall.state.value.takeIf { it.ringingHere && it.call == annCall.state.value.call } }
            assertTrue(bobCall.decline())
            val declined = eventually(what = "the declined call in ann's chat") {
                annChat.state.value.items.lastOrNull()?.let { it as? ChatItem.Call }?.takeIf { it.entry.outcome == "declined" }
            }
            assertEquals("Outgoing call · declined", describeCall(declined.entry))
            assertEquals(
                listOf(ChatItem.Message::class, ChatItem.Call::class, ChatItem.Message::class, ChatItem.Call::class),
                annChat.state.value.items.map { it::class },
            )
            eventually(what = "the declined call in bob's chat") {
                val last = bobChat.state.value.items.lastOrNull() as? ChatItem.Call
                last?.takeIf { describeCall(it.entry) == "Incoming call · declined" }
            }
            follow.forEach { it.cancel() }
            annChat.close()
            bobChat.close()
        }
    }
}
