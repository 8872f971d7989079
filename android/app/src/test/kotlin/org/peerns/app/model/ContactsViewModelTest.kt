package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.test.runTest
import org.junit.Test
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.Trust
import org.peerns.testing.eventually
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
            assertTrue(bobVm.accept(annFp))
            assertEquals(Trust.TRUSTED, bobVm.state.value.contacts.single().trust)
            assertTrue(bobVm.state.value.incoming.isEmpty())

            assertTrue(bobVm.setTrust(annFp, Trust.KNOWN))
            assertEquals(Trust.KNOWN, bobVm.state.value.contacts.single().trust)
            assertEquals(Trust.entries.toSet(), ContactsViewModel.trustChoices.map { it.first }.toSet())

            eventually {
                annVm.refresh()
                annVm.state.value.contacts.firstOrNull { it.fingerprint == bob.identity().fingerprint }
            }
            assertTrue(annVm.state.value.outgoing.isEmpty())
            assertTrue(annVm.concerns(NodeEvent.ContactAdded(annFp, "x")))
        }
    }
}
