package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import org.junit.Test
import org.peerns.ffi.CallStatus
import org.peerns.ffi.NodeEvent
import org.peerns.testing.eventually
import org.peerns.testing.withAnnAndBob

class CallViewModelTest {
    @Test
    fun ringAnswerMuteCameraHangUpAndDecline() = runTest(timeout = 120.seconds) {
        withAnnAndBob { ann, bob ->
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint
            val annMedia = RecordingMedia()
            val bobMedia = RecordingMedia()
            val annCall = CallViewModel(ann, annMedia)
            val bobCall = CallViewModel(bob, bobMedia)
            // Unconfined: each flow subscribes before launch returns, so no event sent next is missed.
            val follow = listOf(ann to annCall, bob to bobCall).map { (node, model) ->
                launch(Dispatchers.Unconfined) { node.events.collect { model.onEvent(it) } }
            }
            assertFalse(bobCall.accept(video = false))

            assertTrue(annCall.call(bobFp, video = true))
            assertTrue(annCall.state.value.outgoing)
            val ringing = eventually { bobCall.state.value.takeIf { it.ringingHere } }
            assertEquals(listOf(annFp, "ann", true), listOf(ringing.fingerprint, ringing.name, ringing.offered.video))
            assertTrue(bobCall.accept(video = false))
            eventually { annCall.state.value.takeIf { it.status == "connected" } }
            eventually { bobCall.state.value.takeIf { it.status == "connected" && it.mediaUp } }
            // A screen opened during the call reads it from the node.
            val opened = CallViewModel(bob).also { it.refresh() }.state.value
            assertEquals(
                listOf<Any?>(ringing.call, "ann", false, "connected"),
                listOf(opened.call, opened.name, opened.outgoing, opened.status),
            )

            // The media: ann sends her camera (she called with video), bob only his microphone.
            eventually { annCall.state.value.takeIf { it.mediaUp } }
            assertTrue(annCall.startMedia())
            assertTrue(bobCall.startMedia())
            assertEquals("user", annMedia.cameraOn)
            assertEquals(null, bobMedia.cameraOn)
            val pusher = launch {
                var i = 0
                while (true) {
                    val opus = byteArrayOf(0x78) + ByteArray(60)
                    annMedia.out?.frame("audio", i * 20_000L, true, opus, 40)
                    bobMedia.out?.frame("audio", i * 20_000L, true, opus, 127)
                    if (i % 2 == 0) annMedia.out?.frame("video", i * 20_000L, i % 20 == 0, accessUnit(i % 20 == 0), null)
                    i++
                    delay(20)
                }
            }
            eventually { bobMedia.played.firstOrNull { it == Triple("audio", "audio", true) } }
            eventually { annMedia.played.firstOrNull { it == Triple("audio", "audio", true) } }
            eventually { bobMedia.played.firstOrNull { it == Triple("video", "video", true) } }
            // Ann's phone turns: bob's picture of her is turned as she says; bob sends no video,
            // so he has no rotation to tell.
            assertEquals(null, bobMedia.rotationOut)
            assertNotNull(annMedia.rotationOut).invoke(90)
            eventually(what = "ann's rotation at bob") { bobMedia.rotations["video"]?.takeIf { it == 90 } }
            assertEquals(90, bobCall.state.value.remote.rotation.toInt())
            // Bob's picture waits for a keyframe (its decoder started late): his model asks ann's
            // encoder for one, once her new receiver's own requests have settled.
            var settled = annMedia.keyframesAsked.get() to System.nanoTime()
            eventually(what = "ann's keyframe requests settling") {
                val now = annMedia.keyframesAsked.get()
                if (now != settled.first) settled = now to System.nanoTime()
                (System.nanoTime() - settled.second).takeIf { it > 1_000_000_000 }
            }
            val asked = annMedia.keyframesAsked.get()
            bobMedia.waitingForKeyframe = true
            eventually(what = "bob asking ann for a keyframe") { annMedia.keyframesAsked.get().takeIf { it > asked } }
            bobMedia.waitingForKeyframe = false
            pusher.cancel()

            // Ann shares her screen (her video call has a screen track; bob's audio answer has
            // none): not before she allowed the capture; then bob's picture shows it, from her
            // screen's frames, while she does, then her camera again. A share the user stops from
            // the system's controls ends the same way.
            assertTrue(annCall.state.value.sendsScreen)
            assertFalse(bobCall.state.value.sendsScreen)
            assertFalse(annCall.shareScreen(true))
            annMedia.screenAllowed = true
            assertTrue(annCall.shareScreen(true))
            assertTrue(annMedia.screenOn && annCall.state.value.local.screen)
            // Her camera pauses meanwhile (bob's one picture of her shows the screen).
            assertEquals(null, annMedia.cameraOn)
            eventually(what = "ann's screen at bob") { bobMedia.takeIf { it.peerScreen } }
            val screens = pushScreen(annMedia)
            eventually(what = "ann's screen's frames at bob") { bobMedia.played.firstOrNull { it == Triple("screen", "video", true) } }
            screens.cancel()
            assertTrue(annCall.shareScreen(false))
            assertFalse(annMedia.screenOn)
            assertEquals("user", annMedia.cameraOn)
            eventually(what = "ann's camera again at bob") { bobMedia.takeIf { !it.peerScreen } }
            assertTrue(annCall.shareScreen(true))
            eventually(what = "ann's screen at bob again") { bobMedia.takeIf { it.peerScreen } }
            annMedia.endScreenFromSystem()
            eventually(what = "the share ended") { annCall.state.value.takeIf { !it.local.screen } }
            assertEquals("user", annMedia.cameraOn)
            eventually(what = "ann's camera at bob after the share") { bobMedia.takeIf { !it.peerScreen } }

            // Ann turns to her back camera and back; bob is told each time.
            assertTrue(annCall.switchCamera())
            assertEquals("environment", annMedia.cameraOn)
            eventually(what = "ann's back camera at bob") { bobCall.state.value.takeIf { it.remote.backCamera } }
            assertTrue(annCall.switchCamera())
            assertEquals("user", annMedia.cameraOn)
            eventually(what = "ann's front camera at bob") { bobCall.state.value.takeIf { !it.remote.backCamera } }

            assertTrue(annCall.setMuted(true))
            assertTrue(annCall.state.value.local.muted)
            eventually { bobCall.state.value.takeIf { it.remote.muted } }
            assertTrue(annCall.setCameraOff(true))
            eventually { bobCall.state.value.takeIf { it.remote.cameraOff } }
            // With the camera off, switching only changes which one comes on next.
            assertTrue(annCall.switchCamera())
            assertEquals(null, annMedia.cameraOn)
            assertTrue(annCall.setCameraOff(false))
            assertEquals("environment", annMedia.cameraOn)
            assertTrue(annCall.setCameraOff(true))

            assertTrue(bobCall.hangUp())
            val ended = eventually { annCall.state.value.takeIf { it.status == "ended" } }
            assertEquals("peer_hangup", ended.reason)
            // The call's end stops the media on both sides.
            assertTrue(bobMedia.stopped)
            eventually { annMedia.takeIf { it.stopped } }

            assertTrue(annCall.call(bobFp, video = false))
            eventually { bobCall.state.value.takeIf { it.ringingHere && it.call == annCall.state.value.call } }
            assertTrue(bobCall.decline())
            eventually { annCall.state.value.takeIf { it.status == "ended" && it.reason == "declined" } }
            follow.forEach { it.cancel() }
        }
    }

