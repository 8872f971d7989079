import Foundation
import PushKit

/// The VoIP push path: written, but inert without a push service, and PeerNS has none of its own
/// (ios/README.md, "Calls, CallKit and background ringing"). `start()` registers for VoIP pushes
/// and exposes the device token (`token`, `onToken`) so that a push relay the user runs could use
/// it; an incoming VoIP push reports a call to CallKit at once (iOS terminates an app that does
/// not, and stops delivering its VoIP pushes), then `onPush` starts the node so that the real call
/// can arrive over signaling; `CallKitController` ends the reported call `.failed` if none does.
/// The push's payload is not read: the relay need not know who calls.
///
/// Create it at launch (PushKit delivers a push only to a registry that exists). Runs on the main
/// queue. Never compiled (ios/README.md).
public final class VoipPushRegistry: NSObject, PKPushRegistryDelegate {
    /// This device's VoIP push token in hex, once APNs gave one; nil when not registered.
    public private(set) var token: String?
    /// The token changed (nil: invalidated or unregistered).
    public var onToken: ((String?) -> Void)?

    private let callKit: CallKitController
    private let onPush: () -> Void
    private var registry: PKPushRegistry?

    /// `onPush` runs after the call is reported: start the node there.
    public init(callKit: CallKitController, onPush: @escaping () -> Void) {
        self.callKit = callKit
        self.onPush = onPush
    }

    /// Registers for VoIP pushes; the token comes through `onToken`.
    public func start() {
        guard registry == nil else { return }
        let registry = PKPushRegistry(queue: .main)
        registry.delegate = self
        registry.desiredPushTypes = [.voIP]
        self.registry = registry
    }

    /// Unregisters: APNs drops the token.
    public func stop() {
        registry?.desiredPushTypes = []
        registry = nil
        token = nil
        onToken?(nil)
    }

    public func pushRegistry(_ registry: PKPushRegistry, didUpdate pushCredentials: PKPushCredentials, for type: PKPushType) {
        guard type == .voIP else { return }
        token = pushCredentials.token.map { String(format: "%02x", $0) }.joined()
        onToken?(token)
    }

    public func pushRegistry(_ registry: PKPushRegistry, didInvalidatePushTokenFor type: PKPushType) {
        guard type == .voIP else { return }
        token = nil
        onToken?(nil)
    }

    public func pushRegistry(
        _ registry: PKPushRegistry,
        didReceiveIncomingPushWith payload: PKPushPayload,
        for type: PKPushType,
        completion: @escaping () -> Void
    ) {
        guard type == .voIP else {
            completion()
            return
        }
        // First, before anything that could fail or wait: the call must be reported.
        callKit.reportPushedCall(completion: completion)
        onPush()
    }
}
