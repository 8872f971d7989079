package org.peerns.app.model

import java.util.concurrent.ConcurrentHashMap
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
import org.peerns.ffi.CallMediaState
import org.peerns.ffi.CallParticipant
import org.peerns.ffi.Contact
import org.peerns.ffi.EncoderControlListener
import org.peerns.ffi.GroupCall
import org.peerns.ffi.GroupCallFrame
import org.peerns.ffi.GroupCallFrameListener
import org.peerns.ffi.GroupCallPhase
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.PeernsException
import org.peerns.ffi.PeernsNodeInterface

/** What a group call's screen shows. */
data class GroupCallState(
    val phase: GroupCallPhase = GroupCallPhase.OUT,
    /** Our contacts (for the names of participants). */
    val contacts: List<Contact> = emptyList(),
    /** Who is in the call (us too, once joined), as the router announces it. */
    val participants: List<CallParticipant> = emptyList(),
    val muted: Boolean = false,
    val cameraOff: Boolean = false,
    /** We joined with video, so we may share our screen too ([GroupCallViewModel.shareScreen]). */
    val sendsScreen: Boolean = false,
    /** Our screen is shared. */
    val screen: Boolean = false,
    /** Frames received per participant's fingerprint: whose media arrives (brought up to date once a second). */
    val frames: Map<String, Long> = emptyMap(),
    /** The bit rate our connections can carry now (the encoder's target), 0 until known. */
    val targetBps: Long = 0,
    /** The fingerprints of those speaking now, in the router's order (from the audio's levels); empty: nobody. */
    val speaking: List<String> = emptyList(),
    /** The member our media goes to: the router, or the other participant in a call of two; null when we route. */
    val mediaPeer: String? = null,
    /**
     * The grid's pictures: the fingerprints of the others whose video (or screen) is shown, in
     * place order ([CallGrid]: at most [CallGrid.MAX_PICTURES], places kept, speakers first).
     */
    val pictures: List<String> = emptyList(),
    /** Browsers (PeerJS IDs) we let into the call, admitted while we route it. */
    val browsers: List<String> = emptyList(),
    val error: String? = null,
) {
    /** Our media goes straight to the only other participant: no relay in between. */
    val direct: Boolean get() = participants.size == 2 && participants.any { it.fingerprint == mediaPeer }

    /** What the call calls [fingerprint]: our name for a contact, else its first 8 characters. */
    fun nameOf(fingerprint: String): String = contactName(contacts, fingerprint)
}

/**
 * Our part in a group's call: join and leave, mute, camera, screen; the roster, our phase and who speaks
 * from [GroupEvent]s ([onGroupEvent]) and from them the grid of pictures ([CallGrid]), the
 * others' frames counted per sender and handed to [media] to play (a picture waiting for a
 * keyframe asks its sender), and [media]'s encoded frames pushed into the call (audio with its
 * level, by which the router tells who speaks). While [powerSaver] is on, joining with video starts with the
 * camera off (the call keeps our video, so [setCameraOff] can turn it on). Pure Kotlin.
 */
