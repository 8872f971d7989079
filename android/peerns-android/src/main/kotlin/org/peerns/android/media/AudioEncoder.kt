package org.peerns.android.media

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.media.AudioFormat
import android.media.AudioRecord
import android.media.MediaCodec
import android.media.MediaFormat
import android.media.MediaRecorder
import android.os.Process
import java.nio.ByteOrder
import org.peerns.media.AudioLevel
import org.peerns.media.LevelMeter
import org.peerns.media.Opus
import org.peerns.media.PtsLevels

/** Where the microphone's Opus packets go: pts in µs, the packet, its RFC 6464 level (0 loudest … 127 silence). */
fun interface AudioPacketSink {
    fun packet(ptsUs: Long, data: ByteArray, audioLevel: Int?)
}

/**
 * The microphone, encoded: AudioRecord (voice communication, 48 kHz mono, 16-bit) feeds a
 * MediaCodec Opus encoder (Android 10+) 20 ms at a time; each Opus packet goes to [sink] while
 * not [muted], with the RFC 6464 level of the PCM block it encodes ([AudioLevel]; the group
 * call's router tells who speaks by it), and the level of the sound, in dBFS, to [onLevel] every
 * 100 ms (muted or not: the baby monitor listens to it). Needs the RECORD_AUDIO permission; runs
 * on a thread of its own.
 */
class AudioEncoder(
    context: Context,
    private val sink: AudioPacketSink,
    private val onLevel: (Float) -> Unit,
    private val onError: (String) -> Unit,
) {
    private val appContext = context.applicationContext

    @Volatile
    private var running: Thread? = null

    /** While true the microphone is measured but nothing is sent. */
    @Volatile
    var muted = false

    /** Starts capturing (no-op while running). */
    @Synchronized
    fun start() {
        if (running != null) return
        val thread = Thread(::run, "peerns-audio-encoder")
        running = thread // before it starts: it runs while it is the one in `running`
        thread.start()
    }

    /** Stops capturing and waits for the thread. */
    fun stop() {
        val t = synchronized(this) { running.also { running = null } } ?: return
        t.join()
    }

    private fun run() {
        // Capture is real time: a read that waits behind other threads overruns the microphone.
        Process.setThreadPriority(Process.THREAD_PRIORITY_URGENT_AUDIO)
        try {
            check(appContext.checkSelfPermission(Manifest.permission.RECORD_AUDIO) == PackageManager.PERMISSION_GRANTED) {
                "no microphone permission"
            }
            encode()
        } catch (e: Exception) {
            onError("microphone: ${e.message ?: e}")
        } finally {
            // Ended by itself (an error): a later start() runs again.
            synchronized(this) { if (running === Thread.currentThread()) running = null }
        }
    }

    private fun encode() {
        val minBuffer = AudioRecord.getMinBufferSize(Opus.SAMPLE_RATE, AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_16BIT)
        val record = AudioRecord(
            MediaRecorder.AudioSource.VOICE_COMMUNICATION,
            Opus.SAMPLE_RATE,
            AudioFormat.CHANNEL_IN_MONO,
            AudioFormat.ENCODING_PCM_16BIT,
            maxOf(minBuffer, 4 * Opus.FRAME_SAMPLES * 2),
        )
        val codec = MediaCodec.createEncoderByType(MediaFormat.MIMETYPE_AUDIO_OPUS)
        try {
            check(record.state == AudioRecord.STATE_INITIALIZED) { "the microphone did not open" }
            codec.configure(
                MediaFormat.createAudioFormat(MediaFormat.MIMETYPE_AUDIO_OPUS, Opus.SAMPLE_RATE, 1).apply {
                    setInteger(MediaFormat.KEY_BIT_RATE, BITRATE)
                },
                null,
                null,
                MediaCodec.CONFIGURE_FLAG_ENCODE,
            )
            codec.start()
            record.startRecording()
            val meter = LevelMeter(Opus.SAMPLE_RATE / 10, onLevel)
            val levels = PtsLevels()
            val pcm = ShortArray(Opus.FRAME_SAMPLES)
            val info = MediaCodec.BufferInfo()
            var samples = 0L
            while (running === Thread.currentThread()) {
                val n = record.read(pcm, 0, pcm.size)
                check(n >= 0) { "AudioRecord.read: $n" }
                meter.add(pcm, n)
                val index = codec.dequeueInputBuffer(TIMEOUT_US)
                val input = if (index >= 0) codec.getInputBuffer(index) else null
                if (input != null) {
                    input.clear()
                    input.order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().put(pcm, 0, n)
                    val pts = samples * 1_000_000 / Opus.SAMPLE_RATE
                    levels.put(pts, AudioLevel.of(pcm, n))
                    codec.queueInputBuffer(index, 0, n * 2, pts, 0)
                }
                // The block's time passes whether the codec took it or not: a block dropped is
                // a gap at the receiver, not a jump that squeezes the sound after it.
                samples += n
                drain(codec, info, levels)
            }
        } finally {
            if (record.recordingState == AudioRecord.RECORDSTATE_RECORDING) record.stop()
            record.release()
            codec.release()
        }
    }

    private fun drain(codec: MediaCodec, info: MediaCodec.BufferInfo, levels: PtsLevels) {
        while (true) {
            val index = codec.dequeueOutputBuffer(info, 0)
            if (index < 0) return
            val buffer = codec.getOutputBuffer(index)
            // The codec-config output is the OpusHead and delays, not a packet.
            if (buffer != null && info.size > 0 && info.flags and MediaCodec.BUFFER_FLAG_CODEC_CONFIG == 0 && !muted) {
                val packet = ByteArray(info.size)
                buffer.position(info.offset)
                buffer.get(packet)
                sink.packet(info.presentationTimeUs, packet, levels.at(info.presentationTimeUs))
            }
            codec.releaseOutputBuffer(index, false)
        }
    }

    companion object {
        const val BITRATE = 32_000
        private const val TIMEOUT_US = 10_000L
    }
}
