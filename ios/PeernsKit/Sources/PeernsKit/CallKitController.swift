import AVFoundation
import CallKit
import Foundation

/// 1:1 PeerNS calls in CallKit: an incoming call rings with the system's call screen (the lock
/// screen too), a call we place goes through `CXStartCallAction`, and CallKit's answer, end and
/// mute actions become the node's `acceptCall`, `declineCall`/`hangUp` and `setMuted`. The node's
/// call events (`apply`) keep CallKit in step, also when a call is answered or ended in the app's
/// own call screen; the app's own mute goes through CallKit too (`requestMuted`). The audio
/// session is CallKit's: capture and playback start only in `onAudioActivated`
/// (`provider(_:didActivate:)`).
///
/// Everything runs on the main queue: the provider's delegate queue is the main queue, and
/// `apply`, `startCall` and `requestMuted` are called from the main actor. Never compiled (ios/README.md).
public final class CallKitController: NSObject, CXProviderDelegate {
    /// The running node; nil while it does not run (actions then fail).
    public var node: PeernsNode?
    /// CallKit activated the audio session: start the microphone and playback now, not before.
    public var onAudioActivated: ((AVAudioSession) -> Void)?
    /// CallKit deactivated the audio session: stop them.
    public var onAudioDeactivated: ((AVAudioSession) -> Void)?
    /// Low Power Mode is on (`PowerSaver`, set by the app): a call answered here with video starts
    /// with the camera off, as in the app's call screen (`CallModel`); it can be turned on.
    public var lowPower = false
    /// How long a call reported for a VoIP push waits for the call to arrive over signaling.
    public var pushTimeout: TimeInterval = 20
    /// CallKit muted or unmuted call `call` (the system's call screen, a headset): the node is
    /// told already; the app stops or starts sending the microphone (`CallModel`).
    public var onMuted: ((_ call: String, _ muted: Bool) -> Void)?
    /// CallKit's mute action for call `call` failed (the node does not run, or its `setMuted`
    /// threw): nothing was muted or unmuted, though `requestMuted` returned true (CallKit had
    /// accepted the request); the app says so (`CallModel`). Not called for a call CallKit no
    /// longer knows (it ended).
    public var onMuteFailed: ((_ call: String, _ muted: Bool, _ error: Error) -> Void)?

    private let provider: CXProvider
    private let controller = CXCallController()
    private var calls = CallKitCalls()
    /// Calls that CallKit ends through an action of ours: their end event needs nothing more.
    private var ending: Set<UUID> = []
    /// Incoming calls answered through an action: their connected event needs nothing more.
    private var answered: Set<UUID> = []
    /// `startCall`s waiting for their `CXStartCallAction`, by UUID.
    private var starts: [UUID: CheckedContinuation<String, Error>] = [:]
    /// The user answered the call reported for a VoIP push before the call arrived.
    private var earlyAnswer: CXAnswerCallAction?
    /// The user declined the call reported for a VoIP push before it arrived: decline it then.
    private var declineNextRing = false
    /// Calls we place whose `startCall` runs, and those of them the user ended meanwhile.
    private var dialing: Set<UUID> = []
    private var endedWhileDialing: Set<UUID> = []

    public override init() {
        let config = CXProviderConfiguration()
        config.supportsVideo = true
        config.maximumCallGroups = 1
        config.maximumCallsPerCallGroup = 1
        config.supportedHandleTypes = [.generic]
        // Not in the Phone app's Recents: tapping an entry there calls back through
        // `INStartCallIntent`, which the app does not handle (its chats show the call log).
        config.includesCallsInRecents = false
        provider = CXProvider(configuration: config)
        super.init()
        provider.setDelegate(self, queue: nil) // nil: the main queue
    }

    // MARK: The node's events

    /// A node event: reports a ringing call, a connected one, an ended one.
    public func apply(_ event: NodeEvent) {
        switch event {
        case let .incomingCall(call, fingerprint, name, kinds):
            ring(call, fingerprint: fingerprint, name: name.isEmpty ? String(fingerprint.prefix(8)) : name, video: kinds.video)
        case let .callState(call, fingerprint, status):
            if status.state == "ended" {
                guard let ended = calls.ended(call, fingerprint: fingerprint, reason: status.reason) else { return }
                finish(ended.uuid, ended.end)
            } else if let uuid = calls.state(call, fingerprint: fingerprint), status.state == "connected" {
                connected(uuid)
            }
        default:
            break
        }
    }

