package org.peerns.app.model

import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.math.PI
import kotlin.math.roundToInt
import kotlin.math.sin
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withContext
import org.junit.Test
import org.peerns.ffi.CallKinds
import org.peerns.ffi.CallMediaState
import org.peerns.ffi.CallParticipant
import org.peerns.ffi.EncoderControlListener
import org.peerns.ffi.GroupCall
import org.peerns.ffi.GroupCallFrame
import org.peerns.ffi.GroupCallFrameListener
import org.peerns.ffi.GroupCallPhase
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.PeernsException
import org.peerns.ffi.audioLevelOfPcm
import org.peerns.media.AudioLevel
import org.peerns.testing.eventually
import org.peerns.testing.startedNode
import org.peerns.testing.withAnnAndBob

/** A [CallMedia] that records what the view model asks of it and lets the test send frames. */
class RecordingMedia : CallMedia {
    @Volatile
    var out: FrameOut? = null

    @Volatile
    var cameraOn: String? = null

    @Volatile
    var mutedNow = false

    @Volatile
    var stopped = false

    /** While set, every picture says it waits for a keyframe (a decoder started mid-stream). */
    @Volatile
    var waitingForKeyframe = false
    val played = ConcurrentLinkedQueue<Triple<String, String, Boolean>>()

    /** Keyframes asked of this phone's video encoder. */
    val keyframesAsked = AtomicInteger()

    override val videoControl = object : EncoderControlListener {
        override fun requestKeyframe() {
            keyframesAsked.incrementAndGet()
        }
        override fun targetBitrate(bps: ULong) {}
    }

    /** Whether the last start opened the microphone. */
    @Volatile
    var microphoneOn: Boolean? = null

    override fun start(camera: String?, out: FrameOut, microphone: Boolean) {
        this.out = out
        cameraOn = camera
        microphoneOn = microphone
    }

    override fun setMuted(muted: Boolean) {
        mutedNow = muted
    }

    override fun setCamera(facing: String?) {
        cameraOn = facing
    }

