package org.peerns.app

import android.text.format.DateFormat
import android.view.View
import android.widget.Button
import android.widget.Toast
import kotlinx.coroutines.launch
import org.peerns.android.PeernsTelecom
import org.peerns.android.media.CallAudioRouter
import org.peerns.app.model.BackupViewModel
import org.peerns.app.model.CallViewModel
import org.peerns.app.model.MonitorViewModel
import org.peerns.app.model.Screen
import org.peerns.app.model.line
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.PeernsException
import org.peerns.media.AudioRoute

/**
 * The 1:1 call: answer or decline while it rings; mute, camera (front or back) and hang up in the call; with
 * [media] (Android 10+), once the media is up, our microphone and camera are sent (permissions
 * asked then) and the peer's sound and picture played while the screen is shown. Under battery
 * saver a notice says that the camera starts off.
 */
class CallView(host: Host, private val model: CallViewModel, private val media: AndroidCallMedia?) : ScreenView(host) {
    private var mediaAsked: String? = null
    private val picture = remotePicture(host, media)
    private val ownPicture = localPicture(host, media)
    private val who = ui.title("")
    private val status = ui.text()
    private val remote = ui.text()
    private val error = ui.text()
    private val notice = ui.notice()
    private val ringing = ui.row().with(
        ui.button("Answer") { answer(video = false) },
        ui.button("Answer with video") { answer(video = true) },
        ui.button("Decline") { act { model.decline() } },
    )
    private val mute = ui.button("Mute") { act { model.setMuted(!model.state.value.local.muted) } }
    private val camera = ui.button("Camera off") { act { model.setCameraOff(!model.state.value.local.cameraOff) } }
    private val switchCamera = ui.button("Back camera") { act { model.switchCamera() } }

    private val shareScreen = ScreenShareButton(host, media, { model.state.value.local.screen }) { model.shareScreen(it) }

    // Where the sound goes (earpiece, speaker, headset): the button moves it on, shown once there is a choice.
    private val route: Button = ui.button("Speaker") { router.next() }.apply { visibility = View.GONE }
    private val router: CallAudioRouter = CallAudioRouter(host.context) { current, available ->
        route.text = current?.label ?: "Speaker"
        route.visibility = if (available.size > 1) View.VISIBLE else View.GONE
        onEarpiece = current == AudioRoute.EARPIECE
        followProximity()
    }
    private val inCall = ui.row().with(
        mute,
        camera,
        switchCamera,
        shareScreen.button,
        route,
        ui.button("Hang up") {
            act { model.hangUp() }
        },
    )

    // The microphone refused: the call goes on unheard until the user allows it here (asked
    // again, or the app's settings page once Android asks no more).
    private var microphoneRefused = false

    // The call the screen shows: a refused microphone is that call's (the screen may show the next).
    private var shownCall: String? = null
    private val allowMicrophone: Button = ui.button("Allow the microphone") {
        microphoneRefused = false
        showAllowMicrophone()
        model.state.value.let { s -> s.call?.let { call -> startMedia(call, camera = s.sendsVideo, microphone = s.sendsAudio) } }
    }.apply { visibility = View.GONE }

    private fun showAllowMicrophone() {
        val connected = model.state.value.status == "connected"
        allowMicrophone.visibility = if (microphoneRefused && connected) View.VISIBLE else View.GONE
    }

    // Held to the ear, the screen goes off so that a cheek presses nothing: an audio call on the earpiece.
    private val proximity = ProximityScreenLock(host.context)
    private var onEarpiece = false

    private fun followProximity() {
        val s = model.state.value
        proximity.set(onEarpiece && s.status == "connected" && !s.sendsVideo && !s.offered.video)
    }
    override val root = ui.column(20).with(who, status, remote, error, notice, ringing, inCall, allowMicrophone, picture, ownPicture)

    /**
     * Starts the media of [call] once (permissions asked now), when its media is up; the camera's
     * permission when the call carries our video, even if the camera starts off. A call we send
     * nothing in (watching a baby monitor) only plays: no permission, no capture.
     */
    private fun startMedia(call: String, camera: Boolean, microphone: Boolean) {
        if (media == null || mediaAsked == call || microphoneRefused) return
        mediaAsked = call
        if (!camera && !microphone) {
            router.start(video = true, connection = PeernsTelecom.calls[call])
            return act { if (!model.startMedia()) mediaAsked = null }
        }
        val refused = {
            microphoneRefused = true
            mediaAsked = null
            showAllowMicrophone()
        }
        host.withMedia(camera, denied = refused) { granted ->
            host.service?.setCapturing(granted, microphone = true)
            // Through Telecom when it knows the call (it owns the call's audio), else AudioManager.
            router.start(video = camera, connection = PeernsTelecom.calls[call])
            act {
                // The camera refused: it stays off, and the peer is told so.
                if (camera && !granted) model.setCameraOff(true)
                // Failed (the media not up yet): asked again when it is.
                if (!model.startMedia()) mediaAsked = null
            }
        }
    }