    private func ring(_ call: String, fingerprint: String, name: String, video: Bool) {
        let (uuid, report) = calls.incoming(call)
        if report && declineNextRing {
            // The call of a VoIP push the user declined before it arrived (its UUID is gone
            // with the decline): declined without ringing again.
            declineNextRing = false
            forget(uuid)
            try? node?.declineCall(call: call)
            return
        }
        let update = Self.update(handle: fingerprint, name: name, video: video)
        if report {
            provider.reportNewIncomingCall(with: uuid, update: update) { [weak self] error in
                // Do Not Disturb or a blocked caller: it rings in the app only.
                guard error != nil else { return }
                DispatchQueue.main.async { self?.forget(uuid) }
            }
            return
        }
        // The call of a VoIP push, reported already: now with the caller.
        provider.reportCall(with: uuid, updated: update)
        if declineNextRing {
            declineNextRing = false
            try? node?.declineCall(call: call)
        } else if let answer = earlyAnswer, answer.callUUID == uuid {
            earlyAnswer = nil
            accept(call, answer)
        }
    }

    /// Connected: an outgoing call is reported connected; an incoming one answered in the app
    /// (not through CallKit) gets an answer action so that CallKit stops ringing.
    private func connected(_ uuid: UUID) {
        if calls.isOutgoing(uuid) {
            provider.reportOutgoingCall(with: uuid, connectedAt: nil)
        } else if !answered.contains(uuid) {
            answered.insert(uuid)
            request(CXAnswerCallAction(call: uuid))
        }
    }

    private func finish(_ uuid: UUID, _ end: CallKitEnd) {
        switch end {
        case .replaced:
            return // the peer's call goes on under this UUID
        case .ours:
            if ending.contains(uuid) {
                forget(uuid)
            } else {
                // Ended in the app's call screen: CallKit ends it through an action of ours.
                ending.insert(uuid)
                request(CXEndCallAction(call: uuid))
            }
            return
        case .remoteEnded:
            provider.reportCall(with: uuid, endedAt: nil, reason: .remoteEnded)
        case .unanswered:
            provider.reportCall(with: uuid, endedAt: nil, reason: .unanswered)
        case .failed:
            provider.reportCall(with: uuid, endedAt: nil, reason: .failed)
        }
        forget(uuid)
    }

    /// The node stopped: every CallKit call of ours ends as failed.
    public func endAll() {
        for uuid in calls.all { provider.reportCall(with: uuid, endedAt: nil, reason: .failed) }
        earlyAnswer?.fail()
        earlyAnswer = nil
        for start in starts.values { start.resume(throwing: CancellationError()) }
        starts = [:]
        calls = CallKitCalls()
        ending = []
        answered = []
    }

    /// Whether CallKit has call `call` (it rang, or we placed it through CallKit): one it refused
    /// to ring (Do Not Disturb, a Focus, a blocked caller) rings in the app only, and its media
    /// activates the audio session itself (`PhoneCallMedia`).
    public func knows(call: String) -> Bool {
        calls.uuid(of: call) != nil
    }

    // MARK: Placing a call

    /// Calls `fingerprint` through CallKit (`CXStartCallAction`, then `node.startCall`); the
    /// call's ID.
    @MainActor
    public func startCall(fingerprint: String, name: String, kinds: CallKinds) async throws -> String {
        let uuid = UUID()
        let action = CXStartCallAction(call: uuid, handle: CXHandle(type: .generic, value: fingerprint))
        action.isVideo = kinds.video
        let call: String = try await withCheckedThrowingContinuation { continuation in
            starts[uuid] = continuation
            calls.starting(uuid, fingerprint: fingerprint)
            controller.request(CXTransaction(action: action)) { [weak self] error in
                guard let error else { return }
                DispatchQueue.main.async {
                    guard let self, let start = self.starts.removeValue(forKey: uuid) else { return }
                    self.forget(uuid)
                    start.resume(throwing: error)
                }
            }
        }
        // The name, for the call screen and Recents.
        provider.reportCall(with: uuid, updated: Self.update(handle: fingerprint, name: name, video: kinds.video))
        return call
    }

    // MARK: Muting from the app

