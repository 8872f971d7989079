package org.peerns.android

import android.Manifest
import android.app.Application
import android.content.Intent
import android.location.LocationManager
import android.location.LocationRequest
import android.os.Looper
import android.os.PowerManager
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.ffi.LocationFix
import org.peerns.ffi.LocationSink
import org.peerns.ffi.NoHandle
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/**
 * Battery saver on Robolectric's Android 16: [PowerSaver] follows `PowerManager.isPowerSaveMode`
 * through its broadcast, and [AndroidLocationProvider] asks for coarser updates while it is on.
 */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class PowerSaverRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val power = app.getSystemService(PowerManager::class.java)
    private val location = app.getSystemService(LocationManager::class.java)

    /** The system turns battery saver [on] or off and says so. */
    private fun systemSaver(on: Boolean) {
        shadowOf(power).setIsPowerSaveMode(on)
        app.sendBroadcast(Intent(PowerManager.ACTION_POWER_SAVE_MODE_CHANGED))
        shadowOf(Looper.getMainLooper()).idle()
    }

    @Test
    fun followsTheSystemsBatterySaver() {
        shadowOf(power).setIsPowerSaveMode(true)
        val saver = PowerSaver(app)
        assertTrue(saver.on.value, "read at creation")
        systemSaver(false)
        assertFalse(saver.on.value)
        systemSaver(true)
        assertTrue(saver.on.value)
        saver.close()
        systemSaver(false)
        assertTrue(saver.on.value, "no longer followed after close")
    }

    /** A sink that keeps what it was told (no Rust object behind it). */
    private class RecordingSink : LocationSink(NoHandle) {
        val errors = mutableListOf<String>()

        override fun onFix(fix: LocationFix) {}

        override fun onError(msg: String) {
            errors += msg
        }
    }

    /** The one request in force, on whichever provider. */
    private fun request(): LocationRequest? = location.allProviders.flatMap { shadowOf(location).getLocationRequests(it) }.singleOrNull()

    @Test
    fun locationUpdatesAreCoarserUnderBatterySaver() {
        shadowOf(app).grantPermissions(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION)
        val provider = AndroidLocationProvider(app)
        val sink = RecordingSink()
        provider.startUpdates(sink)
        val normal = request()!!
        assertEquals(listOf(10_000L, LocationRequest.QUALITY_HIGH_ACCURACY), listOf(normal.intervalMillis, normal.quality))

        provider.setLowPower(true)
        val low = request()!!
        assertEquals(listOf(60_000L, LocationRequest.QUALITY_BALANCED_POWER_ACCURACY), listOf(low.intervalMillis, low.quality))
        assertEquals(50f, low.minUpdateDistanceMeters)

        provider.setLowPower(false)
        assertEquals(10_000L, request()!!.intervalMillis)

        // Stopped, nothing is asked for; started again under battery saver, at once coarse.
        provider.stopUpdates()
        provider.setLowPower(true)
        assertEquals(null, request())
        provider.startUpdates(sink)
        assertEquals(60_000L, request()!!.intervalMillis)
        provider.stopUpdates()
        assertEquals(emptyList(), sink.errors)
    }
}
