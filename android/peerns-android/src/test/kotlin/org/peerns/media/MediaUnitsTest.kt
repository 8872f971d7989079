package org.peerns.media

import java.util.Random
import kotlin.math.PI
import kotlin.math.roundToInt
import kotlin.math.sin
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertSame
import org.junit.Test
import org.peerns.ffi.audioLevelOfPcm

/**
 * The codec-independent parts of the media adapters: Annex-B, the level meter, the RFC 6464
 * level of a PCM block (against the core's `audioLevelOfPcm`, so on the real library), Opus
 * headers.
 */
class MediaUnitsTest {
    private fun bytes(vararg b: Int) = ByteArray(b.size) { b[it].toByte() }

    private val sps = bytes(0x67, 0x42, 0xc0, 0x1f, 0xda)
    private val pps = bytes(0x68, 0xce, 0x3c, 0x80)
    private val idr = bytes(0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01)
    private val slice = bytes(0x41, 0x9a, 0x02)

    @Test
    fun splitsNalUnitsBehindThreeAndFourByteStartCodes() {
        val stream = bytes(0, 0, 0, 1) + sps + bytes(0, 0, 1) + pps + bytes(0, 0, 0, 1) + idr
        val nals = AnnexB.nalUnits(stream)
        assertEquals(3, nals.size)
        assertContentEquals(sps, nals[0])
        assertContentEquals(pps, nals[1])
        // The emulation-prevention 00 00 03 inside the IDR is not a start code.
        assertContentEquals(idr, nals[2])
        assertEquals(listOf(AnnexB.SPS, AnnexB.PPS, 5), nals.map(AnnexB::type)) // 5: IDR slice
    }

    @Test
    fun keyframesGetTheCodecConfigAndDeltaFramesDoNot() {
        val assembler = AccessUnitAssembler()
        val key = AnnexB.join(listOf(idr))
        // Before any codec config there is nothing to add.
        assertSame(key, assembler.accessUnit(key, keyframe = true))
        assembler.codecConfig(AnnexB.join(listOf(sps, pps)))
        assertContentEquals(AnnexB.join(listOf(sps, pps, idr)), assembler.accessUnit(key, keyframe = true))
        val delta = AnnexB.join(listOf(slice))
        assertSame(delta, assembler.accessUnit(delta, keyframe = false))
        // A keyframe the encoder already gave its SPS/PPS is left as it is.
        val complete = AnnexB.join(listOf(sps, pps, idr))
        assertSame(complete, assembler.accessUnit(complete, keyframe = true))
    }

    @Test
    fun aCodecConfigBufferCarryingTheFirstIdrIsSentAsAKeyframe() {
        val assembler = AccessUnitAssembler()
        // Parameters alone: kept, nothing to send.
        assertNull(assembler.encoderOutput(AnnexB.join(listOf(sps, pps)), codecConfig = true, keyframe = false))
        val key = AnnexB.join(listOf(idr))
        assertContentEquals(AnnexB.join(listOf(sps, pps, idr)), assembler.encoderOutput(key, codecConfig = false, keyframe = true))
        // Parameters and the IDR in one buffer: sent as it is, and the parameters kept.
        val both = AnnexB.join(listOf(sps, pps, idr))
        assertSame(both, assembler.encoderOutput(both, codecConfig = true, keyframe = true))
        assertContentEquals(both, assembler.accessUnit(key, keyframe = true))
    }

    /** The one level a meter reports for exactly [pcm]. */
    private fun level(pcm: ShortArray): Float =
        mutableListOf<Float>().also { levels -> LevelMeter(pcm.size) { levels.add(it) }.add(pcm) }.single()

    @Test
    fun levelsOfKnownSignals() {
        val square = ShortArray(960) { if (it % 2 == 0) Short.MAX_VALUE else (-Short.MAX_VALUE).toShort() }
        assertEquals(0.0, level(square).toDouble(), 0.01)
        val halfSquare = ShortArray(960) { if (it % 2 == 0) 16384 else -16384 }
        assertEquals(-6.02, level(halfSquare).toDouble(), 0.01)
        // A full-scale 1 kHz sine at 48 kHz: -3.01 dBFS.
        val sine = ShortArray(4800) { (32767 * sin(2 * PI * 1000 * it / 48_000)).roundToInt().toShort() }
        assertEquals(-3.01, level(sine).toDouble(), 0.01)
        assertEquals(LevelMeter.FLOOR_DBFS, level(ShortArray(960)))
    }