    override fun play(from: String, kind: String, ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean {
        played.add(Triple(from, kind, keyframe))
        return kind == "audio" || !waitingForKeyframe
    }

    override fun stop() {
        stopped = true
        out = null
    }

    /** Where this phone's picture rotation goes (set while its camera may send). */
    @Volatile
    var rotationOut: ((Int) -> Unit)? = null

    /** How far each sender's video is to be turned, as handed to this phone. */
    val rotations = ConcurrentHashMap<String, Int>()

    override fun setRotationListener(listener: ((degrees: Int) -> Unit)?) {
        rotationOut = listener
    }

    override fun setRotation(from: String, degrees: Int) {
        rotations[from] = degrees
    }

    /** Whether the 1:1 call's peer shares its screen, as handed to this phone. */
    @Volatile
    var peerScreen = false

    override fun setRemoteScreen(shared: Boolean) {
        peerScreen = shared
    }

    /** Whether the user allowed a screen capture (as in the system's dialog). */
    @Volatile
    var screenAllowed = false

    /** Whether our screen is being captured. */
    @Volatile
    var screenOn = false

    @Volatile
    private var screenStopped: (() -> Unit)? = null

    override fun startScreen(onStopped: () -> Unit): Boolean {
        if (!screenAllowed) return false
        screenOn = true
        screenStopped = onStopped
        return true
    }

    override fun stopScreen() {
        screenOn = false
        screenStopped = null
    }

    /** The user stops the share from the system's controls. */
    fun endScreenFromSystem() {
        screenOn = false
        screenStopped?.invoke()
    }
}

/** Sends [media]'s screen as the phone's encoder would: 15 frames a second, a keyframe a second. */
fun CoroutineScope.pushScreen(media: RecordingMedia) = launch {
    var i = 0
    while (true) {
        media.out?.frame("screen", i * 66_666L, i % 15 == 0, accessUnit(i % 15 == 0), null)
        i++
        delay(66)
    }
}

/** An H.264 access unit as the encoder makes them: SPS, PPS and IDR when [key], else one slice. */
fun accessUnit(key: Boolean): ByteArray {
    val start = byteArrayOf(0, 0, 0, 1)
    return if (key) {
        start + byteArrayOf(0x67, 0x42, 0xc0.toByte(), 0x1f, 0xaa.toByte()) + start +
            byteArrayOf(0x68, 0xce.toByte(), 0x3c, 0x80.toByte()) + start + byteArrayOf(0x65) + ByteArray(40)
    } else {
        start + byteArrayOf(0x41) + ByteArray(40)
    }
}

class GroupCallViewModelTest {
    @Test
    fun joinSeeTheRosterAndFramesMuteAndLeave() = runTest(timeout = 120.seconds) {
        withAnnAndBob(contacts = false) { ann, bob ->
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint
            val gid = ann.groupCreate("Call")
            // The creator routes before anyone joins (see bindings/tests/python/test_group_call.py).
            eventually(what = "ann routing") { ann.groups().single().takeIf { it.router } }
            bob.groupJoin(ann.groupInvite(gid, bobFp))

            val media = RecordingMedia()
            val model = GroupCallViewModel(bob, gid, media)
            // Unconfined: each flow subscribes before launch returns, so no event sent next is missed.
            val follow = launch(Dispatchers.Unconfined) { bob.groupEvents.collect(model::onGroupEvent) }
            // Bob may join once the group's log has reached him.
            eventually(what = "bob joining the call") { if (model.join(video = true)) true else null }

            // Ann's phone, with the library's call directly: it sends video frames and counts
            // the keyframes asked of its encoder.
            val annKeyframes = AtomicInteger()
            val noControl = object : EncoderControlListener {
                override fun requestKeyframe() {
                    annKeyframes.incrementAndGet()
                }
                override fun targetBitrate(bps: ULong) {}
            }
            val fromBob = AtomicInteger()
            val screenFromBob = AtomicInteger()
            val ignore = object : GroupCallFrameListener {
                override fun onFrame(frame: GroupCallFrame) {
                    if (frame.sender == bobFp && frame.kind == "video") fromBob.incrementAndGet()
                    if (frame.sender == bobFp && frame.kind == "screen") screenFromBob.incrementAndGet()
                }
            }
            val annCall: GroupCall = eventually(what = "ann joining the call") {
                try {
                    ann.groupCallJoin(gid, CallKinds(audio = true, video = true, screen = false), ignore, noControl)
                } catch (e: PeernsException.NotAllowed) {
                    null
                }
            }
            // Bob joined with the front camera; his "encoder" sends through the model.
            assertEquals("user", media.cameraOn)
            val pusher = launch {
                var i = 0
                while (true) {
                    annCall.pushFrame("video", (i * 33_333).toULong(), i % 10 == 0, accessUnit(i % 10 == 0))
                    media.out?.frame("video", i * 33_333L, i % 10 == 0, accessUnit(i % 10 == 0), null)
                    i++
                    delay(30)
                }
            }
            eventually(what = "both in the roster") {
                model.state.value.takeIf { s -> s.participants.map { it.fingerprint }.toSet() == setOf(annFp, bobFp) }
            }
            eventually(what = "bob connected") { model.state.value.takeIf { it.phase == GroupCallPhase.CONNECTED } }
            // Two in the call, one of them the router: bob's media goes straight to ann.
            eventually(what = "bob direct with ann") { model.state.value.takeIf { it.direct && it.mediaPeer == annFp } }
            eventually(what = "ann's frames at bob") { model.state.value.frames[annFp]?.takeIf { it > 0 } }
            // Ann sends video: her picture in bob's grid, never bob's own.
            eventually(what = "ann's picture at bob") { model.state.value.takeIf { it.pictures == listOf(annFp) } }
            // They were handed to bob's decoders, keyframes marked.
            eventually(what = "ann's keyframe played at bob") { media.played.firstOrNull { it == Triple(annFp, "video", true) } }
            eventually(what = "bob's frames at ann") { fromBob.get().takeIf { it > 0 } }
            // A picture at bob whose decoder waits for a keyframe: bob's model asks ann's encoder
            // for one (once the new receivers' own requests have settled).
            var settled = annKeyframes.get() to System.nanoTime()
            eventually(what = "ann's keyframe requests settling") {
                val now = annKeyframes.get()
                if (now != settled.first) settled = now to System.nanoTime()
                (System.nanoTime() - settled.second).takeIf { it > 1_000_000_000 }
            }
            val asked = annKeyframes.get()
            media.waitingForKeyframe = true
            eventually(what = "bob asking ann for a keyframe") { annKeyframes.get().takeIf { it > asked } }
            media.waitingForKeyframe = false
            pusher.cancel()

            // Bob's phone turns: ann's roster says how far to turn his picture; hers reaches bob.
            assertNotNull(media.rotationOut).invoke(90)
            eventually(what = "bob's rotation at ann") {
                ann.groupCallParticipants(gid).firstOrNull { it.fingerprint == bobFp && it.media.rotation.toInt() == 90 }
            }
            val annTurned = CallMediaState(muted = false, cameraOff = false, screen = false, backCamera = false, rotation = 270u)
            ann.groupCallSetMedia(gid, annTurned)
            eventually(what = "ann's picture turned at bob") { media.rotations[annFp]?.takeIf { it == 270 } }

            // Bob shares his screen: not before the user allowed the capture; then ann's roster
            // says so and his screen's frames reach her; the user stops it from the system.
            assertFalse(model.shareScreen(true))
            assertFalse(model.state.value.screen)
            media.screenAllowed = true
            assertTrue(model.shareScreen(true))
            assertTrue(media.screenOn && model.state.value.screen)
            // His camera pauses meanwhile (his picture in the grids shows the screen).
            assertEquals(null, media.cameraOn)
            eventually(what = "bob's screen at ann") {
                ann.groupCallParticipants(gid).firstOrNull { it.fingerprint == bobFp && it.media.screen }
            }
            val screens = pushScreen(media)
            eventually(what = "bob's screen frames at ann") { screenFromBob.get().takeIf { it > 0 } }
            screens.cancel()
            media.endScreenFromSystem()
            eventually(what = "the share ended") { model.state.value.takeIf { !it.screen } }
            assertEquals("user", media.cameraOn)
            eventually(what = "bob's screen gone at ann") {
                ann.groupCallParticipants(gid).firstOrNull { it.fingerprint == bobFp && !it.media.screen }
            }

            ann.groupCallSetMedia(gid, CallMediaState(muted = true, cameraOff = true, screen = false, backCamera = false))
            eventually(what = "ann muted at bob") {
                model.state.value.participants.firstOrNull { it.fingerprint == annFp && it.media.muted }
            }
            // Her camera is off: no picture for her.
            eventually(what = "ann's picture gone at bob") { model.state.value.takeIf { it.pictures.isEmpty() } }
            assertTrue(model.setMuted(true))
            assertTrue(model.setCameraOff(true))
            assertTrue(media.mutedNow)
            assertEquals(null, media.cameraOn)
            eventually(what = "bob muted, camera off at ann") {
                ann.groupCallParticipants(gid).firstOrNull { it.fingerprint == bobFp && it.media.muted && it.media.cameraOff }
            }

            assertTrue(model.leave())
            eventually(what = "bob out") { model.state.value.takeIf { it.phase == GroupCallPhase.OUT } }
            assertEquals(emptyMap(), model.state.value.frames)
            assertEquals(emptyList(), model.state.value.pictures)
            assertTrue(media.stopped)
            eventually(what = "bob gone at ann") { ann.groupCallParticipants(gid).takeIf { p -> p.none { it.fingerprint == bobFp } } }
            annCall.stop()
            follow.cancel()
        }
    }

