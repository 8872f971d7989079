package org.peerns.android

import android.app.Notification
import android.app.PendingIntent
import android.app.Service
import android.content.Intent
import android.content.pm.ServiceInfo
import android.graphics.drawable.Icon
import android.os.Binder
import android.os.Build
import android.os.IBinder
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.launch
import org.peerns.NodeStatus
import org.peerns.Peerns
import org.peerns.ffi.NodeConfig
import org.peerns.ffi.PeernsException
import org.peerns.ffi.SignalingState

/**
 * Keeps a [Peerns] node running while the user wants to be reachable: the node starts when the
 * service is created and stops when it is destroyed, and the service runs in the foreground so
 * that Android keeps the process, and the node's sockets, alive.
 *
 * Subclass it to supply [config], and declare the subclass in the app's manifest with
 * `android:foregroundServiceType="specialUse|location"` and the specialUse subtype property
 * (android/README.md explains the choice). Start it with `startForegroundService` from a visible
 * activity, again after the location permission was granted (to add the location type); bind
 * with flags 0 to read [node] and [status]; [ACTION_STOP] (the notification's Stop) ends it.
 */
abstract class PeernsService : Service() {
    /** The node's configuration; read once, when the service is created. */
    protected abstract fun config(): NodeConfig

    /** The node, or null if [config] was refused. */
    var node: Peerns? = null
        private set

    private val mutableStatus = MutableStateFlow(NodeStatus(SignalingState.Offline("starting")))

    /** The node's status for screens; offline with the reason when it failed or stopped. */
    val status: StateFlow<NodeStatus> = mutableStatus.asStateFlow()

    /** On the main thread, like the lifecycle callbacks: no locking needed. */
    private val scope = MainScope()
    private var network: NetworkMonitor? = null
    private var started = false
    private var appActive = false

    /**
     * A screen of the app is visible (`true`) or not. Discovery beats every 0.8 s in the
     * foreground and every 5 s in the background, and tells its peers; applied once the node runs.
     */
    fun setAppActive(active: Boolean) {
        appActive = active
        if (started) {
            try {
                node?.setAppActive(active)
            } catch (e: PeernsException) {
                // Stopping: nothing to change.
            }
        }
    }

    /** What [onBind] returns: the service itself, for clients in this process. */
    inner class LocalBinder : Binder() {
        val service: PeernsService get() = this@PeernsService
    }

    override fun onBind(intent: Intent): IBinder = LocalBinder()

    override fun onCreate() {
        super.onCreate()
        val node = try {
            Peerns(config(), AndroidKeyStore(this), AndroidNotifier(this), AndroidLocationProvider(this))
        } catch (e: PeernsException) {
            mutableStatus.value = NodeStatus(SignalingState.Offline("bad configuration: ${e.message}"))
            return
        }
        this.node = node
        scope.launch {
            try {
                node.start()
            } catch (e: PeernsException) {
                mutableStatus.value = NodeStatus(SignalingState.Offline("could not start: ${e.message}"))
                return@launch
            }
            started = true
            setAppActive(appActive)
            network = NetworkMonitor(this@PeernsService) { kind, pathId ->
                try {
                    node.networkChanged(kind, pathId)
                } catch (e: PeernsException) {
                    // Stopping: nothing to tell.
                }
            }
            node.status.collect { mutableStatus.value = it }
        }
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        if (intent?.action == ACTION_STOP) {
            stopSelf()
        } else {
            enterForeground()
        }
        // Not sticky: Android 12+ does not let a restart from the background enter the foreground.
        return START_NOT_STICKY
    }

    override fun onDestroy() {
        network?.close()
        network = null
        scope.cancel()
        node?.let { node ->
            // stop() runs on the library's runtime and may take a moment to close connections;
            // nothing needs to wait for it.
            CoroutineScope(Dispatchers.Default).launch {
                try {
                    node.stop()
                } catch (e: PeernsException) {
                    // Already stopped or never started.
                } finally {
                    node.close()
                }
            }
        }
        node = null
        mutableStatus.value = NodeStatus(SignalingState.Offline("stopped"))
        super.onDestroy()
    }

    /**
     * Android 14+ needs the types at run time: specialUse always, location only while a location
     * permission is granted (starting with it otherwise throws a SecurityException).
     */
    private fun enterForeground() {
        NotificationChannels.create(this)
        val stop = PendingIntent.getService(
            this,
            0,
            Intent(this, javaClass).setAction(ACTION_STOP),
            PendingIntent.FLAG_IMMUTABLE,
        )
        val notification = Notification.Builder(this, NotificationChannels.SERVICE)
            .setSmallIcon(android.R.drawable.stat_sys_upload_done)
            .setContentTitle("PeerNS is online")
            .setContentText("Your peers can reach this device")
            .setOngoing(true)
            .setContentIntent(openAppIntent(this, null))
            .addAction(
                Notification.Action.Builder(
                    Icon.createWithResource(this, android.R.drawable.ic_menu_close_clear_cancel),
                    "Stop",
                    stop,
                ).build(),
            )
            .build()
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.UPSIDE_DOWN_CAKE) {
            val location = if (hasLocationPermission(this)) ServiceInfo.FOREGROUND_SERVICE_TYPE_LOCATION else 0
            startForeground(NOTIFICATION_ID, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_SPECIAL_USE or location)
        } else {
            startForeground(NOTIFICATION_ID, notification)
        }
    }

    companion object {
        /** The intent action that stops the service. */
        const val ACTION_STOP = "org.peerns.action.STOP"
        private const val NOTIFICATION_ID = 1
    }
}
