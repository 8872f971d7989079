import Foundation
import PeernsKit

/// Runs the node for the screen: platform adapters in, identity and status out.
@MainActor
final class NodeModel: ObservableObject {
    @Published private(set) var identity: Identity?
    @Published private(set) var status = NodeStatus(signaling: .offline(reason: "starting"))

    private let notifier = UserNotifier()
    private let location = CoreLocationProvider(background: true)
    private var network: NetworkMonitor?
    private var node: PeernsNode?

    /// The app came to the foreground (`true`) or left it.
    func setAppActive(_ active: Bool) {
        try? node?.setAppActive(active: active)
    }

    /// Starts the node and follows its status until the task is cancelled.
    func run() async {
        let peerns: Peerns
        do {
            peerns = try Peerns(
                config: NodeConfig(
                    profileDir: Self.profileDirectory().path,
                    signalingUrl: "wss://0.peerjs.com:443/?key=peerjs",
                    iceServers: ["stun:stun.l.google.com:19302"],
                    loopbackOnly: false,
                    displayName: nil
                ),
                keystore: KeychainKeyStore(),
                notifier: notifier,
                location: location
            )
            _ = try? await notifier.requestAuthorization()
            try await peerns.start()
        } catch {
            status = NodeStatus(signaling: .offline(reason: "could not start: \(error)"))
            return
        }
        identity = try? peerns.node.identity()
        let node = peerns.node
        self.node = node
        network = NetworkMonitor { kind, pathId in try? node.networkChanged(kind: kind, pathId: pathId) }
        do {
            for await next in try peerns.status() {
                status = next
            }
        } catch {
            status = NodeStatus(signaling: .offline(reason: "\(error)"))
        }
        network?.cancel()
        network = nil
        self.node = nil
        try? await peerns.stop()
    }

    /// Application Support, excluded from backups: the identity's key stays on this device.
    private static func profileDirectory() throws -> URL {
        var url = try FileManager.default.url(
            for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true
        ).appendingPathComponent("profile", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try url.setResourceValues(values)
        return url
    }
}
