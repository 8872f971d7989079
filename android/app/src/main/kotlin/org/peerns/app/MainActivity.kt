package org.peerns.app

import android.Manifest
import android.app.Activity
import android.content.ComponentName
import android.content.Intent
import android.content.ServiceConnection
import android.content.pm.PackageManager
import android.os.Build
import android.os.Bundle
import android.os.IBinder
import android.util.TypedValue
import android.view.View
import android.view.WindowInsets
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch
import org.peerns.NodeStatus
import org.peerns.android.PeernsService
import org.peerns.android.hasLocationPermission
import org.peerns.ffi.PeernsException
import org.peerns.ffi.SignalingState

/**
 * The one screen: this device's identity, the signaling state and the connected peers. Starts the
 * node's foreground service while visible (it keeps running in the background until stopped from
 * its notification) and binds to it to follow its status.
 */
class MainActivity : Activity() {
    private lateinit var name: TextView
    private lateinit var fingerprint: TextView
    private lateinit var signaling: TextView
    private lateinit var peers: TextView
    private lateinit var locationButton: Button

    /** Alive between onStart and onStop. */
    private var scope: CoroutineScope? = null
    private var collecting: Job? = null
    private var service: PeernsService? = null

    private val connection = object : ServiceConnection {
        override fun onServiceConnected(component: ComponentName, binder: IBinder) {
            val service = (binder as PeernsService.LocalBinder).service
            this@MainActivity.service = service
            service.setAppActive(true)
            collecting = scope?.launch { service.status.collect(::render) }
        }

        override fun onServiceDisconnected(component: ComponentName) {
            collecting?.cancel()
            service = null
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(layout())
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU &&
            checkSelfPermission(Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED
        ) {
            requestPermissions(arrayOf(Manifest.permission.POST_NOTIFICATIONS), REQUEST_NOTIFICATIONS)
        }
    }

    override fun onStart() {
        super.onStart()
        scope = MainScope()
        locationButton.visibility = if (hasLocationPermission(this)) View.GONE else View.VISIBLE
        val intent = Intent(this, AppService::class.java)
        startForegroundService(intent)
        // Flags 0: the binding does not keep the service alive, so its Stop action works.
        bindService(intent, connection, 0)
    }

    override fun onStop() {
        service?.setAppActive(false)
        unbindService(connection)
        service = null
        scope?.cancel()
        scope = null
        super.onStop()
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<String>, grantResults: IntArray) {
        if (requestCode == REQUEST_LOCATION && hasLocationPermission(this)) {
            locationButton.visibility = View.GONE
            // Again, so that the service adds the location type to its foreground types.
            startForegroundService(Intent(this, AppService::class.java))
        }
    }

    private fun render(status: NodeStatus) {
        val identity = try {
            service?.node?.identity()
        } catch (e: PeernsException) {
            null // not started (yet)
        }
        name.text = identity?.let { it.displayName ?: "(no name set)" } ?: "…"
        fingerprint.text = identity?.let { "${it.short}\n${it.fingerprint}" } ?: "…"
        signaling.text = describe(status.signaling)
        peers.text = status.peers.sorted().joinToString("\n").ifEmpty { "none" }
    }

    private fun layout(): View {
        val column = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        fun label(text: String) = column.addView(
            TextView(this).apply {
                this.text = text
                setTextSize(TypedValue.COMPLEX_UNIT_SP, 13f)
                setPadding(0, dp(16), 0, 0)
            },
        )
        fun value(monospace: Boolean = false) = TextView(this).apply {
            setTextSize(TypedValue.COMPLEX_UNIT_SP, 18f)
            setTextIsSelectable(true)
            if (monospace) typeface = android.graphics.Typeface.MONOSPACE
            column.addView(this)
        }
        label("Name")
        name = value()
        label("Fingerprint")
        fingerprint = value(monospace = true)
        label("Signaling")
        signaling = value()
        label("Connected peers")
        peers = value(monospace = true)
        locationButton = Button(this).apply {
            text = "Allow location for stadium mode"
            setOnClickListener {
                requestPermissions(
                    arrayOf(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION),
                    REQUEST_LOCATION,
                )
            }
        }
        column.addView(locationButton)
        val padding = dp(20)
        column.setPadding(padding, padding, padding, padding)
        return ScrollView(this).apply {
            addView(column)
            // Edge to edge (enforced from Android 15): keep the text clear of the system bars.
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                setOnApplyWindowInsetsListener { view, insets ->
                    val bars = insets.getInsets(WindowInsets.Type.systemBars())
                    view.setPadding(bars.left, bars.top, bars.right, bars.bottom)
                    insets
                }
            }
        }
    }

    private fun dp(value: Int) =
        TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_DIP, value.toFloat(), resources.displayMetrics).toInt()

    private companion object {
        const val REQUEST_NOTIFICATIONS = 1
        const val REQUEST_LOCATION = 2
    }
}

/** The signaling state in words. */
fun describe(state: SignalingState): String = when (state) {
    SignalingState.Connected -> "connected"
    SignalingState.Connecting -> "connecting…"
    is SignalingState.Reconnecting -> "reconnecting (attempt ${state.attempt}, next in ${state.nextInMs / 1000u} s)"
    is SignalingState.RateLimited -> "rate-limited for ${state.untilMs / 1000u} s"
    is SignalingState.Offline -> "offline: ${state.reason}"
}
