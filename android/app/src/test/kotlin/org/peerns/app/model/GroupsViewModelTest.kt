package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import org.junit.Test
import org.peerns.ffi.GroupMembership
import org.peerns.testing.eventually
import org.peerns.testing.withAnnAndBob

class GroupsViewModelTest {
    @Test
    fun createInviteJoinChatAndMembers() = runTest(timeout = 120.seconds) {
        withAnnAndBob(contacts = false) { ann, bob ->
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint
            val annGroups = GroupsViewModel(ann)
            val bobGroups = GroupsViewModel(bob)
            assertEquals(null, annGroups.create("  "))
            assertNotNull(annGroups.state.value.error)
            val gid = assertNotNull(annGroups.create("Trip"))
            assertEquals(listOf("Trip"), annGroups.state.value.groups.map { it.name })
            eventually { ann.groups().single().takeIf { it.router } }

            assertFalse(annGroups.invite(gid, "not a fingerprint"))
            // Pasted as the settings show it: in groups of four, upper case.
            assertTrue(annGroups.invite(gid, grouped(bobFp).uppercase()))
            val link = assertNotNull(annGroups.state.value.inviteLink)
            assertEquals(gid, bobGroups.join(link))
            assertEquals(listOf(gid), bobGroups.state.value.groups.map { it.id })

            val annChat = GroupChatViewModel(ann, gid)
            val bobChat = GroupChatViewModel(bob, gid)
            // Each chat follows its node's group events, as the screen does. Unconfined: each
            // flow subscribes before launch returns, so no event sent next is missed.
            val follow = listOf(ann to annChat, bob to bobChat).map { (node, chat) ->
                launch(Dispatchers.Unconfined) {
                    node.groupEvents.collect { e ->
                        chat.onGroupEvent(e)
                        if (chat.needsRefresh(e)) chat.refresh()
                    }
                }
            }
            annChat.refresh()
            bobChat.refresh()
            assertTrue(annChat.state.value.admin)
            assertEquals("Trip", bobChat.state.value.name)

            assertTrue(annChat.send(" hello group "))
            assertEquals(listOf("hello group"), annChat.state.value.messages.map { it.text })
            eventually { annChat.state.value.members.takeIf { m -> m.any { it.fingerprint == bobFp } } }
            eventually { bobChat.state.value.messages.singleOrNull { it.text == "hello group" } }
            // Bob may send once the group's log has reached him.
            eventually { if (bobChat.send("hi ann")) true else null }
            eventually { annChat.state.value.messages.singleOrNull { it.text == "hi ann" && it.author == bobFp } }
            assertEquals(annChat.state.value.messages.map { it.id }.toSet(), bobChat.state.value.messages.map { it.id }.toSet())
            assertEquals(GroupMembership.MEMBER, bobChat.state.value.membership)

            assertTrue(annChat.remove(bobFp))
            assertEquals(listOf(annFp), annChat.state.value.members.map { it.fingerprint })
            eventually { bobChat.state.value.takeIf { it.membership == GroupMembership.FORMER } }
            // Bob still sees the group, as one he was removed from, until he deletes it.
            bobGroups.refresh()
            assertEquals(listOf(GroupMembership.FORMER), bobGroups.state.value.groups.map { it.membership })
            assertFalse(bobChat.state.value.canLeave)
            assertTrue(bobChat.state.value.canDelete)
            assertTrue(bobChat.delete())
            bobGroups.refresh()
            assertEquals(emptyList(), bobGroups.state.value.groups)
            // Deleting it again fails with a reason.
            assertFalse(bobChat.delete())
            assertNotNull(bobChat.state.value.error)
            follow.forEach { it.cancel() }
        }
    }
}
