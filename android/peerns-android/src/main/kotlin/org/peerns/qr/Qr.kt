package org.peerns.qr

import java.nio.ByteBuffer
import org.peerns.ffi.PeernsException
import org.peerns.ffi.QrCode
import org.peerns.ffi.qrDecode

/** The links a PeerNS QR code carries: a contact's share link or a group's invite link. */
object PeernsLinks {
    /** A contact's share link starts with this. */
    const val CONTACT = "peerns2:"

    /** A group's invite link starts with this. */
    const val GROUP = "peerns2-group:"

    fun isContact(text: String) = text.startsWith(CONTACT)

    fun isGroup(text: String) = text.startsWith(GROUP)

    fun isPeerns(text: String) = isContact(text) || isGroup(text)
}

/**
 * What the QR scanner does with a camera frame, pure Kotlin (no `android.*`): the frame's luma
 * (Y) plane, [width] × [height] pixels with rows [rowStride] bytes apart, goes to the core's
 * `qrDecode`; the first text that is a PeerNS link ([PeernsLinks]) is returned, any other QR
 * content (web addresses, Wi-Fi codes, ...) is ignored. Null when the frame holds none.
 */
object QrFrames {
    /** [plane] from its position to its limit (left as it is), as a camera image's plane gives it. */
    fun firstLink(width: Int, height: Int, rowStride: Int, plane: ByteBuffer): String? {
        val luma = ByteArray(plane.remaining())
        plane.duplicate().get(luma)
        return firstLink(width, height, rowStride, luma)
    }

    fun firstLink(width: Int, height: Int, rowStride: Int, luma: ByteArray): String? {
        if (width <= 0 || height <= 0 || rowStride < width) return null
        val texts = try {
            qrDecode(width.toUInt(), height.toUInt(), rowStride.toUInt(), luma)
        } catch (e: PeernsException) {
            // A frame the core refuses (too large, too few bytes): nothing to read in it.
            return null
        }
        return texts.firstOrNull(PeernsLinks::isPeerns)
    }
}

/**
 * A QR code as square pixels: [scale] pixels a module and a quiet zone of [QUIET_ZONE] modules,
 * ARGB colours row by row, [side] × [side]. What `QrBitmap` draws on Android.
 */
class QrPixels private constructor(val side: Int, val argb: IntArray) {
    companion object {
        /** Modules of white around the code, as the standard asks. */
        const val QUIET_ZONE = 4
        const val BLACK = 0xFF000000.toInt()
        const val WHITE = 0xFFFFFFFF.toInt()

        /** Pixels a module so that [code] with its quiet zone fits in [maxSide] pixels (at least 1). */
        fun scaleFor(code: QrCode, maxSide: Int): Int = maxOf(1, maxSide / (code.size.toInt() + 2 * QUIET_ZONE))

        fun of(code: QrCode, scale: Int, dark: Int = BLACK, light: Int = WHITE): QrPixels {
            require(scale >= 1) { "scale $scale" }
            val modules = code.size.toInt()
            require(code.dark.size == modules * modules) { "a QR code of $modules modules has ${code.dark.size} entries" }
            val side = (modules + 2 * QUIET_ZONE) * scale
            val argb = IntArray(side * side) { light }
            for (my in 0 until modules) {
                for (mx in 0 until modules) {
                    if (!code.dark[my * modules + mx]) continue
                    val x0 = (mx + QUIET_ZONE) * scale
                    for (y in (my + QUIET_ZONE) * scale until (my + QUIET_ZONE + 1) * scale) {
                        argb.fill(dark, y * side + x0, y * side + x0 + scale)
                    }
                }
            }
            return QrPixels(side, argb)
        }
    }
}
