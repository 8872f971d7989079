package org.peerns.app

import android.app.Application
import android.app.Notification
import android.app.NotificationManager
import android.content.pm.PackageManager
import android.os.Build
import android.telecom.Connection
import android.telecom.DisconnectCause
import android.telecom.PhoneAccount
import android.telecom.TelecomManager
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.android.PeernsConnection
import org.peerns.android.PeernsConnectionService
import org.peerns.android.PeernsTelecom
import org.peerns.ffi.CallKinds
import org.peerns.telecom.CallControl
import org.peerns.testing.makeContacts
import org.peerns.testing.startedNode
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/**
 * The self-managed Telecom integration on Robolectric's `ShadowTelecomManager`: the phone
 * account, incoming calls reported with their call ID, connections made by
 * [PeernsConnectionService] whose answer, reject and disconnect reach the node, and which follow
 * the node's call states; the fallback when the device has no Telecom.
 */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class TelecomRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val telecom get() = app.getSystemService(TelecomManager::class.java)
    private val audio = CallKinds(audio = true, video = false, screen = false)

    private class Recording : CallControl {
        val asked = mutableListOf<String>()

        override fun answer(call: String, video: Boolean) {
            asked += "answer $call video=$video"
        }

        override fun decline(call: String) {
            asked += "decline $call"
        }

        override fun hangUp(call: String) {
            asked += "hangUp $call"
        }
    }

    private fun telecomFeature(on: Boolean) {
        val feature = if (Build.VERSION.SDK_INT >= 33) PackageManager.FEATURE_TELECOM else "android.software.connectionservice"
        shadowOf(app.packageManager).setSystemFeature(feature, on)
    }

    @Before
    fun setUp() {
        telecomFeature(true)
        shadowOf(telecom).setConnectionService(Robolectric.setupService(PeernsConnectionService::class.java))
        useLoopbackNode(app)
    }

    @After
    fun tearDown() {
        PeernsTelecom.control = null
        PeernsTelecom.showIncomingUi = null
    }

    /** Reports [call] and lets Telecom create its connection. */
    private fun incoming(call: String, caller: String): PeernsConnection {
        assertTrue(PeernsTelecom.reportIncoming(app, call, caller, "bob", video = false))
        val record = shadowOf(telecom).lastIncomingCall
        assertEquals(PeernsTelecom.accountHandle(app), record.phoneAccount)
        assertEquals(call, record.extras.getBundle(TelecomManager.EXTRA_INCOMING_CALL_EXTRAS)?.getString(PeernsTelecom.EXTRA_CALL))
        return assertIs<PeernsConnection>(shadowOf(telecom).allowIncomingCall(record))
    }

    @Test
    fun incomingCallsBecomeSelfManagedConnectionsThatDriveTheCall() {
        val control = Recording()
        PeernsTelecom.control = control
        val shown = mutableListOf<String>()
        PeernsTelecom.showIncomingUi = { call, caller, name -> shown += "$call $caller $name" }
        val caller = "b".repeat(64)

        val first = incoming("call-1", caller)
        val account = shadowOf(telecom).allPhoneAccounts.single { it.accountHandle == PeernsTelecom.accountHandle(app) }
        assertTrue(account.hasCapabilities(PhoneAccount.CAPABILITY_SELF_MANAGED))
        assertTrue(account.hasCapabilities(PhoneAccount.CAPABILITY_VIDEO_CALLING))
        assertEquals(Connection.PROPERTY_SELF_MANAGED, first.connectionProperties and Connection.PROPERTY_SELF_MANAGED)
        assertTrue(first.audioModeIsVoip)
        assertEquals(Connection.STATE_RINGING, first.state)
        val reported = shadowOf(telecom).allIncomingCalls.size
        assertTrue(PeernsTelecom.reportIncoming(app, "call-1", caller, "bob", video = false))
        assertEquals(reported, shadowOf(telecom).allIncomingCalls.size, "reported once")
        first.onShowIncomingCallUi()
        assertEquals(listOf("call-1 $caller bob"), shown)

        // A headset button answers; the node connects; the peer hangs up.
        first.onAnswer()
        assertEquals(listOf("answer call-1 video=false"), control.asked)
        PeernsTelecom.follow("call-1", "connected", null)
        assertEquals(Connection.STATE_ACTIVE, first.state)
        first.onDisconnect()
        assertEquals("hangUp call-1", control.asked.last())
        PeernsTelecom.follow("call-1", "ended", "peer_hangup")
        assertEquals(Connection.STATE_DISCONNECTED, first.state)
        assertEquals(DisconnectCause.REMOTE, first.disconnectCause.code)

        // Rejected from the system UI: declined by the node, then REJECTED.
        val second = incoming("call-2", caller)
        second.onReject()
        assertEquals("decline call-2", control.asked.last())
        PeernsTelecom.follow("call-2", "ended", "declined")
        assertEquals(DisconnectCause.REJECTED, second.disconnectCause.code)

        // Nobody answered: MISSED; the link was lost: ERROR.
        val third = incoming("call-3", caller)
        PeernsTelecom.follow("call-3", "ended", "cancelled")
        assertEquals(DisconnectCause.MISSED, third.disconnectCause.code)
        val fourth = incoming("call-4", caller)
        PeernsTelecom.follow("call-4", "ended", "lost")
        assertEquals(DisconnectCause.ERROR, fourth.disconnectCause.code)
    }

    @Test
    fun callsWePlaceGoThroughTelecomOnlyWithManageOwnCalls() {
        val control = Recording()
        PeernsTelecom.control = control
        val callee = "d".repeat(64)
        shadowOf(app).denyPermissions(android.Manifest.permission.MANAGE_OWN_CALLS)
        assertFalse(PeernsTelecom.placeOutgoing(app, "out-0", callee, video = false))
        shadowOf(app).grantPermissions(android.Manifest.permission.MANAGE_OWN_CALLS)
        shadowOf(telecom).setCallPhonePermission(true)

        assertTrue(PeernsTelecom.placeOutgoing(app, "out-1", callee, video = false))
        val record = shadowOf(telecom).lastOutgoingCall
        assertEquals("out-1", record.extras.getBundle(TelecomManager.EXTRA_OUTGOING_CALL_EXTRAS)?.getString(PeernsTelecom.EXTRA_CALL))
        val connection = assertIs<PeernsConnection>(shadowOf(telecom).allowOutgoingCall(record))
        assertEquals(Connection.STATE_DIALING, connection.state)
        PeernsTelecom.follow("out-1", "ringing", null)
        assertEquals(Connection.STATE_DIALING, connection.state)
        PeernsTelecom.follow("out-1", "connected", null)
        assertEquals(Connection.STATE_ACTIVE, connection.state)
        connection.onDisconnect()
        assertEquals(listOf("hangUp out-1"), control.asked)
        PeernsTelecom.follow("out-1", "ended", "hangup")
        assertEquals(DisconnectCause.LOCAL, connection.disconnectCause.code)
    }

    @Test
    fun withoutTelecomTheNotificationAloneRings() {
        telecomFeature(false)
        val before = shadowOf(telecom).allIncomingCalls.size
        assertFalse(PeernsTelecom.reportIncoming(app, "call-x", "b".repeat(64), "bob", video = false))
        assertEquals(before, shadowOf(telecom).allIncomingCalls.size)
        assertFalse(PeernsTelecom.calls.pending("call-x"))
    }

    @Test
    fun theServiceReportsARealCallToTelecomAndItsAnswerReachesTheCaller() {
        val controller = Robolectric.buildService(InMemoryKeyAppService::class.java).create().startCommand(0, 1)
        val service = controller.get()
        running(service)
        val ann = service.node!!
        val bob = runBlocking { startedNode("bob") }
        val manager = app.getSystemService(NotificationManager::class.java)
        try {
            runBlocking { makeContacts(ann, bob) }
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint
            val call = runBlocking { bob.startCall(annFp, audio) }

            // The notification rings as before, and Telecom got the call with its ID.
            idleUntil { shadowOf(manager).allNotifications.firstOrNull { it.category == Notification.CATEGORY_CALL } }
            val record = idleUntil {
                shadowOf(telecom).allIncomingCalls.lastOrNull()?.takeIf {
                    it.extras.getBundle(TelecomManager.EXTRA_INCOMING_CALL_EXTRAS)?.getString(PeernsTelecom.EXTRA_CALL) == call
                }
            }
            val connection = assertIs<PeernsConnection>(shadowOf(telecom).allowIncomingCall(record))
            assertEquals(bobFp, connection.peer)

            // Answered through Telecom (a headset button): the caller is connected, the connection active.
            connection.onAnswer()
            idleUntil { bob.activeCall()?.takeIf { it.call == call && it.status.state == "connected" } }
            idleUntil { (connection.state == Connection.STATE_ACTIVE).takeIf { it } }
            idleUntil { shadowOf(manager).allNotifications.none { it.category == Notification.CATEGORY_CALL }.takeIf { it } }

            // Bob hangs up: the connection is disconnected as REMOTE.
            bob.hangUp(call)
            idleUntil { (connection.state == Connection.STATE_DISCONNECTED).takeIf { it } }
            assertEquals(DisconnectCause.REMOTE, assertNotNull(connection.disconnectCause).code)
        } finally {
            runBlocking { bob.stop() }
            runBlocking { ann.stop() }
            controller.destroy()
        }
    }
}
