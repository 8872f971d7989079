package org.peerns.android

import android.graphics.Bitmap
import android.graphics.Color
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.ffi.PeernsException
import org.peerns.ffi.qrDecode
import org.peerns.ffi.qrEncode
import org.peerns.qr.QrFrames
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config

/** QrBitmap on Robolectric's Android 16: a link drawn as a bitmap reads back as the same link. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class QrBitmapRoboTest {
    private val link = "peerns2:${"0f".repeat(32)}?id=peerns2-${"k".repeat(24)}"

    /** The bitmap's pixels as luma, rows [stride] bytes apart. */
    private fun luma(bitmap: Bitmap, stride: Int): ByteArray {
        val w = bitmap.width
        val argb = IntArray(w * bitmap.height)
        bitmap.getPixels(argb, 0, w, 0, 0, w, bitmap.height)
        val out = ByteArray(stride * (bitmap.height - 1) + w)
        for (y in 0 until bitmap.height) {
            for (x in 0 until w) {
                val c = argb[y * w + x]
                out[y * stride + x] = ((Color.red(c) * 299 + Color.green(c) * 587 + Color.blue(c) * 114) / 1000).toByte()
            }
        }
        return out
    }

    @Test
    fun aLinkDrawnAsABitmapReadsBack() {
        val bitmap = QrBitmap.of(link, maxSide = 400)
        val code = qrEncode(link)
        val scale = 400 / (code.size.toInt() + 8)
        assertEquals((code.size.toInt() + 8) * scale, bitmap.width)
        assertEquals(bitmap.width, bitmap.height)
        assertEquals(Color.WHITE, bitmap.getPixel(0, 0)) // the quiet zone
        assertEquals(Color.BLACK, bitmap.getPixel(4 * scale, 4 * scale)) // a finder pattern
        val w = bitmap.width.toUInt()
        assertEquals(listOf(link), qrDecode(w, w, w, luma(bitmap, bitmap.width)))
        // And through the scanner's frame handling, with padded rows.
        assertEquals(link, QrFrames.firstLink(bitmap.width, bitmap.height, bitmap.width + 48, luma(bitmap, bitmap.width + 48)))
    }

    @Test
    fun aGroupInviteAtTwoPixelsAModuleReadsBack() {
        val invite = "peerns2-group:" + "AbCd-_09".repeat(60)
        val code = qrEncode(invite)
        val bitmap = QrBitmap.of(code, scale = 2)
        assertEquals((code.size.toInt() + 8) * 2, bitmap.width)
        assertEquals(invite, QrFrames.firstLink(bitmap.width, bitmap.height, bitmap.width + 3, luma(bitmap, bitmap.width + 3)))
    }

    @Test
    fun anEmptyTextHasNoCode() {
        assertFailsWith<PeernsException.InvalidInput> { QrBitmap.of("", maxSide = 400) }
    }
}
