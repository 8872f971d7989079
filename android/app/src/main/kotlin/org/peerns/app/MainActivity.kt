package org.peerns.app

import android.Manifest
import android.app.Activity
import android.content.ActivityNotFoundException
import android.content.ComponentName
import android.content.Context
import android.content.Intent
import android.content.ServiceConnection
import android.content.pm.ActivityInfo
import android.content.pm.PackageManager
import android.content.res.Configuration
import android.media.projection.MediaProjectionManager
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.os.IBinder
import android.provider.OpenableColumns
import android.provider.Settings
import android.view.View
import android.view.WindowInsets
import android.view.WindowManager
import android.widget.FrameLayout
import android.widget.ScrollView
import android.widget.Toast
import android.window.OnBackInvokedDispatcher
import java.io.File
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.catch
import kotlinx.coroutines.flow.collectLatest
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.peerns.Peerns
import org.peerns.android.ACTION_ANSWER
import org.peerns.android.ACTION_OPEN
import org.peerns.android.EXTRA_CATEGORY
import org.peerns.android.EXTRA_CONVERSATION
import org.peerns.android.PeernsService
import org.peerns.android.StartProblem
import org.peerns.android.hasLocationPermission
import org.peerns.app.model.CallViewModel
import org.peerns.app.model.Navigator
import org.peerns.app.model.Screen
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.NotificationCategory
import org.peerns.ffi.PeernsException
import org.peerns.ffi.SignalingState

/**
 * The app's one activity: shows the [Navigator]'s top screen, or why the node does not run.
 * Starts the node's foreground service while visible (it keeps running in the background until
 * stopped from its notification) and binds to it. A notification tap ([ACTION_OPEN]) opens the
 * chat it is about, also when the activity already runs ([onNewIntent]).
 */
