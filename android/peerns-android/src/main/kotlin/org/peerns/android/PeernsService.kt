package org.peerns.android

import android.Manifest
import android.app.Notification
import android.app.NotificationManager
import android.app.PendingIntent
import android.app.RemoteInput
import android.app.Service
import android.content.Intent
import android.content.pm.PackageManager
import android.content.pm.ServiceInfo
import android.graphics.drawable.Icon
import android.os.Binder
import android.os.Build
import android.os.IBinder
import android.util.Log
import java.io.File
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import org.peerns.NodeStatus
import org.peerns.Peerns
import org.peerns.ffi.ActiveCall
import org.peerns.ffi.CallKinds
import org.peerns.ffi.KeyStore
import org.peerns.ffi.NodeConfig
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.NotificationCategory
import org.peerns.ffi.PeernsException
import org.peerns.ffi.PeernsNotification
import org.peerns.ffi.SignalingState
import org.peerns.telecom.CallControl

/**
 * Keeps a [Peerns] node running while the user wants to be reachable: the node starts when the
 * service is created and stops when it is destroyed, and the service runs in the foreground so
 * that Android keeps the process, and the node's sockets, alive.
 *
 * Subclass it to supply [config], and declare the subclass in the app's manifest with
 * `android:foregroundServiceType="dataSync|location|camera|microphone|mediaProjection"`
 * (android/README.md explains the choice). Start it with `startForegroundService` from a visible
 * activity; bind with flags 0 to read [node], [status], [problem] and [stadium]; [ACTION_STOP]
 * (the notification's Stop) ends it. The foreground types follow the features that are on:
 * dataSync while nothing captures, location only while stadium mode is on ([startStadium],
 * [stopStadium]), camera and microphone while a call or the baby monitor captures
 * ([setCapturing]), mediaProjection while our screen is shared ([setScreenShared]). Notification actions come here too: a
 * message's direct reply ([ACTION_REPLY]) and an incoming call's Decline ([ACTION_DECLINE]).
 */
abstract class PeernsService : Service() {
    /** The node's configuration; read when the node is made (at creation, or a new identity). */
    protected abstract fun config(): NodeConfig

    /** The store of the identity-wrapping key: the Android Keystore. */
    protected open fun keyStore(): KeyStore = AndroidKeyStore(this)

    /** The files [keyStore] keeps outside the profile; they move aside with a lost profile. */
    protected open fun keyStoreFiles(): List<File> = listOf(AndroidKeyStore.sealedFile(this))

    /** The node, or null while none runs (refused configuration, failed start, stopped). */
    var node: Peerns? = null
        private set

    private val mutableStatus = MutableStateFlow(NodeStatus(SignalingState.Offline("starting")))

    /** The node's status for screens; offline with the reason when it failed or stopped. */
    val status: StateFlow<NodeStatus> = mutableStatus.asStateFlow()

    private val mutableProblem = MutableStateFlow<StartProblem?>(null)

    /** Why the node is not running, when it could not start; null otherwise. */
    val problem: StateFlow<StartProblem?> = mutableProblem.asStateFlow()

    private val mutableRunning = MutableStateFlow(false)

    /** Whether the node has started (and not stopped): its calls work. */
    val running: StateFlow<Boolean> = mutableRunning.asStateFlow()

    private val mutableStadium = MutableStateFlow(false)

    /** Whether stadium mode is on (and with it the location foreground type). */
    val stadium: StateFlow<Boolean> = mutableStadium.asStateFlow()

    private val mutablePowerSave = MutableStateFlow(false)

    /**
     * Whether the system's battery saver is on ([PowerSaver], followed from creation to
     * destruction): stadium mode then asks for positions less often and less precisely, and the
     * screens adapt (android/README.md, "Battery saver").
     */
    val powerSave: StateFlow<Boolean> = mutablePowerSave.asStateFlow()
    private var powerSaver: PowerSaver? = null
    private var location: AndroidLocationProvider? = null

    /** On the main thread, like the lifecycle callbacks: no locking needed. */
    private val scope = MainScope()
    private var notifier: AndroidNotifier? = null
    private var network: NetworkMonitor? = null
    private var started = false

    /** The foreground service types in force (0 before the service enters the foreground). */
    var foregroundTypes = 0
        private set
    private var appActive = false

    /** The capture foreground types claimed now ([setCapturing], [setScreenShared]). */
    private var capturing = 0

    /** The types each capturer claims, by owner. */
    private val claims = HashMap<String, Int>()

    /** Whether the foreground notification says stadium mode is on. */
    private var shownStadium = false

