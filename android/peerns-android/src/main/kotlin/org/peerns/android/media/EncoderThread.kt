package org.peerns.android.media

import android.os.Bundle
import android.os.Handler
import android.os.HandlerThread

/**
 * What the camera's and the screen's encoders share: a thread of their own ([handler]), the
 * running [SurfaceH264] (kept under a lock: the core's requests come on other threads), and
 * stopping on that thread ([stop], [release]).
 */
abstract class EncoderThread(name: String) : CodecParameters {
    private val thread = HandlerThread(name).apply { start() }
    protected val handler = Handler(thread.looper)
    private val lock = Any()
    private var codec: SurfaceH264? = null

    /** Stops what runs, on the encoder's thread; it ends with [releaseCodec]. */
    protected abstract fun stopNow()

    /** [encoder] is the one running now: the core's requests go to it; returns the one before. */
    protected fun useCodec(encoder: SurfaceH264): SurfaceH264? = synchronized(lock) { codec.also { codec = encoder } }

    /** Releases the running encoder, if any. */
    protected fun releaseCodec() = synchronized(lock) { codec.also { codec = null } }?.release()

    /** Stops capturing and encoding (the thread stays for a later start). */
    fun stop() {
        handler.post(::stopNow)
    }

    /** Stops and ends the thread; this encoder cannot start again. */
    fun release() {
        handler.post(::stopNow)
        thread.quitSafely()
    }

    override fun setParameters(params: Bundle): Unit = synchronized(lock) { codec?.setParameters(params) }
}
