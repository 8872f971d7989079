package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.test.runTest
import org.junit.Test
import org.peerns.testing.eventually
import org.peerns.testing.scanned
import org.peerns.testing.withAnnAndBob

/** A link read from a QR code, as the contacts screen's scanner hands it over, against real nodes. */
class ScannedLinkTest {
    @Test
    fun aScannedShareLinkAsksAndAScannedInviteJoins() = runTest(timeout = 120.seconds) {
        withAnnAndBob(contacts = false) { ann, bob ->
            val annFp = ann.identity().fingerprint
            val contacts = ContactsViewModel(ann)
            val groups = GroupsViewModel(ann)

            // Bob's share link, as his settings screen shows it, scanned by Ann.
            val bobSettings = SettingsViewModel(
                bob,
                object : SettingsStore {
                    override var signalingUrl = "ws://127.0.0.1:9000/"
                    override var startAtBoot = false
                },
            )
            bobSettings.refresh()
            val shareLink = assertNotNull(scanned(bobSettings.state.value.shareLink))
            assertEquals(bob.shareLink(), shareLink)
            assertNull(ScannedLink.use(shareLink, contacts, groups))
            assertNull(contacts.state.value.error)
            assertEquals(listOf(bob.identity().fingerprint), contacts.state.value.outgoing.map { it.fingerprint })
            eventually { bob.requests().firstOrNull { it.fingerprint == annFp } }

            // Bob's group invite for Ann, shown as a QR code in his group chat, scanned by Ann.
            val bobGroups = GroupsViewModel(bob)
            val gid = assertNotNull(bobGroups.create("Picnic"))
            assertEquals(true, bobGroups.invite(gid, annFp))
            val invite = assertNotNull(scanned(assertNotNull(bobGroups.state.value.inviteLink)))
            assertEquals(Screen.GroupChat(gid), ScannedLink.use(invite, contacts, groups))
            assertEquals(listOf(gid), groups.state.value.groups.map { it.id })

            // A link meant for someone else fails like a pasted one, shown in that model.
            assertEquals(true, bobGroups.invite(gid, "ab".repeat(32)))
            val carolInvite = assertNotNull(bobGroups.state.value.inviteLink)
            assertNull(ScannedLink.use(assertNotNull(scanned(carolInvite)), contacts, groups))
            assertNotNull(groups.state.value.error)

            // Other QR content never reaches the models.
            assertNull(scanned("https://example.org/peerns2:x"))
            assertNull(ScannedLink.use("https://example.org", contacts, groups))
        }
    }
}