class GroupCallViewModel(
    private val node: PeernsNodeInterface,
    val group: String,
    private val media: CallMedia? = null,
    private val powerSaver: StateFlow<Boolean> = BatterySaver.OFF,
) {
    private val mutableState = MutableStateFlow(GroupCallState())
    val state: StateFlow<GroupCallState> = mutableState.asStateFlow()

    /** The screen's battery saver notice, null while it is off. */
    val notice: Flow<String?> = BatterySaver.notice(powerSaver, BatterySaver.CALL)

    @Volatile
    private var call: GroupCall? = null

    /** Our fingerprint, never given a picture (null if the node cannot tell: then nobody is left out). */
    private val me: String? by lazy { runCatching { node.identity().fingerprint }.getOrNull() }

    /** Everyone who spoke in the call, the most recent first. */
    private var recent: List<String> = emptyList()

    /** How far our picture must be turned, announced with our media state. */
    @Volatile
    private var rotation = 0

    /** Where announcements the phone's turns cause run (they come on the media's threads). */
    private val background = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    /** One announcement at a time, so the last state is the one the router keeps. */
    private val announcing = Mutex()

    /** Frames received per sender; the state shows them at most every [FRAME_COUNTS_EVERY_NS]. */
    private val frameCounts = ConcurrentHashMap<String, Long>()

    @Volatile
    private var countsShownAt = 0L

    private val frames = object : GroupCallFrameListener {
        override fun onFrame(frame: GroupCallFrame) {
            // Counted here, shown once a second: a new state per frame (a hundred a second and
            // more) would redraw the call's screen as often.
            frameCounts.merge(frame.sender, 1L, Long::plus)
            val now = System.nanoTime()
            if (countsShownAt == 0L || now - countsShownAt >= FRAME_COUNTS_EVERY_NS) {
                countsShownAt = now
                mutableState.update { it.copy(frames = HashMap(frameCounts)) }
            }
            val shown = media?.play(frame.sender, frame.kind, frame.ptsUs.toLong(), frame.keyframe, frame.data) ?: true
            if (!shown) askForKeyframe(frame.sender, frame.kind)
        }
    }

    private val keyframesAsked = KeyframeAsks()

    /** Asks [sender] for a keyframe of its [kind], at most once a second per picture. */
    private fun askForKeyframe(sender: String, kind: String) {
        if (!keyframesAsked.mayAsk("$sender/$kind")) return
        try {
            call?.requestKeyframe(sender, kind)
        } catch (_: PeernsException) {
            // Not a sender of ours (any more): nothing to ask.
        } catch (_: IllegalStateException) {
            // Left meanwhile: the call object is closed.
        }
    }

    /** The join's encoder control: keyframes of the camera, and the bitrate of both pictures. */
    private val encoder = object : EncoderControlListener {
        override fun requestKeyframe() {
            media?.videoControl?.requestKeyframe()
        }

        override fun targetBitrate(bps: ULong) {
            mutableState.update { it.copy(targetBps = bps.toLong()) }
            // One of the two sends at a time (the camera pauses while the screen is shared).
            media?.videoControl?.targetBitrate(bps)
            media?.screenControl?.targetBitrate(bps)
        }
    }

    /**
     * Keyframes of the shared screen, asked apart from the camera's (`GroupCall.setScreenEncoder`):
     * a subscriber that lost the screen's picture no longer makes the camera send a keyframe.
     */
    private val screenEncoder = object : EncoderControlListener {
        override fun requestKeyframe() {
            media?.screenControl?.requestKeyframe()
        }

        override fun targetBitrate(bps: ULong) = Unit
    }

    /** Our encoded frames, into the call (none is sent while not joined). */
    private val out = FrameOut { kind, ptsUs, keyframe, data, audioLevel ->
        try {
            call?.pushFrame(kind, ptsUs.toULong(), keyframe, data, audioLevelByte(audioLevel))
        } catch (_: IllegalStateException) {
            // Left meanwhile: the call object is closed, the frame has nowhere to go.
        }
    }

    /** Reads the roster the node knows now (before any event arrived). */
    suspend fun refresh() = guard {
        val roster = node.groupCallParticipants(group)
        val contacts = node.contacts()
        mutableState.update { regrid(it.copy(participants = roster, contacts = contacts, error = null)) }
    }

    /**
     * Joins the call sending audio, and video when [video] (the camera off at first under battery
     * saver), then able to share the screen too.
     */
    suspend fun join(video: Boolean) = guard {
        call?.stop()
        media?.stopScreen()
        call = node.groupCallJoin(group, CallKinds(audio = true, video = video, screen = video), frames, encoder).also {
            it.setScreenEncoder(screenEncoder)
        }
        val cameraOff = !video || powerSaver.value
        mutableState.update { it.copy(cameraOff = cameraOff, sendsScreen = video, screen = false, error = null) }
        media?.setMuted(mutableState.value.muted)
        media?.start(if (cameraOff) null else FRONT, out)
        if (video) {
            media?.setRotationListener { degrees ->
                rotation = degrees
                background.launch { guard { announce() } }
            }
        }
        announce()
    }

    /**
     * Lets the browser with PeerJS ID [peerId] into the call while we route it (admins only; it
     * calls our persistent ID as the PeerNS PWA does). The core refuses a non-admin or a bad ID.
     */
    suspend fun allowBrowser(peerId: String) = guard {
        val id = peerId.trim()
        node.allowGroupCallGuest(group, id)
        mutableState.update { s -> s.copy(browsers = (s.browsers + id).distinct(), error = null) }
    }

    /** Leaves the call. */
    suspend fun leave() = guard {
        // Under the share's lock, and a system's stop of the share already under way is ended:
        // no camera resumes after this.
        shareLock.withLock {
            shareId++
            media?.setRotationListener(null)
            background.coroutineContext.cancelChildren()
            rotation = 0
            media?.stop()
            mutableState.update { it.copy(sendsScreen = false, screen = false) }
            val left = call
            call = null
            left?.stop()
            left?.close()
            node.groupCallLeave(group)
            recent = emptyList()
            keyframesAsked.clear()
            frameCounts.clear()
            countsShownAt = 0L
            mutableState.update {
                it.copy(frames = emptyMap(), targetBps = 0, speaking = emptyList(), pictures = emptyList())
            }
        }
    }

    suspend fun setMuted(muted: Boolean) = guard {
        mutableState.update { it.copy(muted = muted) }
        media?.setMuted(muted)
        announce()
    }

    suspend fun setCameraOff(off: Boolean) = guard {
        // Under the share's lock: a share the system stops meanwhile resumes the camera as set.
        shareLock.withLock {
            mutableState.update { it.copy(cameraOff = off) }
            // While the screen is shared the camera waits for the share's end.
            if (call != null && !mutableState.value.screen) media?.setCamera(if (off) null else FRONT)
            announce()
        }
    }

    /** One share change at a time: the user's and the system's may cross. */
    private val shareLock = Mutex()

    /** Counts shares: the system's stop of an earlier one (or of one leaving ended) ends nothing. */
    @Volatile
    private var shareId = 0

    /**
     * Shares our screen in the call, through the capture the user just allowed
     * ([CallMedia.startScreen]), or no longer; it also ends when the user stops it from the
     * system's controls, and as we leave. Everyone's grid shows it in our picture, and our camera
     * pauses meanwhile. A share that fails to start leaves nothing running.
     */
    suspend fun shareScreen(on: Boolean): Boolean = guard { shareLock.withLock { if (on) startSharing() else stopSharing() } }

    private suspend fun startSharing() {
        val media = media ?: throw IllegalArgumentException("this phone cannot share its screen")
        // A second consent while one share runs: this one is not used (the caller gives it back).
        require(!mutableState.value.screen) { "the screen is shared already" }
        require(call != null && mutableState.value.sendsScreen) { "join the call with video to share the screen" }
        val id = ++shareId
        val started = media.startScreen { background.launch { systemStopped(id) } }
        require(started) { "the screen capture was not allowed" }
        if (!mutableState.value.cameraOff) media.setCamera(null)
        mutableState.update { it.copy(screen = true) }
        try {
            announce()
        } catch (e: PeernsException) {
            media.stopScreen()
            mutableState.update { it.copy(screen = false) }
            if (call != null && !mutableState.value.cameraOff) media.setCamera(FRONT)
            throw e
        }
    }

    /** The share [id] ended from the system's controls (if it is still the one on). */
    private suspend fun systemStopped(id: Int) = guard { shareLock.withLock { if (id == shareId) stopSharing() } }

    private suspend fun stopSharing() {
        if (!mutableState.value.screen) return
        media?.stopScreen()
        mutableState.update { it.copy(screen = false) }
        // Not once we left (the call is gone): the camera stays closed.
        if (call != null && !mutableState.value.cameraOff) media?.setCamera(FRONT)
        announce()
    }

    /** Applies the call's roster, our phase and who speaks (and so the grid); events of other groups are ignored. */
    fun onGroupEvent(event: GroupEvent) {
        when (event) {
            is GroupEvent.CallRoster -> if (event.group == group) {
                mutableState.update { regrid(it.copy(participants = event.participants)) }
                // Each picture turned as its sender says.
                event.participants.filter { it.fingerprint != me }.forEach { media?.setRotation(it.fingerprint, it.media.rotation.toInt()) }
            }
            is GroupEvent.CallPhase ->
                if (event.group == group) mutableState.update { regrid(it.copy(phase = event.phase, mediaPeer = event.mediaPeer)) }
            is GroupEvent.CallSpeakers -> if (event.group == group) {
                synchronized(this) { recent = CallGrid.spoke(recent, event.speaking) }
                mutableState.update { regrid(it.copy(speaking = event.speaking)) }
            }
            else -> {}
        }
    }

    /** [s] with its grid brought up to date with its roster and speakers (none while we are out of the call). */
    private fun regrid(s: GroupCallState): GroupCallState {
        if (s.phase == GroupCallPhase.OUT) return s.copy(pictures = emptyList())
        val recentNow = synchronized(this) { recent }
        return s.copy(pictures = CallGrid.next(s.pictures, s.participants, me, s.speaking, recentNow))
    }

    private suspend fun announce() = announcing.withLock {
        // Read under the lock: whichever announcement comes last sends the latest state.
        val s = mutableState.value
        node.groupCallSetMedia(
            group,
            CallMediaState(muted = s.muted, cameraOff = s.cameraOff, screen = s.screen, backCamera = false, rotation = rotation.toUShort()),
        )
    }

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)

    private companion object {
        /** A group call shows the people in it: the front camera. */
        const val FRONT = "user"

        /** How often the frame counts reach the state. */
        const val FRAME_COUNTS_EVERY_NS = 1_000_000_000L
    }
}
