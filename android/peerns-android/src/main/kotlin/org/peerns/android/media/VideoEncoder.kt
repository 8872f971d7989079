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
import android.os.Looper
import android.util.Size
import android.view.Surface
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executor
import java.util.concurrent.TimeUnit
import kotlin.math.abs

/**
 * The camera, encoded: a Camera2 capture session draws into the input surface of a
 * [SurfaceH264] encoder, whose access units go to [sink]. [control] takes the core's keyframe
 * requests and target bitrate. A [setPreview] surface shows the same picture to us (the
 * camera draws into both); a preview the camera refuses is left out, the encoder goes on. Android
 * 9+ and the CAMERA permission; everything runs on a thread of its own. The picture is sent as
 * the sensor gives it (not turned): [onCamera] says how the sensor is mounted, from which the
 * call tells the receiver how far to turn it (`VideoRotation`).
 */
class VideoEncoder(context: Context, private val sink: EncodedFrameSink, private val onError: (String) -> Unit) :
    EncoderThread("peerns-video-encoder") {
    private val appContext = context.applicationContext
    private val cameras = appContext.getSystemService(CameraManager::class.java)

    // Once the thread has ended, a late callback runs where it comes from (a camera that opens
    // after release must still be closed).
    private val executor = Executor { if (!handler.post(it)) it.run() }
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
        val encoder = SurfaceH264.start(size, control.targetBps ?: START_BPS, FPS, handler, sink, onError)
        useCodec(encoder)
        val input = encoder.surface
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

    override fun stopNow() {
        session?.close()
        session = null
        camera?.close()
        camera = null
        surface = null
        releaseCodec()
    }

    companion object {
        /** How long taking the preview away waits for the camera's thread. */
        const val PREVIEW_GONE_WAIT_MS = 500L

        const val WIDTH = 640
        const val HEIGHT = 480
        const val FPS = 30
        const val START_BPS = 600_000
        const val MIN_BPS = 100_000
        const val MAX_BPS = 2_000_000
    }
}
