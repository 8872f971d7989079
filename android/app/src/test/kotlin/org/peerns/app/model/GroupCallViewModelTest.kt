package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withContext
import org.junit.Test
import org.peerns.ffi.CallKinds
import org.peerns.ffi.CallMediaState
import org.peerns.ffi.EncoderControlListener
import org.peerns.ffi.GroupCall
import org.peerns.ffi.GroupCallFrame
import org.peerns.ffi.GroupCallFrameListener
import org.peerns.ffi.GroupCallPhase
import org.peerns.ffi.PeernsException
import org.peerns.testing.eventually
import org.peerns.testing.startedNode

class GroupCallViewModelTest {
    @Test
    fun joinSeeTheRosterAndFramesMuteAndLeave() = runTest(timeout = 120.seconds) {
        withContext(Dispatchers.Default) {
            val ann = startedNode("ann")
            val bob = startedNode("bob")
            try {
                val annFp = ann.identity().fingerprint
                val bobFp = bob.identity().fingerprint
                val gid = ann.groupCreate("Call")
                // The creator routes before anyone joins (see bindings/tests/python/test_group_call.py).
                eventually(what = "ann routing") { ann.groups().single().takeIf { it.router } }
                bob.groupJoin(ann.groupInvite(gid, bobFp))

                val model = GroupCallViewModel(bob, gid)
                // Unconfined: each flow subscribes before launch returns, so no event sent next is missed.
                val follow = launch(Dispatchers.Unconfined) { bob.groupEvents.collect(model::onGroupEvent) }
                // Bob may join once the group's log has reached him.
                eventually(what = "bob joining the call") { if (model.join(video = true)) true else null }

                // Ann's phone, with the library's call directly: it sends video frames.
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
                val pusher = launch {
                    var i = 0
                    val start = byteArrayOf(0, 0, 0, 1)
                    while (true) {
                        val au = if (i % 10 == 0) {
                            start + byteArrayOf(0x67, 0x42, 0xc0.toByte(), 0x1f, 0xaa.toByte()) + start +
                                byteArrayOf(0x68, 0xce.toByte(), 0x3c, 0x80.toByte()) + start + byteArrayOf(0x65) + ByteArray(40)
                        } else {
                            start + byteArrayOf(0x41) + ByteArray(40)
                        }
                        annCall.pushFrame("video", (i * 33_333).toULong(), i % 10 == 0, au)
                        i++
                        delay(30)
                    }
                }
                eventually(what = "both in the roster") { model.state.value.takeIf { s -> s.participants.map { it.fingerprint }.toSet() == setOf(annFp, bobFp) } }
                eventually(what = "bob connected") { model.state.value.takeIf { it.phase == GroupCallPhase.CONNECTED } }
                eventually(what = "ann's frames at bob") { model.state.value.frames[annFp]?.takeIf { it > 0 } }
                pusher.cancel()

                ann.groupCallSetMedia(gid, CallMediaState(muted = true, cameraOff = false, screen = false, backCamera = false))
                eventually(what = "ann muted at bob") { model.state.value.participants.firstOrNull { it.fingerprint == annFp && it.media.muted } }
                assertTrue(model.setMuted(true))
                assertTrue(model.setCameraOff(true))
                eventually(what = "bob muted, camera off at ann") { ann.groupCallParticipants(gid).firstOrNull { it.fingerprint == bobFp && it.media.muted && it.media.cameraOff } }

                assertTrue(model.leave())
                eventually(what = "bob out") { model.state.value.takeIf { it.phase == GroupCallPhase.OUT } }
                assertEquals(emptyMap(), model.state.value.frames)
                eventually(what = "bob gone at ann") { ann.groupCallParticipants(gid).takeIf { p -> p.none { it.fingerprint == bobFp } } }
                annCall.stop()
                follow.cancel()
            } finally {
                ann.stop()
                bob.stop()
            }
        }
    }
}
