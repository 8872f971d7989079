package org.peerns.app

import java.io.File
import org.peerns.android.PeernsService
import org.peerns.app.model.CallMedia
import org.peerns.app.model.SoundLevels
import org.peerns.ffi.NodeConfig

/**
 * The app's node: the signaling server from [AppSettings] (the public PeerJS server unless the
 * user chose another) and a public STUN server, and the baby monitor, which goes on with the
 * screen off ([monitor]). Open only so that tests can supply a keystore and the monitor's media.
 */
open class AppService : PeernsService() {
    override fun config(): NodeConfig {
        val settings = AppSettings(this)
        return NodeConfig(
            // No-backup storage: the identity is sealed by a key that never leaves this device.
            profileDir = File(noBackupFilesDir, PROFILE_DIR).path,
            signalingUrl = settings.signalingUrl,
            iceServers = settings.iceServers,
            loopbackOnly = settings.loopbackOnly,
            displayName = null,
        )
    }

    private var monitor: MonitorKeeper? = null

    /**
     * The baby monitor of the running node, kept while the service runs (made on first use, a
     * new one for a new node), or null while no node runs. Main thread.
     */
    fun monitor(): MonitorKeeper? {
        val node = node?.takeIf { running.value } ?: return null
        monitor?.takeIf { it.node === node }?.let { return it }
        monitor?.close()
        val camera = monitorCamera()
        return MonitorKeeper(this, node, monitorMicrophone(), camera) { (camera as? AndroidCallMedia)?.close() ?: camera?.stop() }
            .also { monitor = it }
    }

    /** The watcher the baby monitor streams to now (a call it placed), or null; makes no monitor. */
    val monitorStreamingTo: String? get() = monitor?.model?.state?.value?.streamingTo

    /** The microphone's levels for the monitor's sound alert (open for tests). */
    protected open fun monitorMicrophone(): SoundLevels? = MicrophoneLevels.create(this)

    /** The camera and microphone the monitor streams (open for tests). */
    protected open fun monitorCamera(): CallMedia? = AndroidCallMedia.create(this)

    override fun onDestroy() {
        // The monitor stops while its node still runs (the node stops in super).
        monitor?.close()
        monitor = null
        super.onDestroy()
    }

    companion object {
        /** The profile's folder in no-backup storage. */
        const val PROFILE_DIR = "profile"
    }
}
