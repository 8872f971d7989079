package org.peerns.android.media

import android.media.AudioAttributes
import android.media.AudioFormat
import android.media.AudioTrack
import android.media.MediaCodec
import android.media.MediaFormat
import android.os.Handler
import android.view.Surface
import java.nio.ByteBuffer
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock
import org.peerns.media.AnnexB
import org.peerns.media.Opus
import org.peerns.media.Playout

/**
 * Decodes received frames with MediaCodec in its asynchronous mode. [frame] runs on the thread
 * that hands frames over (the FFI's delivery thread) and puts a frame into an input buffer the
 * codec has given back, waiting at most a few ms for one; what the codec decodes is rendered or
 * played on [handler]'s thread as soon as it is out. A hardware decoder that holds a few frames,
 * or the last frame before a pause (a still screen shared), is not kept waiting for the next
 * input. A codec error makes the next [frame] throw: the owner releases this decoder and makes
 * a new one.
 */
abstract class FrameDecoder(private val handler: Handler) {
    private val lock = ReentrantLock()
    private val inputFreed = lock.newCondition()
    private var codec: MediaCodec? = null

    // Input buffers the codec gave back, by index (under `lock`).
    private val free = ArrayDeque<Int>()

    @Volatile
    private var failed: MediaCodec.CodecException? = null

    // Nothing queued into the codec yet: its first input buffers may still be on their way.
    private var first = true

    /** Whether a codec runs. */
    protected val running: Boolean get() = lock.withLock { codec != null }

    /** Decodes one frame; false when it was dropped (no input buffer free, or no keyframe yet). */
    abstract fun frame(ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean

    /** One decoded output of [codec], on the handler's thread: render or play it, and release it. */
    protected abstract fun output(codec: MediaCodec, index: Int, info: MediaCodec.BufferInfo)

    /** The codec's output format, when it is known or changes (on the handler's thread). */
    protected open fun formatChanged(format: MediaFormat) = Unit

    /** Releases the codec at once (its later callbacks are ignored). */
    open fun release() = releaseCodec(onHandler = false)

    /**
     * Releases the codec, at once or ([onHandler]) on the handler's thread after the callbacks
     * already queued there (one may be reading a buffer of the codec's). A picture's decoder
     * releases at once: a new one may be configured onto the same surface right after.
     */
    protected fun releaseCodec(onHandler: Boolean) {
        val c = lock.withLock {
            free.clear()
            first = true
            codec.also { codec = null }
        } ?: return
        if (!onHandler || !handler.post { c.release() }) c.release()
    }

    /** Configures [made] for [format] (onto [surface], if any) in the asynchronous mode and starts it. */
    protected fun start(made: MediaCodec, format: MediaFormat, surface: Surface?, configured: (MediaCodec) -> Unit = {}) {
        try {
            made.setCallback(callbacks, handler)
            made.configure(format, surface, null, 0)
            configured(made)
            lock.withLock { codec = made }
            made.start()
        } catch (e: Exception) {
            lock.withLock { if (codec === made) codec = null }
            made.release()
            throw e
        }
    }

    /** Queues [data]; false when it was dropped (no input buffer free in time, or too large for one). */
    protected fun queue(ptsUs: Long, data: ByteArray): Boolean {
        failed?.let { throw it }
        lock.withLock {
            if (free.isEmpty()) inputFreed.await(if (first) FIRST_WAIT_MS else WAIT_MS, TimeUnit.MILLISECONDS)
            val c = codec ?: return false
            val index = free.removeFirstOrNull() ?: return false
            val input = c.getInputBuffer(index)
            if (input == null || data.size > input.capacity()) {
                // Given back empty: an input buffer not queued is lost to the codec.
                c.queueInputBuffer(index, 0, 0, ptsUs, 0)
                return false
            }
            input.clear()
            input.put(data)
            c.queueInputBuffer(index, 0, data.size, ptsUs, 0)
            first = false
            return true
        }
    }

    private fun current(c: MediaCodec): Boolean = lock.withLock { c === codec }

    private val callbacks = object : MediaCodec.Callback() {
        override fun onInputBufferAvailable(c: MediaCodec, index: Int) = lock.withLock {
            if (c === codec) {
                free.addLast(index)
                inputFreed.signal()
            }
        }

        override fun onOutputBufferAvailable(c: MediaCodec, index: Int, info: MediaCodec.BufferInfo) {
            if (!current(c)) return
            try {
                output(c, index, info)
            } catch (_: IllegalStateException) {
                // Released meanwhile: nothing to show.
            }
        }

        override fun onOutputFormatChanged(c: MediaCodec, format: MediaFormat) {
            if (current(c)) formatChanged(format)
        }

        override fun onError(c: MediaCodec, e: MediaCodec.CodecException) {
            if (current(c)) failed = e
        }
    }

    private companion object {
        const val WAIT_MS = 5L

        // The first frame (a keyframe that starts the picture) waits for the new codec's buffers.
        const val FIRST_WAIT_MS = 200L
    }
}

/**
 * H.264 Annex-B access units onto [surface] (a SurfaceView's or a TextureView's), turned
 * clockwise by [rotation] (0, 90, 180 or 270: how the sender's camera is mounted against how its
 * phone is held), scaled to fit it: [onSize] hears the picture's size as shown (turned), so that
 * the view can take its shape. Starts at the first keyframe that carries SPS/PPS; frames before
 * it are dropped (ask the sender for one). A frame dropped later (no input buffer free in
 * time, too large) leaves the next ones without their reference: they are dropped too, until
 * the next keyframe. Decoded pictures are drawn as soon as they are out, on [handler]'s thread.
 */
class VideoDecoder(
    private val surface: Surface,
    handler: Handler,
    private val rotation: Int = 0,
    private val onSize: ((width: Int, height: Int) -> Unit)? = null,
) : FrameDecoder(handler) {
    // A frame was dropped: nothing decodes until a keyframe.
    private var broken = false

    override fun frame(ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean {
        if (!running && !(keyframe && start(data))) return false
        if (broken && !keyframe) return false
        broken = !queue(ptsUs, data)
        return !broken
    }

    override fun output(codec: MediaCodec, index: Int, info: MediaCodec.BufferInfo) = codec.releaseOutputBuffer(index, true)

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
            format.getInteger(CROP_RIGHT) - format.getInteger(CROP_LEFT) + 1
        } else {
            format.getInteger(MediaFormat.KEY_WIDTH)
        }
        val height = if (cropped) {
            format.getInteger(CROP_BOTTOM) - format.getInteger(CROP_TOP) + 1
        } else {
            format.getInteger(MediaFormat.KEY_HEIGHT)
        }
        return if (rotation == 90 || rotation == 270) height to width else width to height
    }

