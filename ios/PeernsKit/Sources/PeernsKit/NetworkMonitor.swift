import Network

/// Follows the default network path with `NWPathMonitor` and calls `onChange` on each change,
/// with `.none` when no path is usable, a path id (the interfaces in use) and whether the path
/// is metered (`isExpensive`: cellular or a personal hotspot, or `isConstrained`: Low Data
/// Mode): feed them to `PeernsNode.networkChanged(kind:pathId:metered:)`. iOS reports every
/// attribute change (expensive, constrained, DNS); the core keeps the signaling socket while
/// the path id stays the same and holds Wi-Fi-only backups while the path is metered.
/// The first call reports the current path. Calls come one at a time on a private queue.
public final class NetworkMonitor: @unchecked Sendable {
    private let monitor = NWPathMonitor()
    private let queue = DispatchQueue(label: "org.peerns.network-monitor")
    /// Touched on `queue` only.
    private var last: NWPath?

    public init(onChange: @escaping @Sendable (NetworkKind, String, Bool) -> Void) {
        monitor.pathUpdateHandler = { [weak self] path in
            guard let self, path != self.last else { return }
            self.last = path
            onChange(Self.kind(of: path), Self.pathId(of: path), path.isExpensive || path.isConstrained)
        }
        monitor.start(queue: queue)
    }

    /// Stops monitoring.
    public func cancel() {
        monitor.cancel()
    }

    deinit {
        monitor.cancel()
    }

    /// The interface in use (the first available one, in the system's order of preference):
    /// cellular coming or going while on Wi-Fi is not a change of path.
    private static func pathId(of path: NWPath) -> String {
        guard path.status == .satisfied else { return "" }
        return path.availableInterfaces.first.map { "\($0.type):\($0.name)" } ?? "satisfied"
    }

    private static func kind(of path: NWPath) -> NetworkKind {
        guard path.status == .satisfied else { return .none }
        if path.usesInterfaceType(.wifi) { return .wifi }
        if path.usesInterfaceType(.cellular) { return .cellular }
        if path.usesInterfaceType(.wiredEthernet) { return .ethernet }
        return .other
    }
}