    // Whether the ongoing notification says we are online.
    private var shownOnline = false
    private var foreground = false

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

    /**
     * Turns stadium mode on: adds the location foreground type, then lets the node read
     * positions. Call it from a visible screen once a location permission is granted (Android
     * refuses the location type otherwise); false, and nothing changes, when it is not or the
     * node does not run.
     */
    fun startStadium(): Boolean {
        val node = node ?: return false
        if (!started || !hasLocationPermission(this)) return false
        mutableStadium.value = true
        if (foreground) enterForeground()
        return try {
            node.startStadium()
            true
        } catch (e: PeernsException) {
            mutableStadium.value = false
            if (foreground) enterForeground()
            false
        }
    }

    /**
     * The screen shown captures with the [camera] and/or the [microphone] (or stopped: both
     * false): [setCapturing] for the owner [SCREEN_CAPTURE].
     */
    fun setCapturing(camera: Boolean, microphone: Boolean) = setCapturing(SCREEN_CAPTURE, camera, microphone)

    /**
     * [owner] (a call's screen, or the baby monitor that goes on with the screen off) captures
     * with the [camera] and/or the [microphone], or stopped (both false). Call it from a visible
     * screen once their permissions are granted: the camera and microphone foreground types
     * (each only with its permission) are held while any owner claims them.
     */
    fun setCapturing(owner: String, camera: Boolean, microphone: Boolean) {
        val granted = { permission: String -> checkSelfPermission(permission) == PackageManager.PERMISSION_GRANTED }
        val types = (if (camera && granted(Manifest.permission.CAMERA)) ServiceInfo.FOREGROUND_SERVICE_TYPE_CAMERA else 0) or
            (if (microphone && granted(Manifest.permission.RECORD_AUDIO)) ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE else 0)
        claim(owner, types)
    }

    /**
     * Our screen is shared in a call, or no longer: the mediaProjection foreground type is held
     * while it is. Call it from the visible activity once the user allowed the capture (the
     * system's dialog; Android 14 refuses the type before that) and before the projection is
     * taken (from Android 10 the type must be held by then). Returns whether the service now
     * holds what a share needs (always before Android 10, which has no types).
     */
    fun setScreenShared(shared: Boolean): Boolean {
        val type = ServiceInfo.FOREGROUND_SERVICE_TYPE_MEDIA_PROJECTION
        claim(SCREEN_SHARE, if (shared) type else 0)
        // Not in the foreground (not started yet, or refused): no share, said by the caller.
        return Build.VERSION.SDK_INT < Build.VERSION_CODES.Q || (foreground && foregroundTypes and type != 0)
    }

    /** [owner] claims the capture foreground [types] (0: none); the service holds every type claimed. */
    @Synchronized
    private fun claim(owner: String, types: Int) {
        if (types == 0) claims.remove(owner) else claims[owner] = types
        val now = claims.values.fold(0) { all, claimed -> all or claimed }
        if (now == capturing) return
        capturing = now
        if (foreground) enterForeground()
    }

    /** Turns stadium mode off and drops the location foreground type. */
    fun stopStadium() {
        if (!mutableStadium.value) return
        mutableStadium.value = false
        if (foreground) enterForeground()
        val node = node ?: return
        scope.launch {
            try {
                node.stopStadium()
            } catch (e: PeernsException) {
                // Stopped meanwhile: nothing to leave.
            }
        }
    }

    /**
     * After [StartProblem.KeyLost]: moves the old profile and its sealed key aside (nothing is
     * deleted) and starts a node with a new identity. Returns where the old profile now is, or
     * null when there was no lost key to replace.
     */
    fun startNewIdentity(): File? {
        if (mutableProblem.value !is StartProblem.KeyLost) return null
        val aside = moveProfileAside(File(config().profileDir), keyStoreFiles())
        mutableProblem.value = null
        launchNode()
        return aside
    }

    /** What [onBind] returns: the service itself, for clients in this process. */
    inner class LocalBinder : Binder() {
        val service: PeernsService get() = this@PeernsService
    }

    override fun onBind(intent: Intent): IBinder = LocalBinder()

    override fun onCreate() {
        super.onCreate()
        // Running again: the notification that said it went offline is out of date.
        getSystemService(NotificationManager::class.java)?.cancel(OFFLINE_TAG, 0)
        val saver = PowerSaver(this).also { powerSaver = it }
        mutablePowerSave.value = saver.on.value
        scope.launch {
            saver.on.collect { on ->
                mutablePowerSave.value = on
                location?.setLowPower(on)
            }
        }
        launchNode()
    }

