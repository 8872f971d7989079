package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withContext
import org.junit.Test
import org.peerns.Peerns
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.Trust
import org.peerns.testing.config
import org.peerns.testing.eventually
import org.peerns.testing.startedNode
import org.peerns.testing.tempDir
import org.peerns.testing.withAnnAndBob

class ContactsViewModelTest {
    @Test
    fun addByLinkAcceptAndSetTrust() = runTest(timeout = 90.seconds) {
        withAnnAndBob(contacts = false) { ann, bob ->
            val annVm = ContactsViewModel(ann)
            val bobVm = ContactsViewModel(bob)
            bobVm.refresh()
            assertTrue(bobVm.state.value.shareLink.isNotEmpty())

            assertFalse(annVm.add("  "))
            assertNotNull(annVm.state.value.error)
            assertFalse(annVm.add("not a link"))
            assertTrue(annVm.add(bobVm.state.value.shareLink))
            assertNull(annVm.state.value.error)
            assertEquals(listOf(bob.identity().fingerprint), annVm.state.value.outgoing.map { it.fingerprint })

            val annFp = ann.identity().fingerprint
            eventually {
                bobVm.refresh()
                bobVm.state.value.incoming.firstOrNull { it.fingerprint == annFp }
            }
            // Left for later, the request stays, marked.
            assertTrue(bobVm.later(annFp))
            assertTrue(bobVm.state.value.incoming.single { it.fingerprint == annFp }.later)
            assertTrue(bobVm.accept(annFp))
            assertEquals(Trust.TRUSTED, bobVm.state.value.contacts.single().trust)
            assertTrue(bobVm.state.value.incoming.isEmpty())

            assertTrue(bobVm.setTrust(annFp, Trust.KNOWN))
            assertEquals(Trust.KNOWN, bobVm.state.value.contacts.single().trust)
            assertEquals(Trust.entries.toSet(), ContactsViewModel.trustChoices.map { it.first }.toSet())
            // Bob compared ann's fingerprint with her phone's: verified (✓), and back.
            assertFalse(bobVm.state.value.contacts.single().verified)
            assertTrue(bobVm.setVerified(annFp, true))
            assertTrue(bobVm.state.value.contacts.single().verified)
            assertTrue(bobVm.setVerified(annFp, false))
            assertFalse(bobVm.state.value.contacts.single().verified)
            assertEquals("0123 4567 89", grouped("0123456789"))

            eventually {
                annVm.refresh()
                annVm.state.value.contacts.firstOrNull { it.fingerprint == bob.identity().fingerprint }
            }
            assertTrue(annVm.state.value.outgoing.isEmpty())
            assertTrue(annVm.concerns(NodeEvent.ContactAdded(annFp, "x")))
            // Removed, ann is no longer bob's contact.
            assertTrue(bobVm.remove(annFp))
            assertTrue(bobVm.state.value.contacts.none { it.fingerprint == annFp })
        }
    }

    @Test
    fun addingSomeoneOfflineKeepsTheLinkAndAsksOnceTheyAreOnline() = runTest(timeout = 90.seconds) {
        withContext(Dispatchers.Default) {
            val ann = startedNode("ann")
            val bobDir = tempDir("peerns-bob")
            val bob = Peerns(config(bobDir, "bob")).also { it.start() }
            val bobFp = bob.identity().fingerprint
            val link = bob.shareLink()
            bob.stop()
            var bobAgain: Peerns? = null
            try {
                val vm = ContactsViewModel(ann)
                assertTrue(vm.add(link), "kept for later is a success")
                assertNull(vm.state.value.error)
                assertEquals(ContactsViewModel.WAITING_NOTICE, vm.state.value.notice)
                assertEquals(listOf(bobFp), vm.state.value.waiting.map { it.fingerprint })
                assertTrue(vm.state.value.outgoing.isEmpty())

                val again = Peerns(config(bobDir, "bob")).also { it.start() }
                bobAgain = again
                val annFp = ann.identity().fingerprint
                eventually(60.seconds, "bob to receive the request") {
                    again.requests().firstOrNull { it.fingerprint == annFp }
                }
                eventually(what = "the request to show as sent") {
                    vm.refresh()
                    vm.state.value.outgoing.firstOrNull { it.fingerprint == bobFp }
                }
                assertTrue(vm.state.value.waiting.isEmpty())
                assertNull(vm.state.value.notice)
                assertTrue(vm.concerns(NodeEvent.ContactRequestSent(bobFp, "bob")))

                // A kept link can be cancelled.
                again.stop()
                bobAgain = null
                val carol = Peerns(config(tempDir("peerns-carol"), "carol")).also { it.start() }
                val carolLink = carol.shareLink()
                val carolFp = carol.identity().fingerprint
                carol.stop()
                assertTrue(vm.add(carolLink))
                assertEquals(listOf(carolFp), vm.state.value.waiting.map { it.fingerprint })
                assertTrue(vm.cancel(carolFp))
                assertTrue(vm.state.value.waiting.isEmpty())
            } finally {
                try {
                    ann.stop()
                } finally {
                    bobAgain?.stop()
                }
            }
        }
    }
}
