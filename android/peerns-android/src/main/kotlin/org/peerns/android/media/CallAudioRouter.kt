package org.peerns.android.media

import android.content.Context
import android.media.AudioDeviceCallback
import android.media.AudioDeviceInfo
import android.media.AudioManager
import android.os.Build
import android.os.Handler
import android.os.Looper
import android.telecom.CallAudioState
import org.peerns.android.PeernsConnection
import org.peerns.android.TelecomAudio
import org.peerns.media.AudioRoute
import org.peerns.media.AudioRoutes

/**
 * Routes a call's sound to the earpiece, the loudspeaker, a wired or a Bluetooth headset, as
 * [AudioRoutes] picks (a headset when there is one, else the earpiece for an audio call and the
 * loudspeaker for a video call; a route the person picks with [next] or [choose] stays while it
 * is there), following headsets as they come and go. [onChange] hears the route in use and
 * those available (the call screen's route button).
 *
 * A call that Telecom knows ([PeernsConnection]: Telecom owns its audio) is routed through
 * Telecom, and a route changed elsewhere (the system's UI, a car) becomes the person's pick; any
 * other call (a group call, or Telecom refused the call) through `AudioManager`: in
 * `MODE_IN_COMMUNICATION`, with the communication device on Android 12+, the speakerphone and
 * Bluetooth SCO before. Main thread only.
 */
class CallAudioRouter(context: Context, private val onChange: (current: AudioRoute?, available: Set<AudioRoute>) -> Unit) {
    private val audio = context.getSystemService(AudioManager::class.java)
    private val main = Handler(Looper.getMainLooper())
    private var target: Target? = null
    private var startedWith: TelecomAudio? = null
    private var video = false
    private var chosen: AudioRoute? = null

    /** The route in use; null while the router does not run (or no route is known yet). */
    var current: AudioRoute? = null
        private set

    /** The routes there are now. */
    var available: Set<AudioRoute> = emptySet()
        private set

    /**
     * Starts routing the sound of a call with [video], through Telecom when [connection] is the
     * call's ([PeernsConnection]; null: through `AudioManager`). A router that runs already for
     * the same connection is left as it is; for another one (a new call) it starts again.
     */
    fun start(video: Boolean, connection: TelecomAudio? = null) {
        if (target != null) {
            if (connection === startedWith) return
            stop()
        }
        startedWith = connection
        this.video = video
        chosen = null
        target = if (connection != null) TelecomTarget(connection) else ManagerTarget()
        apply()
    }

    /** Routes to [route], the person's pick, while it is there. */
    fun choose(route: AudioRoute) {
        chosen = route
        apply()
    }

    /** Routes to the next of the available routes (the route button). */
    fun next() {
        AudioRoutes.next(available, current)?.let(::choose)
    }

    /** Stops routing: the system's routing again, `MODE_NORMAL` for a call routed here. */
    fun stop() {
        target?.release()
        target = null
        startedWith = null
        current = null
        available = emptySet()
        onChange(null, available)
    }

    /** The routes changed ([added]: those that just appeared): picks again. */
    private fun changed(added: Set<AudioRoute>) {
        chosen = AudioRoutes.afterConnect(chosen, added)
        apply()
    }

    private fun apply() {
        val target = target ?: return
        available = target.available()
        val route = AudioRoutes.pick(available, video, chosen)
        if (route != null && route != target.current()) target.route(route)
        current = target.current() ?: route
        onChange(current, available)
    }

    /** Where the routing is done. */
    private interface Target {
        fun available(): Set<AudioRoute>
        fun current(): AudioRoute?
        fun route(route: AudioRoute)
        fun release()
    }

    /** Through Telecom: the connection's audio state says the routes; a route is asked for. */
    private inner class TelecomTarget(private val connection: TelecomAudio) : Target {
        /** The route we asked for and Telecom has not taken yet: other routes meanwhile are steps on its way. */
        private var asked: AudioRoute? = null

        init {
            connection.onAudioState = { state -> main.post { follow(state) } }
        }

        private fun follow(state: CallAudioState) {
            if (target !== this) return
            val now = telecomRoute(state.route)
            val routes = telecomRoutes(state.supportedRouteMask)
            val before = current
            when {
                now == asked -> asked = null
                // Telecom will not take the route we asked for (it went): stop waiting for it.
                asked != null && asked !in routes -> asked = null
                // Not ours while the route before is still there: the person picked it
                // elsewhere (the system's UI, a car, a headset's button). Telecom's own fall
                // back, when a headset goes, is not a pick.
                asked == null && before != null && now != null && now != before && before in routes -> chosen = now
            }
            changed(routes - available)
        }

        override fun available() = connection.audioState?.let { telecomRoutes(it.supportedRouteMask) } ?: emptySet()

        override fun current() = connection.audioState?.let { telecomRoute(it.route) }

        override fun route(route: AudioRoute) {
            asked = route
            connection.requestAudioRoute(telecomRoute(route))
        }

        override fun release() {
            connection.onAudioState = null
        }
    }

