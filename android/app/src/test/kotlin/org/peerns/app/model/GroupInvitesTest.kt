package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import org.junit.Test
import org.peerns.ffi.GroupMembership
import org.peerns.ffi.Trust
import org.peerns.testing.eventually
import org.peerns.testing.withAnnAndBob

/** Group invites sent as chat messages, between real nodes. */
class GroupInvitesTest {
    @Test
    fun aTrustedContactJoinsAtOnceAndIsTold() = runTest(timeout = 120.seconds) {
        // Bob accepts Ann's request: he trusts her at level 2 (she may invite him).
        withAnnAndBob { ann, bob ->
            val bobFp = bob.identity().fingerprint
            val gid = assertNotNull(GroupsViewModel(ann).create("Trip"))
            eventually { ann.groups().single().takeIf { it.router } }

            val annChat = GroupChatViewModel(ann, gid)
            assertTrue(annChat.refresh())
            assertTrue(annChat.state.value.admin)
            assertEquals(listOf(bobFp), annChat.state.value.invitable.map { it.fingerprint })

            val bobGroups = GroupsViewModel(bob)
            // Each model follows its node's group events, as the screens do. Unconfined: each
            // flow subscribes before launch returns, so no event sent next is missed.
            val follow = listOf(
                launch(Dispatchers.Unconfined) { bob.groupEvents.collect { bobGroups.onGroupEvent(it) } },
                launch(Dispatchers.Unconfined) {
                    ann.groupEvents.collect { e ->
                        annChat.onGroupEvent(e)
                        if (annChat.needsRefresh(e)) annChat.refresh()
                    }
                },
            )

            assertTrue(annChat.sendInvite(bobFp))
            assertEquals(setOf(bobFp), annChat.state.value.invited)
            assertEquals("Invitation sent to bob", annChat.state.value.notice)
            assertFalse(annChat.sendInvite("not a fingerprint"))
            assertNotNull(annChat.state.value.error)

            val notice = eventually(what = "bob's invited notice") { bobGroups.state.value.notice }
            assertEquals("Joined Trip, invited by ann", notice)
            assertEquals(listOf(gid), bobGroups.state.value.groups.map { it.id })
            bobGroups.noticeShown()
            assertNull(bobGroups.state.value.notice)

            // Bob is a member now: no longer someone Ann can invite.
            eventually(what = "bob among ann's members") { annChat.state.value.takeIf { it.invitable.isEmpty() } }
            eventually(what = "bob a member") { bob.groups().firstOrNull { it.id == gid && it.membership == GroupMembership.MEMBER } }
            follow.forEach { it.cancel() }
        }
    }

    @Test
    fun aKnownContactSeesAnInvitationToJoin() = runTest(timeout = 120.seconds) {
        withAnnAndBob { ann, bob ->
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint
            // Known (level 1): Ann's invites are left to Bob.
            bob.setTrust(annFp, Trust.KNOWN)
            val gid = assertNotNull(GroupsViewModel(ann).create("Book club"))
            val annGroup = GroupChatViewModel(ann, gid)
            assertTrue(annGroup.refresh())
            assertTrue(annGroup.sendInvite(bobFp))

            val bobChat = ChatViewModel(bob, annFp)
            val invitation = eventually(what = "the invitation in bob's chat") {
                bobChat.refresh()
                bobChat.state.value.items.filterIsInstance<ChatItem.Invitation>().singleOrNull()
            }
            assertFalse(invitation.message.outgoing)
            assertEquals(invitation.message.text.trim(), invitation.link)
            assertEquals(emptyList(), bob.groups().map { it.id })
            // Ann's side of the chat shows the invitation she sent.
            val annChat = ChatViewModel(ann, bobFp)
            assertTrue(annChat.refresh())
            assertTrue(annChat.state.value.items.filterIsInstance<ChatItem.Invitation>().single().message.outgoing)

            // A link meant for someone else fails into the chat's error.
            val forCarol = ann.groupInvite(gid, "ab".repeat(32))
            assertNull(bobChat.joinGroup(forCarol))
            assertNotNull(bobChat.state.value.error)

            assertEquals(gid, bobChat.joinGroup(invitation.link))
            assertNull(bobChat.state.value.error)
            eventually(what = "bob a member") { bob.groups().firstOrNull { it.id == gid && it.membership == GroupMembership.MEMBER } }
            eventually(what = "bob among ann's members") {
                annGroup.refresh()
                annGroup.state.value.takeIf { s -> s.members.any { it.fingerprint == bobFp } && s.invitable.isEmpty() }
            }
            // The group's screens name a member who is a contact as we do; others by fingerprint.
            assertEquals("bob", annGroup.state.value.nameOf(bobFp))
            assertEquals("ab".repeat(4), annGroup.state.value.nameOf("ab".repeat(32)))
        }
    }
}
