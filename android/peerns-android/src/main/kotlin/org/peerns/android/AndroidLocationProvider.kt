package org.peerns.android

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.location.Location
import android.location.LocationListener
import android.location.LocationManager
import android.os.Build
import android.os.Bundle
import android.os.Looper
import org.peerns.ffi.LocationFix
import org.peerns.ffi.LocationProvider
import org.peerns.ffi.LocationSink

/**
 * Positions for stadium mode from the framework [LocationManager]: the fused provider where the
 * device has one (Android 12+), else GPS (precise permission only) or the network provider.
 * Needs ACCESS_FINE_LOCATION or ACCESS_COARSE_LOCATION granted; failures go to
 * [LocationSink.onError]. To keep receiving fixes in the background, the foreground service must
 * run with the location type (see [PeernsService]).
 */
class AndroidLocationProvider(context: Context) : LocationProvider {
    private val context = context.applicationContext
    private val manager = context.getSystemService(LocationManager::class.java)
    private val lock = Any()
    private var listener: LocationListener? = null

    override fun startUpdates(sink: LocationSink) {
        val provider = provider() ?: return sink.onError(
            if (hasLocationPermission(context)) "no location provider is enabled" else "location permission not granted",
        )
        val listener = object : LocationListener {
            override fun onLocationChanged(location: Location) {
                // The core sizes its area by the accuracy: a fix without one is of no use.
                if (location.hasAccuracy()) {
                    sink.onFix(LocationFix(location.latitude, location.longitude, location.accuracy.toDouble()))
                }
            }

            // Overridden although they have defaults: before Android 11 they are abstract.
            override fun onProviderEnabled(provider: String) {}

            override fun onProviderDisabled(provider: String) = sink.onError("location provider $provider was turned off")

            @Deprecated("Deprecated in Android 10; still called before it")
            override fun onStatusChanged(provider: String?, status: Int, extras: Bundle?) {}
        }
        synchronized(lock) {
            stopLocked()
            try {
                manager.requestLocationUpdates(provider, INTERVAL_MS, DISTANCE_M, listener, Looper.getMainLooper())
                manager.getLastKnownLocation(provider)
                    ?.takeIf { System.currentTimeMillis() - it.time < MAX_AGE_MS }
                    ?.let(listener::onLocationChanged)
            } catch (e: SecurityException) {
                sink.onError("location permission revoked: ${e.message}")
                return
            }
            this.listener = listener
        }
    }

    override fun stopUpdates() = synchronized(lock) { stopLocked() }

    private fun stopLocked() {
        listener?.let(manager::removeUpdates)
        listener = null
    }

    /** The best enabled provider this app may use, or null. */
    private fun provider(): String? {
        val fine = granted(context, Manifest.permission.ACCESS_FINE_LOCATION)
        if (!fine && !granted(context, Manifest.permission.ACCESS_COARSE_LOCATION)) return null
        val candidates = buildList {
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) add(LocationManager.FUSED_PROVIDER)
            if (fine) add(LocationManager.GPS_PROVIDER)
            add(LocationManager.NETWORK_PROVIDER)
        }
        return candidates.firstOrNull { it in manager.allProviders && manager.isProviderEnabled(it) }
    }

    private companion object {
        const val INTERVAL_MS = 10_000L
        const val DISTANCE_M = 10f
        const val MAX_AGE_MS = 2 * 60_000L
    }
}

/** Whether precise or approximate location is granted. */
fun hasLocationPermission(context: Context): Boolean = granted(context, Manifest.permission.ACCESS_FINE_LOCATION) ||
    granted(context, Manifest.permission.ACCESS_COARSE_LOCATION)

private fun granted(context: Context, permission: String) = context.checkSelfPermission(permission) == PackageManager.PERMISSION_GRANTED
