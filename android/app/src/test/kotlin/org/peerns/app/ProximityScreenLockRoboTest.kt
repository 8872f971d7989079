package org.peerns.app

import android.app.Application
import android.os.PowerManager
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowPowerManager

/** The proximity lock of an audio call on the framework's power manager: held once, released, none without a sensor. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class ProximityScreenLockRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val power = app.getSystemService(PowerManager::class.java)

    @Test
    fun heldWhileAskedAndReleasedAfter() {
        shadowOf(power).setIsWakeLockLevelSupported(PowerManager.PROXIMITY_SCREEN_OFF_WAKE_LOCK, true)
        val lock = ProximityScreenLock(app)
        val wakeLock = ShadowPowerManager.getLatestWakeLock()
        assertEquals("peerns:call-proximity", shadowOf(wakeLock).tag)
        assertFalse(lock.held)
        lock.set(true)
        lock.set(true)
        assertTrue(wakeLock.isHeld)
        assertEquals(1, shadowOf(wakeLock).timesHeld)
        lock.set(false)
        assertFalse(wakeLock.isHeld)
        assertFalse(lock.held)
        lock.set(false)
        assertFalse(wakeLock.isHeld)
    }

    @Test
    fun aPhoneWithoutTheSensorTakesNoLock() {
        ShadowPowerManager.clearWakeLocks()
        shadowOf(power).setIsWakeLockLevelSupported(PowerManager.PROXIMITY_SCREEN_OFF_WAKE_LOCK, false)
        val lock = ProximityScreenLock(app)
        lock.set(true)
        assertFalse(lock.held)
        assertNull(ShadowPowerManager.getLatestWakeLock())
    }
}
