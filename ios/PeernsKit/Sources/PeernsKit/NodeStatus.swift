/// What a screen shows about a node: its signaling state and the peers it is connected to.
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
        case let .peerConnected(peer, _):
            next.peers.insert(peer)
        case let .peerDisconnected(peer, _):
            next.peers.remove(peer)
        default:
            break
        }
        return next
    }
}