    private fun launchNode() {
        mutableStatus.value = NodeStatus(SignalingState.Offline("starting"))
        val notifier = AndroidNotifier(this, actions = javaClass).also { notifier = it }
        val location = AndroidLocationProvider(this, lowPower = mutablePowerSave.value)
        this.location = location
        val node = try {
            Peerns(config(), keyStore(), notifier, location)
        } catch (e: PeernsException) {
            fail(StartProblem.Failed("bad configuration: ${e.message}"))
            return
        }
        this.node = node
        scope.launch {
            try {
                startWhenFree(node)
            } catch (e: PeernsException) {
                this@PeernsService.node = null
                node.close()
                fail(
                    when (e) {
                        is PeernsException.KeyLost -> StartProblem.KeyLost(e.message)
                        else -> StartProblem.Failed("could not start: ${e.message}")
                    },
                )
                return@launch
            }
            started = true
            mutableRunning.value = true
            PeernsTelecom.control = NodeCalls(node)
            PeernsTelecom.showIncomingUi = { _, caller, name ->
                notifier.notify(PeernsNotification(NotificationCategory.INCOMING_CALL, name, "Incoming call", caller))
            }
            PeernsTelecom.register(this@PeernsService)
            setAppActive(appActive)
            network = NetworkMonitor(this@PeernsService) { kind, pathId, metered ->
                try {
                    node.networkChanged(kind, pathId, metered)
                } catch (e: PeernsException) {
                    // Stopping: nothing to tell.
                }
            }
            launch { removeEndedRings(node, notifier) }
            node.status.collect {
                mutableStatus.value = it
                showOnline()
            }
        }
    }

    /** The ongoing notification says whether we are online, as the signaling state changes. */
    private fun showOnline() {
        val online = mutableStatus.value.signaling is SignalingState.Connected
        if (!foreground || online == shownOnline) return
        shownOnline = online
        // Its text only: the foreground and its types stay as they are.
        getSystemService(NotificationManager::class.java)?.notify(NOTIFICATION_ID, ongoing(shownStadium, online))
    }

    /** Removes an incoming call's notification once the call no longer rings. */
    private suspend fun removeEndedRings(node: Peerns, notifier: AndroidNotifier) {
        try {
            node.events.collect { e ->
                if (e is NodeEvent.CallState && e.status.state != "ringing") notifier.cancelCall(e.fingerprint)
                telecomFollows(e)
            }
        } catch (e: PeernsException) {
            // Stopped.
        }
    }

    /**
     * Telecom follows the node's calls ([PeernsTelecom]): an incoming call is reported to it
     * (the notification rings whatever it says), a call we place is placed through it when
     * `MANAGE_OWN_CALLS` is held, and each connection follows its call's state.
     */
    private fun telecomFollows(e: NodeEvent) {
        when (e) {
            is NodeEvent.IncomingCall ->
                PeernsTelecom.reportIncoming(this, e.call, e.fingerprint, e.name.ifEmpty { e.fingerprint.take(8) }, e.kinds.video)
            is NodeEvent.CallState -> {
                if (e.status.state == "dialing" && PeernsTelecom.calls[e.call] == null) {
                    val video = node?.activeCall()?.takeIf { it.call == e.call }?.callerKinds?.video == true
                    PeernsTelecom.placeOutgoing(this, e.call, e.fingerprint, video)
                }
                PeernsTelecom.follow(e.call, e.status.state, e.status.reason)
            }
            else -> {}
        }
    }

    /** What Telecom's connections ask of the node's calls. */
    private inner class NodeCalls(private val node: Peerns) : CallControl {
        override fun answer(call: String, video: Boolean) {
            accept(node, call, video)
            activeCaller(node, call)?.let { notifier?.cancelCall(it) }
        }

        override fun decline(call: String) {
            node.declineCall(call)
            activeCaller(node, call)?.let { notifier?.cancelCall(it) }
        }

        override fun hangUp(call: String) = node.hangUp(call)

        private fun activeCaller(node: Peerns, call: String) = node.activeCall()?.takeIf { it.call == call }?.fingerprint
    }

    /**
     * Answers the call that rings from [caller] as it was offered: a video call with the camera,
     * as the notification's video Answer shows (the Answer of its notification opens the app,
     * which calls this); false when no call of [caller] rings.
     */
    fun answerCall(caller: String): Boolean = withRinging(caller) { node, call ->
        accept(node, call.call, video = call.callerKinds.video)
    }

