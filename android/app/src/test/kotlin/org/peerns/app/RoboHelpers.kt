// Helpers of the Robolectric tests.
package org.peerns.app

import android.app.Application
import android.content.ComponentName
import android.content.Intent
import android.os.Looper
import org.peerns.android.PeernsService
import org.peerns.testing.SIGNAL_URL
import org.robolectric.Robolectric
import org.robolectric.Shadows.shadowOf
import org.robolectric.android.controller.ServiceController

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

/** The app's service (its keystore in memory), created and started, once its node runs. */
fun runningService(): ServiceController<InMemoryKeyAppService> =
    Robolectric.buildService(InMemoryKeyAppService::class.java).create().startCommand(0, 1).also { running(it.get()) }

/** An activity's `bindService` of the app's service reaches [service] (as Android would bind it). */
fun bindsTo(app: Application, service: PeernsService) = shadowOf(app).setComponentNameAndServiceForBindServiceForIntent(
    Intent(app, AppService::class.java),
    ComponentName(app, AppService::class.java),
    service.onBind(Intent(app, InMemoryKeyAppService::class.java)),
)