class MainActivity :
    Activity(),
    Host {
    override val context: Context get() = this
    override val ui by lazy { Ui(this) }
    override val navigator = Navigator()
    override val scope: CoroutineScope get() = screenScope ?: MainScope().also { screenScope = it }
    override var service: PeernsService? = null
        private set
    override val node: Peerns? get() = service?.node

    private lateinit var content: FrameLayout

    /** Alive between onStart and onStop. */
    private var activityScope: CoroutineScope? = null

    /** Alive while one screen is shown. */
    private var screenScope: CoroutineScope? = null
    private var shown: ScreenView? = null
    private var shownKey: Any? = null
    private var onFilePicked: ((String) -> Unit)? = null
    private var onFolderPicked: ((String) -> Unit)? = null

    // A picker of ours is open: its result goes to the screen that asked, so that screen stays.
    private var picking = false
    private var onMediaGranted: ((Boolean) -> Unit)? = null
    private var onMediaDenied: (() -> Unit)? = null

    /**
     * The microphone was refused and Android asks no more: refused twice (Android 11+ stops
     * asking then), or "don't ask again" (its rationale flag went from shown to not shown).
     */
    private var microphoneRefusedForGood = false
    private var microphoneRefusals = 0
    private var microphoneRationaleBefore = false
    private var onCameraGranted: (() -> Unit)? = null

    // Who waits for the user's answer to the screen capture dialog.
    private var onScreenAllowed: Pair<AndroidCallMedia, () -> Unit>? = null

    /** What follows the bound service (its state, its events); cancelled when it goes. */
    private var following: Job? = null

    private val connection = object : ServiceConnection {
        override fun onServiceConnected(component: ComponentName?, binder: IBinder?) {
            val service = (binder as? PeernsService.LocalBinder)?.service ?: return
            this@MainActivity.service = service
            stopped = false
            service.setAppActive(true)
            following?.cancel()
            following = activityScope?.launch {
                launch { combine(service.problem, service.running, navigator.screens) { _, _, _ -> }.collect { show() } }
                launch { forwardEvents(service) }
            }
            answerPending(service)
        }

        // The service stopped (its notification's Stop). Android ends such a binding for good
        // (onBindingDied follows): the stopped screen's Start binds anew.
        override fun onServiceDisconnected(component: ComponentName?) {
            following?.cancel()
            following = null
            service = null
            stopped = true
            show()
        }

        override fun onBindingDied(component: ComponentName?) = onServiceDisconnected(component)
    }

    /** Starts the service again after it was stopped, and binds to it anew (the old binding died). */
    private fun restartService() {
        stopped = false
        val intent = Intent(this, AppService::class.java)
        try {
            unbindService(connection)
        } catch (e: IllegalArgumentException) {
            // Not bound any more.
        }
        startForegroundService(intent)
        bindService(intent, connection, 0)
        show()
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        content = FrameLayout(this)
        builtFor = Configuration(resources.configuration)
        setContentView(edgeToEdge(content))
        // A notification's intent acts once: not again when the activity is made anew (the
        // system recreated it, or it was reopened from the recent apps).
        val fresh = savedInstanceState == null && intent.flags and Intent.FLAG_ACTIVITY_LAUNCHED_FROM_HISTORY == 0
        if (fresh) route(intent)
        // Made anew by the system (after the process was ended in the background): its screens again.
        savedInstanceState?.getStringArrayList(STATE_SCREENS)?.let(navigator::restore)
        setIntent(Intent(this, MainActivity::class.java))
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            onBackInvokedDispatcher.registerOnBackInvokedCallback(OnBackInvokedDispatcher.PRIORITY_DEFAULT) { back() }
            if (checkSelfPermission(Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED) {
                requestPermissions(arrayOf(Manifest.permission.POST_NOTIFICATIONS), REQUEST_NOTIFICATIONS)
            }
        }
        show()
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        outState.putStringArrayList(STATE_SCREENS, navigator.saved())
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        route(intent)
    }

    /**
     * A notification tap: open its chat (or the contact requests, or the call). The Answer
     * action of an incoming call also answers it, once the service is bound.
     */
    private fun route(intent: Intent?) {
        if (intent?.action != ACTION_OPEN && intent?.action != ACTION_ANSWER) return
        // A ringing call's full-screen intent over a call or backup that runs here (a group
        // call would be left): the notification rings; only its Answer switches screens.
        val ringing = intent.getStringExtra(EXTRA_CATEGORY) == NotificationCategory.INCOMING_CALL.name
        if (intent.action == ACTION_OPEN && ringing && shown?.keepsRunning == true) return
        // A message's or a request's tap over a call or backup that runs here: it would hide
        // that screen (a call's sound and camera stop with it). The chat opens when the user
        // leaves the screen instead.
        if (intent.action == ACTION_OPEN && shown?.keepsRunning == true) {
            deferred = intent.getStringExtra(EXTRA_CONVERSATION) to intent.getStringExtra(EXTRA_CATEGORY)
            Toast.makeText(this, "Opens when you leave this screen", Toast.LENGTH_SHORT).show()
            return
        }
        // A ringing call's full-screen intent shows the call over the lock screen; nothing else does.
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.O_MR1) {
            val call = intent.getStringExtra(EXTRA_CATEGORY) == NotificationCategory.INCOMING_CALL.name
            setShowWhenLocked(call)
            setTurnScreenOn(call)
        }
        // A tap held during a call or backup is replaced by this one.
        deferred = null
        when (intent.action) {
            ACTION_OPEN -> navigator.route(intent.getStringExtra(EXTRA_CONVERSATION), intent.getStringExtra(EXTRA_CATEGORY))
            ACTION_ANSWER -> {
                navigator.route(null, NotificationCategory.INCOMING_CALL.name)
                answering = intent.getStringExtra(EXTRA_CONVERSATION)
                service?.let(::answerPending)
            }
        }
    }

    /** A notification tapped while a call or backup ran here: where Back goes from it (conversation, category). */
    private var deferred: Pair<String?, String?>? = null

    /** The service was stopped while we were bound (until the user starts it again). */
    private var stopped = false

    /** The caller whose call the Answer action answers once the node runs. */
    private var answering: String? = null

    private fun answerPending(service: PeernsService) {
        val caller = answering ?: return
        answering = null
        activityScope?.launch {
            service.running.first { it }
            // The capture types claimed while visible ([CallView]'s Answer does the same).
            if (service.answerCall(caller)) {
                service.setCapturing(camera = service.node?.activeCall()?.calleeKinds?.video == true, microphone = true)
            }
        }
    }

    override fun onStart() {
        super.onStart()
        // Stopped from its notification while kept out of sight (its binding died): started
        // and bound anew, or the screen would say it is stopped while it runs.
        if (activityScope != null && service == null) return restartService()
        val intent = Intent(this, AppService::class.java)
        startForegroundService(intent)
        if (activityScope != null) {
            // Kept from the last stop (a call went on out of sight): still bound, still shown.
            service?.setAppActive(true)
            return
        }
        activityScope = MainScope()
        // Flags 0: the binding does not keep the service alive, so its Stop action works.
        bindService(intent, connection, 0)
    }

    override fun onStop() {
        service?.setAppActive(false)
        // A call or a backup goes on out of sight, and a screen waits for its picker's result:
        // the screen stays, bound and fed with events.
        if (shown?.keepsRunning != true && !picking) release()
        super.onStop()
    }

    override fun onDestroy() {
        if (activityScope != null) release()
        super.onDestroy()
    }

    /** The screen goes, the service is let go. */
    private fun release() {
        hideScreen()
        if (activityScope != null) unbindService(connection)
        service = null
        activityScope?.cancel()
        activityScope = null
    }

    // The configuration the shown views were built for.
    private var builtFor: Configuration? = null

    /**
     * Handled here (`configChanges`): a turn of the phone needs nothing (the views lay themselves
     * out again, typed text stays); a new language, text size, dark mode or density rebuilds the
     * screen, unless it runs a call or a backup (then the next screen gets it).
     */
    override fun onConfigurationChanged(newConfig: Configuration) {
        super.onConfigurationChanged(newConfig)
        val changes = builtFor?.diff(newConfig) ?: 0
        builtFor = Configuration(newConfig)
        val restyled = ActivityInfo.CONFIG_LOCALE or ActivityInfo.CONFIG_FONT_SCALE or ActivityInfo.CONFIG_UI_MODE or
            ActivityInfo.CONFIG_LAYOUT_DIRECTION or ActivityInfo.CONFIG_DENSITY
        if (changes and restyled != 0 && shown?.keepsRunning != true) {
            // Built again in the new style, with what was typed into it (a draft, a link).
            val typed = shown?.root?.editTexts()?.map { it.text.toString() }
            hideScreen()
            show()
            if (typed != null) shown?.root?.editTexts()?.zip(typed)?.forEach { (field, text) -> field.setText(text) }
        }
    }

    @Deprecated("Deprecated in Android 13; the back callback above handles it there")
    override fun onBackPressed() = back()

    private fun back() {
        val waiting = deferred
        when {
            // Back from a call (or a running backup) leaves it running: to the home screen.
            shown?.keepsRunning == true -> moveTaskToBack(true)
            // Out of it, to the chat of the notification tapped meanwhile.
            waiting != null -> {
                deferred = null
                navigator.route(waiting.first, waiting.second)
            }
            !navigator.back() -> finish()
        }
    }

    override val closing: Boolean get() = isFinishing

    override fun keepScreenOn(on: Boolean) {
        if (on) {
            window.addFlags(
                WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON,
            )
        } else {
            window.clearFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        }
    }

    /** Shows what fits now: the top screen of a running node, or why there is none. */
    private fun show() {
        val service = service
        val problem = service?.problem?.value
        val node = service?.node
        val key: Any = when {
            service == null && stopped -> "stopped"
            service == null -> "connecting"
            problem != null -> problem
            !service.running.value || node == null -> "starting"
            else -> navigator.current
        }
        if (key == shownKey) return
        hideScreen()
        // Only a call shows over the lock screen: anything else needs the phone unlocked.
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.O_MR1 && key is Screen && key != Screen.Call) {
            setShowWhenLocked(false)
            setTurnScreenOn(false)
        }
        val view = when {
            problem is StartProblem.KeyLost -> KeyLostView(this, service, problem)
            key is Screen && node != null -> screenView(key, this, node)
            key == "stopped" -> StoppedView(this, ::restartService)
            else -> MessageView(this, problem?.reason ?: "Starting PeerNS…")
        }
        shownKey = key
        shown = view
        content.addView(ScrollView(this).apply { addView(view.root) })
        view.shown()
    }

    private fun hideScreen() {
        shown?.hidden()
        shown = null
        shownKey = null
        screenScope?.cancel()
        screenScope = null
        content.removeAllViews()
    }

    /**
     * Hands every node and group event to the shown screen while the node runs; an incoming
     * call opens the call screen.
     */
    private suspend fun forwardEvents(service: PeernsService) {
        service.running.collectLatest { running ->
            val node = service.node
            if (running && node != null) {
                returnToCall(service, node)
                coroutineScope {
                    launch {
                        node.groupEvents.catch { if (it !is PeernsException) throw it }.collect { event -> shown?.onGroupEvent(event) }
                    }
                    node.events.catch { if (it !is PeernsException) throw it }.collect { event ->
                        // Not over a call or backup that runs here (a group call would be left):
                        // the ringing notification answers it then.
                        if (event is NodeEvent.IncomingCall && shown?.keepsRunning != true) navigator.open(Screen.Call)
                        shown?.onEvent(event)
                    }
                }
            }
        }
    }

    /**
     * A 1:1 call goes on without its screen (the activity was destroyed during it, or a headset
     * answered it out of sight): its screen again, where its sound and camera start. Not a call
     * that rings here (its notification answers it), nor the baby monitor's stream (the service
     * sends that).
     */
    private fun returnToCall(service: PeernsService, node: Peerns) {
        val call = try {
            node.activeCall()
        } catch (e: PeernsException) {
            null
        } ?: return
        val ringsHere = !call.outgoing && call.status.state == "ringing"
        val monitorStream = call.fingerprint == (service as? AppService)?.monitorStreamingTo
        if (call.status.state != "ended" && !ringsHere && !monitorStream && shown?.keepsRunning != true) navigator.open(Screen.Call)
    }

    override fun call(fingerprint: String, video: Boolean) {
        val node = node ?: return
        activityScope?.launch {
            try {
                CallViewModel.place(node, fingerprint, video, service?.powerSave?.value == true)
                // Claimed while visible: Android 14+ refuses the capture types once the app is
                // not, and the answer (and the media) may come when it is in the background.
                service?.setCapturing(camera = video, microphone = true)
                navigator.open(Screen.Call)
            } catch (e: PeernsException) {
                Toast.makeText(this@MainActivity, "Could not call: ${e.message}", Toast.LENGTH_LONG).show()
            }
        }
    }

    override fun setStadium(on: Boolean) {
        when {
            !on -> service?.stopStadium()
            hasLocationPermission(this) -> {
                settings.locationRefusedForGood = false
                startStadium()
            }
            // Android would refuse at once, without asking.
            settings.locationRefusedForGood -> locationSettings()
            // Asked only now, when the user turns on the one feature that uses it.
            else -> {
                locationRationaleBefore = locationRationale()
                requestPermissions(
                    arrayOf(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION),
                    REQUEST_LOCATION,
                )
            }
        }
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<String>, grantResults: IntArray) {
        if (requestCode == REQUEST_LOCATION) {
            when {
                hasLocationPermission(this) -> {
                    settings.locationRefusedForGood = false
                    startStadium()
                }
                // Empty results: the request was interrupted; nobody refused anything.
                grantResults.isNotEmpty() -> locationSettings()
            }
            locationRationaleBefore = null
        }
        if (requestCode == REQUEST_MEDIA) {
            val then = onMediaGranted
            val denied = onMediaDenied
            onMediaGranted = null
            onMediaDenied = null
            if (granted(Manifest.permission.RECORD_AUDIO)) {
                then?.invoke(granted(Manifest.permission.CAMERA))
            } else {
                // Empty results: the request was interrupted; nobody refused anything.
                if (grantResults.isNotEmpty()) {
                    microphoneRefusals++
                    val rationale = shouldShowRequestPermissionRationale(Manifest.permission.RECORD_AUDIO)
                    microphoneRefusedForGood = microphoneRefusals >= 2 || (microphoneRationaleBefore && !rationale)
                    // Said, not silent: nothing is sent or recorded without it.
                    Toast.makeText(this, "This needs the microphone: allow it, then try again.", Toast.LENGTH_LONG).show()
                }
                denied?.invoke()
            }
        }
        if (requestCode == REQUEST_CAMERA) {
            val then = onCameraGranted
            onCameraGranted = null
            if (granted(Manifest.permission.CAMERA)) {
                then?.invoke()
            } else {
                Toast.makeText(this, "Scanning a QR code needs the camera; you can paste the link instead.", Toast.LENGTH_LONG).show()
            }
        }
    }

    private fun granted(permission: String) = checkSelfPermission(permission) == PackageManager.PERMISSION_GRANTED

    /** The app's page in the system settings, where a permission Android asks no more for is allowed. */
    private fun openAppSettings() {
        try {
            startActivity(Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, Uri.fromParts("package", packageName, null)))
        } catch (e: ActivityNotFoundException) {
            // No settings app to open: the toast says where to go.
        }
    }

    /** Stadium mode on, or said why not (the node stopped, or it refused). */
    private fun startStadium() {
        val started = service?.startStadium() == true
        if (!started) Toast.makeText(this, "Stadium mode could not start: is PeerNS running?", Toast.LENGTH_LONG).show()
    }

    /**
     * The location refused: stadium mode stays off, said, and once Android asks no more the
     * app's settings page is where it is allowed.
     */
    private fun locationSettings() {
        Toast.makeText(this, "Stadium mode needs your location: allow it for PeerNS, then turn it on.", Toast.LENGTH_LONG).show()
        // Android asks no more when its rationale flag went from shown to not shown ("don't ask
        // again", or a second refusal); a first refusal or a dismissed dialog leaves it as it was.
        if (locationRationaleBefore == true && !locationRationale()) settings.locationRefusedForGood = true
        if (settings.locationRefusedForGood) openAppSettings()
    }

    /** The app's settings (where the location's refusal is remembered). */
    private val settings by lazy { AppSettings(this) }

    private fun locationRationale() = shouldShowRequestPermissionRationale(Manifest.permission.ACCESS_FINE_LOCATION) ||
        shouldShowRequestPermissionRationale(Manifest.permission.ACCESS_COARSE_LOCATION)

    /** The location's rationale flag before the last request (null: none asked). */
    private var locationRationaleBefore: Boolean? = null

    override fun withMedia(camera: Boolean, denied: () -> Unit, then: (camera: Boolean) -> Unit) {
        val wanted = listOfNotNull(Manifest.permission.RECORD_AUDIO, Manifest.permission.CAMERA.takeIf { camera })
        if (wanted.all(::granted)) return then(camera)
        if (!granted(Manifest.permission.RECORD_AUDIO) && microphoneRefusedForGood) {
            // Android would refuse at once, without asking: the app's settings page is where it is allowed.
            Toast.makeText(this, "Allow the microphone for PeerNS under Permissions, then try again.", Toast.LENGTH_LONG).show()
            openAppSettings()
            return denied()
        }
        // Asked only now, when a call or the monitor is about to capture.
        onMediaGranted = then
        onMediaDenied = denied
        microphoneRationaleBefore = shouldShowRequestPermissionRationale(Manifest.permission.RECORD_AUDIO)
        requestPermissions(wanted.toTypedArray(), REQUEST_MEDIA)
    }

    override fun withCamera(then: () -> Unit) {
        if (granted(Manifest.permission.CAMERA)) return then()
        // Asked only now, when the user wants to scan a QR code.
        onCameraGranted = then
        requestPermissions(arrayOf(Manifest.permission.CAMERA), REQUEST_CAMERA)
    }

    override fun withScreenCapture(media: AndroidCallMedia, then: () -> Unit) {
        val projections = getSystemService(MediaProjectionManager::class.java)
            ?: return Toast.makeText(this, "This phone cannot share its screen", Toast.LENGTH_LONG).show()
        onScreenAllowed = media to then
        pick(projections.createScreenCaptureIntent(), REQUEST_SCREEN)
    }

    /** The user's answer to the screen capture dialog: the capture for whoever asked. */
    private fun screenCaptureAnswered(resultCode: Int, data: Intent?) {
        val (media, then) = onScreenAllowed ?: return
        onScreenAllowed = null
        if (resultCode != RESULT_OK || data == null) return
        val service = service ?: return
        // The mediaProjection type is held before the projection is taken (Android 10+ throws
        // otherwise), and claimed only after the user's consent (Android 14 refuses it before).
        val projection = if (!service.setScreenShared(true)) {
            null
        } else {
            try {
                getSystemService(MediaProjectionManager::class.java)?.getMediaProjection(resultCode, data)
            } catch (e: SecurityException) {
                null
            }
        }
        if (projection == null) {
            service.setScreenShared(false)
            return Toast.makeText(this, "PeerNS could not capture the screen (it needs to run in the foreground)", Toast.LENGTH_LONG).show()
        }
        media.screenProjection = projection
        then()
    }

    override fun pickFile(onPicked: (String) -> Unit) {
        onFilePicked = onPicked
        val intent = Intent(Intent.ACTION_OPEN_DOCUMENT).addCategory(Intent.CATEGORY_OPENABLE).setType("*/*")
        pick(intent, REQUEST_FILE)
    }

    override fun openFile(path: String, mime: String) {
        val uri = ReceivedFileProvider.uriOf(this, path)
            ?: return Toast.makeText(this, "This file cannot be opened from here", Toast.LENGTH_LONG).show()
        val intent = Intent(Intent.ACTION_VIEW)
            .setDataAndType(uri, mime.ifBlank { "application/octet-stream" })
            .addFlags(Intent.FLAG_GRANT_READ_URI_PERMISSION)
        try {
            startActivity(intent)
        } catch (e: ActivityNotFoundException) {
            Toast.makeText(this, "No app on this phone opens ${mime.ifBlank { "this file" }}", Toast.LENGTH_LONG).show()
        }
    }

    override fun pickFolder(onPicked: (String) -> Unit) {
        onFolderPicked = onPicked
        pick(Intent(Intent.ACTION_OPEN_DOCUMENT_TREE), REQUEST_FOLDER)
    }

    /** Opens the system's picker [intent]; its result comes to [onActivityResult]. */
    private fun pick(intent: Intent, request: Int) {
        try {
            startActivityForResult(intent, request)
            picking = true
        } catch (e: ActivityNotFoundException) {
            Toast.makeText(this, "No app on this phone can pick it", Toast.LENGTH_LONG).show()
        }
    }

    @Deprecated("Deprecated in the framework for androidx's result API, which this app does not use")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        picking = false
        if (requestCode == REQUEST_SCREEN) return screenCaptureAnswered(resultCode, data)
        val uri = data?.data
        val callback = if (requestCode == REQUEST_FOLDER) onFolderPicked else onFilePicked
        onFilePicked = null
        onFolderPicked = null
        if (requestCode !in setOf(REQUEST_FILE, REQUEST_FOLDER) || resultCode != RESULT_OK || uri == null || callback == null) return
        if (requestCode == REQUEST_FOLDER) {
            // Kept: the backup reads the folder again each time, also after a restart.
            try {
                contentResolver.takePersistableUriPermission(uri, Intent.FLAG_GRANT_READ_URI_PERMISSION)
            } catch (e: SecurityException) {
                // A provider that grants no lasting access: usable until the app stops.
            }
            return callback(uri.toString())
        }
        activityScope?.launch {
            // A file in the cloud while offline, a full disk, a provider that refuses: said, not a crash.
            val path = withContext(Dispatchers.IO) {
                runCatching { copyToCache(uri) }
            }.onFailure {
                Toast.makeText(this@MainActivity, "Could not read it: ${it.message ?: it}", Toast.LENGTH_LONG).show()
            }.getOrNull()
            path?.let(callback)
        }
    }

    /** A copy of [uri] in the cache (the core sends files from a path), or null if unreadable. */
    private fun copyToCache(uri: Uri): String? {
        val name = contentResolver.query(uri, arrayOf(OpenableColumns.DISPLAY_NAME), null, null, null)?.use {
            if (it.moveToFirst()) it.getString(0) else null
        }?.replace('/', '_') ?: "file"
        val dir = File(cacheDir, "outgoing").apply { mkdirs() }
        val file = File(dir, name)
        val input = contentResolver.openInputStream(uri) ?: return null
        input.use { i -> file.outputStream().use { o -> i.copyTo(o) } }
        return file.path
    }

    private fun edgeToEdge(view: View): View = view.apply {
        // Edge to edge (enforced from Android 15): keep the content clear of the system bars.
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
            setOnApplyWindowInsetsListener { v, insets ->
                // The keyboard too: a text field at the bottom stays above it.
                val bars = insets.getInsets(WindowInsets.Type.systemBars() or WindowInsets.Type.ime())
                v.setPadding(bars.left, bars.top, bars.right, bars.bottom)
                insets
            }
        }
    }

    private companion object {
        const val REQUEST_NOTIFICATIONS = 1
        const val REQUEST_LOCATION = 2
        const val REQUEST_FILE = 3
        const val REQUEST_FOLDER = 4
        const val REQUEST_MEDIA = 5
        const val REQUEST_CAMERA = 6
        const val REQUEST_SCREEN = 7

        /** The saved state's screen stack ([Navigator.saved]). */
        const val STATE_SCREENS = "screens"
    }
}