    /**
     * Accepts [call]; a video call carries a screen track too, as from the app's call screen,
     * and under battery saver its camera starts off (it can be turned on).
     */
    private fun accept(node: Peerns, call: String, video: Boolean) {
        node.acceptCall(call, CallKinds(audio = true, video = video, screen = video))
        if (video && mutablePowerSave.value) node.setCameraOff(call, true)
    }

    /** Declines the call that rings from [caller]; false when none does. */
    fun declineCall(caller: String): Boolean = withRinging(caller) { node, call -> node.declineCall(call.call) }

    private fun withRinging(caller: String, block: (Peerns, ActiveCall) -> Unit): Boolean {
        val node = node?.takeIf { started } ?: return false
        return try {
            val call =
                node.activeCall()?.takeIf { it.fingerprint == caller && !it.outgoing && it.status.state == "ringing" } ?: return false
            block(node, call)
            notifier?.cancelCall(caller)
            true
        } catch (e: PeernsException) {
            false
        }
    }

    /**
     * Sends [text], a notification's direct reply, to [conversation] (a group's ID when
     * [group]) once the node runs, and shows it in the notification; one that cannot be sent
     * (not a contact or member any more) is said there instead.
     */
    private fun reply(conversation: String, text: String, group: Boolean) {
        scope.launch {
            running.first { it }
            val node = node ?: return@launch
            try {
                val title = if (group) {
                    node.groupSend(conversation, text)
                    node.groups().firstOrNull { it.id == conversation }?.name?.ifBlank { null } ?: conversation.take(8)
                } else {
                    node.sendMessage(conversation, text)
                    node.contacts().firstOrNull { it.fingerprint == conversation }?.name ?: conversation.take(8)
                }
                notifier?.replied(conversation, title, text, group)
            } catch (e: PeernsException) {
                notifier?.replyNotSent(conversation, group, text, e.message ?: "not sent")
            }
        }
    }

    /**
     * Starts [node]; while the profile is still held by the node of a service that just stopped
     * (its stop closes connections first, which may take seconds), tries again for a while.
     */
    private suspend fun startWhenFree(node: Peerns) {
        repeat(PROFILE_RETRIES) {
            try {
                return node.start()
            } catch (e: PeernsException.ProfileInUse) {
                delay(PROFILE_RETRY_MS)
            }
        }
        node.start()
    }

    /** The user opened the chat [conversation] (a contact's, or a group's ID): its message notification and history go. */
    fun chatOpened(conversation: String) {
        notifier?.clear(conversation)
    }

    private fun fail(problem: StartProblem) {
        mutableProblem.value = problem
        mutableStatus.value = NodeStatus(SignalingState.Offline(problem.reason))
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        val conversation = intent?.getStringExtra(EXTRA_CONVERSATION)
        when (intent?.action) {
            // Not when a newer start (the app opened meanwhile) is pending: that one keeps it.
            ACTION_STOP -> stopSelf(startId)
            ACTION_REPLY -> {
                enterForeground()
                val text = RemoteInput.getResultsFromIntent(intent)?.getCharSequence(KEY_REPLY)?.toString()?.trim()
                val group = intent.getStringExtra(EXTRA_CATEGORY) == NotificationCategory.GROUP_MESSAGE.name
                if (conversation != null && !text.isNullOrEmpty()) reply(conversation, text, group)
            }
            ACTION_DECLINE -> {
                enterForeground()
                // Gone whatever the node says: the call may have ended, or the process with it.
                conversation?.let { AndroidNotifier.cancelCall(this, it) }
                if (conversation != null) {
                    scope.launch {
                        running.first { it }
                        declineCall(conversation)
                    }
                }
            }
            // The activity's startForegroundService (it is visible): Android wants startForeground
            // for each such start, even in the foreground already.
            else -> enterForeground(always = true)
        }
        // Not sticky: Android 12+ does not let a restart from the background enter the foreground.
        return START_NOT_STICKY
    }

    /**
     * Android 15+: the dataSync type ran out of its time (6 hours a day in the background; opening
     * the app starts a new allowance). The service must stop within seconds or the app crashes;
     * a notification says so, and its tap opens the app, which starts it again.
     */
    override fun onTimeout(startId: Int, fgsType: Int) {
        notifyOffline(this, "Android allows it only so long in the background each day.")
        stopSelf()
    }