    /**
     * Answers, and claims the capture types now, while the app is visible: Android 14+ refuses
     * them once it is not, and the call's microphone would record silence if its media came up
     * out of sight.
     */
    private fun answer(video: Boolean) = act {
        model.accept(video)
        host.service?.setCapturing(camera = video, microphone = true)
    }

    override fun hidden() {
        router.stop()
        proximity.set(false)
        model.stopMedia()
        media?.close()
        host.service?.setCapturing(camera = false, microphone = false)
        host.service?.setScreenShared(false)
        host.keepScreenOn(false)
        // The app closes for good: hang up, or the call would stay connected unheard, with
        // nothing on screen to end it. One that rings here rings on in its notification.
        val s = model.state.value
        if (host.closing && s.call != null && s.status != "ended" && !s.ringingHere) {
            try {
                host.node?.hangUp(s.call)
            } catch (e: PeernsException) {
                // Ended meanwhile.
            }
        }
    }

    // A call goes on with the screen off or another app shown.
    override val keepsRunning: Boolean get() = model.state.value.let { it.call != null && it.status != "ended" }

    override fun shown() {
        host.scope.launch { model.notice.collect(notice::showNotice) }
        host.scope.launch {
            model.state.collect { s ->
                if (s.call != shownCall) {
                    shownCall = s.call
                    microphoneRefused = false
                }
                who.text = s.name.ifEmpty { "No call" }
                status.text = when {
                    s.call == null -> ""
                    s.ringingHere -> "is calling you (${if (s.offered.video) "video" else "audio"})"
                    s.status == "ended" -> "call ended" + (s.reason?.let { " ($it)" } ?: "")
                    s.status == "connected" && !s.mediaUp -> "connecting the media…"
                    else -> s.status
                }
                remote.text = listOfNotNull("muted".takeIf { s.remote.muted }, "camera off".takeIf { s.remote.cameraOff })
                    .joinToString(", ").let { if (it.isEmpty()) "" else "${s.name}: $it" }
                error.text = s.error ?: ""
                ringing.visibility = if (s.ringingHere) View.VISIBLE else View.GONE
                inCall.visibility = if (s.call != null && !s.ringingHere && s.status != "ended") View.VISIBLE else View.GONE
                showAllowMicrophone()
                mute.text = if (s.local.muted) "Unmute" else "Mute"
                camera.text = if (s.local.cameraOff) "Camera on" else "Camera off"
                switchCamera.text = if (s.local.backCamera) "Front camera" else "Back camera"
                // An audio call has no camera to turn on or switch.
                camera.visibility = if (s.sendsVideo) View.VISIBLE else View.GONE
                switchCamera.visibility = if (s.sendsVideo) View.VISIBLE else View.GONE
                shareScreen.show(s.local.screen, available = s.sendsScreen && s.mediaUp)
                if (s.call != null && s.status == "connected" && s.mediaUp) {
                    startMedia(s.call, camera = s.sendsVideo, microphone = s.sendsAudio)
                }
                // Ourselves, small, while our camera sends (the camera draws into the view too).
                val ownShown =
                    media != null && s.mediaUp && s.status == "connected" && s.sendsVideo && !s.local.cameraOff && !s.local.screen
                ownPicture.visibility = if (ownShown) View.VISIBLE else View.GONE
                // A video call's screen stays on (an audio call's may go off at the ear).
                host.keepScreenOn(s.status == "connected" && (s.sendsVideo || s.offered.video))
                followProximity()
                if (s.status == "ended") {
                    router.stop()
                    host.service?.setCapturing(camera = false, microphone = false)
                }
            }
        }
        act { model.refresh() }
    }

    override fun onEvent(event: NodeEvent) {
        if (model.onCallEvent(event)) act { model.refresh() }
    }
}

/**
 * The baby monitor: arm this phone for chosen contacts, or watch a contact's armed phone. The
 * service keeps [model] ([MonitorKeeper]): once armed here (the camera and microphone
 * permissions are asked when arming), the sound alert listens and a watcher's call
 * gets the armed camera and the microphone with the screen off or another screen shown, until
 * disarmed here.
 */
class MonitorView(host: Host, private val model: MonitorViewModel) : ScreenView(host) {
    private val armState = ui.text()
    private val threshold = ui.input("Sound alert at (dBFS, e.g. -30; empty: no alert)", "-30")
    private val contacts = ui.column()
    private val alerts = ui.column()
    private val error = ui.text()
    override val root = ui.column(20).with(
        ui.title("Baby monitor"),
        ui.text(
            "Arm this phone to let the contacts you allow watch its camera and get sound alerts. Only contacts at Full access can be allowed.",
        ),
        armState, threshold,
        ui.row().with(
            ui.button("Arm (back camera)") { arm(threshold.text.toString().trim().toFloatOrNull()) },
            ui.button("Disarm") { act { model.disarm() } },
        ),
        error,
        ui.label("Contacts at Full access"), contacts,
        ui.label("Alerts"), alerts,
    )