/** A line of text while there is nothing else to show. */
class MessageView(host: Host, message: String) : ScreenView(host) {
    override val root: View = ui.column(20).with(ui.title("PeerNS"), ui.text(message))
}

/** PeerNS was stopped from its notification while the app was open: [start] starts it again. */
class StoppedView(host: Host, start: () -> Unit) : ScreenView(host) {
    override val root: View = ui.column(20).with(
        ui.title("PeerNS is stopped"),
        ui.text("Your contacts cannot reach this phone, and nothing is sent or received, until it runs again."),
        ui.button("Start PeerNS") { start() },
    )
}

/**
 * The identity cannot be unlocked: explain, and offer a new identity. The old profile is moved
 * aside, never deleted.
 */
class KeyLostView(host: Host, service: PeernsService, problem: StartProblem.KeyLost) : ScreenView(host) {
    override val root: View = ui.column(20).with(
        ui.title("Your identity cannot be opened"),
        ui.text(EXPLANATION),
        ui.label("Details"),
        ui.text(problem.reason),
        ui.button("Start a new identity") {
            // Contacts know the old identity: they have to add the new one again. Asked first.
            ui.confirm(
                "Start a new identity? Your contacts have to add you again; the old profile is kept aside, not deleted.",
                "Start anew",
            ) { service.startNewIdentity() }
        },
    )

    companion object {
        /** What the screen says. */
        const val EXPLANATION =
            "This phone's secure keystore no longer has the key that protects your PeerNS identity. " +
                "This can happen after a reset of the phone's security settings, some system updates, " +
                "or when the app's data was restored onto another phone. Without that key, your identity, " +
                "contacts and messages on this phone cannot be opened, by PeerNS or anyone else.\n\n" +
                "You can start again with a new identity: your contacts will see a new person and need to " +
                "add you again. The old profile is kept on this phone (moved aside), not deleted."
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
