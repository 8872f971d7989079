package org.peerns.app

import android.Manifest
import android.app.Application
import android.content.pm.ServiceInfo
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertSame
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.app.model.FakeMicrophone
import org.peerns.app.model.RecordingMedia
import org.peerns.ffi.Trust
import org.peerns.testing.makeContacts
import org.peerns.testing.startedNode
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/** The app's service with a keystore in memory and the monitor's microphone and camera faked. */
class MonitorMediaAppService : AppService() {
    override fun keyStore() = InMemoryKeyAppService.keys
    override fun keyStoreFiles() = emptyList<File>()
    override fun monitorMicrophone() = microphone
    override fun monitorCamera() = camera

    companion object {
        var microphone = FakeMicrophone()
        var camera = RecordingMedia()
    }
}

/** Android 16, the compileSdk and targetSdk of the app. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class MonitorKeeperRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val capture = ServiceInfo.FOREGROUND_SERVICE_TYPE_CAMERA or ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE

    @Before
    fun loopbackSettings() {
        useLoopbackNode(app)
        MonitorMediaAppService.microphone = FakeMicrophone()
        MonitorMediaAppService.camera = RecordingMedia()
        shadowOf(app).grantPermissions(Manifest.permission.CAMERA, Manifest.permission.RECORD_AUDIO)
    }

    /**
     * No activity at all, as with the screen off: the service's monitor, armed, keeps the camera
     * and microphone types whatever a call screen lets go, listens for the sound alert, and sends
     * its camera into the call it places for a watcher; disarmed, it lets them go.
     */
    @Test
    fun theArmedMonitorListensAndStreamsWithNoScreenShown() {
        val controller = Robolectric.buildService(MonitorMediaAppService::class.java).create().startCommand(0, 1)
        val service = controller.get()
        running(service)
        val keeper = assertNotNull(service.monitor())
        assertSame(keeper, service.monitor(), "one monitor for the running node")
        val ann = service.node!!
        val bob = runBlocking { startedNode("bob") }
        try {
            runBlocking { makeContacts(ann, bob) }
            val bobFp = bob.identity().fingerprint
            runBlocking { ann.setTrust(bobFp, Trust.FULL_ACCESS) }
            val model = keeper.model
            assertTrue(runBlocking { model.allow(bobFp) })
            assertTrue(runBlocking { model.arm("environment", -30f) })
            // The capture types, without dataSync (its daily allowance would end the night).
            idleUntil { service.foregroundTypes.takeIf { it == capture } }
            assertNotNull(MonitorMediaAppService.microphone.onLevel, "the sound alert listens")

            // A call's screen lets its capture go: the monitor's claim stays.
            service.setCapturing(camera = true, microphone = true)
            service.setCapturing(camera = false, microphone = false)
            assertEquals(capture, service.foregroundTypes)

            // Bob watches: the service's monitor hears the node's events itself and streams.
            val call = runBlocking { bob.rpcWatch(ann.identity().fingerprint, "environment", 15_000uL) }
            val camera = MonitorMediaAppService.camera
            idleUntil { camera.cameraOn?.takeIf { camera.out != null } }
            assertEquals("environment", camera.cameraOn)
            assertEquals(bobFp, model.state.value.streamingTo)
            assertEquals(call, bob.activeCall()?.call)

            assertTrue(runBlocking { model.disarm() })
            assertTrue(camera.stopped)
            idleUntil { service.foregroundTypes.takeIf { it == ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC } }

            // Armed again when the service goes: the sound alert stops listening with it.
            assertTrue(runBlocking { model.arm("environment", -30f) })
            assertNotNull(MonitorMediaAppService.microphone.onLevel)
        } finally {
            runBlocking { bob.stop() }
            bob.close()
            controller.destroy()
        }
        assertNull(MonitorMediaAppService.microphone.onLevel, "the microphone stopped with the service")
    }
}