    @Test
    fun underBatterySaverJoiningWithVideoStartsWithTheCameraOff() = runTest(timeout = 120.seconds) {
        withAnnAndBob(contacts = false) { ann, bob ->
            val bobFp = bob.identity().fingerprint
            val gid = ann.groupCreate("Saver")
            eventually(what = "ann routing") { ann.groups().single().takeIf { it.router } }
            bob.groupJoin(ann.groupInvite(gid, bobFp))
            val noControl = object : EncoderControlListener {
                override fun requestKeyframe() {}
                override fun targetBitrate(bps: ULong) {}
            }
            val ignore = object : GroupCallFrameListener {
                override fun onFrame(frame: GroupCallFrame) {}
            }
            val annCall: GroupCall = eventually(what = "ann joining the call") {
                try {
                    ann.groupCallJoin(gid, CallKinds(audio = true, video = true, screen = false), ignore, noControl)
                } catch (e: PeernsException.NotAllowed) {
                    null
                }
            }

            val saver = MutableStateFlow(true)
            val media = RecordingMedia()
            val model = GroupCallViewModel(bob, gid, media, saver)
            assertEquals(BatterySaver.CALL, model.notice.first())
            eventually(what = "bob joining the call") { if (model.join(video = true)) true else null }
            // With video, but the camera off: only the microphone runs.
            assertTrue(model.state.value.cameraOff)
            assertNull(media.cameraOn)
            assertNotNull(media.out)
            eventually(what = "bob with video, camera off, at ann") {
                ann.groupCallParticipants(gid).firstOrNull { it.fingerprint == bobFp && it.kinds.video && it.media.cameraOff }
            }

            // Battery saver going off changes nothing in the call; bob turns his camera on.
            saver.value = false
            assertTrue(model.state.value.cameraOff)
            assertTrue(model.setCameraOff(false))
            assertEquals("user", media.cameraOn)
            eventually(what = "bob's camera on at ann") {
                ann.groupCallParticipants(gid).firstOrNull { it.fingerprint == bobFp && !it.media.cameraOff }
            }
            assertTrue(model.leave())
            annCall.stop()
        }
    }

