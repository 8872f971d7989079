package org.peerns.app

import android.app.NotificationManager
import android.content.ActivityNotFoundException
import android.content.Context
import android.content.Intent
import android.net.Uri
import android.os.Build
import android.provider.Settings
import android.view.View
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.launch
import org.peerns.Peerns
import org.peerns.android.PeernsService
import org.peerns.app.model.BackupViewModel
import org.peerns.app.model.BatterySaver
import org.peerns.app.model.CallViewModel
import org.peerns.app.model.ChatViewModel
import org.peerns.app.model.ContactsViewModel
import org.peerns.app.model.GroupCallViewModel
import org.peerns.app.model.GroupChatViewModel
import org.peerns.app.model.GroupsViewModel
import org.peerns.app.model.MeetingRoomViewModel
import org.peerns.app.model.MonitorViewModel
import org.peerns.app.model.Navigator
import org.peerns.app.model.NearbyViewModel
import org.peerns.app.model.Screen
import org.peerns.app.model.SettingsViewModel
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.PeernsException

/** What a screen needs from the activity that shows it. */
interface Host {
    val context: Context
    val ui: Ui
    val navigator: Navigator

    /** Alive while the screen is shown. */
    val scope: CoroutineScope
    val service: PeernsService?
    val node: Peerns?

    /** Asks to turn stadium mode on (after the location permission, if needed) or off. */
    fun setStadium(on: Boolean)

    /** Lets the user pick a file; [onPicked] gets a local copy's path. */
    fun pickFile(onPicked: (String) -> Unit)

    /** Opens the received file at [path] (of type [mime]) in an app of the user's choice ([ReceivedFileProvider]). */
    fun openFile(path: String, mime: String)

    /** Calls contact [fingerprint], with the camera when [video], and shows the call. */
    fun call(fingerprint: String, video: Boolean)

    /** Lets the user pick a folder; [onPicked] gets its reference, kept readable across restarts ([AppBackupFolders]). */
    fun pickFolder(onPicked: (String) -> Unit)

    /**
     * Asks for the microphone permission, and the camera's when [camera], unless granted; [then]
     * runs once the microphone may be used, told whether the camera may be too; [denied] when it
     * may not (the user is told; once Android asks no more, the app's settings page opens).
     */
    fun withMedia(camera: Boolean, denied: () -> Unit = {}, then: (camera: Boolean) -> Unit)

    /** Asks for the camera permission unless granted (to scan a QR code); [then] runs once it is. */
    fun withCamera(then: () -> Unit)

    /** Keeps the screen from turning off (a video call), or no longer. */
    fun keepScreenOn(on: Boolean)

    /** The app is closing (the user swiped it from the recent apps, say): the screens go for good. */
    val closing: Boolean

    /**
     * Asks the user to let the app capture the screen (the system's dialog, each time); once
     * allowed, the service holds the mediaProjection type, [media] gets the capture, and [then]
     * runs. Refused: nothing runs.
     */
    fun withScreenCapture(media: AndroidCallMedia, then: () -> Unit)
}

/** One screen: a view, and what it does while shown. */
abstract class ScreenView(protected val host: Host) {
    protected val ui get() = host.ui
    abstract val root: View

    /** The screen became visible (host.scope is fresh). */
    open fun shown() {}

    /** The screen is going away. */
    open fun hidden() {}

    /**
     * Something the user expects to go on out of sight runs here (a call, a backup): the screen
     * stays, with its scope and events, while the app is in the background.
     */
    open val keepsRunning: Boolean get() = false

    /** A node event arrived while shown. */
    open fun onEvent(event: NodeEvent) {}

    /** A group event arrived while shown. */
    open fun onGroupEvent(event: GroupEvent) {}

    /** Runs [block] in the screen's scope. */
    protected fun act(block: suspend () -> Unit) {
        host.scope.launch { block() }
    }
}

