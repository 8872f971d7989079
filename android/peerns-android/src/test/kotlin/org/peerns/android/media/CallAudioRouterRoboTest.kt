package org.peerns.android.media

import android.app.Application
import android.media.AudioDeviceInfo
import android.media.AudioManager
import android.os.Looper
import android.telecom.CallAudioState
import kotlin.test.assertEquals
import kotlin.test.assertNull
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.android.TelecomAudio
import org.peerns.media.AudioRoute
import org.peerns.media.AudioRoute.BLUETOOTH
import org.peerns.media.AudioRoute.EARPIECE
import org.peerns.media.AudioRoute.SPEAKER
import org.peerns.media.AudioRoute.WIRED
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.AudioDeviceInfoBuilder

/**
 * A call's audio route on Robolectric's Android 16: through `AudioManager`'s communication device
 * for a call Telecom does not know (a group call), through the connection's audio state for one
 * it does.
 */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class CallAudioRouterRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val audio = app.getSystemService(AudioManager::class.java)
    private val heard = mutableListOf<Pair<AudioRoute?, Set<AudioRoute>>>()
    private val router = CallAudioRouter(app) { current, available -> heard.add(current to available) }

    private fun device(type: Int): AudioDeviceInfo = AudioDeviceInfoBuilder.newBuilder().setType(type).build()

    private val earpiece = device(AudioDeviceInfo.TYPE_BUILTIN_EARPIECE)
    private val speaker = device(AudioDeviceInfo.TYPE_BUILTIN_SPEAKER)
    private val bluetooth = device(AudioDeviceInfo.TYPE_BLUETOOTH_SCO)
    private val wired = device(AudioDeviceInfo.TYPE_WIRED_HEADSET)

    private fun phone() = shadowOf(audio).setAvailableCommunicationDevices(listOf(earpiece, speaker))

    private fun idle() = shadowOf(Looper.getMainLooper()).idle()

    private fun device(): AudioRoute? = audio.communicationDevice?.let { CallAudioRouter.deviceRoute(it.type) }

    @Test
    fun aGroupCallPlaysAloudAndFollowsAHeadsetAsItComesAndGoes() {
        phone()
        router.start(video = true)
        assertEquals(AudioManager.MODE_IN_COMMUNICATION, audio.mode)
        assertEquals(SPEAKER, device())
        assertEquals(SPEAKER to setOf(EARPIECE, SPEAKER), heard.last())

        // A Bluetooth headset connects: the sound goes to it.
        shadowOf(audio).addAvailableCommunicationDevice(bluetooth, true)
        idle()
        assertEquals(BLUETOOTH, device())
        assertEquals(BLUETOOTH to setOf(EARPIECE, SPEAKER, BLUETOOTH), heard.last())

        // It goes: back to the loudspeaker of a video call.
        shadowOf(audio).removeAvailableCommunicationDevice(bluetooth, true)
        idle()
        assertEquals(SPEAKER, device())
        assertEquals(SPEAKER, router.current)

        router.stop()
        assertNull(audio.communicationDevice)
        assertEquals(AudioManager.MODE_NORMAL, audio.mode)
        assertEquals(null to emptySet(), heard.last())
    }

    @Test
    fun anAudioCallIsOnTheEarpieceAndTheRouteButtonMovesIt() {
        phone()
        router.start(video = false)
        assertEquals(EARPIECE, device())
        router.next()
        assertEquals(SPEAKER, device())
        assertEquals(SPEAKER, router.current)
        router.next()
        assertEquals(EARPIECE, device())

        // The pick stays while devices come and go; a wired headset plugged in takes over.
        router.choose(SPEAKER)
        shadowOf(audio).addAvailableCommunicationDevice(wired, true)
        idle()
        assertEquals(WIRED, device())
        shadowOf(audio).removeAvailableCommunicationDevice(wired, true)
        idle()
        assertEquals(EARPIECE, device(), "the headset went: an audio call goes back to the ear")
        router.stop()
    }

    /** Telecom's side of one call: its audio state, and the routes asked of it. */
    private class FakeTelecom : TelecomAudio {
        override var audioState: CallAudioState? = null
        override var onAudioState: ((CallAudioState) -> Unit)? = null
        val asked = mutableListOf<Int>()

        override fun requestAudioRoute(route: Int) {
            asked.add(route)
        }

        /** Telecom says the call's route and routes now. */
        fun say(route: Int, mask: Int) {
            val state = CallAudioState(false, route, mask)
            audioState = state
            onAudioState?.invoke(state)
        }
    }

    @Test
    fun aTelecomCallIsRoutedThroughTelecomAndARouteChangedElsewhereStays() {
        phone()
        val telecom = FakeTelecom()
        router.start(video = true, connection = telecom)
        val routes = CallAudioState.ROUTE_EARPIECE or CallAudioState.ROUTE_SPEAKER
        telecom.say(CallAudioState.ROUTE_EARPIECE, routes)
        idle()
        // A video call: the loudspeaker is asked of Telecom, the communication device left alone.
        assertEquals(listOf(CallAudioState.ROUTE_SPEAKER), telecom.asked)
        assertNull(audio.communicationDevice)
        telecom.say(CallAudioState.ROUTE_SPEAKER, routes)
        idle()
        assertEquals(SPEAKER to setOf(EARPIECE, SPEAKER), heard.last())

        // The person moves it to the earpiece in the system's UI: it stays there.
        telecom.say(CallAudioState.ROUTE_EARPIECE, routes)
        idle()
        assertEquals(1, telecom.asked.size, "not asked back to the loudspeaker: ${telecom.asked}")
        assertEquals(EARPIECE, router.current)

        // A Bluetooth headset connects (Telecom offers it): the sound goes to it.
        telecom.say(CallAudioState.ROUTE_EARPIECE, routes or CallAudioState.ROUTE_BLUETOOTH)
        idle()
        assertEquals(CallAudioState.ROUTE_BLUETOOTH, telecom.asked.last())

        router.stop()
        assertNull(telecom.onAudioState)
        assertEquals(AudioManager.MODE_NORMAL, audio.mode)
    }
}
