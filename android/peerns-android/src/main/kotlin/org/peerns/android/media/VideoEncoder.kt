package org.peerns.android.media

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.hardware.camera2.CameraCaptureSession
import android.hardware.camera2.CameraCharacteristics
import android.hardware.camera2.CameraDevice
import android.hardware.camera2.CameraManager
import android.hardware.camera2.params.OutputConfiguration
import android.hardware.camera2.params.SessionConfiguration
import android.media.MediaCodec
import android.media.MediaCodecInfo.CodecProfileLevel
import android.media.MediaCodecInfo.EncoderCapabilities
import android.media.MediaFormat
import android.os.Bundle
import android.os.Handler
import android.os.HandlerThread
import android.os.Looper
import android.util.Size
import android.view.Surface
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executor
import java.util.concurrent.TimeUnit
import kotlin.math.abs
import org.peerns.media.AccessUnitAssembler

/**
 * The camera, encoded: a Camera2 capture session draws into the input surface of a MediaCodec
 * H.264 encoder (constrained baseline where the encoder has it, else baseline; CBR where
 * supported, else VBR; a keyframe every [KEYFRAME_INTERVAL_S] s), whose output goes to [sink] as
 * Annex-B access units with SPS/PPS before every keyframe. [control] takes the core's keyframe
 * requests and target bitrate. A [setPreview] surface shows the same picture to us (the
 * camera draws into both); a preview the camera refuses is left out, the encoder goes on. Android
 * 9+ and the CAMERA permission; everything runs on a thread of its own. The picture is sent as
 * the sensor gives it (not turned): [onCamera] says how the sensor is mounted, from which the
 * call tells the receiver how far to turn it (`VideoRotation`).
 */
class VideoEncoder(context: Context, private val sink: EncodedFrameSink, private val onError: (String) -> Unit) : CodecParameters {
    private val appContext = context.applicationContext
    private val cameras = appContext.getSystemService(CameraManager::class.java)
    private val thread = HandlerThread("peerns-video-encoder").apply { start() }
    private val handler = Handler(thread.looper)

    // Once the thread has ended, a late callback runs where it comes from (a camera that opens
    // after release must still be closed).
    private val executor = Executor { if (!handler.post(it)) it.run() }
    private val lock = Any()
    private var codec: MediaCodec? = null
    private var surface: Surface? = null
    private var camera: CameraDevice? = null
    private var session: CameraCaptureSession? = null
    private var preview: Surface? = null

    // The latest capture session asked for: the callbacks of older ones are ignored.
    private var generation = 0

    /** The core's requests for this encoder. */
    val control = EncoderControl(this, MIN_BPS, MAX_BPS)

    /**
     * Told, on the encoder's thread, how the camera that opens is mounted: its sensor's
     * orientation and whether it faces the user (the picture's rotation follows from them).
     */
    @Volatile
    var onCamera: ((sensorOrientation: Int, front: Boolean) -> Unit)? = null

    /** Starts the [facing] camera (`user`: front, `environment`: back), replacing one running. */
    fun start(facing: String) {
        handler.post {
            stopNow()
            try {
                open(facing)
            } catch (e: Exception) {
                stopNow()
                onError("camera: ${e.message ?: e}")
            }
        }
    }

    /**
     * Shows the camera's picture on [surface] too (a SurfaceView's: the camera rounds its size to
     * one it supports), or no longer (null); takes effect at once if the camera runs. Taking the
     * preview away returns once the camera's thread has closed the session that drew into it (at
     * most [PREVIEW_GONE_WAIT_MS]; Camera2 finishes closing it asynchronously, and a frame it
     * still sends to a destroyed surface is dropped with a buffer error): a destroyed surface
     * should not be drawn into after `SurfaceHolder.Callback.surfaceDestroyed` returns.
     */
    fun setPreview(surface: Surface?) {
        val done = CountDownLatch(1)
        val change = Runnable {
            try {
                if (preview === surface) return@Runnable
                preview = surface
                val device = camera ?: return@Runnable
                val input = this.surface ?: return@Runnable
                session?.close()
                session = null
                capture(device, input, surface)
            } finally {
                done.countDown()
            }
        }
        if (Looper.myLooper() == handler.looper) return change.run()
        // A released encoder's thread takes nothing: no camera draws anywhere then.
        if (!handler.post(change)) return
        if (surface == null) done.await(PREVIEW_GONE_WAIT_MS, TimeUnit.MILLISECONDS)
    }

