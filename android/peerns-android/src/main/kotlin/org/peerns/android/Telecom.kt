package org.peerns.android

import android.Manifest
import android.content.ComponentName
import android.content.Context
import android.content.pm.PackageManager
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.telecom.CallAudioState
import android.telecom.Connection
import android.telecom.ConnectionRequest
import android.telecom.ConnectionService
import android.telecom.DisconnectCause
import android.telecom.PhoneAccount
import android.telecom.PhoneAccountHandle
import android.telecom.TelecomManager
import android.telecom.VideoProfile
import org.peerns.telecom.CallControl
import org.peerns.telecom.CallRegistry
import org.peerns.telecom.ConnectionStep
import org.peerns.telecom.EndCause
import org.peerns.telecom.connectionStep
import org.peerns.telecom.endCause

/**
 * PeerNS calls in Android's Telecom, as a self-managed `ConnectionService`: the system knows a
 * call is ringing or active (Bluetooth headset buttons, other audio paused, car displays, no
 * clash with cellular calls). [PeernsService] sets [control] and [showIncomingUi] while its node
 * runs, reports incoming calls ([reportIncoming]) and the calls we place ([placeOutgoing]), and
 * hands every call state to [follow]. When Telecom refuses (no telecom feature, a
 * `SecurityException`), nothing else changes: the call's `CallStyle` notification alone rings.
 */
object PeernsTelecom {
    /** The extras keys of the node's call ID, the peer's fingerprint and name, video offered. */
    const val EXTRA_CALL = "org.peerns.extra.CALL"
    const val EXTRA_PEER = "org.peerns.extra.PEER"
    const val EXTRA_NAME = "org.peerns.extra.NAME"
    const val EXTRA_VIDEO = "org.peerns.extra.VIDEO"
    private const val ACCOUNT_ID = "peerns"
    private const val SCHEME = "peerns"

    /** The node's calls; null while no node runs (connections then end at once). */
    @Volatile
    var control: CallControl? = null

    /** Shows the incoming call's own UI (its `CallStyle` notification): call, caller, name. */
    @Volatile
    var showIncomingUi: ((call: String, caller: String, name: String) -> Unit)? = null

    /** The connections by the node's call ID. */
    val calls = CallRegistry<PeernsConnection>()

    fun accountHandle(context: Context) = PhoneAccountHandle(ComponentName(context, PeernsConnectionService::class.java), ACCOUNT_ID)

    private fun telecom(context: Context): TelecomManager? {
        val feature = if (Build.VERSION.SDK_INT >= 33) PackageManager.FEATURE_TELECOM else "android.software.connectionservice"
        if (!context.packageManager.hasSystemFeature(feature)) return null
        return context.getSystemService(TelecomManager::class.java)
    }

    /** Registers the self-managed phone account (again is harmless); false when Telecom refuses. */
    fun register(context: Context): Boolean {
        val telecom = telecom(context) ?: return false
        val account = PhoneAccount.builder(accountHandle(context), "PeerNS")
            .setCapabilities(
                PhoneAccount.CAPABILITY_SELF_MANAGED or PhoneAccount.CAPABILITY_VIDEO_CALLING or
                    PhoneAccount.CAPABILITY_SUPPORTS_VIDEO_CALLING,
            )
            .setSupportedUriSchemes(listOf(SCHEME))
            .build()
        return try {
            telecom.registerPhoneAccount(account)
            true
        } catch (e: RuntimeException) {
            // SecurityException, or a Telecom that is not there: the notification alone rings.
            false
        }
    }

    private fun extras(call: String, peer: String, name: String, video: Boolean) = Bundle().apply {
        putString(EXTRA_CALL, call)
        putString(EXTRA_PEER, peer)
        putString(EXTRA_NAME, name)
        putBoolean(EXTRA_VIDEO, video)
    }

    /** Tells Telecom of an incoming [call]; false when it refuses (the notification still rings). */
    fun reportIncoming(context: Context, call: String, caller: String, name: String, video: Boolean): Boolean {
        if (!calls.report(call)) return true
        val telecom = telecom(context)
        if (telecom == null || !register(context)) return refused(call)
        val extras = Bundle().apply {
            putBundle(TelecomManager.EXTRA_INCOMING_CALL_EXTRAS, extras(call, caller, name, video))
            if (video) putInt(TelecomManager.EXTRA_INCOMING_VIDEO_STATE, VideoProfile.STATE_BIDIRECTIONAL)
        }
        return try {
            telecom.addNewIncomingCall(accountHandle(context), extras)
            true
        } catch (e: RuntimeException) {
            refused(call)
        }
    }