/** The views of [screen] for a running node; battery saver as the service follows it. */
fun screenView(screen: Screen, host: Host, node: Peerns): ScreenView {
    val saver = host.service?.powerSave ?: BatterySaver.OFF
    return when (screen) {
        Screen.Home -> HomeView(host)
        Screen.Contacts -> ContactsView(host, ContactsViewModel(node), GroupsViewModel(node))
        is Screen.Chat -> ChatView(host, ChatViewModel(node, screen.conversation))
        Screen.Nearby -> NearbyView(host, NearbyViewModel(node, saver))
        Screen.MeetingRoom -> MeetingRoomView(host, MeetingRoomViewModel(node))
        Screen.Settings -> SettingsView(host, SettingsViewModel(node, AppSettings(host.context)))
        Screen.Groups -> GroupsView(host, GroupsViewModel(node))
        is Screen.GroupChat -> GroupChatView(host, GroupChatViewModel(node, screen.group), GroupsViewModel(node))
        is Screen.GroupCall -> AndroidCallMedia.create(host.context).let { media ->
            GroupCallView(host, GroupCallViewModel(node, screen.group, media, saver), media)
        }
        Screen.Call -> AndroidCallMedia.create(host.context).let { media -> CallView(host, CallViewModel(node, media, saver), media) }
        // The service keeps the monitor: armed, it goes on with the screen off.
        Screen.Monitor -> (host.service as? AppService)?.monitor()?.let { MonitorView(host, it.model) }
            ?: MessageView(host, "The baby monitor needs the running node")
        Screen.Backup -> BackupView(host, BackupViewModel(node, saver, AppBackupFolders(host.context)))
    }
}

/** Identity, signaling state, connected peers, and the way to the other screens. */
class HomeView(host: Host) : ScreenView(host) {
    private val identity = ui.text(monospace = true)
    private val signaling = ui.text()
    private val peers = ui.text(monospace = true)

    // What keeps calls and messages from reaching the user, and the way to allow it.
    private val blocked = ui.text()
    private val allow = ui.button("Allow") { blocker()?.let { openSettings(it.second) } }
    private val blockers = ui.column().with(blocked, allow)
    override val root: View = ui.column(20).with(
        ui.title("PeerNS"),
        blockers,
        ui.label("You"), identity,
        ui.label("Signaling"), signaling,
        ui.label("Connected peers"), peers,
        ui.button("Contacts") { host.navigator.open(Screen.Contacts) },
        ui.button("Groups") { host.navigator.open(Screen.Groups) },
        ui.button("Nearby (stadium mode)") { host.navigator.open(Screen.Nearby) },
        ui.button("Baby monitor") { host.navigator.open(Screen.Monitor) },
        ui.button("Backup") { host.navigator.open(Screen.Backup) },
        ui.button("Settings") { host.navigator.open(Screen.Settings) },
    )

    /**
     * What stops calls from ringing, and the settings page that allows it: notifications off
     * for the app (nothing rings, nothing is shown), or on Android 14+ no full-screen intent
     * (an incoming call is then only a notification, not the call's screen over the lock screen).
     */
    private fun blocker(): Pair<String, Intent>? {
        val notifications = host.context.getSystemService(NotificationManager::class.java) ?: return null
        val app = host.context.packageName
        return when {
            !notifications.areNotificationsEnabled() ->
                "Notifications are off: calls do not ring and messages are not shown." to
                    Intent(Settings.ACTION_APP_NOTIFICATION_SETTINGS).putExtra(Settings.EXTRA_APP_PACKAGE, app)
            Build.VERSION.SDK_INT >= Build.VERSION_CODES.UPSIDE_DOWN_CAKE && !notifications.canUseFullScreenIntent() ->
                "Incoming calls show only as a notification, not full screen." to
                    Intent(Settings.ACTION_MANAGE_APP_USE_FULL_SCREEN_INTENT, Uri.fromParts("package", app, null))
            else -> null
        }
    }

    private fun openSettings(intent: Intent) {
        val details = Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, Uri.fromParts("package", host.context.packageName, null))
        for (each in listOf(intent, details)) {
            try {
                return host.context.startActivity(each)
            } catch (e: ActivityNotFoundException) {
                // This phone has no such page: the app's own page, where both are too.
            }
        }
    }

    override fun shown() {
        // Read each time the screen shows (back from the settings page too).
        val block = blocker()
        blocked.text = block?.first ?: ""
        blockers.visibility = if (block != null) View.VISIBLE else View.GONE
        val service = host.service ?: return
        host.scope.launch {
            service.status.collect { status ->
                val me = try {
                    host.node?.identity()
                } catch (e: PeernsException) {
                    null
                }
                identity.text = me?.let { "${it.displayName ?: "(no name set)"}\n${it.short}" } ?: "…"
                signaling.text = describe(status.signaling)
                peers.text = status.peers.sorted().joinToString("\n").ifEmpty { "none" }
            }
        }
    }
}

/** Our fingerprint, or null while the node is not running. */
fun ourFingerprint(host: Host): String? = try {
    host.node?.identity()?.fingerprint
} catch (e: PeernsException) {
    null
}
