package org.peerns.media

import java.nio.ByteBuffer
import java.nio.ByteOrder

/** What an Opus decoder needs besides the packets. Pure Kotlin. */
object Opus {
    /** The sample rate of every Opus packet the app sends and plays. */
    const val SAMPLE_RATE = 48_000

    /** Samples per channel in the 20 ms packets the app sends. */
    const val FRAME_SAMPLES = SAMPLE_RATE / 50

    /** The decoder's seek pre-roll (RFC 7845: 80 ms), in ns. */
    const val SEEK_PREROLL_NS = 80_000_000L

    /**
     * The identification header (RFC 7845 §5.1) of a stream of [channels] (1 or 2) with no
     * pre-skip: packets arrive mid-stream, so there is no start to trim. Android's decoder takes
     * it as `csd-0`.
     */
    fun head(channels: Int): ByteArray {
        require(channels in 1..2) { "mapping family 0 carries 1 or 2 channels" }
        return ByteBuffer.allocate(19).order(ByteOrder.LITTLE_ENDIAN)
            .put("OpusHead".toByteArray(Charsets.US_ASCII))
            .put(1) // version
            .put(channels.toByte())
            .putShort(0) // pre-skip
            .putInt(SAMPLE_RATE)
            .putShort(0) // output gain
            .put(0) // mapping family
            .array()
    }

    /** A duration in ns as Android's decoder takes it in `csd-1` and `csd-2` (little-endian). */
    fun nanos(ns: Long): ByteArray = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(ns).array()
}
