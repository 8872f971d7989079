package org.peerns.app.model

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancelChildren
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import org.peerns.ffi.CallKinds
import org.peerns.ffi.CallMediaSinks
import org.peerns.ffi.CallMediaState
import org.peerns.ffi.MediaFrame
import org.peerns.ffi.MediaFrameListener
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.PeernsException
import org.peerns.ffi.PeernsNodeInterface

/** What the 1:1 call screen shows; [call] is null while there is no call. */
data class CallState(
    val call: String? = null,
    /** The contact's fingerprint and name. */
    val fingerprint: String = "",
    val name: String = "",
    val outgoing: Boolean = false,
    /** `dialing`, `ringing`, `connected` or `ended` (see `CallStatus`). */
    val status: String = "",
    /** Why it ended. */
    val reason: String? = null,
    /** What the caller offers to send (audio, video). */
    val offered: CallKinds = CallKinds(audio = false, video = false, screen = false),
    /** Our side carries video: its camera may be on, now or later (it may start off, see [local]). */
    val sendsVideo: Boolean = false,
    /** Our side carries sound (not when we only watch an armed baby monitor's stream). */
    val sendsAudio: Boolean = true,
    /** Our side has a screen track: we may share our screen ([CallViewModel.shareScreen]). */
    val sendsScreen: Boolean = false,
    val local: CallMediaState = NO_MEDIA,
    val remote: CallMediaState = NO_MEDIA,
    /** The media connection is up. */
    val mediaUp: Boolean = false,
    val error: String? = null,
) {
    /** It rings here: answer or decline. */
    val ringingHere: Boolean get() = call != null && !outgoing && status == "ringing"

    companion object {
        val NO_MEDIA = CallMediaState(muted = false, cameraOff = false, screen = false, backCamera = false)
    }
}

/**
 * A 1:1 call: ring (answer, decline), in call (mute, camera, screen), hang up. Follows the node's call
 * events ([onEvent]); [refresh] reads the active call (a screen opened by a notification). Once
 * the media is up, [startMedia] sends [media]'s microphone and camera into the call's tracks and
 * plays the peer's (its shared screen instead of its camera while it shares one). While
 * [powerSaver] is on, a call we place or answer with video starts with the camera off (the call
 * keeps its video, so [setCameraOff] can turn it on). Pure Kotlin.
 */
