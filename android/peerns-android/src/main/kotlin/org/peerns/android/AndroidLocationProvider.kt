package org.peerns.android

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.location.Location
import android.location.LocationListener
import android.location.LocationManager
import android.location.LocationRequest
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
 *
 * While battery saver is on ([setLowPower], from [PowerSaver]) it asks for fixes less often and
 * less precisely ([LocationPolicy.LOW_POWER]: every 60 s, balanced accuracy, and the network
 * provider before GPS below Android 12); updates under way are asked for again when it changes.
 */
class AndroidLocationProvider(context: Context, lowPower: Boolean = false) : LocationProvider {
    private val context = context.applicationContext
    private val manager = context.getSystemService(LocationManager::class.java)
    private val lock = Any()
    private var lowPower = lowPower
    private var listener: LocationListener? = null
    private var sink: LocationSink? = null

    override fun startUpdates(sink: LocationSink) {
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
            val provider = requestLocked(listener, sink) ?: return
            try {
                manager.getLastKnownLocation(provider)
                    ?.takeIf { System.currentTimeMillis() - it.time < MAX_AGE_MS }
                    ?.let(listener::onLocationChanged)
            } catch (e: SecurityException) {
                // Revoked just now: the request above fails the same way soon.
            }
        }
    }

    override fun stopUpdates() = synchronized(lock) { stopLocked() }

    /**
     * Battery saver is [on] or off: updates under way are asked for again with the policy that
     * fits ([LocationPolicy.of]); later ones start with it.
     */
    fun setLowPower(on: Boolean) {
        synchronized(lock) {
            if (on == lowPower) return
            lowPower = on
            val listener = listener ?: return
            val sink = sink ?: return
            stopLocked()
            requestLocked(listener, sink)
        }
    }

    /** Asks [listener] for fixes under the policy in force; the provider, or null after telling [sink] why not. */
    private fun requestLocked(listener: LocationListener, sink: LocationSink): String? {
        val policy = LocationPolicy.of(lowPower)
        val provider = provider(policy) ?: run {
            sink.onError(if (hasLocationPermission(context)) "no location provider is enabled" else "location permission not granted")
            return null
        }
        try {
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) {
                val quality = if (policy.precise) LocationRequest.QUALITY_HIGH_ACCURACY else LocationRequest.QUALITY_BALANCED_POWER_ACCURACY
                val request = LocationRequest.Builder(policy.intervalMs)
                    .setMinUpdateDistanceMeters(policy.distanceM)
                    .setQuality(quality)
                    .build()
                manager.requestLocationUpdates(provider, request, context.mainExecutor, listener)
            } else {
                manager.requestLocationUpdates(provider, policy.intervalMs, policy.distanceM, listener, Looper.getMainLooper())
            }
        } catch (e: SecurityException) {
            sink.onError("location permission revoked: ${e.message}")
            return null
        }
        this.listener = listener
        this.sink = sink
        return provider
    }

    private fun stopLocked() {
        listener?.let(manager::removeUpdates)
        listener = null
        sink = null
    }

    /**
     * The best enabled provider this app may use under [policy], or null: the fused one where
     * it exists; else GPS before the network provider, or after it when not [LocationPolicy.precise].
     */
    private fun provider(policy: LocationPolicy): String? {
        val fine = granted(context, Manifest.permission.ACCESS_FINE_LOCATION)
        if (!fine && !granted(context, Manifest.permission.ACCESS_COARSE_LOCATION)) return null
        val candidates = buildList {
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) add(LocationManager.FUSED_PROVIDER)
            if (fine && policy.precise) add(LocationManager.GPS_PROVIDER)
            add(LocationManager.NETWORK_PROVIDER)
            if (fine && !policy.precise) add(LocationManager.GPS_PROVIDER)
        }
        return candidates.firstOrNull { it in manager.allProviders && manager.isProviderEnabled(it) }
    }

    private companion object {
        const val MAX_AGE_MS = 2 * 60_000L
    }
}

/** How often, how far apart and how precisely stadium mode asks for positions. */
data class LocationPolicy(val intervalMs: Long, val distanceM: Float, val precise: Boolean) {
    companion object {
        /** Normally: every 10 s or 10 m, high accuracy (people a few seats apart). */
        val NORMAL = LocationPolicy(intervalMs = 10_000, distanceM = 10f, precise = true)

        /** Battery saver: every 60 s or 50 m, balanced accuracy (about a block). */
        val LOW_POWER = LocationPolicy(intervalMs = 60_000, distanceM = 50f, precise = false)

        fun of(lowPower: Boolean) = if (lowPower) LOW_POWER else NORMAL
    }
}

/** Whether precise or approximate location is granted. */
fun hasLocationPermission(context: Context): Boolean = granted(context, Manifest.permission.ACCESS_FINE_LOCATION) ||
    granted(context, Manifest.permission.ACCESS_COARSE_LOCATION)

private fun granted(context: Context, permission: String) = context.checkSelfPermission(permission) == PackageManager.PERMISSION_GRANTED
