package org.peerns.media

/**
 * Keeps received sound flowing without a growing delay: decoded blocks go to a streaming audio
 * track as they come, with [primeSamples] of silence ahead of the first block and of the first
 * after the track ran dry (so the next late packet finds sound queued instead of a gap), and a
 * block is dropped while more than [maxQueuedSamples] are queued (after a burst, or as the
 * sender's clock runs ahead of ours, the delay shrinks back one block at a time). Pure: the
 * caller reads the track's playback head and writes. Not thread-safe: one per track.
 */
class Playout(private val primeSamples: Int, private val maxQueuedSamples: Int) {
    // Samples written so far, silence included; 32 bits, as the track's head counts.
    private var written = 0

    /**
     * What to write before a block, given the samples the track has [played] (its playback
     * head): how many samples of silence (0 while sound is queued), or null to drop the block.
     */
    fun before(played: Int): Int? {
        // Both counters wrap at 2^32 samples (a day at 48 kHz): their difference does not.
        val queued = written - played
        return when {
            queued <= 0 -> primeSamples
            queued > maxQueuedSamples -> null
            else -> 0
        }
    }

    /** [samples] went to the track (silence or sound). */
    fun wrote(samples: Int) {
        written += samples
    }
}
