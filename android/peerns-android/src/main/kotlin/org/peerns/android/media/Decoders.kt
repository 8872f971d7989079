package org.peerns.android.media

import android.media.AudioAttributes
import android.media.AudioFormat
import android.media.AudioTrack
import android.media.MediaCodec
import android.media.MediaFormat
import android.view.Surface
import java.nio.ByteBuffer
import org.peerns.media.AnnexB
import org.peerns.media.Opus
import org.peerns.media.Playout

/**
 * Decodes received frames with MediaCodec, synchronously on the thread that hands them over
 * (the FFI's delivery thread): each [frame] queues one frame and takes what the codec has ready,
 * without waiting longer than a few ms.
 */
abstract class FrameDecoder {
    protected var codec: MediaCodec? = null
    private val info = MediaCodec.BufferInfo()

    /** Decodes one frame; false when it was dropped (no input buffer free, or no keyframe yet). */
    abstract fun frame(ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean

    /** Releases the codec and what it renders to. */
    open fun release() {
        codec?.release()
        codec = null
    }

    /** Queues [data]; false when it was dropped (no input buffer free, or too large for one). */
    protected fun queue(codec: MediaCodec, ptsUs: Long, data: ByteArray): Boolean {
        val index = codec.dequeueInputBuffer(TIMEOUT_US)
        if (index < 0) return false
        val input = codec.getInputBuffer(index)
        if (input == null || data.size > input.capacity()) {
            // Given back empty: an input buffer not queued is lost to the codec.
            codec.queueInputBuffer(index, 0, 0, ptsUs, 0)
            return false
        }
        input.clear()
        input.put(data)
        codec.queueInputBuffer(index, 0, data.size, ptsUs, 0)
        return true
    }

    /** Hands each decoded output to [output], which releases it. */
    protected fun drain(codec: MediaCodec, output: (index: Int, info: MediaCodec.BufferInfo) -> Unit) {
        while (true) {
            val index = codec.dequeueOutputBuffer(info, 0)
            when {
                index >= 0 -> output(index, info)
                index == MediaCodec.INFO_OUTPUT_FORMAT_CHANGED -> formatChanged(codec.outputFormat)
                else -> return
            }
        }
    }

    /** The codec's output format, when it is known or changes. */
    protected open fun formatChanged(format: MediaFormat) = Unit

    private companion object {
        const val TIMEOUT_US = 5_000L
    }
}

/**
 * H.264 Annex-B access units onto [surface] (a SurfaceView's or a TextureView's), turned
 * clockwise by [rotation] (0, 90, 180 or 270: how the sender's camera is mounted against how its
 * phone is held), scaled to fit it: [onSize] hears the picture's size as shown (turned), so that
 * the view can take its shape. Starts at the first keyframe that carries SPS/PPS; frames before
 * it are dropped (ask the sender for one). A frame dropped later (no input buffer free in
 * time, too large) leaves the next ones without their reference: they are dropped too, until
 * the next keyframe.
 */
class VideoDecoder(
    private val surface: Surface,
    private val rotation: Int = 0,
    private val onSize: ((width: Int, height: Int) -> Unit)? = null,
) : FrameDecoder() {
    // A frame was dropped: nothing decodes until a keyframe.
    private var broken = false

    override fun frame(ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean {
        val c = codec ?: (if (keyframe) start(data) else null) ?: return false
        if (broken && !keyframe) return false
        broken = !queue(c, ptsUs, data)
        drain(c) { index, _ -> c.releaseOutputBuffer(index, true) }
        return !broken
    }

    override fun formatChanged(format: MediaFormat) {
        val listener = onSize ?: return
        val (width, height) = shownSize(format)
        if (width > 0 && height > 0) listener(width, height)
    }

    /** The picture's size as drawn: the codec's crop (else its size), turned by [rotation]. */
    private fun shownSize(format: MediaFormat): Pair<Int, Int> {
        val cropped = format.containsKey(CROP_RIGHT) && format.containsKey(CROP_LEFT) &&
            format.containsKey(CROP_BOTTOM) && format.containsKey(CROP_TOP)
        val width = if (cropped) {
            format.getInteger(
                CROP_RIGHT,
            ) - format.getInteger(CROP_LEFT) + 1
        } else {
            format.getInteger(MediaFormat.KEY_WIDTH)
        }
        val height = if (cropped) {
            format.getInteger(
                CROP_BOTTOM,
            ) - format.getInteger(CROP_TOP) + 1
        } else {
            format.getInteger(MediaFormat.KEY_HEIGHT)
        }
        return if (rotation == 90 || rotation == 270) height to width else width to height
    }

    private fun start(keyframe: ByteArray): MediaCodec? {
        val nals = AnnexB.nalUnits(keyframe)
        val sps = nals.firstOrNull { AnnexB.type(it) == AnnexB.SPS } ?: return null
        val pps = nals.firstOrNull { AnnexB.type(it) == AnnexB.PPS } ?: return null
        // The size is a hint: the decoder reads the real one from the SPS.
        val format = MediaFormat.createVideoFormat(MediaFormat.MIMETYPE_VIDEO_AVC, VideoEncoder.WIDTH, VideoEncoder.HEIGHT).apply {
            setByteBuffer("csd-0", ByteBuffer.wrap(AnnexB.join(listOf(sps))))
            setByteBuffer("csd-1", ByteBuffer.wrap(AnnexB.join(listOf(pps))))
            // The size above is a hint only, and the input buffers would be sized for it: a
            // keyframe of a larger picture (a browser's, a screen) must fit one.
            setInteger(MediaFormat.KEY_MAX_INPUT_SIZE, maxOf(MAX_INPUT_BYTES, keyframe.size))
            // The sender's picture turned upright as it is drawn on the surface.
            if (rotation != 0) setInteger(MediaFormat.KEY_ROTATION, rotation)
        }
        val decoder = MediaCodec.createDecoderByType(MediaFormat.MIMETYPE_VIDEO_AVC)
        try {
            decoder.configure(format, surface, null, 0)
            // Scaled to the surface, which takes the picture's shape ([onSize]): cropping is
            // not done for pictures turned by 90 or 270 degrees on every device.
            decoder.setVideoScalingMode(MediaCodec.VIDEO_SCALING_MODE_SCALE_TO_FIT)
            decoder.start()
        } catch (e: Exception) {
            decoder.release()
            throw e
        }
        codec = decoder
        return decoder
    }

    private companion object {
        // MediaFormat.KEY_CROP_* (API 33), by name: the codecs report them since Android 5.
        const val CROP_LEFT = "crop-left"
        const val CROP_RIGHT = "crop-right"
        const val CROP_TOP = "crop-top"
        const val CROP_BOTTOM = "crop-bottom"

        // Input buffers hold a keyframe of this size at least (a 1080p IDR is ~100-300 kB).
        const val MAX_INPUT_BYTES = 1 shl 20
    }
}

/**
 * Opus packets (48 kHz mono) to the speaker, through an AudioTrack for voice communication,
 * paced by a [Playout]: [PRIME_MS] of silence ahead of the first sound and after the track ran
 * dry, whole packets dropped while more than [MAX_QUEUED_MS] wait to be played.
 */
class AudioDecoder : FrameDecoder() {
    private val playout = Playout(PRIME_MS * Opus.SAMPLE_RATE / 1000, MAX_QUEUED_MS * Opus.SAMPLE_RATE / 1000)
    private val silence = ByteArray(PRIME_MS * Opus.SAMPLE_RATE / 1000 * 2)

    private val track = AudioTrack.Builder()
        .setAudioAttributes(
            AudioAttributes.Builder().setUsage(AudioAttributes.USAGE_VOICE_COMMUNICATION)
                .setContentType(AudioAttributes.CONTENT_TYPE_SPEECH).build(),
        )
        .setAudioFormat(
            AudioFormat.Builder().setSampleRate(Opus.SAMPLE_RATE).setChannelMask(AudioFormat.CHANNEL_OUT_MONO)
                .setEncoding(AudioFormat.ENCODING_PCM_16BIT).build(),
        )
        .setTransferMode(AudioTrack.MODE_STREAM)
        // Room for what the playout keeps queued, and a packet more.
        .setBufferSizeInBytes((MAX_QUEUED_MS + 2 * PACKET_MS) * Opus.SAMPLE_RATE / 1000 * 2)
        .build()

    init {
        val decoder = try {
            MediaCodec.createDecoderByType(MediaFormat.MIMETYPE_AUDIO_OPUS)
        } catch (e: Exception) {
            track.release()
            throw e
        }
        try {
            decoder.configure(
                MediaFormat.createAudioFormat(MediaFormat.MIMETYPE_AUDIO_OPUS, Opus.SAMPLE_RATE, 1).apply {
                    setByteBuffer("csd-0", ByteBuffer.wrap(Opus.head(channels = 1)))
                    setByteBuffer("csd-1", ByteBuffer.wrap(Opus.nanos(0)))
                    setByteBuffer("csd-2", ByteBuffer.wrap(Opus.nanos(Opus.SEEK_PREROLL_NS)))
                },
                null,
                null,
                0,
            )
            decoder.start()
            track.play()
        } catch (e: Exception) {
            decoder.release()
            track.release()
            throw e
        }
        codec = decoder
    }

    override fun frame(ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean {
        val c = codec ?: return false
        val queued = queue(c, ptsUs, data)
        drain(c) { index, info ->
            c.getOutputBuffer(index)?.let { pcm ->
                pcm.position(info.offset).limit(info.offset + info.size)
                play(pcm, info.size)
            }
            c.releaseOutputBuffer(index, false)
        }
        return queued
    }

    /** One decoded block, [size] bytes of [pcm], to the track as the [playout] says. */
    private fun play(pcm: ByteBuffer, size: Int) {
        val silent = playout.before(track.playbackHeadPosition) ?: return
        // Never block the delivery thread: the buffer holds what the playout keeps queued.
        if (silent > 0) playout.wrote(written(track.write(silence, 0, silent * 2, AudioTrack.WRITE_NON_BLOCKING)))
        playout.wrote(written(track.write(pcm, size, AudioTrack.WRITE_NON_BLOCKING)))
    }

    override fun release() {
        super.release()
        track.release()
    }

    private companion object {
        const val PACKET_MS = 20
        const val PRIME_MS = 60
        const val MAX_QUEUED_MS = 150

        /** Samples in what `AudioTrack.write` says it wrote (bytes, or a negative error). */
        fun written(bytes: Int): Int = maxOf(bytes, 0) / 2
    }
}