    @Test
    fun underBatterySaverACallStartsWithTheCameraOffThatCanBeTurnedOn() = runTest(timeout = 120.seconds) {
        withAnnAndBob { ann, bob ->
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint
            val annSaver = MutableStateFlow(true)
            val annMedia = RecordingMedia()
            val bobMedia = RecordingMedia()
            val annCall = CallViewModel(ann, annMedia, annSaver)
            val bobCall = CallViewModel(bob, bobMedia, MutableStateFlow(true))
            assertEquals(BatterySaver.CALL, annCall.notice.first())
            // Unconfined: each flow subscribes before launch returns, so no event sent next is missed.
            val follow = listOf(ann to annCall, bob to bobCall).map { (node, model) ->
                launch(Dispatchers.Unconfined) { node.events.collect { model.onEvent(it) } }
            }

            // Ann calls with video: the call carries it, her camera starts off, and bob is told.
            assertTrue(annCall.call(bobFp, video = true))
            annCall.state.value.let { assertTrue(it.sendsVideo && it.local.cameraOff, "$it") }
            val ringing = eventually { bobCall.state.value.takeIf { it.ringingHere } }
            assertTrue(ringing.offered.video)
            eventually(what = "ann's camera off at bob") { bob.activeCall()?.remoteMedia?.takeIf { it.cameraOff } }
            // Bob answers with video: his camera starts off too.
            assertTrue(bobCall.accept(video = true))
            bobCall.state.value.let { assertTrue(it.sendsVideo && it.local.cameraOff, "$it") }
            eventually(what = "bob's camera off at ann") { annCall.state.value.takeIf { it.mediaUp && it.remote.cameraOff } }
            eventually(what = "the media up at bob") { bobCall.state.value.takeIf { it.mediaUp } }

            // Battery saver going off changes nothing in a call; the media starts with the cameras off.
            annSaver.value = false
            assertTrue(annCall.startMedia())
            assertTrue(bobCall.startMedia())
            assertEquals(listOf(null, null), listOf(annMedia.cameraOn, bobMedia.cameraOn))
            // Ann turns her camera on: bob is told and gets her picture.
            assertTrue(annCall.setCameraOff(false))
            assertEquals("user", annMedia.cameraOn)
            eventually(what = "ann's camera on at bob") { bob.activeCall()?.remoteMedia?.takeIf { !it.cameraOff } }
            val pusher = launch {
                var i = 0
                while (true) {
                    annMedia.out?.frame("video", i * 40_000L, i % 20 == 0, accessUnit(i % 20 == 0), null)
                    i++
                    delay(40)
                }
            }
            eventually(what = "ann's picture at bob") { bobMedia.played.firstOrNull { it == Triple("video", "video", true) } }
            pusher.cancel()
            assertTrue(annCall.hangUp())
            eventually { bobCall.state.value.takeIf { it.status == "ended" } }

            // A video call placed from the contacts or the chat before the call screen opens
            // (as the activity does): the screen opened next reads its video, its screen track
            // and, under battery saver, its camera off; bob is told.
            val placed = CallViewModel.place(ann, bobFp, video = true, powerSaver = true)
            val shown = CallViewModel(ann).also { it.refresh() }.state.value
            assertEquals(placed, shown.call)
            assertTrue(shown.outgoing && shown.sendsVideo && shown.sendsScreen && shown.local.cameraOff, "$shown")
            val rung = eventually { bobCall.state.value.takeIf { it.ringingHere && it.call == placed } }
            assertTrue(rung.offered.video)
            eventually(what = "the placed call's camera off at bob") { bob.activeCall()?.remoteMedia?.takeIf { it.cameraOff } }
            // Bob answers from elsewhere (the notification's Answer, with video): his screen,
            // fed the node's events as the call view feeds it, reads the call again when it
            // connects, so it knows it sends video.
            follow[1].cancel()
            val bobScreen = launch(Dispatchers.Unconfined) { bob.events.collect { if (bobCall.onCallEvent(it)) bobCall.refresh() } }
            bob.acceptCall(placed, CallViewModel.kindsOf(video = true))
            eventually(what = "bob's screen reading the answered call") {
                bobCall.state.value.takeIf { it.status == "connected" && it.sendsVideo && it.sendsScreen }
            }
            // Only an answer asks for it: another call's state, or one already connected, does not.
            assertFalse(bobCall.onCallEvent(NodeEvent.CallState("0".repeat(32), annFp, CallStatus("connected", null))))
            assertFalse(bobCall.onCallEvent(NodeEvent.CallState(placed, annFp, CallStatus("connected", null))))
            bobScreen.cancel()
            assertTrue(bobCall.hangUp())
            eventually { annCall.state.value.takeIf { it.call == placed && it.status == "ended" } }
            follow.forEach { it.cancel() }
        }
    }
}
