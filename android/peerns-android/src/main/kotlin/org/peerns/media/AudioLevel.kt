package org.peerns.media

import kotlin.math.log10
import kotlin.math.sqrt

/**
 * How loud a block of 16-bit PCM is, as RFC 6464 puts it on audio packets: −dBov of its RMS,
 * rounded, 0 loudest … 127 silence. The same as the core's `audioLevelOfPcm` (tested against it),
 * without copying every block into a list for the library. Pure Kotlin.
 */
object AudioLevel {
    /** The level of silence (and of an empty block). */
    const val SILENCE = 127

    /** The level of the first [length] samples of [pcm]. */
    fun of(pcm: ShortArray, length: Int = pcm.size): Int {
        if (length <= 0) return SILENCE
        var energy = 0.0
        for (i in 0 until length) {
            val s = pcm[i].toDouble()
            energy += s * s
        }
        val rms = sqrt(energy / length) / 32768.0
        if (rms <= 0.0) return SILENCE
        // Math.round is half up, as Rust's round is for the non-negative values here.
        return Math.round(-20 * log10(rms)).coerceIn(0L, SILENCE.toLong()).toInt()
    }
}

/**
 * The levels of the PCM blocks given to an encoder, by their pts, so that each packet it puts
 * out gets the level of the block it begins in: the last block put at or before the packet's
 * pts (older ones are dropped), the first one if all are later, null if none was put. Keeps at
 * most [capacity] blocks; one thread uses it.
 */
class PtsLevels(private val capacity: Int = 64) {
    private val blocks = ArrayDeque<Pair<Long, Int>>()

    init {
        require(capacity > 0) { "room for at least one block" }
    }

    fun put(ptsUs: Long, level: Int) {
        blocks.addLast(ptsUs to level)
        if (blocks.size > capacity) blocks.removeFirst()
    }

    fun at(ptsUs: Long): Int? {
        while (blocks.size > 1 && blocks[1].first <= ptsUs) blocks.removeFirst()
        return blocks.firstOrNull()?.second
    }
}