    /** Tells Telecom of a call we place, when `MANAGE_OWN_CALLS` is held; false otherwise. */
    fun placeOutgoing(context: Context, call: String, callee: String, video: Boolean): Boolean {
        if (context.checkSelfPermission(Manifest.permission.MANAGE_OWN_CALLS) != PackageManager.PERMISSION_GRANTED) return false
        if (!calls.report(call)) return true
        val telecom = telecom(context)
        if (telecom == null || !register(context)) return refused(call)
        val extras = Bundle().apply {
            putParcelable(TelecomManager.EXTRA_PHONE_ACCOUNT_HANDLE, accountHandle(context))
            putBundle(TelecomManager.EXTRA_OUTGOING_CALL_EXTRAS, extras(call, callee, callee.take(8), video))
            if (video) putInt(TelecomManager.EXTRA_START_CALL_WITH_VIDEO_STATE, VideoProfile.STATE_BIDIRECTIONAL)
        }
        return try {
            telecom.placeCall(Uri.fromParts(SCHEME, callee, null), extras)
            true
        } catch (e: RuntimeException) {
            refused(call)
        }
    }

    private fun refused(call: String): Boolean {
        calls.remove(call)
        return false
    }

    /** The node reports [call] in [state] (ended for [reason]): its connection follows. */
    fun follow(call: String, state: String, reason: String?) {
        val step = connectionStep(state)
        if (step == ConnectionStep.ENDED) {
            calls.remove(call)?.ended(reason)
        } else {
            calls.stepFor(call, step)?.follow(step)
        }
    }

    /** The `DisconnectCause` code of [cause]. */
    fun disconnectCode(cause: EndCause): Int = when (cause) {
        EndCause.LOCAL -> DisconnectCause.LOCAL
        EndCause.REMOTE -> DisconnectCause.REMOTE
        EndCause.REJECTED -> DisconnectCause.REJECTED
        EndCause.MISSED -> DisconnectCause.MISSED
        EndCause.BUSY -> DisconnectCause.BUSY
        EndCause.ERROR -> DisconnectCause.ERROR
        EndCause.OTHER -> DisconnectCause.OTHER
    }
}

/**
 * One PeerNS call in Telecom: self-managed, VoIP audio. Telecom's answer, reject and disconnect
 * (the UI, a headset button, a car) go to the node through [PeernsTelecom.control]; the node's
 * call states come back through [follow] and [ended].
 */
class PeernsConnection(val call: String, val peer: String, val name: String, val outgoing: Boolean) :
    Connection(),
    TelecomAudio {
    init {
        connectionProperties = PROPERTY_SELF_MANAGED
        audioModeIsVoip = true
        connectionCapabilities = CAPABILITY_MUTE
        setAddress(Uri.fromParts("peerns", peer, null), TelecomManager.PRESENTATION_ALLOWED)
        setCallerDisplayName(name, TelecomManager.PRESENTATION_ALLOWED)
    }

    private fun control(block: CallControl.() -> Unit) {
        val control = PeernsTelecom.control
        if (control == null) {
            ended("lost")
            return
        }
        try {
            control.block()
        } catch (e: Exception) {
            // The node refused or stopped (PeernsException is not a RuntimeException: a headset's
            // hang-up crossing the peer's would have crashed the app). A refused call is gone
            // already, so nothing will end this connection: end it here.
            ended("lost")
        }
    }

    @Volatile
    override var audioState: CallAudioState? = null
        private set

    @Volatile
    override var onAudioState: ((CallAudioState) -> Unit)? = null

    // Deprecated in Android 14 for call endpoints, which need 14; this works on every version.
    @Suppress("OVERRIDE_DEPRECATION")
    override fun onCallAudioStateChanged(state: CallAudioState) {
        audioState = state
        onAudioState?.invoke(state)
    }

    override fun requestAudioRoute(route: Int) {
        @Suppress("DEPRECATION")
        setAudioRoute(route)
    }

    override fun onShowIncomingCallUi() {
        PeernsTelecom.showIncomingUi?.invoke(call, peer, name)
    }

    override fun onAnswer() = control { answer(call, video = false) }

    override fun onAnswer(videoState: Int) = control { answer(call, video = VideoProfile.isVideo(videoState)) }

    override fun onReject() = control { decline(call) }

    override fun onDisconnect() = control { hangUp(call) }

    override fun onAbort() = control { hangUp(call) }

    /** The node's call reached [step]. */
    fun follow(step: ConnectionStep) {
        // A step that came late (kept while Telecom created this connection) never undoes an answer.
        if (state == STATE_ACTIVE && (step == ConnectionStep.RINGING || step == ConnectionStep.DIALING)) return
        when (step) {
            ConnectionStep.RINGING -> if (!outgoing) setRinging()
            ConnectionStep.DIALING -> setDialing()
            ConnectionStep.ACTIVE -> setActive()
            ConnectionStep.ENDED -> ended(null)
            ConnectionStep.NONE -> {}
        }
    }

    /** The node's call ended for [reason]: disconnected with its cause, then destroyed. */
    fun ended(reason: String?) {
        PeernsTelecom.calls.remove(call)
        if (state == STATE_DISCONNECTED) return
        setDisconnected(DisconnectCause(PeernsTelecom.disconnectCode(endCause(reason, outgoing)), reason))
        destroy()
    }
}

