package org.peerns.android.media

import android.graphics.SurfaceTexture
import android.media.MediaCodec
import android.media.MediaFormat
import android.os.Bundle
import android.os.Handler
import android.os.HandlerThread
import android.util.Size
import android.view.Surface
import java.nio.ByteBuffer
import java.util.concurrent.FutureTask
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.After
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.media.AnnexB
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowAudioTrack
import org.robolectric.shadows.ShadowMediaCodec

/** The MediaCodec side of the media adapters on Robolectric's Android 16 (its MediaCodec copies input to output). */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class MediaCodecRoboTest {
    private fun bytes(vararg b: Int) = ByteArray(b.size) { b[it].toByte() }

    private val sps = bytes(0x67, 0x42, 0xc0, 0x1f)
    private val pps = bytes(0x68, 0xce, 0x3c, 0x80)

    // The decoders' callbacks run on a thread of their own, as in the app.
    private val thread = HandlerThread("decoders").apply { start() }
    private val handler = Handler(thread.looper)

    @After
    fun clear() {
        thread.quitSafely()
        ShadowMediaCodec.clearCodecs()
    }

    /**
     * Robolectric's H.264 decoder with input buffers of [bufferSize] bytes, copying input to
     * output; returns the frames it was given (empty buffers, handed back unused, left out).
     */
    private fun recordingVideoDecoder(bufferSize: Int): MutableList<ByteArray> {
        val seen = mutableListOf<ByteArray>()
        ShadowMediaCodec.addDecoder(
            MediaFormat.MIMETYPE_VIDEO_AVC,
            ShadowMediaCodec.CodecConfig(bufferSize, bufferSize) { input: ByteBuffer, output: ByteBuffer ->
                val data = ByteArray(input.remaining()).also(input::get)
                if (data.isNotEmpty()) seen.add(data)
                output.put(data)
            },
        )
        return seen
    }

    /**
     * Waits until the decoders thread has run what was posted to it so far: the codec's offers of
     * its input buffers, made when it starts. A frame given before them waits for one only briefly
     * (200 ms for the first, 5 ms after) and is dropped after that: on a busy machine that made
     * these tests fail while the decoder did what it should.
     */
    private fun buffersOffered() = until("the codec's input buffers offered") { true }

    /**
     * Gives [data] to the decoder, then waits for the decoders' thread twice: to run the output
     * of it (whose release makes Robolectric's codec offer the input buffer again: it offers one
     * at a time), then to take that offer. A phone's decoder waits only 5 ms for a buffer, which
     * a busy test machine's thread may not meet.
     */
    private fun FrameDecoder.give(ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean = frame(ptsUs, keyframe, data).also {
        buffersOffered()
        buffersOffered()
    }

    /** Waits (up to 5 s) until [done] holds, checked on the decoders' thread. */
    private fun until(what: String, done: () -> Boolean) {
        val deadline = System.nanoTime() + 5_000_000_000L
        while (true) {
            val check = FutureTask { done() }
            handler.post(check)
            if (check.get(5, TimeUnit.SECONDS)) return
            assertTrue(System.nanoTime() < deadline, what)
            Thread.sleep(10)
        }
    }

    @Test
    fun encoderRequestsBecomeMediaCodecParameters() {
        val sent = mutableListOf<Bundle>()
        val control = EncoderControl({ sent.add(it) }, minBps = 100_000, maxBps = 2_000_000)
        assertNull(control.targetBps, "no target yet: a codec starts at its own")
        control.requestKeyframe()
        control.targetBitrate(450_000UL)
        control.targetBitrate(450_000UL) // unchanged: not sent again
        control.targetBitrate(50_000UL) // below the floor
        control.targetBitrate(9_000_000UL) // above the ceiling
        assertEquals(4, sent.size)
        assertEquals(setOf(MediaCodec.PARAMETER_KEY_REQUEST_SYNC_FRAME), sent[0].keySet())
        assertEquals(0, sent[0].getInt(MediaCodec.PARAMETER_KEY_REQUEST_SYNC_FRAME, -1))
        assertEquals(
            listOf(450_000, 100_000, 2_000_000),
            sent.drop(1).map {
                assertEquals(setOf(MediaCodec.PARAMETER_KEY_VIDEO_BITRATE), it.keySet())
                it.getInt(MediaCodec.PARAMETER_KEY_VIDEO_BITRATE)
            },
        )
        // The camera's next codec starts at the last target.
        assertEquals(2_000_000, control.targetBps)
    }

    @Test
    fun theSharedScreenIsScaledDownToWhatLevel31Takes() {
        // A phone held upright: its long side to 1280, both sides multiples of 16.
        assertEquals(Size(576, 1280), ScreenEncoder.sizeFor(1080, 2400))
        assertEquals(Size(1280, 576), ScreenEncoder.sizeFor(2400, 1080))
        // A 16:10 tablet: 1280×800 would be over level 3.1's 3,600 macroblocks.
        val tablet = ScreenEncoder.sizeFor(2560, 1600)
        assertEquals(Size(1200, 752), tablet)
        assertTrue(tablet.width * tablet.height <= ScreenEncoder.MAX_PIXELS)
        // Never scaled up; a small screen keeps its size, rounded down to 16.
        assertEquals(Size(480, 800), ScreenEncoder.sizeFor(480, 800))
        assertEquals(Size(16, 16), ScreenEncoder.sizeFor(0, 0))
    }

    @Test
    fun theVideoDecoderStartsAtAKeyframeWithItsParameterSets() {
        val seen = recordingVideoDecoder(bufferSize = 1024)
        val decoder = VideoDecoder(Surface(SurfaceTexture(0)), handler)
        buffersOffered()
        val delta = AnnexB.join(listOf(bytes(0x41, 0x9a)))
        assertFalse(decoder.give(0, keyframe = false, delta), "a delta frame before any keyframe")
        val idrOnly = AnnexB.join(listOf(bytes(0x65, 0x88)))
        assertFalse(decoder.give(33_000, keyframe = true, idrOnly), "a keyframe without SPS/PPS")
        val key = AnnexB.join(listOf(sps, pps, bytes(0x65, 0x88)))
        assertTrue(decoder.give(66_000, keyframe = true, key))
        assertTrue(decoder.give(99_000, keyframe = false, delta))
        // Delta frames before the first complete keyframe never reach the codec.
        until("both frames decoded") { seen.size == 2 }
        decoder.release()
        assertEquals(listOf(key.toList(), delta.toList()), seen.map { it.toList() })
    }

    @Test
    fun aDroppedFrameHoldsThePictureUntilTheNextKeyframeAndTheSizeIsToldTurned() {
        val seen = recordingVideoDecoder(bufferSize = 64)
        val sizes = mutableListOf<Pair<Int, Int>>()
        val decoder = VideoDecoder(Surface(SurfaceTexture(0)), handler, rotation = 90) { w, h -> sizes.add(w to h) }
        buffersOffered()
        val key = AnnexB.join(listOf(sps, pps, bytes(0x65, 0x88)))
        val delta = AnnexB.join(listOf(bytes(0x41, 0x9a)))
        val tooLarge = AnnexB.join(listOf(ByteArray(100) { 0x41 }))
        assertTrue(decoder.give(0, keyframe = true, key))
        assertFalse(decoder.give(33_000, keyframe = false, tooLarge), "larger than an input buffer")
        assertFalse(decoder.give(66_000, keyframe = false, delta), "its reference was lost")
        assertTrue(decoder.give(99_000, keyframe = true, key))
        assertTrue(decoder.give(132_000, keyframe = false, delta))
        until("three frames decoded and the size told") { seen.size == 3 && sizes.isNotEmpty() }
        decoder.release()
        assertEquals(listOf(key, key, delta).map { it.toList() }, seen.map { it.toList() })
        // The codec's 640x480, turned by 90 degrees as drawn.
        assertEquals(480 to 640, sizes.first())
    }

    @Test
    fun theAudioDecoderPlaysWhatTheCodecDecodes() {
        ShadowMediaCodec.addDecoder(
            MediaFormat.MIMETYPE_AUDIO_OPUS,
            ShadowMediaCodec.CodecConfig(4096, 4096) { input: ByteBuffer, output: ByteBuffer -> output.put(input) },
        )
        val played = mutableListOf<Byte>()
        ShadowAudioTrack.addAudioDataListener { _, data, _ -> played.addAll(data.toList()) }
        val decoder = AudioDecoder(handler)
        buffersOffered()
        val packet = bytes(0x78, 1, 2, 3)
        assertTrue(decoder.give(0, keyframe = true, packet))
        assertTrue(decoder.give(20_000, keyframe = true, packet))
        until("both packets played") { played.count { it == 0x78.toByte() } == 2 }
        decoder.release()
        // Primed with 60 ms of silence (2880 samples) ahead of the sound; Robolectric's track
        // plays what it is given at once, so it runs dry and the second packet is primed too.
        assertTrue(played.size >= 2880 * 2 + 2 * packet.size)
        assertTrue(played.take(2880 * 2).all { it == 0.toByte() })
        assertEquals((packet + packet).toList(), played.filter { it != 0.toByte() })
    }
}
