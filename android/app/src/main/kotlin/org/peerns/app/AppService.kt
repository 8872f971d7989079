package org.peerns.app

import java.io.File
import org.peerns.android.PeernsService
import org.peerns.ffi.NodeConfig

/**
 * The app's node: the signaling server from [AppSettings] (the public PeerJS server unless the
 * user chose another) and a public STUN server. Open only so that tests can supply a keystore.
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

    companion object {
        /** The profile's folder in no-backup storage. */
        const val PROFILE_DIR = "profile"
    }
}