    /** Stops the camera and the encoder (the thread stays for a later [start]). */
    fun stop() {
        handler.post(::stopNow)
    }

    /** Stops and ends the thread; this encoder cannot start again. */
    fun release() {
        handler.post(::stopNow)
        thread.quitSafely()
    }

    override fun setParameters(params: Bundle): Unit = synchronized(lock) {
        try {
            codec?.setParameters(params)
        } catch (_: IllegalStateException) {
            // The codec stopped between the core's request and now: nothing to change.
        }
    }

    private fun open(facing: String) {
        check(appContext.checkSelfPermission(Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) { "no camera permission" }
        val lens = if (facing == "user") CameraCharacteristics.LENS_FACING_FRONT else CameraCharacteristics.LENS_FACING_BACK
        val id = cameras.cameraIdList.firstOrNull { cameras.getCameraCharacteristics(it).get(CameraCharacteristics.LENS_FACING) == lens }
            ?: error("no $facing camera")
        val sensor = cameras.getCameraCharacteristics(id).get(CameraCharacteristics.SENSOR_ORIENTATION) ?: 0
        onCamera?.invoke(sensor, lens == CameraCharacteristics.LENS_FACING_FRONT)
        val sizes = cameras.getCameraCharacteristics(id).get(CameraCharacteristics.SCALER_STREAM_CONFIGURATION_MAP)
            ?.getOutputSizes(MediaCodec::class.java).orEmpty()
        val size = sizes.minByOrNull { abs(it.width * it.height - WIDTH * HEIGHT) } ?: Size(WIDTH, HEIGHT)
        val encoder = MediaCodec.createEncoderByType(MediaFormat.MIMETYPE_VIDEO_AVC)
        val input: Surface
        try {
            encoder.configure(format(encoder, size), null, null, MediaCodec.CONFIGURE_FLAG_ENCODE)
            input = encoder.createInputSurface()
            encoder.setCallback(Output(), handler)
            encoder.start()
        } catch (e: Exception) {
            encoder.release()
            throw e
        }
        synchronized(lock) { codec = encoder }
        surface = input
        cameras.openCamera(
            id,
            executor,
            object : CameraDevice.StateCallback() {
                override fun onOpened(device: CameraDevice) {
                    if (surface !== input) return device.close() // stopped meanwhile
                    camera = device
                    capture(device, input, preview)
                }

                // Another app took the camera, or the user blocked it: stopped, and said, so
                // that turning the camera on again starts afresh.
                override fun onDisconnected(device: CameraDevice) = lost(device, "the camera was taken away")

                override fun onError(device: CameraDevice, error: Int) = lost(device, "camera error $error")
            },
        )
    }

    /** [device] closed under us: everything stops (if it is still ours) and [message] is told. */
    private fun lost(device: CameraDevice, message: String) {
        device.close()
        if (camera !== device) return
        camera = null
        stopNow()
        onError(message)
    }

    /** The capture session into the encoder's [input] and, when given, [shown] (our preview). */
    private fun capture(device: CameraDevice, input: Surface, shown: Surface?) {
        val targets = listOfNotNull(input, shown)
        val asked = ++generation
        val current = { asked == generation && camera === device && surface === input }
        val config = SessionConfiguration(
            SessionConfiguration.SESSION_REGULAR,
            targets.map(::OutputConfiguration),
            executor,
            object : CameraCaptureSession.StateCallback() {
                override fun onConfigured(s: CameraCaptureSession) {
                    if (!current()) return s.close() // stopped, or another session asked for since
                    session = s
                    try {
                        val request = device.createCaptureRequest(CameraDevice.TEMPLATE_RECORD).apply {
                            targets.forEach(::addTarget)
                        }.build()
                        s.setRepeatingRequest(request, null, handler)
                    } catch (e: Exception) {
                        // The device closed meanwhile (CameraAccessException, IllegalStateException).
                        if (current()) onError("camera: ${e.message ?: e}")
                    }
                }

                override fun onConfigureFailed(s: CameraCaptureSession) {
                    if (!current()) return
                    // The preview is a nicety: without it the picture is still sent.
                    if (shown != null) capture(device, input, null) else onError("the camera refused the encoder's surface")
                }
            },
        )
        try {
            device.createCaptureSession(config)
        } catch (e: Exception) {
            // The preview's surface went meanwhile (a closed SurfaceView), say: again without it.
            if (shown != null) capture(device, input, null) else onError("camera: ${e.message ?: e}")
        }
    }

    private fun format(encoder: MediaCodec, size: Size): MediaFormat {
        val caps = encoder.codecInfo.getCapabilitiesForType(MediaFormat.MIMETYPE_VIDEO_AVC)
        val constrained = caps.profileLevels.any { it.profile == CodecProfileLevel.AVCProfileConstrainedBaseline }
        val cbr = caps.encoderCapabilities?.isBitrateModeSupported(EncoderCapabilities.BITRATE_MODE_CBR) == true
        return MediaFormat.createVideoFormat(MediaFormat.MIMETYPE_VIDEO_AVC, size.width, size.height).apply {
            setInteger(MediaFormat.KEY_COLOR_FORMAT, android.media.MediaCodecInfo.CodecCapabilities.COLOR_FormatSurface)
            setInteger(MediaFormat.KEY_BIT_RATE, control.targetBps ?: START_BPS)
            setInteger(MediaFormat.KEY_FRAME_RATE, FPS)
            setInteger(MediaFormat.KEY_I_FRAME_INTERVAL, KEYFRAME_INTERVAL_S)
            setInteger(
                MediaFormat.KEY_PROFILE,
                if (constrained) CodecProfileLevel.AVCProfileConstrainedBaseline else CodecProfileLevel.AVCProfileBaseline,
            )
            setInteger(MediaFormat.KEY_LEVEL, CodecProfileLevel.AVCLevel31)
            setInteger(
                MediaFormat.KEY_BITRATE_MODE,
                if (cbr) EncoderCapabilities.BITRATE_MODE_CBR else EncoderCapabilities.BITRATE_MODE_VBR,
            )
        }
    }

    /** The encoder's output, on the encoder's thread. */
    private inner class Output : MediaCodec.Callback() {
        private val assembler = AccessUnitAssembler()

        override fun onOutputBufferAvailable(codec: MediaCodec, index: Int, info: MediaCodec.BufferInfo) {
            val buffer = codec.getOutputBuffer(index)
            if (buffer != null && info.size > 0) {
                val data = ByteArray(info.size)
                buffer.position(info.offset)
                buffer.get(data)
                val config = info.flags and MediaCodec.BUFFER_FLAG_CODEC_CONFIG != 0
                val key = info.flags and MediaCodec.BUFFER_FLAG_KEY_FRAME != 0
                assembler.encoderOutput(data, config, key)?.let { sink.frame(info.presentationTimeUs, key || config, it) }
            }
            codec.releaseOutputBuffer(index, false)
        }

        override fun onInputBufferAvailable(codec: MediaCodec, index: Int) = Unit // Surface input

        override fun onOutputFormatChanged(codec: MediaCodec, format: MediaFormat) = Unit

        override fun onError(codec: MediaCodec, e: MediaCodec.CodecException) = onError("video encoder: ${e.diagnosticInfo}")
    }

    private fun stopNow() {
        session?.close()
        session = null
        camera?.close()
        camera = null
        surface?.release()
        surface = null
        val c = synchronized(lock) { codec.also { codec = null } } ?: return
        try {
            c.stop()
        } catch (_: IllegalStateException) {
            // It failed already (reported through onError).
        }
        c.release()
    }

    companion object {
        /** How long taking the preview away waits for the camera's thread. */
        const val PREVIEW_GONE_WAIT_MS = 500L

        const val WIDTH = 640
        const val HEIGHT = 480
        const val FPS = 30
        const val KEYFRAME_INTERVAL_S = 2
        const val START_BPS = 600_000
        const val MIN_BPS = 100_000
        const val MAX_BPS = 2_000_000
    }
}