class CallViewModel(
    private val node: PeernsNodeInterface,
    private val media: CallMedia? = null,
    private val powerSaver: StateFlow<Boolean> = BatterySaver.OFF,
) {
    private val mutableState = MutableStateFlow(CallState())
    val state: StateFlow<CallState> = mutableState.asStateFlow()

    /** The screen's battery saver notice, null while it is off. */
    val notice: Flow<String?> = BatterySaver.notice(powerSaver, BatterySaver.CALL)

    /** Our encoded frames, into the call's tracks (none while the media is stopped). */
    private val sources = CallSources()

    @Volatile
    private var sinks: CallMediaSinks? = null

    private val received = object : MediaFrameListener {
        override fun onFrame(frame: MediaFrame) {
            val shown = media?.play(frame.track, frame.kind, frame.ptsUs.toLong(), frame.keyframe, frame.data) ?: true
            if (!shown) askForKeyframe(frame.track)
        }
    }

    private val keyframesAsked = KeyframeAsks()

    /** Where keyframe requests run: the sinks' request is a suspend call, frames come on the delivery thread. */
    private val requests = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    /** Asks the peer for a keyframe of its [track] (a decoder that started mid-stream), at most once a second. */
    private fun askForKeyframe(track: String) {
        val asking = sinks ?: return
        if (!keyframesAsked.mayAsk(track)) return
        requests.launch {
            try {
                asking.requestKeyframe(track)
            } catch (_: PeernsException) {
                // The call ended meanwhile: nobody to ask.
            } catch (_: IllegalStateException) {
                // The sinks were closed meanwhile.
            }
        }
    }

    /**
     * Starts the media of the connected call: the microphone into our `audio` track, the front
     * camera into our `video` track if the call carries one, the peer's frames to [media]. No-op
     * without [media] or when started already.
     */
    suspend fun startMedia(): Boolean {
        val call = mutableState.value.call
        val started = startMediaOnce()
        if (started) {
            mutableState.update { it.copy(error = null) }
        } else {
            // Nothing left half started; tried again when the media says it is up (a screen
            // opened on a connected call may try before it is, and the library waits only so long).
            stopMedia()
            mutableState.update { if (it.call == call) it.copy(mediaUp = false) else it }
        }
        return started
    }

    private suspend fun startMediaOnce(): Boolean = withCall { call ->
        val media = media ?: return@withCall
        if (sinks != null) return@withCall
        val audio = try {
            node.callMediaSource(call, "audio", NoEncoderControl)
        } catch (e: PeernsException.InvalidInput) {
            null // we send nothing: watching a baby monitor
        }
        val video = try {
            node.callMediaSource(call, "video", media.videoControl)
        } catch (e: PeernsException.InvalidInput) {
            null // an audio call: no video track of ours
        }
        sources.set(listOfNotNull(audio?.let { "audio" to it }, video?.let { "video" to it }).toMap())
        sinks = node.callMediaSinks(call, received)
        media.setMuted(mutableState.value.local.muted)
        val local = mutableState.value.local
        media.setRotation(REMOTE_VIDEO, mutableState.value.remote.rotation.toInt())
        media.setRemoteScreen(mutableState.value.remote.screen)
        media.start(if (video != null && !local.cameraOff) facing(local.backCamera) else null, sources.out, microphone = audio != null)
        // How far our picture must be turned, told to the peer as the phone turns.
        if (video != null) {
            media.setRotationListener { degrees ->
                try {
                    node.setVideoRotation(call, degrees.toUShort())
                } catch (_: PeernsException) {
                    // The call ended meanwhile.
                }
            }
        }
    }

    /** Stops capturing and playing (the call goes on). */
    fun stopMedia() {
        // A system's stop of the share already under way resumes no camera after this.
        shareId++
        requests.coroutineContext.cancelChildren()
        keyframesAsked.clear()
        media?.setRotationListener(null)
        media?.stop()
        sources.close()
        sinks?.cancel()
        sinks?.close()
        sinks = null
        // A share ends with the media (the peer is told if the call goes on).
        val call = mutableState.value.call ?: return
        try {
            stopSharing(call)
        } catch (_: PeernsException) {
            // The call ended.
        }
    }

    /**
     * Reads the node's active call, if any (the last ended one stays shown otherwise): for a
     * screen opened during a call. From then on the call's events keep the state.
     */
    suspend fun refresh() = guard {
        val active = node.activeCall() ?: return@guard
        val name = nameOf(active.fingerprint)
        // A screen opened after the media came up (its event gone): a connected call's media is
        // started all the same (the library waits for it to be up).
        val mediaUp = mutableState.value.let { it.call == active.call && it.mediaUp } || active.status.state == "connected"
        val ours = if (active.outgoing) active.callerKinds else active.calleeKinds
        mutableState.value = CallState(
            call = active.call,
            fingerprint = active.fingerprint,
            name = name,
            outgoing = active.outgoing,
            status = active.status.state,
            reason = active.status.reason,
            offered = active.callerKinds,
            sendsVideo = ours.video,
            sendsAudio = ours.audio,
            sendsScreen = ours.screen,
            local = active.localMedia,
            remote = active.remoteMedia,
            mediaUp = mediaUp,
        )
    }

    /**
     * Calls contact [fingerprint], with the camera when [video] (off at first under battery
     * saver); a video call carries a screen track too, for [shareScreen].
     */
    suspend fun call(fingerprint: String, video: Boolean) = guard {
        val kinds = kindsOf(video)
        val call = place(node, fingerprint, video, powerSaver.value)
        val name = nameOf(fingerprint)
        mutableState.update {
            // An event of the new call may have come first: keep what it said.
            if (it.call == call) {
                it.copy(name = name, offered = kinds, sendsVideo = video, sendsScreen = video, error = null)
            } else {
                CallState(
                    call = call,
                    fingerprint = fingerprint,
                    name = name,
                    outgoing = true,
                    status = "dialing",
                    offered = kinds,
                    sendsVideo = video,
                    sendsScreen = video,
                )
            }
        }
        if (video && powerSaver.value) markedCameraOff(call)
    }

    /**
     * Answers the ringing call, with the camera when [video] (off at first under battery saver)
     * and then a screen track too.
     */
    suspend fun accept(video: Boolean) = withCall { call ->
        node.acceptCall(call, kindsOf(video))
        mutableState.update { it.copy(local = it.local.copy(cameraOff = !video), sendsVideo = video, sendsScreen = video, error = null) }
        if (video && powerSaver.value) cameraStartsOff(call)
    }

    /** Battery saver: the call has video but the camera starts off; the peer is told. */
    private fun cameraStartsOff(call: String) {
        node.setCameraOff(call, true)
        markedCameraOff(call)
    }

    /** Our camera in [call] is off (the node was told). */
    private fun markedCameraOff(call: String) =
        mutableState.update { if (it.call != call) it else it.copy(local = it.local.copy(cameraOff = true)) }

    private suspend fun nameOf(fingerprint: String) =
        node.contacts().firstOrNull { it.fingerprint == fingerprint }?.name ?: fingerprint.take(8)

    suspend fun decline() = withCall { node.declineCall(it) }

    suspend fun hangUp() = withCall {
        stopMedia()
        node.hangUp(it)
    }

    suspend fun setMuted(muted: Boolean) = withCall { call ->
        node.setMuted(call, muted)
        media?.setMuted(muted)
        mutableState.update { it.copy(local = it.local.copy(muted = muted)) }
    }

    suspend fun setCameraOff(off: Boolean) = withCall { call ->
        // Under the share's lock: a share the system stops meanwhile resumes the camera as set.
        shareLock.withLock {
            node.setCameraOff(call, off)
            mutableState.update { it.copy(local = it.local.copy(cameraOff = off)) }
            // While the screen is shared the camera waits for the share's end.
            val local = mutableState.value.local
            if ("video" in sources && !local.screen) media?.setCamera(if (off) null else facing(local.backCamera))
        }
    }

    /**
     * Switches between the front and the back camera (the peer is told); the picture follows at
     * once while our camera is on, else when it is turned on.
     */
    suspend fun switchCamera() = withCall { call ->
        shareLock.withLock {
            node.switchCamera(call)
            val back = !mutableState.value.local.backCamera
            mutableState.update { it.copy(local = it.local.copy(backCamera = back)) }
            if (cameraSends() && !mutableState.value.local.screen) media?.setCamera(facing(back))
        }
    }

    /** One share change at a time: the user's and the system's may cross. */
    private val shareLock = Mutex()

    /** Counts shares: the system's stop of an earlier one (or of one the media's stop ended) ends nothing. */
    @Volatile
    private var shareId = 0

    /**
     * Shares our screen in the call, through the capture the user just allowed
     * ([CallMedia.startScreen]), or no longer. The peer's one picture shows it instead of our
     * camera, which pauses meanwhile (two encoders would share the upload for a picture nobody
     * sees). The share also ends when the user stops it from the system's controls, and with
     * the media. A share that fails to start leaves nothing running.
     */
    suspend fun shareScreen(on: Boolean): Boolean = withCall { call ->
        shareLock.withLock { if (on) startSharing(call) else stopSharing(call) }
    }

    private suspend fun startSharing(call: String) {
        val media = media ?: throw IllegalArgumentException("this phone cannot share its screen")
        val s = mutableState.value
        // A second consent while one share runs: this one is not used (the caller gives it back).
        require(!s.local.screen) { "the screen is shared already" }
        require(s.sendsScreen) { "this call has no screen track" }
        require(sinks != null) { "the call's media is not up" }
        val source = node.callMediaSource(call, "screen", media.screenControl)
        // The media may have stopped (the call ended) while the source was made.
        if (sinks == null || mutableState.value.call != call) {
            source.close()
            throw IllegalArgumentException("the call has ended")
        }
        sources.add("screen", source)
        val id = ++shareId
        val started = media.startScreen { requests.launch { systemStopped(call, id) } }
        if (!started) {
            sources.remove("screen")
            throw IllegalArgumentException("the screen capture was not allowed")
        }
        try {
            node.setScreen(call, true)
        } catch (e: PeernsException) {
            media.stopScreen()
            sources.remove("screen")
            throw e
        }
        if (cameraSends()) media.setCamera(null)
        mutableState.update { it.copy(local = it.local.copy(screen = true)) }
    }

    private fun stopSharing(call: String) {
        val media = media ?: return
        if (!mutableState.value.local.screen) return
        media.stopScreen()
        sources.remove("screen")
        mutableState.update { it.copy(local = it.local.copy(screen = false)) }
        // Not once the media stopped (the call ended meanwhile): the camera stays closed.
        if (cameraSends() && sinks != null) media.setCamera(facing(mutableState.value.local.backCamera))
        node.setScreen(call, false)
    }

    /** The share [id] of [call] ended from the system's controls (if it is still the one on). */
    private suspend fun systemStopped(call: String, id: Int) = guard {
        shareLock.withLock { if (id == shareId && mutableState.value.call == call) stopSharing(call) }
    }

    /** Whether our camera is to send now, the screen aside: the call carries it and it is on. */
    private fun cameraSends() = "video" in sources && !mutableState.value.local.cameraOff

    /**
     * Applies [event] ([onEvent]); true when the screen is to [refresh]: the call ringing here
     * was answered, maybe from elsewhere (the notification's or Telecom's Answer, a headset), so
     * what we send in it (video or not) is read from the node.
     */
    fun onCallEvent(event: NodeEvent): Boolean {
        val s = mutableState.value
        val answered = event is NodeEvent.CallState && event.call == s.call && s.ringingHere && event.status.state == "connected"
        onEvent(event)
        return answered
    }

    /** Applies a call event of the node; true when it changed the state. */
    fun onEvent(event: NodeEvent): Boolean {
        val before = mutableState.value
        when (event) {
            is NodeEvent.IncomingCall -> mutableState.value = CallState(
                call = event.call,
                fingerprint = event.fingerprint,
                name = event.name.ifEmpty { event.fingerprint.take(8) },
                status = "ringing",
                offered = event.kinds,
            )
            is NodeEvent.CallState -> mutableState.update {
                when {
                    it.call == event.call -> it.copy(status = event.status.state, reason = event.status.reason)
                    // A call we place (every incoming one starts with IncomingCall), maybe
                    // before startCall has returned its ID.
                    it.call == null || it.status == "ended" -> CallState(
                        call = event.call,
                        fingerprint = event.fingerprint,
                        name = event.fingerprint.take(8),
                        outgoing = true,
                        status = event.status.state,
                        reason = event.status.reason,
                    )
                    else -> it
                }
            }
            is NodeEvent.CallMedia -> if (event.call == before.call) {
                mutableState.update { it.copy(remote = event.state) }
                // The peer's picture, turned as it says; its screen instead while it shares it.
                media?.setRotation(REMOTE_VIDEO, event.state.rotation.toInt())
                media?.setRemoteScreen(event.state.screen)
            }
            is NodeEvent.CallMediaConnected -> mutableState.update { if (it.call != event.call) it else it.copy(mediaUp = true) }
            else -> {}
        }
        if (event is NodeEvent.CallState && event.call == before.call && event.status.state == "ended") stopMedia()
        return mutableState.value != before
    }

    private suspend fun withCall(block: suspend (String) -> Unit) = guard {
        block(mutableState.value.call ?: throw IllegalArgumentException("no call"))
    }

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)

    companion object {
        /** A call shows the person: the front camera. */
        private const val FRONT = "user"

        /** The camera a call shows: the front one unless [back]. */
        private fun facing(back: Boolean) = if (back) "environment" else FRONT

        /** The track a PeerNS peer's camera comes on in a 1:1 call. */
        private const val REMOTE_VIDEO = "video"

        /** What a call we place or answer sends: sound, and with [video] the camera and a screen track. */
        fun kindsOf(video: Boolean) = CallKinds(audio = true, video = video, screen = video)

        /**
         * Calls contact [fingerprint], with the camera when [video] (off at first while
         * [powerSaver] is on: the call keeps its video, and the peer is told); returns the call.
         * For the call screen's [call] and for a call placed before that screen opens.
         */
        suspend fun place(node: PeernsNodeInterface, fingerprint: String, video: Boolean, powerSaver: Boolean): String {
            val call = node.startCall(fingerprint, kindsOf(video))
            if (video && powerSaver) node.setCameraOff(call, true)
            return call
        }
    }
}
