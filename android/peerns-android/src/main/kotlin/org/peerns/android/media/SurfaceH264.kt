package org.peerns.android.media

import android.media.MediaCodec
import android.media.MediaCodecInfo.CodecCapabilities
import android.media.MediaCodecInfo.CodecProfileLevel
import android.media.MediaCodecInfo.EncoderCapabilities
import android.media.MediaFormat
import android.os.Bundle
import android.os.Handler
import android.util.Size
import android.view.Surface
import org.peerns.media.AccessUnitAssembler

/**
 * A running MediaCodec H.264 encoder fed through its input [surface], which the camera or the
 * screen draws into: constrained baseline where the encoder has it, else baseline; CBR where
 * supported, else VBR; a keyframe every [KEYFRAME_INTERVAL_S] s. Its output goes to the sink as
 * Annex-B access units with SPS/PPS before every keyframe, on the thread of the handler it was
 * started with.
 */
class SurfaceH264 private constructor(private val codec: MediaCodec, val surface: Surface, val size: Size) : CodecParameters {
    override fun setParameters(params: Bundle) {
        try {
            codec.setParameters(params)
        } catch (_: IllegalStateException) {
            // The codec stopped between the core's request and now: nothing to change.
        }
    }

    /** Stops the encoder; releases it and its surface. */
    fun release() {
        surface.release()
        try {
            codec.stop()
        } catch (_: IllegalStateException) {
            // It failed already (reported through onError).
        }
        codec.release()
    }

    /** The encoder's output, on the handler's thread. */
    private class Output(private val sink: EncodedFrameSink, private val onError: (String) -> Unit) : MediaCodec.Callback() {
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

    companion object {
        const val KEYFRAME_INTERVAL_S = 2

        /**
         * Starts an encoder of [size] pictures (its [SurfaceH264.size]) at [bps] and [fps] whose
         * output goes to [sink] on [handler]'s thread. With [screen], for a screen's mirror: at
         * most [fps] frames a second are encoded (a virtual display draws at the panel's rate
         * while its content moves), a picture not followed by another within [REPEAT_AFTER_US]
         * is encoded again (a still screen draws nothing new, yet a receiver needs frames, and a
         * keyframe every [KEYFRAME_INTERVAL_S] s, to start its picture), and a size the encoder
         * does not take is scaled down until it does. Android 10+ for [screen].
         */
        fun start(
            size: Size,
            bps: Int,
            fps: Int,
            handler: Handler,
            sink: EncodedFrameSink,
            onError: (String) -> Unit,
            screen: Boolean = false,
        ): SurfaceH264 {
            val encoder = MediaCodec.createEncoderByType(MediaFormat.MIMETYPE_VIDEO_AVC)
            var input: Surface? = null
            try {
                val fitted = if (screen) fit(encoder, size) else size
                val format = format(encoder, fitted, bps, fps)
                if (screen) {
                    format.setFloat(MediaFormat.KEY_MAX_FPS_TO_ENCODER, fps.toFloat())
                    format.setLong(MediaFormat.KEY_REPEAT_PREVIOUS_FRAME_AFTER, REPEAT_AFTER_US)
                }
                encoder.configure(format, null, null, MediaCodec.CONFIGURE_FLAG_ENCODE)
                input = encoder.createInputSurface()
                encoder.setCallback(Output(sink, onError), handler)
                encoder.start()
                return SurfaceH264(encoder, input, fitted)
            } catch (e: Exception) {
                input?.release()
                encoder.release()
                throw e
            }
        }

        /** How long a still screen's picture waits before it is encoded again. */
        const val REPEAT_AFTER_US = 200_000L

        /**
         * [size], or scaled down by a fifth at a time (sides multiples of 16) until [encoder]
         * takes it: many AVC encoders stop at 1088 lines, which a phone's upright screen passes.
         */
        private fun fit(encoder: MediaCodec, size: Size): Size {
            val caps = encoder.codecInfo.getCapabilitiesForType(MediaFormat.MIMETYPE_VIDEO_AVC).videoCapabilities ?: return size
            var fitted = size
            repeat(FIT_TRIES) {
                if (caps.isSizeSupported(fitted.width, fitted.height)) return fitted
                fitted = Size(fitted.width * 4 / 5 / 16 * 16, fitted.height * 4 / 5 / 16 * 16)
                if (fitted.width < 16 || fitted.height < 16) return size
            }
            return if (caps.isSizeSupported(fitted.width, fitted.height)) fitted else size
        }

        private const val FIT_TRIES = 6

        private fun format(encoder: MediaCodec, size: Size, bps: Int, fps: Int): MediaFormat {
            val caps = encoder.codecInfo.getCapabilitiesForType(MediaFormat.MIMETYPE_VIDEO_AVC)
            val constrained = caps.profileLevels.any { it.profile == CodecProfileLevel.AVCProfileConstrainedBaseline }
            val cbr = caps.encoderCapabilities?.isBitrateModeSupported(EncoderCapabilities.BITRATE_MODE_CBR) == true
            return MediaFormat.createVideoFormat(MediaFormat.MIMETYPE_VIDEO_AVC, size.width, size.height).apply {
                setInteger(MediaFormat.KEY_COLOR_FORMAT, CodecCapabilities.COLOR_FormatSurface)
                setInteger(MediaFormat.KEY_BIT_RATE, bps)
                setInteger(MediaFormat.KEY_FRAME_RATE, fps)
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
    }
}
