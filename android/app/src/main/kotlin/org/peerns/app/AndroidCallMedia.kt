package org.peerns.app

import android.content.Context
import android.media.projection.MediaProjection
import android.os.Build
import android.os.Handler
import android.os.HandlerThread
import android.os.Looper
import android.view.Gravity
import android.view.OrientationEventListener
import android.view.Surface
import android.view.SurfaceHolder
import android.view.SurfaceView
import android.view.View
import android.widget.LinearLayout
import android.widget.Toast
import org.peerns.android.media.AudioDecoder
import org.peerns.android.media.AudioEncoder
import org.peerns.android.media.FrameDecoder
import org.peerns.android.media.ScreenEncoder
import org.peerns.android.media.VideoDecoder
import org.peerns.android.media.VideoEncoder
import org.peerns.app.model.CallMedia
import org.peerns.app.model.FrameOut
import org.peerns.app.model.RemotePicture
import org.peerns.app.model.SoundLevels
import org.peerns.ffi.EncoderControlListener
import org.peerns.media.VideoRotation

/**
 * [CallMedia] on the phone (Android 10+: the Opus codec): the media adapters of
 * `org.peerns.android.media`. Everyone's sound is played (each sender through a track of its
 * own, mixed by the system); a group call's pictures each on the surface given for their sender
 * and kind ([setPicture]), a 1:1 call's on [remoteSurface] (the peer's camera, or its screen while
 * shared). Our screen is shared through the [screenProjection] the activity obtained. [close] when
 * the screen goes.
 */
class AndroidCallMedia(context: Context, private val onError: (String) -> Unit) : CallMedia {
    @Volatile
    private var out: FrameOut? = null
    private val video = VideoEncoder(context, { pts, key, data -> out?.frame("video", pts, key, data, null) }, onError)

    private val screen = ScreenEncoder(context, { pts, key, data -> out?.frame("screen", pts, key, data, null) }, onError)

    /** The screen capture the user allowed (the system's dialog), for the next [startScreen]. */
    @Volatile
    var screenProjection: MediaProjection? = null

    // Each Opus packet with the level of the PCM it encodes (nothing is sent while muted).
    private val audio = AudioEncoder(context, { pts, data, level -> out?.frame("audio", pts, true, data, level) }, {}, onError)

    // Where the decoders draw and play what they decode, as soon as it is out.
    private val decoding = HandlerThread("peerns-decoders").apply { start() }
    private val decoded = Handler(decoding.looper)

    // Keyed "sender/kind"; pictures too.
    private val decoders = HashMap<String, FrameDecoder>()
    private val pictures = HashMap<String, Picture>()

    // Which of a 1:1 call's peer's tracks its picture shows.
    private val remote = RemotePicture()

    // How far each sender's video is turned, as it says (keyed by sender).
    private val rotations = HashMap<String, Int>()

    // Our picture's rotation: the open camera's mounting and the phone's turn.
    @Volatile
    private var rotationListener: ((Int) -> Unit)? = null

    @Volatile
    private var camera: Pair<Int, Boolean>? = null

    @Volatile
    private var deviceDegrees = 0

    @Volatile
    private var announced: Int? = null
    private val orientation = object : OrientationEventListener(context) {
        override fun onOrientationChanged(degrees: Int) {
            deviceDegrees = VideoRotation.deviceDegrees(degrees, deviceDegrees) ?: return
            announceRotation()
        }
    }

    init {
        video.onCamera = { sensor, front ->
            camera = sensor to front
            announceRotation()
        }
    }

    /**
     * Where the received video of a 1:1 call is drawn (a SurfaceView's surface), or null while
     * there is none, with who hears the picture's size as drawn (on the decoder's thread).
     */
    var remoteSurface: Picture? = null
        set(value) = synchronized(decoders) {
            field = value
            remote.shown?.let(::dropOneOnOne)
        }

    /** Where our own camera's picture is shown (a SurfaceView's surface), or null while nowhere. */
    var localSurface: Surface? = null
        set(value) {
            field = value
            video.setPreview(value)
        }

