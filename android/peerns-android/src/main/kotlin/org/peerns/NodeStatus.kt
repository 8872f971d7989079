package org.peerns

import org.peerns.ffi.NodeEvent
import org.peerns.ffi.SignalingState

/**
 * What a screen shows about a node: its signaling state and the fingerprints of the peers it
 * is connected to (a PeerJS ID is only a route; it can change or be taken over).
 */
data class NodeStatus(val signaling: SignalingState = SignalingState.Offline("not started"), val peers: Set<String> = emptySet()) {
    /** This status after [event]; events about anything else leave it as it is. */
    fun after(event: NodeEvent): NodeStatus = when (event) {
        is NodeEvent.SignalingState -> copy(signaling = event.state)
        is NodeEvent.PeerConnected -> copy(peers = peers + event.fingerprint)
        is NodeEvent.PeerDisconnected -> copy(peers = peers - event.fingerprint)
        else -> this
    }
}
