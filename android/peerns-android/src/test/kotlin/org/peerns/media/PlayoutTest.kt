package org.peerns.media

import kotlin.test.assertEquals
import kotlin.test.assertNull
import org.junit.Test

class PlayoutTest {
    private val block = 960 // 20 ms at 48 kHz

    @Test
    fun theFirstBlockAndTheFirstAfterAnUnderrunArePrimedWithSilence() {
        val playout = Playout(primeSamples = 2880, maxQueuedSamples = 7200)
        assertEquals(2880, playout.before(played = 0))
        playout.wrote(2880 + block)
        // Sound queued: nothing added.
        assertEquals(0, playout.before(played = 1000))
        playout.wrote(block)
        // The track played everything written: it ran dry, so prime again.
        assertEquals(2880, playout.before(played = 2880 + 2 * block))
    }

    @Test
    fun blocksAreDroppedWhileTooMuchIsQueued() {
        val playout = Playout(primeSamples = 2880, maxQueuedSamples = 7200)
        playout.wrote(playout.before(0)!! + block)
        // A burst while nothing plays: four more blocks are taken, then 7680 > 7200 are queued.
        repeat(4) {
            assertEquals(0, playout.before(played = 0))
            playout.wrote(block)
        }
        assertNull(playout.before(played = 0), "7680 samples queued")
        // Played down to the limit: written again.
        assertEquals(0, playout.before(played = 7680 - 7200))
    }

    @Test
    fun countersThatWrapStillGiveWhatIsQueued() {
        val playout = Playout(primeSamples = 100, maxQueuedSamples = 1000)
        playout.wrote(Int.MAX_VALUE)
        playout.wrote(Int.MAX_VALUE)
        playout.wrote(500) // 2^32 - 2 + 500: wrapped
        val played = (Int.MAX_VALUE.toLong() * 2 + 100).toInt() // 400 behind
        assertEquals(0, playout.before(played))
    }
}