    /**
     * Draws [sender]'s [kind] (`video` or `screen`) on [picture] (a grid picture's), or no
     * longer (null). Its decoder starts again at the sender's next keyframe.
     */
    fun setPicture(sender: String, kind: String, picture: Picture?) = synchronized(decoders) {
        val key = "$sender/$kind"
        decoders.remove(key)?.release()
        if (picture == null) pictures.remove(key) else pictures[key] = picture
    }

    override val videoControl: EncoderControlListener get() = video.control

    override val screenControl: EncoderControlListener get() = screen.control

    override fun startScreen(onStopped: () -> Unit): Boolean {
        val projection = screenProjection ?: return false
        screenProjection = null
        screen.start(projection, onStopped)
        return true
    }

    override fun stopScreen() = screen.stop()

    /** Gives back a screen capture allowed but not used. */
    fun dropScreenCapture() {
        screenProjection?.stop()
        screenProjection = null
    }

    override fun start(camera: String?, out: FrameOut, microphone: Boolean) {
        this.out = out
        if (microphone) audio.start()
        setCamera(camera)
    }

    override fun setMuted(muted: Boolean) {
        audio.muted = muted
    }

    override fun setCamera(facing: String?) {
        if (facing == null) {
            video.stop()
            orientation.disable()
        } else {
            video.start(facing)
            if (orientation.canDetectOrientation()) orientation.enable()
        }
    }

    override fun setRotationListener(listener: ((degrees: Int) -> Unit)?) {
        rotationListener = listener
        announced = null
        announceRotation()
    }

    /** Tells the listener our picture's rotation when it changed (the camera opened, the phone turned). */
    private fun announceRotation() {
        val (sensor, front) = camera ?: return
        val degrees = VideoRotation.of(sensor, deviceDegrees, front)
        if (degrees == announced) return
        val listener = rotationListener ?: return
        announced = degrees
        listener(degrees)
    }

    override fun setRemoteScreen(shared: Boolean) = synchronized(decoders) {
        // A screen no longer shared gives the surface back: the camera's decoder starts at its
        // next keyframe (asked for when its first frame is not one).
        remote.screenShared(shared)?.let(::dropOneOnOne)
        Unit
    }

    override fun setRotation(from: String, degrees: Int) = synchronized(decoders) {
        if ((rotations[from] ?: 0) == degrees) return@synchronized
        rotations[from] = degrees
        // The decoder turns what it draws from its start: a new one at the sender's next keyframe.
        decoders.remove("$from/video")?.release()
        Unit
    }

