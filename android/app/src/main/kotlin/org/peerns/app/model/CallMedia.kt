package org.peerns.app.model

import org.peerns.ffi.CallMediaSource
import org.peerns.ffi.EncoderControlListener

/**
 * Takes one encoded frame of ours: kind `audio` or `video`, pts in µs, keyframe flag, data, and
 * for audio the RFC 6464 level of the PCM it encodes (0 loudest … 127 silence; null for video or
 * when unknown), by which a group call's router tells who speaks.
 */
fun interface FrameOut {
    fun frame(kind: String, ptsUs: Long, keyframe: Boolean, data: ByteArray, audioLevel: Int?)
}

/** [level] as the library takes it: 0..127 (clamped), or null. */
fun audioLevelByte(level: Int?): UByte? = level?.coerceIn(0, 127)?.toUByte()

/**
 * The phone's side of a call's media, as the view models see it: the microphone and camera,
 * encoded, and the decoders of what arrives. `AndroidCallMedia` on a phone; the view models work
 * without one (the JVM tests), then nothing is captured or played.
 */
interface CallMedia {
    /** The core's requests for the video encoder (keyframe, target bitrate). */
    val videoControl: EncoderControlListener

    /**
     * Starts the microphone (unless not [microphone]: we send no sound) and the [camera] (`user`
     * or `environment`) unless null, into [out]; what arrives is played either way.
     */
    fun start(camera: String?, out: FrameOut, microphone: Boolean = true)

    /** Stops sending sound (the microphone stays measured). */
    fun setMuted(muted: Boolean)

    /** Switches the camera to [facing], or off (null). */
    fun setCamera(facing: String?)

    /**
     * Decodes and plays a frame of [from] (a participant or a remote track); false when the
     * picture it is for waits for a keyframe (its decoder started mid-stream, lost a frame or
     * failed): ask [from] for one.
     */
    fun play(from: String, kind: String, ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean

    /** Stops capturing and playing. */
    fun stop()

    /** The core's requests for the screen's encoder. */
    val screenControl: EncoderControlListener get() = NoEncoderControl

    /**
     * Starts sending our screen as `screen` frames into the out given to [start], through the
     * capture the user allowed (on a phone, in the system's dialog just before); false when there
     * is none. [onStopped] runs, on another thread, when the share ends other than by
     * [stopScreen]: the user stopped it from the system's controls, or it failed.
     */
    fun startScreen(onStopped: () -> Unit): Boolean = false

    /** Stops sending our screen. */
    fun stopScreen() = Unit

    /**
     * Tells [listener] how far our picture must be turned to stand upright (0, 90, 180 or 270),
     * when the camera starts and whenever the phone turns; null: no longer.
     */
    fun setRotationListener(listener: ((degrees: Int) -> Unit)?) = Unit

    /** Shows the video of [from] (a participant or a remote track) turned by [degrees], as its sender says. */
    fun setRotation(from: String, degrees: Int) = Unit

    /**
     * A 1:1 call's peer shares its screen, or no longer: its one picture shows the screen while
     * it does, else its camera ([RemotePicture]).
     */
    fun setRemoteScreen(shared: Boolean) = Unit
}

/**
 * Spaces the keyframe requests of pictures that wait for one: at most one a second per picture
 * (the sender's next keyframe comes within 2 s anyway, and the router spaces them too).
 */
class KeyframeAsks {
    private val last = HashMap<String, Long>()

    /** Whether [picture] may ask now (`System.nanoTime` [now]); if so, it is noted as asking. */
    fun mayAsk(picture: String, now: Long = System.nanoTime()): Boolean = synchronized(last) {
        val before = last[picture]
        if (before != null && now - before < INTERVAL_NS) return false
        last[picture] = now
        true
    }

    /** Forgets every picture (the call's media stopped). */
    fun clear() = synchronized(last) { last.clear() }

    private companion object {
        const val INTERVAL_NS = 1_000_000_000L
    }
}

/** Audio needs no encoder control: every Opus packet stands alone, the bitrate is fixed. */
object NoEncoderControl : EncoderControlListener {
    override fun requestKeyframe() = Unit

    override fun targetBitrate(bps: ULong) = Unit
}

/**
 * A call's local tracks by kind: [out] pushes our encoded frames into the track of their kind
 * (none while there is none). Frames come on the encoders' threads.
 */
class CallSources {
    @Volatile
    private var sources: Map<String, CallMediaSource> = emptyMap()

    /** Our encoded frames, each into the track of its kind. */
    val out = FrameOut { kind, ptsUs, keyframe, data, audioLevel ->
        try {
            sources[kind]?.pushFrame(ptsUs.toULong(), keyframe, data, audioLevelByte(audioLevel))
        } catch (_: IllegalStateException) {
            // Closed meanwhile: the frame has nowhere to go.
        }
    }

    /** Whether frames go anywhere now. */
    val isEmpty: Boolean get() = sources.isEmpty()

    /** Whether we send [kind] now. */
    operator fun contains(kind: String): Boolean = kind in sources

    /** Sends into [tracks] (by kind) from now on. */
    @Synchronized
    fun set(tracks: Map<String, CallMediaSource>) {
        sources = tracks
    }

    /** Sends [kind]'s frames into [track] too, from now on. */
    @Synchronized
    fun add(kind: String, track: CallMediaSource) {
        sources = sources + (kind to track)
    }

    /** Sends no more [kind] frames: its track is closed. */
    fun remove(kind: String) {
        val track = synchronized(this) { sources[kind]?.also { sources = sources - kind } }
        track?.close()
    }

    /** Closes every track: no frame goes anywhere any more. */
    fun close() {
        val closing = synchronized(this) { sources.values.also { sources = emptyMap() } }
        closing.forEach { it.close() }
    }
}