    override fun onDestroy() {
        // Nothing re-enters the foreground from here on.
        foreground = false
        claims.clear()
        network?.close()
        network = null
        powerSaver?.close()
        powerSaver = null
        location = null
        PeernsTelecom.control = null
        PeernsTelecom.showIncomingUi = null
        // The node stops: Telecom's connections end with it, and no call rings on.
        PeernsTelecom.calls.calls().forEach { PeernsTelecom.follow(it, "ended", "lost") }
        node?.let { n -> runCatching { n.activeCall() }.getOrNull()?.let { AndroidNotifier.cancelCall(this, it.fingerprint) } }
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
        notifier = null
        started = false
        mutableRunning.value = false
        mutableStadium.value = false
        mutableStatus.value = NodeStatus(SignalingState.Offline("stopped"))
        super.onDestroy()
    }

    /**
     * Enters the foreground, or changes its types, with the types of the features now on; unless
     * [always], nothing when it is there with those types and that notification already (a
     * notification's action runs while the app is in the background, when Android 14+ refuses a
     * camera or microphone type held by the baby monitor: asking again for the same would throw).
     */
    private fun enterForeground(always: Boolean = false) {
        val stadium = mutableStadium.value
        val types = foregroundTypesFor(stadium && hasLocationPermission(this), capturing)
        val same = foreground && stadium == shownStadium && (Build.VERSION.SDK_INT < Build.VERSION_CODES.Q || types == foregroundTypes)
        if (same && !always) return
        NotificationChannels.create(this)
        val online = mutableStatus.value.signaling is SignalingState.Connected
        val notification = ongoing(stadium, online)
        try {
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
                startForeground(NOTIFICATION_ID, notification, types)
                foregroundTypes = types
            } else {
                startForeground(NOTIFICATION_ID, notification)
            }
        } catch (e: Exception) {
            // Refused (ForegroundServiceStartNotAllowedException, SecurityException): Android 15's
            // daily dataSync time used up, or a type asked for from the background (a call
            // that connected out of sight claims the microphone). In the foreground already:
            // it stays there with the types it has. Not yet: it cannot run, so it stops.
            Log.w("peerns", "could not enter the foreground: $e")
            if (!foreground) stopSelf()
            return
        }
        foreground = true
        shownStadium = stadium
        shownOnline = online
    }

    /**
     * The foreground service's notification: whether peers can reach us now ([online]: the
     * signaling server registered us) and stadium mode, with Stop.
     */
    private fun ongoing(stadium: Boolean, online: Boolean): Notification {
        val stop = PendingIntent.getService(
            this,
            0,
            Intent(this, javaClass).setAction(ACTION_STOP),
            PendingIntent.FLAG_IMMUTABLE,
        )
        val text = when {
            !online -> "Offline: messages wait and go out once it reconnects"
            stadium -> "Stadium mode is on: nearby people can see you"
            else -> "Your peers can reach this device"
        }
        return Notification.Builder(this, NotificationChannels.SERVICE)
            .setSmallIcon(android.R.drawable.stat_sys_upload_done)
            .setContentTitle(if (online) "PeerNS is online" else "PeerNS is connecting…")
            .setContentText(text)
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
    }

    companion object {
        // A stopping node's profile lock: tried again every second for 15 s.
        private const val PROFILE_RETRIES = 15
        private const val PROFILE_RETRY_MS = 1_000L

        /** The intent action that stops the service. */
        const val ACTION_STOP = "org.peerns.action.STOP"

        /** The owner of the shown screen's capture ([setCapturing]). */
        const val SCREEN_CAPTURE = "screen"

        /** The owner of the mediaProjection type while our screen is shared ([setScreenShared]). */
        private const val SCREEN_SHARE = "screen-share"
        private const val NOTIFICATION_ID = 1

        /**
         * The foreground types: dataSync while the node runs, location only for stadium mode; the
         * camera, microphone and mediaProjection ones claimed ([capturing]) replace dataSync
         * while a call or the monitor captures (Android 15+ gives dataSync 6 hours a day in the background: an
         * overnight baby monitor would be stopped; the capture types have no such limit).
         */
        fun foregroundTypesFor(stadium: Boolean, capturing: Int = 0): Int =
            (if (capturing != 0) capturing else ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC) or
                (if (stadium) ServiceInfo.FOREGROUND_SERVICE_TYPE_LOCATION else 0)
    }
}

/** Why the node does not run. */
sealed class StartProblem(val reason: String) {
    /**
     * The profile's identity cannot be unlocked: the keystore's wrapping key is gone or
     * unusable (a reset keystore, a restored phone). The identity is lost on this device; the
     * user may start a new one ([PeernsService.startNewIdentity]).
     */
    class KeyLost(detail: String) : StartProblem("identity key lost: $detail")

    /** Any other failure to start. */
    class Failed(reason: String) : StartProblem(reason)
}
