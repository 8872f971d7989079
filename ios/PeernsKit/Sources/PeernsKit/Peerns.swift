import Foundation

/// A PeerNS node for Swift: the generated `PeernsNode` plus its events as `AsyncStream`s.
///
/// Every call of the library is on `node` (async calls are `async throws`, errors are typed
/// `PeernsError`s), so calls exported later need no wrapper code. This class adds `events()`,
/// `groupEvents()` and `status()`, which finish when the node is stopped through `stop()`.
public final class Peerns: @unchecked Sendable {
    /// The generated object: every call of the library.
    public let node: PeernsNode

    private let lock = NSLock()
    /// Finishes each open stream, by its ID.
    private var running: [UUID: () -> Void] = [:]

    /// Checks `config` (no I/O); the platform objects are optional, see `PeernsNode`.
    public init(
        config: NodeConfig,
        keystore: KeyStore? = nil,
        notifier: Notifier? = nil,
        location: LocationProvider? = nil
    ) throws {
        node = try PeernsNode(config: config, keystore: keystore, notifier: notifier, location: location)
    }

    /// Opens the profile and registers at the signaling server.
    public func start() async throws {
        try await node.start()
    }

    /// Stops the node and finishes every stream made by `events()` or `status()`.
    public func stop() async throws {
        defer {
            lock.lock()
            let streams = running
            running = [:]
            lock.unlock()
            streams.values.forEach { $0() }
        }
        try await node.stop()
    }

    /// Every event from now on, in order, buffered without limit (the core never waits for a
    /// slow reader). Throws `PeernsError.Closed` if the node is not running; ending the
    /// iteration cancels the subscription.
    public func events() throws -> AsyncStream<NodeEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: NodeEvent.self)
        let subscription = try node.subscribe(listener: Forwarder(continuation))
        track(subscription, continuation)
        return stream
    }

    /// Every group event (messages, members, roles, the group calls' roster and our phase)
    /// from now on, in order; like `events()`.
    public func groupEvents() throws -> AsyncStream<GroupEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: GroupEvent.self)
        let subscription = try node.subscribeGroups(listener: GroupForwarder(continuation))
        track(subscription, continuation)
        return stream
    }

    /// Finishes `continuation` on `stop()`, and cancels `subscription` when the iteration ends.
    private func track<T>(_ subscription: Subscription, _ continuation: AsyncStream<T>.Continuation) {
        let id = UUID()
        lock.lock()
        running[id] = { continuation.finish() }
        lock.unlock()
        continuation.onTermination = { [weak self] _ in
            subscription.cancel()
            guard let self else { return }
            self.lock.lock()
            self.running[id] = nil
            self.lock.unlock()
        }
    }

    /// The signaling state and connected peers: the current signaling state first, then one
    /// value per event. Only connections opened after the call are seen, so call it right
    /// after `start()`.
    public func status() throws -> AsyncStream<NodeStatus> {
        let events = try events()
        // Read after subscribing, so that no change between the two is lost.
        let initial = NodeStatus(signaling: node.signalingState())
        return AsyncStream { continuation in
            let task = Task {
                var status = initial
                continuation.yield(status)
                for await event in events {
                    status = status.after(event)
                    continuation.yield(status)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// Hands events from the library's thread to a stream.
private final class Forwarder: EventListener, @unchecked Sendable {
    private let continuation: AsyncStream<NodeEvent>.Continuation

    init(_ continuation: AsyncStream<NodeEvent>.Continuation) {
        self.continuation = continuation
    }

    func onEvent(event: NodeEvent) {
        continuation.yield(event)
    }
}

/// Hands group events from the library's thread to a stream.
private final class GroupForwarder: GroupListener, @unchecked Sendable {
    private let continuation: AsyncStream<GroupEvent>.Continuation

    init(_ continuation: AsyncStream<GroupEvent>.Continuation) {
        self.continuation = continuation
    }

    func onGroupEvent(event: GroupEvent) {
        continuation.yield(event)
    }
}
