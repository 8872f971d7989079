package org.peerns.app

import android.content.Context
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

    /** Opens the group file at [path] (of type [mime]) in an app of the user's choice ([GroupFileProvider]). */
    fun openFile(path: String, mime: String)

    /** Calls contact [fingerprint] (audio) and shows the call. */
    fun call(fingerprint: String)

    /** Lets the user pick a folder; [onPicked] gets a local copy's path. */
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
        Screen.Backup -> BackupView(host, BackupViewModel(node, saver))
    }
}

/** Identity, signaling state, connected peers, and the way to the other screens. */
class HomeView(host: Host) : ScreenView(host) {
    private val identity = ui.text(monospace = true)
    private val signaling = ui.text()
    private val peers = ui.text(monospace = true)
    override val root: View = ui.column(20).with(
        ui.title("PeerNS"),
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

    override fun shown() {
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
