package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import org.junit.Test
import org.peerns.ffi.Trust
import org.peerns.testing.eventually
import org.peerns.testing.withAnnAndBob

class MonitorViewModelTest {
    @Test
    fun armAllowWatchAlertAndStop() = runTest(timeout = 120.seconds) {
        withAnnAndBob { parent, baby ->
            val parentFp = parent.identity().fingerprint
            val babyFp = baby.identity().fingerprint
            val microphone = FakeMicrophone()
            val monitor = MonitorViewModel(baby, microphone)
            val viewer = MonitorViewModel(parent)
            val viewerMedia = RecordingMedia()
            // Unconfined: each flow subscribes before launch returns, so no event sent next is missed.
            val follow = launch(Dispatchers.Unconfined) { parent.events.collect { viewer.onEvent(it) } }

            // Only a contact at Full access may be allowed to watch.
            assertFalse(monitor.allow(parentFp))
            baby.setTrust(parentFp, Trust.FULL_ACCESS)
            assertTrue(monitor.allow(parentFp))
            assertEquals(setOf(parentFp), monitor.state.value.watchers)
            assertEquals(listOf(parentFp), monitor.state.value.contacts.map { it.fingerprint })

            assertFalse(monitor.arm("sideways", null))
            assertTrue(monitor.arm("environment", -30f))
            assertEquals("environment", monitor.state.value.armed)
            assertTrue(viewer.watch(babyFp))
            val call = assertNotNull(viewer.state.value.watchCall)
            assertEquals(call, parent.activeCall()?.call)

            // The microphone reports levels to the node while armed with an alert; a loud one
            // held for 300 ms alerts.
            val levels = assertNotNull(microphone.onLevel)
            repeat(5) {
                levels(-8.4f)
                delay(100)
            }
            val alert = eventually { viewer.state.value.alerts.firstOrNull() }
            assertEquals(babyFp to -8, alert.fingerprint to alert.levelDbfs)
            // A monitor screen opened later (from the alert's notification) shows it too.
            val opened = MonitorViewModel(parent).also { it.refresh() }.state.value.alerts
            assertEquals(listOf(babyFp to -8), opened.map { it.fingerprint to it.levelDbfs })

            assertTrue(viewer.stopWatching())
            assertNull(viewer.state.value.watching)
            assertTrue(monitor.disarm())
            assertNull(microphone.onLevel)
            assertTrue(monitor.disallow(parentFp))
            assertEquals(emptySet(), monitor.state.value.watchers)
            follow.cancel()
        }
    }

    /**
     * The armed phone sends its camera and microphone into the call it places for the watcher,
     * once that call's media is up; the stream stops when the watcher hangs up, and disarming
     * ends a running one.
     */
    @Test
    fun theArmedPhoneSendsItsCameraIntoTheCallItPlacesForTheWatcher() = runTest(timeout = 120.seconds) {
        withAnnAndBob { parent, baby ->
            val parentFp = parent.identity().fingerprint
            baby.setTrust(parentFp, Trust.FULL_ACCESS)
            val camera = RecordingMedia()
            val microphone = FakeMicrophone()
            val monitor = MonitorViewModel(baby, microphone, camera)
            val viewer = MonitorViewModel(parent)
            val viewerMedia = RecordingMedia()
            val follow = listOf(
                launch(Dispatchers.Unconfined) { parent.events.collect { viewer.onEvent(it) } },
                launch(Dispatchers.Unconfined) { baby.events.collect { monitor.onEvent(it) } },
            )
            assertTrue(monitor.allow(parentFp))
            assertTrue(monitor.arm("environment", -30f))
            assertNotNull(microphone.onLevel)

            assertTrue(viewer.watch(baby.identity().fingerprint))
            val call = assertNotNull(viewer.state.value.watchCall)
            eventually(what = "the armed camera started") { camera.cameraOn?.takeIf { camera.out != null } }
            assertEquals("environment", camera.cameraOn)
            assertEquals(parentFp, monitor.state.value.streamingTo)
            // The watcher hears the sound live: the alert's listening pauses meanwhile.
            assertNull(microphone.onLevel)

            // The watcher's call screen: no ring, nothing of ours sent (no microphone, no
            // camera), what the monitor sends played.
            val screen = CallViewModel(parent, viewerMedia)
            eventually(what = "the watch call connected on the call screen") {
                screen.refresh()
                screen.state.value.takeIf { it.call == call && it.status == "connected" }
            }
            val shown = screen.state.value
            assertTrue(shown.mediaUp, "a connected call's media is started")
            assertFalse(shown.sendsAudio)
            assertFalse(shown.sendsVideo)
            assertFalse(shown.ringingHere)
            screen.startMedia()
            assertEquals(false, viewerMedia.microphoneOn)
            assertNull(viewerMedia.cameraOn)
            assertNull(screen.state.value.error)
            val pusher = launch {
                var i = 0
                while (true) {
                    camera.out?.frame("audio", i * 20_000L, true, byteArrayOf(0x78) + ByteArray(60), 40)
                    if (i % 2 == 0) camera.out?.frame("video", i * 20_000L, i % 20 == 0, accessUnit(i % 20 == 0), null)
                    i++
                    delay(20)
                }
            }
            eventually(what = "the monitor's video and sound played at the watcher") {
                val counts = viewerMedia.played.groupingBy { it.second }.eachCount()
                counts.takeIf { (it["video"] ?: 0) > 5 && (it["audio"] ?: 0) > 5 }
            }
            // Which way up the monitor's picture is reaches the watcher as the phone turns.
            assertNotNull(camera.rotationOut).invoke(90)
            eventually(what = "the monitor's rotation at the watcher") {
                parent.activeCall()?.remoteMedia?.takeIf { it.rotation.toInt() == 90 }
            }

            // The watcher hangs up: the camera stops, the phone stays armed.
            assertTrue(viewer.stopWatching())
            eventually(what = "the stream stopped") { monitor.state.value.takeIf { it.streamingTo == null } }
            assertTrue(camera.stopped)
            assertEquals("environment", monitor.state.value.armed)
            assertNotNull(microphone.onLevel, "the sound alert listens again")

            // Watched again, then disarmed: the running stream ends for the watcher too.
            camera.stopped = false
            assertTrue(viewer.watch(baby.identity().fingerprint))
            eventually(what = "streaming again") { monitor.state.value.streamingTo }
            assertTrue(monitor.disarm())
            assertTrue(camera.stopped)
            assertNull(microphone.onLevel)
            eventually(what = "the watcher's call ended") { viewer.state.value.takeIf { it.watchCall == null } }
            pusher.cancel()
            screen.stopMedia()
            monitor.close()
            follow.forEach { it.cancel() }
        }
    }
}

/** The microphone's levels as the model sees them: [onLevel] while started. */
class FakeMicrophone : SoundLevels {
    @Volatile
    var onLevel: ((Float) -> Unit)? = null

    override fun start(onLevel: (Float) -> Unit) {
        this.onLevel = onLevel
    }

    override fun stop() {
        onLevel = null
    }
}
