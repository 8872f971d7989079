// A QR code as a camera would see it, for the tests of what the app does with a scanned link.
package org.peerns.testing

import org.peerns.ffi.qrEncode
import org.peerns.qr.QrFrames
import org.peerns.qr.QrPixels

/**
 * [text] drawn as a camera frame's Y plane ([scale] pixels a module, rows padded with [pad]
 * bytes, the last row not) and read back by the scanner's frame handling: the PeerNS link the
 * scanner would report, or null.
 */
fun scanned(text: String, scale: Int = 3, pad: Int = 40): String? {
    val p = QrPixels.of(qrEncode(text), scale)
    val stride = p.side + pad
    val luma = ByteArray(stride * (p.side - 1) + p.side)
    for (y in 0 until p.side) {
        for (x in 0 until p.side) luma[y * stride + x] = (if (p.argb[y * p.side + x] == QrPixels.BLACK) 20 else 235).toByte()
    }
    return QrFrames.firstLink(p.side, p.side, stride, luma)
}
