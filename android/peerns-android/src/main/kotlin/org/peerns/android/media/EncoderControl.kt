package org.peerns.android.media

import android.media.MediaCodec
import android.os.Bundle
import org.peerns.ffi.EncoderControlListener

/** Where an encoder's output goes: pts in µs, the keyframe flag, an Annex-B access unit or an Opus packet. */
fun interface EncodedFrameSink {
    fun frame(ptsUs: Long, keyframe: Boolean, data: ByteArray)
}

/** A running encoder's parameters: `MediaCodec.setParameters`, behind an interface for tests. */
fun interface CodecParameters {
    fun setParameters(params: Bundle)
}

/**
 * The core's requests to a video encoder, mapped onto MediaCodec: a keyframe request becomes
 * [MediaCodec.PARAMETER_KEY_REQUEST_SYNC_FRAME], a target bitrate (kept within
 * [minBps]..[maxBps]) [MediaCodec.PARAMETER_KEY_VIDEO_BITRATE], sent only when it changes.
 * The core says a target again only when it moves, so a codec started later (the camera
 * switched or turned on again) starts at [targetBps].
 */
class EncoderControl(private val codec: CodecParameters, private val minBps: Int, private val maxBps: Int) : EncoderControlListener {
    @Volatile
    private var bps = 0

    /** The last target the core asked for (clamped), null before the first. */
    val targetBps: Int? get() = bps.takeIf { it > 0 }

    override fun requestKeyframe() = codec.setParameters(Bundle().apply { putInt(MediaCodec.PARAMETER_KEY_REQUEST_SYNC_FRAME, 0) })

    override fun targetBitrate(bps: ULong) {
        val clamped = bps.coerceIn(minBps.toULong(), maxBps.toULong()).toInt()
        if (clamped == this.bps) return
        this.bps = clamped
        codec.setParameters(Bundle().apply { putInt(MediaCodec.PARAMETER_KEY_VIDEO_BITRATE, clamped) })
    }
}
