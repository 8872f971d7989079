package org.peerns.android.media

import android.content.Context
import android.hardware.display.DisplayManager
import android.hardware.display.VirtualDisplay
import android.media.projection.MediaProjection
import android.util.Size
import android.view.Display
import android.view.Surface
import kotlin.math.floor
import kotlin.math.max
import kotlin.math.sqrt

/**
 * The screen, encoded: a MediaProjection's virtual display mirrors the phone's screen into a
 * [SurfaceH264] encoder in its screen mode (the whole panel as it is turned, scaled to
 * [sizeFor]; at most [FPS] frames a second; a still picture sent again), whose access units go
 * to [sink]. A phone turned during the share gets a new encoder of the turned shape (its first
 * picture a keyframe with the new size), and the mirror is resized onto it. The projection comes from the user's consent in the system's capture
 * dialog, which the activity asks for; the app's foreground service must hold the
 * mediaProjection type before the projection is taken (`PeernsService.setScreenShared`), and
 * each consent serves one share. [control] takes the core's keyframe requests and bitrate.
 * Android 10+; everything runs on a thread of its own.
 */
class ScreenEncoder(context: Context, private val sink: EncodedFrameSink, private val onError: (String) -> Unit) :
    EncoderThread("peerns-screen-encoder") {
    private val appContext = context.applicationContext
    private var display: VirtualDisplay? = null
    private var projection: MediaProjection? = null
    private var stopped: MediaProjection.Callback? = null

    // The size last asked of an encoder (the running one's, or one that failed to start; an
    // encoder may take a smaller one): a display change to the same shape asks nothing again.
    private var asked: Size? = null
    private val displays = appContext.getSystemService(DisplayManager::class.java)
    private val turns = object : DisplayManager.DisplayListener {
        override fun onDisplayAdded(displayId: Int) = Unit

        override fun onDisplayRemoved(displayId: Int) = Unit

        override fun onDisplayChanged(displayId: Int) {
            if (displayId == Display.DEFAULT_DISPLAY) refit()
        }
    }

    /** The core's requests for this encoder. */
    val control = EncoderControl(this, MIN_BPS, MAX_BPS)

    /**
     * Shares the screen through [projection] (replacing a share running); [onStopped] runs, on
     * the encoder's thread (the caller's for a released encoder), when the share ends other than
     * by [stop]: the user stopped it from
     * the system's controls, or it could not start (said through onError, as is a released
     * encoder's start).
     */
    fun start(projection: MediaProjection, onStopped: () -> Unit) {
        val posted = handler.post {
            stopNow()
            try {
                open(projection, onStopped)
            } catch (e: Exception) {
                stopNow()
                onError("screen: ${e.message ?: e}")
                onStopped()
            }
        }
        if (!posted) {
            // Released: the consent is given back at once.
            projection.stop()
            onError("screen: the call's media has stopped")
            onStopped()
        }
    }

    private fun open(projection: MediaProjection, onStopped: () -> Unit) {
        this.projection = projection
        // Registered before the display is made (Android 14 refuses it otherwise); a projection
        // stopped by us is no longer ours when this runs, so only the system's stop is told.
        val callback = object : MediaProjection.Callback() {
            override fun onStop() {
                if (this@ScreenEncoder.projection !== projection) return
                stopNow()
                onStopped()
            }
        }
        stopped = callback
        projection.registerCallback(callback, handler)
        val (width, height) = panel()
        val size = sizeFor(width, height)
        val encoder = SurfaceH264.start(size, control.targetBps ?: START_BPS, FPS, handler, sink, onError, screen = true)
        useCodec(encoder)
        asked = size
        displays?.registerDisplayListener(turns, handler)
        display = projection.createVirtualDisplay(
            "peerns-screen",
            encoder.size.width,
            encoder.size.height,
            appContext.resources.displayMetrics.densityDpi,
            DisplayManager.VIRTUAL_DISPLAY_FLAG_AUTO_MIRROR,
            encoder.surface,
            null,
            handler,
        )
    }

    /**
     * The panel changed (the phone was turned): while sharing, a size of another shape gets a
     * new encoder, and the mirror (one per projection, so resized, not made again) draws into
     * it; the old encoder is released after. A new encoder that cannot start leaves the old one
     * (said through onError, and not tried again until the shape changes again).
     */
    private fun refit() {
        val mirror = display ?: return
        val (width, height) = panel()
        val size = sizeFor(width, height)
        if (size == asked) return
        // Tried once per shape: one that fails is not tried again at every display change.
        asked = size
        val encoder = try {
            SurfaceH264.start(size, control.targetBps ?: START_BPS, FPS, handler, sink, onError, screen = true)
        } catch (e: Exception) {
            onError("screen: ${e.message ?: e}")
            return
        }
        // Detached first: no picture of the new size reaches the old encoder's surface.
        mirror.surface = null
        mirror.resize(encoder.size.width, encoder.size.height, appContext.resources.displayMetrics.densityDpi)
        mirror.surface = encoder.surface
        useCodec(encoder)?.release()
    }

    /** The whole panel's size (system bars included) as the screen is turned now. */
    private fun panel(): Pair<Int, Int> {
        val screen = appContext.getSystemService(DisplayManager::class.java)?.getDisplay(Display.DEFAULT_DISPLAY)
            ?: return appContext.resources.displayMetrics.let { it.widthPixels to it.heightPixels }
        val mode = screen.mode
        val turned = screen.rotation == Surface.ROTATION_90 || screen.rotation == Surface.ROTATION_270
        return if (turned) mode.physicalHeight to mode.physicalWidth else mode.physicalWidth to mode.physicalHeight
    }

    override fun stopNow() {
        displays?.unregisterDisplayListener(turns)
        display?.release()
        display = null
        asked = null
        releaseCodec()
        // Ours no longer before it stops: its onStop is then not taken for the user's.
        val ending = projection ?: return
        projection = null
        stopped?.let(ending::unregisterCallback)
        stopped = null
        ending.stop()
    }

    companion object {
        const val MAX_SIDE = 1280
        const val FPS = 15
        const val START_BPS = 1_000_000
        const val MIN_BPS = 150_000
        const val MAX_BPS = 2_500_000

        /** The most pixels a picture may have: H.264 level 3.1's 3,600 macroblocks (1280×720). */
        const val MAX_PIXELS = 3_600 * 256

        /**
         * The encoded picture's size for a [width]×[height] screen: scaled down (never up) to at
         * most [MAX_SIDE] on the long side and [MAX_PIXELS] in all (the encoder is set to level
         * 3.1), each side a multiple of 16 (what every H.264 encoder takes; the mirror is fitted
         * into it), rounded down. An encoder that takes less gets less ([SurfaceH264.start]).
         */
        fun sizeFor(width: Int, height: Int): Size {
            val w = max(width, 1)
            val h = max(height, 1)
            val scale = minOf(1.0, MAX_SIDE.toDouble() / max(w, h), sqrt(MAX_PIXELS.toDouble() / (w.toDouble() * h)))
            val side = { s: Int -> max(16, floor(s * scale / 16).toInt() * 16) }
            return Size(side(w), side(h))
        }
    }
}
