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

    protected fun queue(codec: MediaCodec, ptsUs: Long, data: ByteArray): Boolean {
        val index = codec.dequeueInputBuffer(TIMEOUT_US)
        if (index < 0) return false
        val input = codec.getInputBuffer(index) ?: return false
        input.clear()
        input.put(data)
        codec.queueInputBuffer(index, 0, data.size, ptsUs, 0)
        return true
    }

    /** Hands each decoded output to [output], which releases it. */
    protected fun drain(codec: MediaCodec, output: (index: Int, info: MediaCodec.BufferInfo) -> Unit) {
        while (true) {
            val index = codec.dequeueOutputBuffer(info, 0)
            if (index >= 0) {
                output(index, info)
            } else if (index != MediaCodec.INFO_OUTPUT_FORMAT_CHANGED) {
                return
            }
        }
    }

    private companion object {
        const val TIMEOUT_US = 5_000L
    }
}

/**
 * H.264 Annex-B access units onto [surface] (a SurfaceView's or a TextureView's), turned
 * clockwise by [rotation] (0, 90, 180 or 270: how the sender's camera is mounted against how its
 * phone is held). Starts at the first keyframe that carries SPS/PPS; frames before it are
 * dropped (ask the sender for one).
 */
class VideoDecoder(private val surface: Surface, private val rotation: Int = 0) : FrameDecoder() {
    /** Whether a keyframe has started it (until then every frame is dropped). */
    val started: Boolean get() = codec != null

    override fun frame(ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean {
        val c = codec ?: (if (keyframe) start(data) else null) ?: return false
        val queued = queue(c, ptsUs, data)
        drain(c) { index, _ -> c.releaseOutputBuffer(index, true) }
        return queued
    }

    private fun start(keyframe: ByteArray): MediaCodec? {
        val nals = AnnexB.nalUnits(keyframe)
        val sps = nals.firstOrNull { AnnexB.type(it) == AnnexB.SPS } ?: return null
        val pps = nals.firstOrNull { AnnexB.type(it) == AnnexB.PPS } ?: return null
        // The size is a hint: the decoder reads the real one from the SPS.
        val format = MediaFormat.createVideoFormat(MediaFormat.MIMETYPE_VIDEO_AVC, VideoEncoder.WIDTH, VideoEncoder.HEIGHT).apply {
            setByteBuffer("csd-0", ByteBuffer.wrap(AnnexB.join(listOf(sps))))
            setByteBuffer("csd-1", ByteBuffer.wrap(AnnexB.join(listOf(pps))))
            // The sender's picture turned upright as it is drawn on the surface.
            if (rotation != 0) setInteger(MediaFormat.KEY_ROTATION, rotation)
        }
        return MediaCodec.createDecoderByType(MediaFormat.MIMETYPE_VIDEO_AVC).apply {
            configure(format, surface, null, 0)
            // Fill the picture's view without stretching (a turned picture is tall in a wide view):
            // what does not fit is cropped.
            setVideoScalingMode(MediaCodec.VIDEO_SCALING_MODE_SCALE_TO_FIT_WITH_CROPPING)
            start()
            codec = this
        }
    }
}

/** Opus packets (48 kHz mono) to the speaker, through an AudioTrack for voice communication. */
class AudioDecoder : FrameDecoder() {
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
        .setBufferSizeInBytes(Opus.FRAME_SAMPLES * 2 * 10)
        .build()
        .apply { play() }

    init {
        codec = MediaCodec.createDecoderByType(MediaFormat.MIMETYPE_AUDIO_OPUS).apply {
            configure(
                MediaFormat.createAudioFormat(MediaFormat.MIMETYPE_AUDIO_OPUS, Opus.SAMPLE_RATE, 1).apply {
                    setByteBuffer("csd-0", ByteBuffer.wrap(Opus.head(channels = 1)))
                    setByteBuffer("csd-1", ByteBuffer.wrap(Opus.nanos(0)))
                    setByteBuffer("csd-2", ByteBuffer.wrap(Opus.nanos(Opus.SEEK_PREROLL_NS)))
                },
                null,
                null,
                0,
            )
            start()
        }
    }

    override fun frame(ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean {
        val c = codec ?: return false
        val queued = queue(c, ptsUs, data)
        drain(c) { index, info ->
            // Never block the delivery thread: what the track cannot take now is dropped.
            c.getOutputBuffer(index)?.let { pcm ->
                pcm.position(info.offset).limit(info.offset + info.size)
                track.write(pcm, info.size, AudioTrack.WRITE_NON_BLOCKING)
            }
            c.releaseOutputBuffer(index, false)
        }
        return queued
    }

    override fun release() {
        super.release()
        track.release()
    }
}
