package org.peerns.media

import kotlin.math.log10
import kotlin.math.sqrt

/**
 * The sound level of 16-bit PCM, in dBFS (0 is a full-scale square wave, a full-scale sine is
 * about -3), reported once per [windowSamples] samples to [onLevel]; silence reads [FLOOR_DBFS],
 * the lowest threshold the baby monitor's sound alert takes. Pure Kotlin; one thread feeds it.
 */
class LevelMeter(private val windowSamples: Int, private val onLevel: (Float) -> Unit) {
    private var sumSquares = 0.0
    private var count = 0

    init {
        require(windowSamples > 0) { "a window holds at least one sample" }
    }

    /** Adds the first [length] samples of [pcm]. */
    fun add(pcm: ShortArray, length: Int = pcm.size) {
        for (i in 0 until length) {
            val s = pcm[i].toDouble()
            sumSquares += s * s
            if (++count == windowSamples) {
                onLevel(dbfs(sumSquares, count))
                sumSquares = 0.0
                count = 0
            }
        }
    }

    companion object {
        /** The level of silence (and the quietest level reported). */
        const val FLOOR_DBFS = -120f

        private fun dbfs(sumSquares: Double, count: Int): Float {
            if (count == 0 || sumSquares == 0.0) return FLOOR_DBFS
            val rms = sqrt(sumSquares / count) / 32768.0
            return (20 * log10(rms)).toFloat().coerceAtLeast(FLOOR_DBFS)
        }
    }
}
