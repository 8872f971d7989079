package org.peerns.qr

import java.nio.ByteBuffer
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.Test
import org.peerns.ffi.PeernsException
import org.peerns.ffi.QrCode
import org.peerns.ffi.qrDecode
import org.peerns.ffi.qrEncode

/**
 * The scanner's frame handling and the QR pixels, on a plain JVM against the real library: frames
 * drawn from the core's `qrEncode` as a camera's Y plane (padded rows, the last one not padded, as
 * camera planes are), read back through `qrDecode`.
 */
class QrFramesTest {
    private val shareLink = "peerns2:${"ab".repeat(32)}?id=peerns2-${"c".repeat(24)}"

    // About the size of a real invite link (base64url of a signed group record).
    private val inviteLink =
        "peerns2-group:" +
            (0 until 480).map { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[(it * 37 + 11) % 64] }.joinToString("")

    /** A camera's Y plane: [width] × [height], rows [rowStride] bytes apart, the last row unpadded. */
    private class Frame(val width: Int, val height: Int, val rowStride: Int, val luma: ByteArray)

    /**
     * [codes] side by side, [scale] pixels a module with their quiet zones, dark 30 and light 225
     * (a camera sees no pure black or white), each row padded with [pad] bytes of noise.
     */
    private fun frame(codes: List<QrCode>, scale: Int, pad: Int): Frame {
        val drawn = codes.map { QrPixels.of(it, scale) }
        val width = drawn.sumOf { it.side }
        val height = drawn.maxOf { it.side }
        val stride = width + pad
        val luma = ByteArray(stride * (height - 1) + width) { 0x5a } // the padding: not part of the picture
        var x0 = 0
        for (d in drawn) {
            for (y in 0 until height) {
                for (x in 0 until d.side) {
                    val argb = if (y < d.side) d.argb[y * d.side + x] else QrPixels.WHITE
                    luma[y * stride + x0 + x] = (if (argb == QrPixels.BLACK) 30 else 225).toByte()
                }
            }
            x0 += d.side
        }
        return Frame(width, height, stride, luma)
    }

    private fun Frame.read() = QrFrames.firstLink(width, height, rowStride, luma)

    @Test
    fun aShareLinkIsReadFromAPaddedYPlane() {
        val f = frame(listOf(qrEncode(shareLink)), scale = 4, pad = 64)
        assertTrue(f.rowStride > f.width)
        assertEquals(shareLink, f.read())
        // As an Image's plane gives it: a direct buffer, read from its position, left unchanged.
        val plane = ByteBuffer.allocateDirect(f.luma.size).also {
            it.put(f.luma)
            it.position(0)
        }
        assertEquals(shareLink, QrFrames.firstLink(f.width, f.height, f.rowStride, plane))
        assertEquals(0, plane.position())
        // Unpadded rows too.
        assertEquals(shareLink, frame(listOf(qrEncode(shareLink)), scale = 3, pad = 0).read())
    }

    @Test
    fun aLongInviteLinkIsRead() {
        val f = frame(listOf(qrEncode(inviteLink)), scale = 3, pad = 17)
        assertEquals(inviteLink, f.read())
    }

    @Test
    fun otherQrContentIsIgnored() {
        val web = qrEncode("https://example.org/menu")
        val wifi = qrEncode("WIFI:T:WPA;S:stadium;P:secret;;")
        assertNull(frame(listOf(web), scale = 4, pad = 32).read())
        assertNull(frame(listOf(web, wifi), scale = 4, pad = 32).read())
        // The core reads both codes; the scanner keeps the PeerNS link only.
        val both = frame(listOf(web, qrEncode(shareLink)), scale = 4, pad = 32)
        assertEquals(2, qrDecode(both.width.toUInt(), both.height.toUInt(), both.rowStride.toUInt(), both.luma).size)
        assertEquals(shareLink, both.read())
        // A link of another scheme that merely mentions ours is not ours.
        assertNull(frame(listOf(qrEncode("https://example.org/?peerns2:abc")), scale = 4, pad = 0).read())
    }

    @Test
    fun framesWithoutACodeOrMalformedReadNothing() {
        val blank = Frame(320, 240, 336, ByteArray(336 * 239 + 320) { 0x80.toByte() })
        assertNull(blank.read())
        val f = frame(listOf(qrEncode(shareLink)), scale = 4, pad = 8)
        assertNull(QrFrames.firstLink(f.width, f.height, f.width - 1, f.luma)) // stride shorter than a row
        assertNull(QrFrames.firstLink(f.width, f.height, f.rowStride, f.luma.copyOf(f.luma.size - 1))) // too few bytes
        assertNull(QrFrames.firstLink(0, f.height, f.rowStride, f.luma))
    }

    @Test
    fun pixelsHaveAQuietZoneAndWholeModules() {
        val code = qrEncode(shareLink)
        val n = code.size.toInt()
        assertEquals(n * n, code.dark.size)
        val p = QrPixels.of(code, scale = 3)
        assertEquals((n + 8) * 3, p.side)
        assertEquals(p.side * p.side, p.argb.size)
        for (i in 0 until p.side) {
            // Four modules of white on every side.
            for (q in 0 until 4 * 3) {
                for (at in listOf(q * p.side + i, (p.side - 1 - q) * p.side + i, i * p.side + q, i * p.side + p.side - 1 - q)) {
                    assertEquals(QrPixels.WHITE, p.argb[at])
                }
            }
        }
        for (my in 0 until n) {
            for (mx in 0 until n) {
                val want = if (code.dark[my * n + mx]) QrPixels.BLACK else QrPixels.WHITE
                for (dy in 0 until 3) for (dx in 0 until 3) assertEquals(want, p.argb[((my + 4) * 3 + dy) * p.side + (mx + 4) * 3 + dx])
            }
        }
        assertEquals(QrPixels.BLACK, p.argb[4 * 3 * p.side + 4 * 3]) // a finder pattern's corner
        assertEquals(300 / (n + 8), QrPixels.scaleFor(code, 300))
        assertEquals(1, QrPixels.scaleFor(code, 10))
        assertFailsWith<IllegalArgumentException> { QrPixels.of(code, 0) }
    }

    @Test
    fun linksAreToldApartAndBadTextIsRefused() {
        assertTrue(PeernsLinks.isContact(shareLink) && !PeernsLinks.isGroup(shareLink))
        assertTrue(PeernsLinks.isGroup(inviteLink) && !PeernsLinks.isContact(inviteLink))
        assertTrue(!PeernsLinks.isPeerns("peerns2") && !PeernsLinks.isPeerns("https://example.org"))
        assertFailsWith<PeernsException.InvalidInput> { qrEncode("") }
        assertFailsWith<PeernsException.InvalidInput> { qrEncode("x".repeat(2049)) }
    }
}