    /** Through `AudioManager`, following the devices as they come and go. */
    private inner class ManagerTarget : Target {
        private var known: Set<AudioRoute>
        private val devices = object : AudioDeviceCallback() {
            override fun onAudioDevicesAdded(added: Array<out AudioDeviceInfo>) = devicesChanged()

            override fun onAudioDevicesRemoved(removed: Array<out AudioDeviceInfo>) = devicesChanged()
        }

        init {
            audio.mode = AudioManager.MODE_IN_COMMUNICATION
            known = available()
            // Registering reports the devices there are already: nothing new, nothing changes.
            audio.registerAudioDeviceCallback(devices, main)
        }

        private fun devicesChanged() {
            if (target !== this) return
            val now = available()
            val added = now - known
            known = now
            changed(added)
        }

        override fun available(): Set<AudioRoute> = (
            if (Build.VERSION.SDK_INT >= 31) {
                audio.availableCommunicationDevices
            } else {
                audio.getDevices(AudioManager.GET_DEVICES_OUTPUTS).toList()
            }
            ).mapNotNull { deviceRoute(it.type) }.toSet()

        override fun current(): AudioRoute? = if (Build.VERSION.SDK_INT >= 31) {
            audio.communicationDevice?.let { deviceRoute(it.type) }
        } else {
            legacyCurrent()
        }

        override fun route(route: AudioRoute) {
            if (Build.VERSION.SDK_INT >= 31) {
                audio.availableCommunicationDevices.firstOrNull { deviceRoute(it.type) == route }
                    ?.let { audio.setCommunicationDevice(it) }
            } else {
                legacyRoute(route)
            }
        }

        override fun release() {
            audio.unregisterAudioDeviceCallback(devices)
            if (Build.VERSION.SDK_INT >= 31) audio.clearCommunicationDevice() else legacyRoute(null)
            audio.mode = AudioManager.MODE_NORMAL
        }

        @Suppress("DEPRECATION")
        private fun legacyCurrent(): AudioRoute? = when {
            audio.isBluetoothScoOn -> AudioRoute.BLUETOOTH
            audio.isSpeakerphoneOn -> AudioRoute.SPEAKER
            AudioRoute.WIRED in known -> AudioRoute.WIRED
            else -> AudioRoute.EARPIECE
        }

        /** Before Android 12: the speakerphone and Bluetooth SCO (a wire takes the sound by itself). */
        @Suppress("DEPRECATION")
        private fun legacyRoute(route: AudioRoute?) {
            audio.isSpeakerphoneOn = route == AudioRoute.SPEAKER
            if (route == AudioRoute.BLUETOOTH) {
                audio.startBluetoothSco()
                audio.isBluetoothScoOn = true
            } else if (audio.isBluetoothScoOn) {
                audio.isBluetoothScoOn = false
                audio.stopBluetoothSco()
            }
        }
    }

    companion object {
        /** The route of an audio device's type; null for a device no call plays on. */
        fun deviceRoute(type: Int): AudioRoute? = when (type) {
            AudioDeviceInfo.TYPE_BUILTIN_EARPIECE -> AudioRoute.EARPIECE
            AudioDeviceInfo.TYPE_BUILTIN_SPEAKER -> AudioRoute.SPEAKER
            AudioDeviceInfo.TYPE_WIRED_HEADSET, AudioDeviceInfo.TYPE_WIRED_HEADPHONES, AudioDeviceInfo.TYPE_USB_HEADSET ->
                AudioRoute.WIRED
            AudioDeviceInfo.TYPE_BLUETOOTH_SCO, AudioDeviceInfo.TYPE_BLE_HEADSET, AudioDeviceInfo.TYPE_HEARING_AID ->
                AudioRoute.BLUETOOTH
            else -> null
        }

        /** Telecom's routes in [mask] (`CallAudioState.ROUTE_*` bits). */
        fun telecomRoutes(mask: Int): Set<AudioRoute> = AudioRoute.entries.filter { mask and telecomRoute(it) != 0 }.toSet()

        /** Telecom's route [route] (one `CallAudioState.ROUTE_*`), or null for another (streaming). */
        fun telecomRoute(route: Int): AudioRoute? = AudioRoute.entries.firstOrNull { telecomRoute(it) == route }

        /** [route] as Telecom says it. */
        fun telecomRoute(route: AudioRoute): Int = when (route) {
            AudioRoute.EARPIECE -> CallAudioState.ROUTE_EARPIECE
            AudioRoute.SPEAKER -> CallAudioState.ROUTE_SPEAKER
            AudioRoute.WIRED -> CallAudioState.ROUTE_WIRED_HEADSET
            AudioRoute.BLUETOOTH -> CallAudioState.ROUTE_BLUETOOTH
        }
    }
}