    @Test
    fun onlyAnAdminLetsABrowserIn() = runTest(timeout = 60.seconds) {
        withAnnAndBob(contacts = false) { ann, bob ->
            val gid = ann.groupCreate("Guests")
            eventually(what = "ann routing") { ann.groups().single().takeIf { it.router } }
            bob.groupJoin(ann.groupInvite(gid, bob.identity().fingerprint))
            val admin = GroupCallViewModel(ann, gid)
            assertTrue(admin.allowBrowser(" pwa-browser-1 "))
            assertTrue(admin.allowBrowser("pwa-browser-1"))
            assertEquals(listOf("pwa-browser-1"), admin.state.value.browsers)
            assertFalse(admin.allowBrowser("not a peerjs id!"))
            assertNotNull(admin.state.value.error)
            val member = GroupCallViewModel(bob, gid)
            eventually(what = "bob a member") { bob.groups().singleOrNull()?.takeIf { it.members.size == 2 } }
            assertFalse(member.allowBrowser("pwa-browser-1"))
            assertTrue(member.state.value.error!!.contains("admin"), member.state.value.error)
            assertEquals(emptyList(), member.state.value.browsers)
        }
    }

    @Test
    fun directOnlyWhenOurMediaGoesToTheOnlyOtherParticipant() {
        val av = CallKinds(audio = true, video = true, screen = false)
        val idle = CallMediaState(muted = false, cameraOff = false, screen = false, backCamera = false)
        fun inCall(vararg fps: String) = fps.map { CallParticipant(it, av, idle, true) }
        assertTrue(GroupCallState(participants = inCall("a", "b"), mediaPeer = "b").direct)
        // Through a router outside the call, or with three in it, or before any phase: relayed.
        assertFalse(GroupCallState(participants = inCall("a", "b"), mediaPeer = "r").direct)
        assertFalse(GroupCallState(participants = inCall("a", "b", "c"), mediaPeer = "b").direct)
        assertFalse(GroupCallState(participants = inCall("a", "b")).direct)
    }

    @Test
    fun theGridFollowsTheRosterAndTheSpeakersWhileInTheCall() = runTest(timeout = 60.seconds) {
        withAnnAndBob(contacts = false) { _, bob ->
            val me = bob.identity().fingerprint
            val gid = "e".repeat(32)
            val model = GroupCallViewModel(bob, gid)
            val av = CallKinds(audio = true, video = true, screen = false)
            val on = CallMediaState(muted = false, cameraOff = false, screen = false, backCamera = false)
            val others = (1..8).map { "$it".repeat(64) }
            val roster = (listOf(me) + others).map { CallParticipant(it, av, on, true) }
            // Out of the call: a roster, but no pictures.
            model.onGroupEvent(GroupEvent.CallRoster(gid, roster))
            assertEquals(emptyList(), model.state.value.pictures)
            // In it: the first six others, never us; another group's roster changes nothing.
            model.onGroupEvent(GroupEvent.CallPhase(gid, GroupCallPhase.CONNECTED, others[0]))
            assertEquals(others.take(6), model.state.value.pictures)
            model.onGroupEvent(GroupEvent.CallRoster("f".repeat(32), roster.take(2)))
            assertEquals(others.take(6), model.state.value.pictures)
            // The eighth speaks: it takes the place of the last of those who never spoke.
            model.onGroupEvent(GroupEvent.CallSpeakers(gid, listOf(others[7])))
            assertEquals(others.take(5) + others[7], model.state.value.pictures)
            // Then the first speaks (shown: nothing moves), then the seventh: again the last of
            // those who never spoke makes room; the first and the eighth, who spoke, stay.
            model.onGroupEvent(GroupEvent.CallSpeakers(gid, listOf(others[0])))
            assertEquals(others.take(5) + others[7], model.state.value.pictures)
            model.onGroupEvent(GroupEvent.CallSpeakers(gid, listOf(others[6])))
            assertEquals(others.take(4) + others[6] + others[7], model.state.value.pictures)
            // Out of the call again (the router dropped us, say): an empty grid.
            model.onGroupEvent(GroupEvent.CallPhase(gid, GroupCallPhase.OUT, null))
            assertEquals(emptyList(), model.state.value.pictures)
        }
    }

    @Test
    fun theLevelGoesToTheLibraryAsAByte() {
        assertNull(audioLevelByte(null))
        assertEquals(42.toUByte(), audioLevelByte(42))
        assertEquals(0.toUByte(), audioLevelByte(-3))
        assertEquals(127.toUByte(), audioLevelByte(300))
    }

