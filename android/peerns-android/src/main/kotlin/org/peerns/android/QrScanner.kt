package org.peerns.android

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.graphics.ImageFormat
import android.hardware.camera2.CameraCaptureSession
import android.hardware.camera2.CameraCharacteristics
import android.hardware.camera2.CameraDevice
import android.hardware.camera2.CameraManager
import android.hardware.camera2.CaptureRequest
import android.hardware.camera2.params.OutputConfiguration
import android.hardware.camera2.params.SessionConfiguration
import android.media.ImageReader
import android.os.Build
import android.os.Handler
import android.os.HandlerThread
import android.os.Looper
import android.os.SystemClock
import android.util.Size
import android.view.Surface
import java.util.concurrent.Executor
import kotlin.math.abs
import org.peerns.qr.QrFrames

/**
 * Reads a PeerNS link (a share or invite link) from the back camera: a Camera2 session draws into
 * an [ImageReader] (YUV_420_888, [frameSize]) and, if given, a preview surface; a few frames a
 * second, the Y plane of the newest frame goes to [QrFrames.firstLink] (the core's `qrDecode`).
 * The first link found goes to [onLink] on the main thread, once, and the camera stops. Needs
 * the CAMERA permission; the camera runs on a thread of its own. [stop] when the screen goes.
 */
class QrScanner(context: Context, private val onLink: (String) -> Unit, private val onError: (String) -> Unit) {
    private val appContext = context.applicationContext
    private val cameras = appContext.getSystemService(CameraManager::class.java)
    private val main = Handler(Looper.getMainLooper())
    private val thread = HandlerThread("peerns-qr-scanner").apply { start() }
    private val handler = Handler(thread.looper)
    private var camera: CameraDevice? = null
    private var session: CameraCaptureSession? = null
    private var reader: ImageReader? = null
    private var lastRead = 0L

    /** openCamera was called and has not called back yet (on the scanner's thread). */
    private var opening = false

    /** No frame is read any more (a link was found, or [stop]). */
    @Volatile
    private var stopped = false

    /** [stop] was called: nothing is reported any more. */
    @Volatile
    private var released = false

    /** The back camera (else the first one), or null when the phone has none. */
    private val cameraId: String? = try {
        cameras.cameraIdList.let { ids ->
            ids.firstOrNull {
                cameras.getCameraCharacteristics(it).get(CameraCharacteristics.LENS_FACING) ==
                    CameraCharacteristics.LENS_FACING_BACK
            }
                ?: ids.firstOrNull()
        }
    } catch (e: Exception) {
        null
    }

    /**
     * The size of the frames read, as the sensor gives them (landscape on most phones), the one
     * nearest [WIDTH] × [HEIGHT]; a preview surface should have it too. Null without a camera.
     */
    val frameSize: Size? = cameraId?.let { id ->
        try {
            cameras.getCameraCharacteristics(id).get(CameraCharacteristics.SCALER_STREAM_CONFIGURATION_MAP)
                ?.getOutputSizes(ImageFormat.YUV_420_888)
                ?.minByOrNull { abs(it.width * it.height - WIDTH * HEIGHT) + if (it.width * 3 == it.height * 4) 0 else WIDTH * HEIGHT }
        } catch (e: Exception) {
            null
        }
    }

    /** Opens the camera and starts reading; [preview] (of [frameSize]) shows what it sees. */
    fun start(preview: Surface?) {
        handler.post {
            try {
                open(preview)
            } catch (e: Exception) {
                opening = false
                close()
                report { onError("camera: ${e.message ?: e}") }
            }
        }
    }

    /** Stops the camera and ends the thread; this scanner cannot start again. */
    fun stop() {
        stopped = true
        released = true
        handler.post {
            close()
            // A camera still opening calls back on this thread: it ends the thread then.
            if (!opening) thread.quitSafely()
        }
    }

    private fun open(preview: Surface?) {
        check(appContext.checkSelfPermission(Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) { "no camera permission" }
        val id = cameraId ?: error("this phone has no camera")
        val size = frameSize ?: error("the camera gives no YUV frames")
        val images = ImageReader.newInstance(size.width, size.height, ImageFormat.YUV_420_888, 2)
        reader = images
        images.setOnImageAvailableListener(::read, handler)
        opening = true
        cameras.openCamera(
            id,
            object : CameraDevice.StateCallback() {
                override fun onOpened(device: CameraDevice) {
                    opening = false
                    if (stopped) return closed(device)
                    camera = device
                    capture(device, id, listOfNotNull(images.surface, preview))
                }

                override fun onDisconnected(device: CameraDevice) {
                    opening = false
                    closed(device)
                }

                override fun onError(device: CameraDevice, error: Int) {
                    opening = false
                    closed(device)
                    report { onError("camera error $error") }
                }
            },
            handler,
        )
    }

    /** Closes [device]; after [stop], ends the thread too. */
    private fun closed(device: CameraDevice) {
        device.close()
        if (camera === device) camera = null
        if (released) thread.quitSafely()
    }

    private fun capture(device: CameraDevice, id: String, targets: List<Surface>) {
        val autofocus = cameras.getCameraCharacteristics(id).get(CameraCharacteristics.CONTROL_AF_AVAILABLE_MODES)
            ?.contains(CaptureRequest.CONTROL_AF_MODE_CONTINUOUS_PICTURE) == true
        val callback = object : CameraCaptureSession.StateCallback() {
            override fun onConfigured(s: CameraCaptureSession) {
                if (stopped) return s.close()
                session = s
                val request = device.createCaptureRequest(CameraDevice.TEMPLATE_PREVIEW).apply {
                    targets.forEach { addTarget(it) }
                    if (autofocus) set(CaptureRequest.CONTROL_AF_MODE, CaptureRequest.CONTROL_AF_MODE_CONTINUOUS_PICTURE)
                }.build()
                s.setRepeatingRequest(request, null, handler)
            }

            override fun onConfigureFailed(s: CameraCaptureSession) = report { onError("the camera refused the scanner's surfaces") }
        }
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
            val executor = Executor { handler.post(it) }
            val outputs = targets.map { OutputConfiguration(it) }
            device.createCaptureSession(SessionConfiguration(SessionConfiguration.SESSION_REGULAR, outputs, executor, callback))
        } else {
            @Suppress("DEPRECATION")
            device.createCaptureSession(targets, callback, handler)
        }
    }

    /** A frame arrived (on the scanner's thread): every [INTERVAL_MS] ms, look for a link in its Y plane. */
    private fun read(images: ImageReader) {
        val image = images.acquireLatestImage() ?: return
        val link = try {
            val now = SystemClock.elapsedRealtime()
            if (stopped || now - lastRead < INTERVAL_MS) return
            lastRead = now
            val y = image.planes[0] // YUV_420_888: pixel stride 1
            QrFrames.firstLink(image.width, image.height, y.rowStride, y.buffer)
        } finally {
            image.close()
        }
        if (link != null && !stopped) {
            stopped = true
            close()
            report { onLink(link) }
        }
    }

    private fun close() {
        session?.close()
        session = null
        camera?.close()
        camera = null
        reader?.close()
        reader = null
    }

    private fun report(block: () -> Unit) {
        main.post { if (!released) block() }
    }

    companion object {
        /** The frame size looked for: enough pixels a module for a dense invite link at arm's length. */
        const val WIDTH = 1280
        const val HEIGHT = 960

        /** At most one frame read every this many ms (the core takes tens of ms a frame). */
        const val INTERVAL_MS = 250L
    }
}