    /** Starts the codec from [keyframe]'s SPS/PPS; false when it carries none. */
    private fun start(keyframe: ByteArray): Boolean {
        val nals = AnnexB.nalUnits(keyframe)
        val sps = nals.firstOrNull { AnnexB.type(it) == AnnexB.SPS } ?: return false
        val pps = nals.firstOrNull { AnnexB.type(it) == AnnexB.PPS } ?: return false
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
        // Scaled to the surface, which takes the picture's shape ([onSize]): cropping is not
        // done for pictures turned by 90 or 270 degrees on every device.
        start(MediaCodec.createDecoderByType(MediaFormat.MIMETYPE_VIDEO_AVC), format, surface) {
            it.setVideoScalingMode(MediaCodec.VIDEO_SCALING_MODE_SCALE_TO_FIT)
        }
        broken = false
        return true
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
 * written on [handler]'s thread as they are decoded and paced by a [Playout]: [PRIME_MS] of
 * silence ahead of the first sound and after the track ran dry, whole packets dropped while more
 * than [MAX_QUEUED_MS] wait to be played.
 */
class AudioDecoder(private val handler: Handler) : FrameDecoder(handler) {
    // Used on the handler's thread only.
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
        try {
            val format = MediaFormat.createAudioFormat(MediaFormat.MIMETYPE_AUDIO_OPUS, Opus.SAMPLE_RATE, 1).apply {
                setByteBuffer("csd-0", ByteBuffer.wrap(Opus.head(channels = 1)))
                setByteBuffer("csd-1", ByteBuffer.wrap(Opus.nanos(0)))
                setByteBuffer("csd-2", ByteBuffer.wrap(Opus.nanos(Opus.SEEK_PREROLL_NS)))
            }
            start(MediaCodec.createDecoderByType(MediaFormat.MIMETYPE_AUDIO_OPUS), format, null)
            track.play()
        } catch (e: Exception) {
            super.release()
            track.release()
            throw e
        }
    }

    override fun frame(ptsUs: Long, keyframe: Boolean, data: ByteArray): Boolean = queue(ptsUs, data)

    override fun output(codec: MediaCodec, index: Int, info: MediaCodec.BufferInfo) {
        codec.getOutputBuffer(index)?.let { pcm ->
            pcm.position(info.offset).limit(info.offset + info.size)
            play(pcm, info.size)
        }
        codec.releaseOutputBuffer(index, false)
    }

    /** One decoded block, [size] bytes of [pcm], to the track as the [playout] says. */
    private fun play(pcm: ByteBuffer, size: Int) {
        val silent = playout.before(track.playbackHeadPosition) ?: return
        // Never block: the buffer holds what the playout keeps queued.
        if (silent > 0) playout.wrote(written(track.write(silence, 0, silent * 2, AudioTrack.WRITE_NON_BLOCKING)))
        playout.wrote(written(track.write(pcm, size, AudioTrack.WRITE_NON_BLOCKING)))
    }

    override fun release() {
        // A callback may be writing a buffer of the codec's into the track: both go after it.
        releaseCodec(onHandler = true)
        if (!handler.post(track::release)) track.release()
    }

    private companion object {
        const val PACKET_MS = 20
        const val PRIME_MS = 60
        const val MAX_QUEUED_MS = 150

        /** Samples in what `AudioTrack.write` says it wrote (bytes, or a negative error). */
        fun written(bytes: Int): Int = maxOf(bytes, 0) / 2
    }
}
