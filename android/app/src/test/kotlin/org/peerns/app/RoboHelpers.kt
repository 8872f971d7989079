// Helpers of the Robolectric tests.
package org.peerns.app

import android.app.Application
import android.os.Looper
import org.peerns.android.PeernsService
import org.peerns.testing.SIGNAL_URL
import org.robolectric.Shadows.shadowOf

/** Runs the main looper (where the service's coroutines resume) until [done], for 30 s at most. */
fun <T : Any> idleUntil(done: () -> T?): T {
    val deadline = System.nanoTime() + 30_000_000_000
    while (System.nanoTime() < deadline) {
        shadowOf(Looper.getMainLooper()).idle()
        done()?.let { return it }
        Thread.sleep(50)
    }
    throw AssertionError("timed out")
}

/** Waits until [service]'s node runs. */
fun running(service: PeernsService) = idleUntil { service.running.value.takeIf { it } }

/** The app's settings point at the local signaling server, on loopback; no keystore key yet. */
fun useLoopbackNode(app: Application) {
    AppSettings(app).apply {
        signalingUrl = SIGNAL_URL
        iceServers = emptyList()
        loopbackOnly = true
    }
    InMemoryKeyAppService.keys.key = null
}