    /// Asks CallKit to mute or unmute `call` (`CXSetMutedCallAction`), so that the system's call
    /// UI (lock screen, Dynamic Island) shows the same state: the action's `perform` tells the
    /// node and `onMuted`, or `onMuteFailed` if it fails (true here means only that CallKit
    /// accepted the request). False when CallKit does not know the call or refused the request:
    /// then nothing was muted, and the app mutes directly.
    @MainActor
    public func requestMuted(call: String, muted: Bool) async -> Bool {
        guard let uuid = calls.uuid(of: call) else { return false }
        let action = CXSetMutedCallAction(call: uuid, muted: muted)
        return await withCheckedContinuation { continuation in
            controller.request(CXTransaction(action: action)) { error in
                continuation.resume(returning: error == nil)
            }
        }
    }

    // MARK: VoIP push

    /// A VoIP push came: reports an incoming call at once (iOS ends an app that does not), for
    /// the call that will arrive over signaling; ends it `.failed` if none arrives within
    /// `pushTimeout`. `completion` is PushKit's, called once CallKit has the call.
    public func reportPushedCall(completion: @escaping () -> Void) {
        let update = Self.update(handle: "peerns", name: "PeerNS call", video: false)
        if let active = try? node?.activeCall(), active.status.state != "ended", calls.uuid(of: active.call) != nil {
            // A call is on already (this push's call came over signaling first, or another
            // one runs, and the core answers a second caller busy): the push must still be
            // reported (iOS ends an app that does not), and ends at once rather than wait as a
            // phantom second call.
            let uuid = UUID()
            provider.reportNewIncomingCall(with: uuid, update: update) { [weak self] _ in
                DispatchQueue.main.async {
                    self?.provider.reportCall(with: uuid, endedAt: nil, reason: .failed)
                    completion()
                }
            }
            return
        }
        if let old = calls.pushed {
            provider.reportCall(with: old, endedAt: nil, reason: .failed)
            forget(old)
        }
        let uuid = UUID()
        calls.reportedPush(uuid)
        provider.reportNewIncomingCall(with: uuid, update: update) { [weak self] error in
            DispatchQueue.main.async {
                if error != nil {
                    self?.forget(uuid)
                } else if let self {
                    DispatchQueue.main.asyncAfter(deadline: .now() + self.pushTimeout) { [weak self] in
                        self?.pushTimedOut(uuid)
                    }
                }
                completion()
            }
        }
    }

    private func pushTimedOut(_ uuid: UUID) {
        guard calls.pushed == uuid else { return } // a call took it, or it ended
        if let answer = earlyAnswer, answer.callUUID == uuid {
            earlyAnswer = nil
            answer.fail()
        }
        provider.reportCall(with: uuid, endedAt: nil, reason: .failed)
        forget(uuid)
    }

    // MARK: CXProviderDelegate

    public func providerDidReset(_ provider: CXProvider) {
        if let node, let active = try? node.activeCall(), active.status.state != "ended" {
            try? node.hangUp(call: active.call)
        }
        // Every action CallKit held is gone: a held answer fails, and a start that waits for
        // its action ends (its `startCall` would wait for ever otherwise).
        earlyAnswer?.fail()
        earlyAnswer = nil
        for start in starts.values { start.resume(throwing: CancellationError()) }
        starts = [:]
        declineNextRing = false
        calls = CallKitCalls()
        ending = []
        answered = []
        endedWhileDialing = dialing
    }

    /// Fulfilled at once (CallKit times out an action left open, and `startCall` dials the
    /// contact first, which can take many seconds); the call is reported connecting when the
    /// node has placed it, and ended as failed if it could not.
    public func provider(_ provider: CXProvider, perform action: CXStartCallAction) {
        let uuid = action.callUUID
        guard let start = starts.removeValue(forKey: uuid) else {
            action.fail()
            return
        }
        guard let node else {
            forget(uuid)
            action.fail()
            start.resume(throwing: PeernsError.Closed(msg: "the node does not run"))
            return
        }
        let fingerprint = action.handle.value
        let kinds = CallKinds(audio: true, video: action.isVideo, screen: false)
        configureAudio(video: action.isVideo)
        dialing.insert(uuid)
        action.fulfill()
        Task { @MainActor in
            defer {
                self.dialing.remove(uuid)
                self.endedWhileDialing.remove(uuid)
            }
            do {
                let call = try await node.startCall(fingerprint: fingerprint, kinds: kinds)
                if self.endedWhileDialing.contains(uuid) {
                    // Ended in CallKit while it dialled: it must not ring at the peer.
                    try? node.hangUp(call: call)
                    self.forget(uuid)
                    start.resume(throwing: CancellationError())
                    return
                }
                self.calls.started(call, uuid: uuid, fingerprint: fingerprint)
                provider.reportOutgoingCall(with: uuid, startedConnectingAt: nil)
                start.resume(returning: call)
            } catch {
                if !self.endedWhileDialing.contains(uuid) {
                    provider.reportCall(with: uuid, endedAt: nil, reason: .failed)
                }
                self.forget(uuid)
                start.resume(throwing: error)
            }
        }
    }

