package org.peerns.app

import java.io.File
import org.peerns.android.PeernsService
import org.peerns.ffi.NodeConfig

/** The app's node: the public PeerJS server and a public STUN server. */
class AppService : PeernsService() {
    override fun config() = NodeConfig(
        // No-backup storage: the identity is sealed by a key that never leaves this device.
        profileDir = File(noBackupFilesDir, "profile").path,
        signalingUrl = "wss://0.peerjs.com:443/?key=peerjs",
        iceServers = listOf("stun:stun.l.google.com:19302"),
        loopbackOnly = false,
        displayName = null,
    )
}