/** A Telecom call's audio routes, as `CallAudioRouter` uses them ([PeernsConnection]). */
interface TelecomAudio {
    /** The routes Telecom offers the call and the one in use; null until it has said. */
    val audioState: CallAudioState?

    /** Told of each new [audioState] (on the main thread). */
    var onAudioState: ((CallAudioState) -> Unit)?

    /** Asks Telecom to route the call's sound to [route] (a `CallAudioState.ROUTE_*`). */
    fun requestAudioRoute(route: Int)
}

/**
 * Telecom's side of PeerNS calls: makes a [PeernsConnection] for each call [PeernsTelecom]
 * reported. Declared in the library manifest with `BIND_TELECOM_CONNECTION_SERVICE`.
 */
class PeernsConnectionService : ConnectionService() {
    override fun onCreateIncomingConnection(account: PhoneAccountHandle?, request: ConnectionRequest?): Connection {
        val extras = request?.extras?.getBundle(TelecomManager.EXTRA_INCOMING_CALL_EXTRAS) ?: request?.extras
        return connection(extras, outgoing = false) { setRinging() }
    }

    override fun onCreateOutgoingConnection(account: PhoneAccountHandle?, request: ConnectionRequest?): Connection {
        val extras = request?.extras?.getBundle(TelecomManager.EXTRA_OUTGOING_CALL_EXTRAS) ?: request?.extras
        return connection(extras, outgoing = true) { setDialing() }
    }

    override fun onCreateIncomingConnectionFailed(account: PhoneAccountHandle?, request: ConnectionRequest?) {
        // Telecom refused (another call it cannot hold, say): the notification alone rings.
        request?.extras?.getBundle(TelecomManager.EXTRA_INCOMING_CALL_EXTRAS)?.getString(PeernsTelecom.EXTRA_CALL)
            ?.let { PeernsTelecom.calls.remove(it) }
    }

    override fun onCreateOutgoingConnectionFailed(account: PhoneAccountHandle?, request: ConnectionRequest?) {
        request?.extras?.getBundle(TelecomManager.EXTRA_OUTGOING_CALL_EXTRAS)?.getString(PeernsTelecom.EXTRA_CALL)
            ?.let { PeernsTelecom.calls.remove(it) }
    }

    private fun connection(extras: Bundle?, outgoing: Boolean, start: PeernsConnection.() -> Unit): Connection {
        val call = extras?.getString(PeernsTelecom.EXTRA_CALL)
        val peer = extras?.getString(PeernsTelecom.EXTRA_PEER)
        if (call == null || peer == null || !PeernsTelecom.calls.pending(call)) {
            // Not ours, or the call already ended: Telecom drops it.
            return Connection.createFailedConnection(DisconnectCause(DisconnectCause.ERROR))
        }
        val connection = PeernsConnection(call, peer, extras.getString(PeernsTelecom.EXTRA_NAME) ?: peer.take(8), outgoing)
        if (extras.getBoolean(PeernsTelecom.EXTRA_VIDEO)) connection.videoState = VideoProfile.STATE_BIDIRECTIONAL
        connection.start()
        // A state the node reported while Telecom created it (answered from the notification).
        PeernsTelecom.calls.put(call, connection)?.let(connection::follow)
        return connection
    }
}