    /**
     * Arms, once the camera (streamed to a watcher) and the microphone (its sound, and the sound
     * alert) may be used: asked now.
     */
    private fun arm(alertDbfs: Float?) {
        // Armed, the keeper claims the camera and microphone types of the permissions granted.
        host.withMedia(camera = true) { camera ->
            if (camera) {
                act { model.arm("environment", alertDbfs) }
            } else {
                // Armed without it, a watcher would see nothing while the screen says armed.
                Toast.makeText(host.context, "The baby monitor needs the camera: allow it, then arm again.", Toast.LENGTH_LONG).show()
            }
        }
    }

    /** Watches [fingerprint]'s armed phone: its stream is a call, shown on the call screen. */
    private fun watch(fingerprint: String) = act {
        model.watch(fingerprint)
        if (model.state.value.watching == fingerprint) host.navigator.open(Screen.Call)
    }

    override fun shown() {
        host.scope.launch {
            model.state.collect { s ->
                val alert = s.alertDbfs?.let { db -> ", alert at $db dBFS" } ?: ""
                val watcher = s.streamingTo?.let { fp -> s.contacts.firstOrNull { it.fingerprint == fp }?.name ?: fp.take(8) }
                val streaming = watcher?.let { ", watched by $it" } ?: ""
                armState.text = s.armed?.let { "armed (${if (it == "user") "front" else "back"} camera$alert$streaming)" } ?: "not armed"
                error.text = s.error ?: ""
                contacts.removeAllViews()
                s.contacts.forEach { c ->
                    val allowed = c.fingerprint in s.watchers
                    contacts.addView(
                        ui.row().with(
                            ui.text(c.name),
                            ui.button(if (allowed) "Disallow" else "Allow to watch") {
                                act { if (allowed) model.disallow(c.fingerprint) else model.allow(c.fingerprint) }
                            },
                            if (s.watching == c.fingerprint) {
                                ui.button("Stop watching") { act { model.stopWatching() } }
                            } else {
                                ui.button("Watch") { watch(c.fingerprint) }
                            },
                        ),
                    )
                }
                if (s.contacts.isEmpty()) contacts.addView(ui.text("none: set a contact to Full access first"))
                alerts.removeAllViews()
                s.alerts.forEach { a ->
                    val name = s.contacts.firstOrNull { it.fingerprint == a.fingerprint }?.name ?: a.fingerprint.take(8)
                    alerts.addView(ui.text("${DateFormat.format("HH:mm:ss", a.atMs)}  $name heard a sound (${a.levelDbfs} dBFS)"))
                }
                if (s.alerts.isEmpty()) alerts.addView(ui.text("none"))
            }
        }
        act { model.refresh() }
    }
}

/**
 * Backup: choose folders, the device to back up into, and the progress; under battery saver a
 * notice, and a backup that waits for it to go off can be started now, one it paused continued now.
 */
class BackupView(host: Host, private val model: BackupViewModel) : ScreenView(host) {
    private val folders = ui.column()
    private val targets = ui.column()
    private val progress = ui.text()
    private val error = ui.text()
    private val notice = ui.notice()
    private val startNow = ui.button("Start now") { model.startNow() }
    override val root = ui.column(20).with(
        ui.title("Backup"),
        ui.text(
            "Backs folders up into another device of yours that serves ${BackupViewModel.DEFAULT_INTO} and lets this phone write there. Files it has already are skipped.",
        ),
        notice,
        ui.label("Folders"), folders,
        ui.button("Choose a folder") { host.pickFolder { path -> model.choose(path) } },
        ui.label("Back up into"), targets,
        progress, startNow, error,
    )

    // A running backup goes on out of sight.
    override val keepsRunning: Boolean get() = model.state.value.running

    override fun shown() {
        host.scope.launch { model.notice.collect(notice::showNotice) }
        host.scope.launch {
            model.state.collect { s ->
                folders.removeAllViews()
                s.folders.forEach { f ->
                    folders.addView(ui.row().with(ui.text(AppBackupFolders.nameOf(f)), ui.button("Remove") { model.drop(f) }))
                }
                if (s.folders.isEmpty()) folders.addView(ui.text("none chosen"))
                targets.removeAllViews()
                s.contacts.forEach { c ->
                    targets.addView(ui.button(c.name) { act { model.backup(c.fingerprint) } }.apply { isEnabled = !s.running })
                }
                startNow.visibility = if (s.waitingForSaver || s.pausedForSaver) View.VISIBLE else View.GONE
                startNow.text = if (s.pausedForSaver) "Continue now" else "Start now"
                progress.text = when {
                    s.waitingForSaver -> "waiting until battery saver is off…"
                    s.pausedForSaver -> "paused: battery saver"
                    s.preparing != null -> "reading ${AppBackupFolders.nameOf(s.preparing)}…"
                    s.running && s.progress != null -> s.progress.let { p ->
                        "file ${p.filesDone + 1u} of ${p.filesTotal}: ${p.path.substringAfterLast('/')} ${percent(p.bytes, p.size)}"
                    }
                    s.running -> "starting…"
                    s.summary != null -> s.summary.line()
                    else -> ""
                }
                error.text = s.error ?: ""
            }
        }
        act { model.refresh() }
    }

    private fun percent(bytes: ULong, size: ULong) = if (size == 0UL) "" else "${(bytes * 100UL / size)} %"
}
