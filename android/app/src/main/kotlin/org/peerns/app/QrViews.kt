package org.peerns.app

import android.app.AlertDialog
import android.view.SurfaceHolder
import android.view.SurfaceView
import android.view.View
import android.widget.ImageView
import android.widget.LinearLayout
import android.widget.Toast
import org.peerns.android.QrBitmap
import org.peerns.android.QrScanner
import org.peerns.ffi.PeernsException

/** Shows [text] (a share or invite link) as a QR code at most [maxSide] pixels wide; null or empty hides it. */
fun ImageView.showQr(text: String?, maxSide: Int) {
    if (tag == text) return // drawn already: state updates repeat it
    tag = text
    val bitmap = text?.takeIf { it.isNotEmpty() }?.let {
        try {
            QrBitmap.of(it, maxSide)
        } catch (e: PeernsException) {
            null // longer than a QR code holds: the link is shown as text anyway
        }
    }
    setImageBitmap(bitmap)
    visibility = if (bitmap == null) View.GONE else View.VISIBLE
}

/**
 * The QR scanner in a dialog: what the back camera sees, read by [QrScanner]; [onLink] gets the
 * first PeerNS link (share or invite link) and the dialog closes. Closing it, or [dismiss] when
 * the screen goes, stops the camera. Needs the camera permission ([Host.withCamera]).
 */
class QrScanDialog(private val host: Host, private val onLink: (String) -> Unit) {
    private var dialog: AlertDialog? = null
    private var scanner: QrScanner? = null

    fun show() {
        val ui = host.ui
        val scanner = QrScanner(
            host.context,
            { link ->
                dismiss()
                onLink(link)
            },
            { message -> failed(message) },
        )
        val size = scanner.frameSize
        if (size == null) {
            scanner.stop()
            return failed("this phone has no camera to scan with")
        }
        this.scanner = scanner
        val preview = SurfaceView(host.context).apply {
            holder.setFixedSize(size.width, size.height)
            holder.addCallback(object : SurfaceHolder.Callback {
                private var started = false

                override fun surfaceCreated(holder: SurfaceHolder) = Unit

                override fun surfaceChanged(holder: SurfaceHolder, format: Int, width: Int, height: Int) {
                    if (started) return
                    started = true
                    scanner.start(holder.surface)
                }

                override fun surfaceDestroyed(holder: SurfaceHolder) = dismiss()
            })
            // A phone held upright shows the sensor's landscape frames turned: the view has that shape.
            layoutParams = LinearLayout.LayoutParams(ui.dp(240), ui.dp(240) * size.width / size.height)
        }
        dialog = AlertDialog.Builder(host.context)
            .setTitle("Scan a QR code")
            .setView(ui.column(16).with(ui.text("Point the camera at a PeerNS QR code: a share link or a group invite."), preview))
            .setNegativeButton("Cancel", null)
            .setOnDismissListener { dismiss() }
            .show()
    }

    /** Closes the dialog and stops the camera (again is harmless). */
    fun dismiss() {
        val d = dialog
        dialog = null
        scanner?.stop()
        scanner = null
        d?.dismiss()
    }

    private fun failed(message: String) {
        dismiss()
        Toast.makeText(host.context, "Cannot scan: $message", Toast.LENGTH_LONG).show()
    }
}
