package org.peerns.app.model

import org.peerns.ffi.CallParticipant

/**
 * Who gets a picture in a group call's grid, and where. Pure Kotlin.
 *
 * A picture costs a hardware decoder, and a phone has few of them (and a small screen): at most
 * [MAX_PICTURES]. Pictures keep their place while their participant still sends video: moving one
 * would restart its decoder, which then shows nothing until the sender's next keyframe (up to
 * 2 s). A newcomer takes a free place; when none is free, only someone speaking takes the place of
 * whoever has been quiet longest (the router gives the last speakers the full-rate video slots,
 * decision 0016, so the pictures follow the conversation as the video does).
 */
object CallGrid {
    /** Pictures at most: 2 × 3 on a phone's screen. */
    const val MAX_PICTURES = 6

    /** Whether [p] sends a picture now: its camera on, or its screen shared. */
    fun sendsPicture(p: CallParticipant): Boolean = p.media.screen || (p.kinds.video && !p.media.cameraOff)

    /**
     * The grid after a change: the fingerprints shown, in place order.
     *
     * [previous] is the grid before; [participants] the roster (in its order); [me] our own
     * fingerprint (never shown: we see ourselves in no picture of the grid); [speaking] who speaks
     * now, as the router says; [recent] everyone who spoke, the most recent first.
     */
    fun next(
        previous: List<String>,
        participants: List<CallParticipant>,
        me: String?,
        speaking: List<String>,
        recent: List<String>,
        max: Int = MAX_PICTURES,
    ): List<String> {
        val senders = participants.filter { it.fingerprint != me && sendsPicture(it) }.map { it.fingerprint }
        val places: MutableList<String?> = previous.map { fp -> fp.takeIf { it in senders } }.toMutableList()
        val rank = { fp: String ->
            when (fp) {
                in speaking -> speaking.indexOf(fp)
                in recent -> speaking.size + recent.indexOf(fp)
                else -> Int.MAX_VALUE
            }
        }
        // Newcomers by how recently they spoke, then in the roster's order (sortedBy is stable).
        val waiting = senders.filter { it !in places }.sortedBy(rank).toMutableList()
        // Free places first: the holes of those who left, then new ones up to the limit.
        for (i in places.indices) {
            if (places[i] == null && waiting.isNotEmpty()) places[i] = waiting.removeAt(0)
        }
        while (places.size < max && waiting.isNotEmpty()) places.add(waiting.removeAt(0))
        // Full: a speaker takes the place of whoever has been quiet longest.
        for (fp in waiting.filter { it in speaking }) {
            val quiet = places.withIndex()
                .filter { (_, shown) -> shown != null && shown !in speaking }
                .maxByOrNull { (i, shown) -> rank(shown!!).toLong() * max + i }
                ?: break
            places[quiet.index] = fp
        }
        return places.filterNotNull().take(max)
    }

    /** [recent] after the router says [speaking]: those speaking first, in its order. */
    fun spoke(recent: List<String>, speaking: List<String>): List<String> = (speaking + recent).distinct()
}
