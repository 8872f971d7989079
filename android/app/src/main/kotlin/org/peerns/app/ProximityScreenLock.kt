package org.peerns.app

import android.content.Context
import android.os.PowerManager

/**
 * Turns the screen off while something is near it (the ear) during an audio call on the
 * earpiece, so a cheek does not press Hang up or Mute; the screen comes back when the phone
 * leaves the ear. A phone without a proximity sensor does nothing.
 */
class ProximityScreenLock(context: Context) {
    private val lock: PowerManager.WakeLock? = context.getSystemService(PowerManager::class.java)
        ?.takeIf { it.isWakeLockLevelSupported(PowerManager.PROXIMITY_SCREEN_OFF_WAKE_LOCK) }
        ?.newWakeLock(PowerManager.PROXIMITY_SCREEN_OFF_WAKE_LOCK, "peerns:call-proximity")
        ?.apply { setReferenceCounted(false) }

    /** Whether the screen follows the proximity sensor now. */
    val held: Boolean get() = lock?.isHeld == true

    /** Holds the lock while [on] (at most [MAX_MS]: a call left running is not kept dark for ever), or releases it. */
    fun set(on: Boolean) {
        val lock = lock ?: return
        if (on && !lock.isHeld) {
            lock.acquire(MAX_MS)
        } else if (!on && lock.isHeld) {
            // The screen stays off until the phone leaves the ear, not lit against the cheek.
            lock.release(PowerManager.RELEASE_FLAG_WAIT_FOR_NO_PROXIMITY)
        }
    }

    private companion object {
        const val MAX_MS = 4 * 60 * 60 * 1000L
    }
}