    @Test
    fun theMeterReportsOncePerWindow() {
        val levels = mutableListOf<Float>()
        val meter = LevelMeter(windowSamples = 4800) { levels.add(it) }
        val loud = ShortArray(960) { if (it % 2 == 0) 16384 else -16384 }
        repeat(5) { meter.add(loud) } // 100 ms at 48 kHz: one level
        assertEquals(1, levels.size)
        assertEquals(-6.02, levels[0].toDouble(), 0.01)
        repeat(9) { meter.add(ShortArray(960), length = 480) } // 90 ms of silence: no level yet
        assertEquals(1, levels.size)
        meter.add(ShortArray(960), length = 480)
        assertEquals(LevelMeter.FLOOR_DBFS, levels.getOrNull(1))
        assertEquals(2, levels.size)
    }

    /** The core's level of the first [length] samples of [pcm]. */
    private fun coreLevel(pcm: ShortArray, length: Int = pcm.size): Int = audioLevelOfPcm(pcm.take(length)).toInt()

    @Test
    fun audioLevelIsTheCoresRfc6464Level() {
        fun sine(amplitude: Double, hz: Int = 1000) =
            ShortArray(960) { (amplitude * sin(2 * PI * hz * it / 48_000)).roundToInt().toShort() }
        // Known values: silence and an empty block 127, full-scale square 0, full-scale sine 3,
        // 6 dB quieter per halving, the quietest nonzero signal 90.
        assertEquals(AudioLevel.SILENCE, AudioLevel.of(ShortArray(960)))
        assertEquals(AudioLevel.SILENCE, AudioLevel.of(ShortArray(0)))
        assertEquals(0, AudioLevel.of(ShortArray(960) { Short.MIN_VALUE }))
        assertEquals(3, AudioLevel.of(sine(32767.0)))
        assertEquals(9, AudioLevel.of(sine(16384.0)))
        assertEquals(90, AudioLevel.of(ShortArray(960) { 1 }))
        // The same as the core on the same samples: sines from full scale down to a whisper,
        // noise at many amplitudes, partial blocks (as AudioRecord.read may return), silence.
        val random = Random(6464)
        val blocks = mutableListOf(ShortArray(960), ShortArray(960) { Short.MIN_VALUE }, ShortArray(960) { 1 })
        var amplitude = 32767.0
        while (amplitude >= 1.0) {
            blocks += sine(amplitude)
            blocks += sine(amplitude, hz = 440)
            blocks += ShortArray(960) { (random.nextGaussian() * amplitude / 3).coerceIn(-32768.0, 32767.0).roundToInt().toShort() }
            amplitude /= 1.37
        }
        for (block in blocks) {
            assertEquals(coreLevel(block), AudioLevel.of(block), "a block of RMS level ${coreLevel(block)}")
            assertEquals(coreLevel(block, 480), AudioLevel.of(block, 480), "the first half of a block")
        }
        assertEquals(AudioLevel.SILENCE, coreLevel(ShortArray(960)))
        assertEquals(AudioLevel.of(ShortArray(0)), coreLevel(ShortArray(0)))
        // What the group call test sends as "loud" is well above the router's voice threshold (level < 50).
        assertEquals(15, AudioLevel.of(sine(8192.0)))
    }

    @Test
    fun eachPacketGetsTheLevelOfTheBlockItBeginsIn() {
        val levels = PtsLevels(capacity = 4)
        assertNull(levels.at(0), "no block yet")
        levels.put(0, 127)
        levels.put(20_000, 15)
        levels.put(40_000, 60)
        assertEquals(127, levels.at(0))
        assertEquals(127, levels.at(19_999))
        assertEquals(15, levels.at(20_000))
        // An encoder that regroups samples: a packet beginning inside a block gets that block's level.
        assertEquals(15, levels.at(30_000))
        assertEquals(60, levels.at(45_000))
        // Older blocks are gone: a packet before them gets the oldest kept.
        assertEquals(60, levels.at(0))
        // At most `capacity` blocks are kept while nothing is read (a muted microphone).
        for (i in 3..20) levels.put(i * 20_000L, i)
        assertEquals(17, levels.at(0))
        assertEquals(20, levels.at(1_000_000))
        assertFailsWith<IllegalArgumentException> { PtsLevels(capacity = 0) }
    }

    @Test
    fun opusHeadIsTheRfc7845IdentificationHeader() {
        val head = Opus.head(channels = 1)
        assertEquals(19, head.size)
        assertContentEquals("OpusHead".toByteArray(), head.copyOfRange(0, 8))
        assertContentEquals(bytes(1, 1, 0, 0, 0x80, 0xbb, 0, 0, 0, 0, 0), head.copyOfRange(8, 19))
        assertContentEquals(bytes(0, 0xb4, 0xc4, 4, 0, 0, 0, 0), Opus.nanos(Opus.SEEK_PREROLL_NS))
        assertFailsWith<IllegalArgumentException> { Opus.head(channels = 3) }
    }
}
