package org.peerns.media

import kotlin.test.assertEquals
import kotlin.test.assertNull
import org.junit.Test
import org.peerns.media.AudioRoute.BLUETOOTH
import org.peerns.media.AudioRoute.EARPIECE
import org.peerns.media.AudioRoute.SPEAKER
import org.peerns.media.AudioRoute.WIRED

/** Which route a call's sound takes: what a person expects of a phone call. */
class AudioRoutesTest {
    private val phone = setOf(EARPIECE, SPEAKER)

    @Test
    fun anAudioCallIsHeldToTheEarAndAVideoCallPlaysAloud() {
        assertEquals(EARPIECE, AudioRoutes.pick(phone, video = false, chosen = null))
        assertEquals(SPEAKER, AudioRoutes.pick(phone, video = true, chosen = null))
        // A tablet without an earpiece plays aloud either way.
        assertEquals(SPEAKER, AudioRoutes.pick(setOf(SPEAKER), video = false, chosen = null))
        assertNull(AudioRoutes.pick(emptySet(), video = false, chosen = null))
    }

    @Test
    fun aHeadsetTakesTheSoundBluetoothBeforeAWire() {
        assertEquals(WIRED, AudioRoutes.pick(phone + WIRED, video = true, chosen = null))
        assertEquals(BLUETOOTH, AudioRoutes.pick(phone + WIRED + BLUETOOTH, video = false, chosen = null))
    }

    @Test
    fun thePersonsPickStaysWhileItIsThereAndFallsBackToTheDefault() {
        assertEquals(SPEAKER, AudioRoutes.pick(phone + BLUETOOTH, video = false, chosen = SPEAKER))
        assertEquals(EARPIECE, AudioRoutes.pick(phone + BLUETOOTH, video = false, chosen = EARPIECE))
        // The headset picked is unplugged: an audio call goes back to the ear, not aloud.
        assertEquals(EARPIECE, AudioRoutes.pick(phone, video = false, chosen = WIRED))
        assertEquals(SPEAKER, AudioRoutes.pick(phone, video = true, chosen = BLUETOOTH))
    }

    @Test
    fun aHeadsetThatConnectsTakesOverThePick() {
        assertEquals(BLUETOOTH, AudioRoutes.afterConnect(SPEAKER, setOf(BLUETOOTH)))
        assertEquals(WIRED, AudioRoutes.afterConnect(null, setOf(WIRED)))
        assertEquals(SPEAKER, AudioRoutes.afterConnect(SPEAKER, emptySet()))
        assertNull(AudioRoutes.afterConnect(null, setOf(SPEAKER)))
    }

    @Test
    fun theRouteButtonGoesThroughTheAvailableRoutesInTurn() {
        val all = phone + BLUETOOTH
        assertEquals(SPEAKER, AudioRoutes.next(all, EARPIECE))
        assertEquals(BLUETOOTH, AudioRoutes.next(all, SPEAKER))
        assertEquals(EARPIECE, AudioRoutes.next(all, BLUETOOTH))
        // From a route that went (or none yet): the first one.
        assertEquals(EARPIECE, AudioRoutes.next(all, WIRED))
        assertNull(AudioRoutes.next(emptySet(), null))
    }
}
