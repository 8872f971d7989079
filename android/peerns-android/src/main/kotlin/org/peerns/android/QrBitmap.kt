package org.peerns.android

import android.graphics.Bitmap
import org.peerns.ffi.PeernsException
import org.peerns.ffi.QrCode
import org.peerns.ffi.qrEncode
import org.peerns.qr.QrPixels

/**
 * QR codes of share and invite links as bitmaps: the core's `qrEncode` drawn black on white, a
 * whole number of pixels a module (sharp when shown unscaled) and a 4-module quiet zone.
 */
object QrBitmap {
    /** [code] with [scale] pixels a module. */
    fun of(code: QrCode, scale: Int): Bitmap {
        val pixels = QrPixels.of(code, scale)
        return Bitmap.createBitmap(pixels.side, pixels.side, Bitmap.Config.ARGB_8888).apply {
            setPixels(pixels.argb, 0, pixels.side, 0, 0, pixels.side, pixels.side)
        }
    }

    /**
     * [text] (1 to 2048 bytes) as large as fits in [maxSide] pixels.
     * @throws PeernsException.InvalidInput for an empty or too long text.
     */
    fun of(text: String, maxSide: Int): Bitmap {
        val code = qrEncode(text)
        return of(code, QrPixels.scaleFor(code, maxSide))
    }
}