    @Test
    fun speakersFromTheAudioLevels() = runTest(timeout = 180.seconds) {
        withContext(Dispatchers.Default) {
            val names = listOf("ann", "bob", "carol")
            val nodes = names.map { startedNode(it) }
            try {
                val ann = nodes[0]
                val fps = nodes.map { it.identity().fingerprint }
                val (annFp, bobFp, carolFp) = fps
                val gid = ann.groupCreate("Speakers")
                // The creator routes before anyone joins (see bindings/tests/python/test_group_call.py).
                eventually(what = "ann routing") { ann.groups().single().takeIf { it.router } }
                for ((node, fp) in nodes.drop(1).zip(fps.drop(1))) node.groupJoin(ann.groupInvite(gid, fp))

                val medias = nodes.map { RecordingMedia() }
                val models = nodes.zip(medias).map { (node, media) -> GroupCallViewModel(node, gid, media) }
                // Unconfined: each flow subscribes before launch returns, so no event sent next is missed.
                val follows = nodes.zip(models).map { (node, model) ->
                    launch(Dispatchers.Unconfined) { node.groupEvents.collect(model::onGroupEvent) }
                }
                for ((name, model) in names.zip(models)) {
                    eventually(what = "$name joining the call") { if (model.join(video = false)) true else null }
                }
                for ((name, model) in names.zip(models)) {
                    eventually(what = "$name connected with everyone in the roster") {
                        model.state.value.takeIf { s ->
                            s.phase == GroupCallPhase.CONNECTED &&
                                s.participants.map { it.fingerprint }.toSet() == fps.toSet()
                        }
                    }
                }

                // The levels the "microphones" measure: a speaking voice (a 1 kHz sine at −15 dBov)
                // and silence, through the core's measure of their PCM.
                val voice = ShortArray(960) { (8192 * sin(2 * PI * 1000 * it / 48_000)).roundToInt().toShort() }
                val loud = audioLevelOfPcm(voice.toList()).toInt()
                val quiet = audioLevelOfPcm(ShortArray(960).toList()).toInt()
                assertEquals(listOf(15, 127), listOf(loud, quiet))
                assertEquals(loud, AudioLevel.of(voice))

                // Every phone's encoder sends an Opus-sized packet each 20 ms with its level.
                val levels = AtomicReference(listOf(quiet, loud, quiet))
                val pusher = launch {
                    var i = 0
                    while (true) {
                        val now = levels.get()
                        medias.forEachIndexed { n, media ->
                            media.out?.frame("audio", i * 20_000L, true, byteArrayOf(0xF8.toByte(), i.toByte()) + ByteArray(60), now[n])
                        }
                        i++
                        delay(20)
                    }
                }
                suspend fun everyoneSees(speaking: List<String>, what: String) {
                    for ((name, model) in names.zip(models)) {
                        eventually(timeout = 15.seconds, what = "$name seeing $what") {
                            model.state.value.takeIf { it.speaking == speaking }
                        }
                    }
                }
                // Bob speaks (his level reaches the router through his view model), the others are quiet.
                everyoneSees(listOf(bobFp), "bob speaking")
                // Bob falls silent and carol speaks: after a second of quiet, only carol.
                levels.set(listOf(quiet, quiet, loud))
                everyoneSees(listOf(carolFp), "only carol speaking")

                // Speakers of another group change nothing.
                val bobModel = models[1]
                bobModel.onGroupEvent(GroupEvent.CallSpeakers("f".repeat(32), listOf(annFp)))
                assertEquals(listOf(carolFp), bobModel.state.value.speaking)

                // Bob leaves: his screen shows nobody speaking; carol still speaks for the others.
                assertTrue(bobModel.leave())
                assertEquals(emptyList(), bobModel.state.value.speaking)
                eventually(what = "bob out") { bobModel.state.value.takeIf { it.phase == GroupCallPhase.OUT } }
                assertEquals(emptyList(), bobModel.state.value.speaking)
                for ((name, model) in names.zip(models).filter { it.second !== bobModel }) {
                    eventually(what = "$name without bob") {
                        model.state.value.takeIf { s -> s.participants.none { it.fingerprint == bobFp } }
                    }
                    assertEquals(listOf(carolFp), model.state.value.speaking, "$name still hears carol")
                }
                pusher.cancel()
                assertTrue(models[2].leave())
                assertTrue(models[0].leave())
                follows.forEach { it.cancel() }
            } finally {
                nodes.forEach { it.stop() }
            }
        }
    }
}