    public func provider(_ provider: CXProvider, perform action: CXAnswerCallAction) {
        let uuid = action.callUUID
        answered.insert(uuid)
        if let call = calls.call(of: uuid) {
            accept(call, action)
        } else if calls.pushed == uuid {
            // Answered before the call arrived: accepted when it does (or failed on timeout).
            earlyAnswer = action
        } else {
            action.fail()
        }
    }

    /// Accepts `call` if it still rings (answered in the app: it is connected already).
    private func accept(_ call: String, _ action: CXAnswerCallAction) {
        guard let node else {
            action.fail()
            return
        }
        do {
            guard let active = try node.activeCall(), active.call == call else {
                action.fail()
                return
            }
            let video = active.callerKinds.video
            configureAudio(video: video)
            if active.status.state == "ringing" {
                try node.acceptCall(call: call, kinds: CallKinds(audio: true, video: video, screen: false))
                if video && lowPower { try node.setCameraOff(call: call, off: true) }
            }
            action.fulfill()
        } catch {
            action.fail()
        }
    }

    public func provider(_ provider: CXProvider, perform action: CXEndCallAction) {
        let uuid = action.callUUID
        ending.insert(uuid)
        if calls.pushed == uuid {
            // Declined before the call arrived: decline it if it does within the push's time.
            declineNextRing = true
            forget(uuid)
            DispatchQueue.main.asyncAfter(deadline: .now() + pushTimeout) { [weak self] in
                self?.declineNextRing = false
            }
        } else if dialing.contains(uuid) {
            // Not placed yet: hung up when `startCall` returns.
            endedWhileDialing.insert(uuid)
        } else if let node, let call = calls.call(of: uuid),
                  let active = try? node.activeCall(), active.call == call, active.status.state != "ended" {
            if !active.outgoing && active.status.state == "ringing" {
                try? node.declineCall(call: call)
            } else {
                try? node.hangUp(call: call)
            }
            // The node's ended event forgets the UUID.
        } else {
            forget(uuid) // ended already
        }
        action.fulfill()
    }

    /// Tells the node and `onMuted`; a failure goes to `onMuteFailed` (the app's own Mute button
    /// would otherwise silently do nothing).
    public func provider(_ provider: CXProvider, perform action: CXSetMutedCallAction) {
        guard let call = calls.call(of: action.callUUID) else {
            action.fail() // ended: nothing to mute
            return
        }
        guard let node else {
            action.fail()
            onMuteFailed?(call, action.isMuted, PeernsError.Closed(msg: "the node does not run"))
            return
        }
        do {
            try node.setMuted(call: call, muted: action.isMuted)
            onMuted?(call, action.isMuted)
            action.fulfill()
        } catch {
            action.fail()
            onMuteFailed?(call, action.isMuted, error)
        }
    }

    public func provider(_ provider: CXProvider, didActivate audioSession: AVAudioSession) {
        onAudioActivated?(audioSession)
    }

    public func provider(_ provider: CXProvider, didDeactivate audioSession: AVAudioSession) {
        onAudioDeactivated?(audioSession)
    }

    // MARK: Helpers

    /// The session's category and mode; CallKit activates it (`didActivate`).
    private func configureAudio(video: Bool) {
        try? AVAudioSession.sharedInstance().setCategory(
            .playAndRecord, mode: video ? .videoChat : .voiceChat, options: [.allowBluetooth]
        )
    }

    private func request(_ action: CXCallAction) {
        controller.request(CXTransaction(action: action)) { _ in }
    }

    private func forget(_ uuid: UUID) {
        calls.remove(uuid)
        ending.remove(uuid)
        answered.remove(uuid)
    }

    private static func update(handle: String, name: String, video: Bool) -> CXCallUpdate {
        let update = CXCallUpdate()
        update.remoteHandle = CXHandle(type: .generic, value: handle)
        update.localizedCallerName = name
        update.hasVideo = video
        update.supportsHolding = false
        update.supportsGrouping = false
        update.supportsUngrouping = false
        update.supportsDTMF = false
        return update
    }
}