    /**
     * Plays one frame; false when a picture needs a keyframe (not started yet, or a frame was
     * lost). A decoder that fails (a device's codec refusing, too many decoders at once) is
     * released and made again at the next frame (a picture's at the next keyframe, asked for):
     * the error never reaches the delivery thread.
     */
    override fun play(from: String, kind: String, ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean {
        synchronized(decoders) {
            // Closed: frames still on their way are not played (no decoder is made again).
            if (closed) return true
            val key = "$from/$kind"
            return try {
                if (kind == "audio") {
                    decoders.getOrPut(key) { AudioDecoder(decoded) }.frame(ptsUs, keyframe, data)
                    true
                } else {
                    val picture = pictures[key] ?: oneOnOne(from, kind) ?: return true
                    val rotation = if (kind == "video") rotations[from] ?: 0 else 0
                    decoders.getOrPut(key) { VideoDecoder(picture.surface, decoded, rotation, picture.onSize) }.frame(ptsUs, keyframe, data)
                }
            } catch (e: Exception) {
                decoders.remove(key)?.let { runCatching(it::release) }
                onDecoderError(key, e)
                false
            }
        }
    }

    /** The 1:1 call's picture, if it shows [from]'s video now ([RemotePicture]). */
    private fun oneOnOne(from: String, kind: String): Picture? {
        val picture = remoteSurface ?: return null
        if (kind != "video") return null
        // The screen's first frame takes the picture from the camera, whose decoder goes.
        return picture.takeIf { remote.shows(from, ::dropOneOnOne) }
    }

    /** Releases the decoder of the 1:1 call's [track] (under the lock): the picture no longer shows it. */
    private fun dropOneOnOne(track: String) {
        decoders.remove("$track/video")?.release()
    }

    // A failing decoder is said once per sender and kind (it would fail at every frame).
    private val failed = HashSet<String>()

    private fun onDecoderError(key: String, e: Exception) {
        if (failed.add(key)) onError("decoder: ${e.message ?: e}")
    }

    override fun stop() {
        out = null
        rotationListener = null
        orientation.disable()
        video.stop()
        screen.stop()
        dropScreenCapture()
        audio.stop()
        synchronized(decoders) {
            decoders.values.forEach(FrameDecoder::release)
            decoders.clear()
            rotations.clear()
            failed.clear()
            remote.clear()
        }
    }

    // Closed for good (the screen went).
    private var closed = false

    /** Stops, and ends the encoder's and the decoders' threads. */
    fun close() {
        synchronized(decoders) { closed = true }
        stop()
        video.release()
        screen.release()
        decoding.quitSafely()
    }

    companion object {
        /** The call media on Android 10+ (the first with an Opus codec), else null; errors are toasted. */
        fun create(context: Context): AndroidCallMedia? =
            if (Build.VERSION.SDK_INT < Build.VERSION_CODES.Q) null else AndroidCallMedia(context, toaster(context))
    }
}

/**
 * The microphone's levels for the baby monitor ([SoundLevels]): an [AudioEncoder] that only
 * measures (muted, so no packet goes anywhere). Android 10+, like the encoder.
 */
class MicrophoneLevels private constructor(private val context: Context) : SoundLevels {
    private var encoder: AudioEncoder? = null

    override fun start(onLevel: (Float) -> Unit) {
        stop()
        encoder = AudioEncoder(context, { _, _, _ -> }, onLevel, toaster(context)).apply {
            muted = true
            start()
        }
    }

    override fun stop() {
        encoder?.stop()
        encoder = null
    }

    companion object {
        fun create(context: Context): MicrophoneLevels? =
            if (Build.VERSION.SDK_INT < Build.VERSION_CODES.Q) null else MicrophoneLevels(context)
    }
}

/** Shows a media adapter's error (reported on its own thread) as a toast. */
private fun toaster(context: Context): (String) -> Unit {
    val main = Handler(Looper.getMainLooper())
    return { message -> main.post { Toast.makeText(context, message, Toast.LENGTH_LONG).show() } }
}

/** Where a received picture is drawn: a surface, and who hears the picture's size (as drawn). */
class Picture(val surface: Surface, val onSize: ((width: Int, height: Int) -> Unit)? = null)

/** The view the received video is drawn on: a picture view whose surface [media] renders to (gone without media). */
fun remotePicture(host: Host, media: AndroidCallMedia?): PictureView = PictureView(host.context).apply {
    bind { media?.remoteSurface = it }
    layoutParams = LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, host.ui.dp(240)).apply {
        gravity = Gravity.CENTER_HORIZONTAL
    }
    visibility = if (media == null) View.GONE else View.VISIBLE
}

/**
 * The view our own camera is shown on (a small SurfaceView the camera draws into besides the
 * encoder); gone until the screen shows it while our camera is on.
 */
fun localPicture(host: Host, media: AndroidCallMedia?): SurfaceView = SurfaceView(host.context).apply {
    holder.addCallback(object : SurfaceHolder.Callback {
        override fun surfaceCreated(holder: SurfaceHolder) {
            media?.localSurface = holder.surface
        }

        override fun surfaceChanged(holder: SurfaceHolder, format: Int, width: Int, height: Int) = Unit

        override fun surfaceDestroyed(holder: SurfaceHolder) {
            media?.localSurface = null
        }
    })
    layoutParams = LinearLayout.LayoutParams(host.ui.dp(160), host.ui.dp(120))
    visibility = View.GONE
}
