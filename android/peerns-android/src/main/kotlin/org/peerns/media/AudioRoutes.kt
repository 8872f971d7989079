package org.peerns.media

/** Where a call's sound goes (and the microphone it is heard from). */
enum class AudioRoute(val label: String) {
    EARPIECE("Earpiece"),
    SPEAKER("Speaker"),
    WIRED("Headset"),
    BLUETOOTH("Bluetooth"),
}

/**
 * Which route a call uses. Pure Kotlin.
 *
 * What a person expects of a phone call: a headset, once plugged in or connected, takes the
 * sound (the one connected last: Bluetooth before a wire when both are there at the start); an
 * audio call is held to the ear, so without a headset it plays on the earpiece; a video call is
 * watched at arm's length, so it plays on the loudspeaker. A route the person picked stays while
 * it is there; when it goes (the headset is unplugged) the call falls back to that default and
 * never to the loudspeaker by surprise unless it is a video call.
 */
object AudioRoutes {
    /** The route to use among [available], [chosen] by the person (null: none), for a call with [video]. */
    fun pick(available: Set<AudioRoute>, video: Boolean, chosen: AudioRoute?): AudioRoute? = when {
        chosen != null && chosen in available -> chosen
        AudioRoute.BLUETOOTH in available -> AudioRoute.BLUETOOTH
        AudioRoute.WIRED in available -> AudioRoute.WIRED
        else -> preferred(video).firstOrNull { it in available }
    }

    /** The route after [current] in the order of [AudioRoute], among [available]: the call screen's route button. */
    fun next(available: Set<AudioRoute>, current: AudioRoute?): AudioRoute? {
        val order = AudioRoute.entries.filter { it in available }
        if (order.isEmpty()) return null
        val at = order.indexOf(current)
        return order[(at + 1) % order.size]
    }

    /**
     * What the person's pick becomes when [added] appears (a headset connected): the new headset,
     * as on every phone; other changes keep the pick.
     */
    fun afterConnect(chosen: AudioRoute?, added: Set<AudioRoute>): AudioRoute? = when {
        AudioRoute.BLUETOOTH in added -> AudioRoute.BLUETOOTH
        AudioRoute.WIRED in added -> AudioRoute.WIRED
        else -> chosen
    }

    private fun preferred(video: Boolean) =
        if (video) listOf(AudioRoute.SPEAKER, AudioRoute.EARPIECE) else listOf(AudioRoute.EARPIECE, AudioRoute.SPEAKER)
}
