/// What a screen shows about a node: its signaling state and the fingerprints of the peers it
/// is connected to (a PeerJS ID is only a route; it can change or be taken over).
public struct NodeStatus: Equatable {
    public var signaling: SignalingState
    public var peers: Set<String>

    public init(signaling: SignalingState, peers: Set<String> = []) {
        self.signaling = signaling
        self.peers = peers
    }

    /// This status after `event`; events about anything else leave it as it is.
    public func after(_ event: NodeEvent) -> NodeStatus {
        var next = self
        switch event {
        case let .signalingState(state):
            next.signaling = state
        case let .peerConnected(_, fingerprint):
            next.peers.insert(fingerprint)
        case let .peerDisconnected(_, fingerprint):
            next.peers.remove(fingerprint)
        default:
            break
        }
        return next
    }
}
