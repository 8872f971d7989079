import Combine
import Foundation
import PeernsKit
import UIKit
import UserNotifications

/// Runs the node for the screens: platform adapters in, identity and status out. Mirrors
/// `PeernsService` of the Android app (android/peerns-android), whose behaviour is tested.
@MainActor
final class NodeModel: ObservableObject {
    @Published private(set) var identity: Identity?
    @Published private(set) var status = NodeStatus(signaling: .offline(reason: "starting"))
    /// The node runs: its calls work.
    @Published private(set) var node: PeernsNode?
    /// The keychain no longer has the key that unlocks the identity (see `startNewIdentity`).
    @Published private(set) var keyLost: String?
    @Published private(set) var stadium = false
    /// Screens pushed on the navigation stack; a notification tap replaces it (not over a screen
    /// on which something runs: see `open`).
    @Published var path: [Route] = [] {
        didSet { pathChanged(from: oldValue) }
    }
    /// A message's or a request's notification was tapped over a screen on which something runs:
    /// its chat opens once the user leaves that screen (the screens say so).
    var tapHeld: Bool { held != nil }
    /// The VoIP push path is on (`Settings.voipPush`, off by default).
    @Published private(set) var voipPush = Settings.voipPush
    /// This device's VoIP push token while the push path is on, for a push relay the user runs.
    @Published private(set) var voipToken: String?
    /// Low Power Mode is on (`powerSaver`): the screens show a notice (`LowPowerNotice`).
    @Published private(set) var lowPower = false
    /// The last error of a call's camera or microphone, shown by the call screens.
    @Published private(set) var mediaError: String?

    /// Follows Low Power Mode for the screens' models, the location provider and CallKit.
    let powerSaver = PowerSaver()
    private var lowPowerWatch: AnyCancellable?

    /// 1:1 calls in CallKit (the system's call screen); fed with the node's events in `run`.
    let callKit = CallKitController()

    /// CallKit rings for incoming calls, so the notifier does not.
    private let notifier = UserNotifier(ringsCalls: false)
    private let location = CoreLocationProvider(background: true)
    private var network: NetworkMonitor?
    private var peerns: Peerns?
    /// The notification center's delegate; kept here because the center holds it weakly.
    private var router: NotificationRouter?
    /// PushKit, while `voipPush` is on.
    private var push: VoipPushRegistry?
    /// `run` is under way (started by the screen, or by a VoIP push).
    private var running = false
    /// CallKit has activated a call's audio session (from `didActivate` to `didDeactivate`).
    private var callAudioActive = false
    /// `callAudioActive`, readable from the media's threads (`callKitHoldsAudio`), set at once
    /// by CallKit's callbacks (before their hop to the main actor).
    private let audioHeld = AudioHeld()
    /// The 1:1 call screen's media, told when CallKit activates or deactivates the audio.
    private weak var callMedia: PhoneCallMedia?

    init() {
        let router = NotificationRouter(
            onOpen: { [weak self] route in
                Task { @MainActor [weak self] in self?.open(route) }
            },
            onAction: { [weak self] action, done in
                // `done` only once the reply is sent (or could not be): an app woken in the
                // background for it may be suspended as soon as it is called.
                Task { @MainActor [weak self] in
                    // Time to finish in the background: iOS may suspend the app once the action
                    // returns, or sooner without this.
                    // Ended once: when the action is done, or when iOS says the time is up (an
                    // app that overruns its background time is killed).
                    let time = BackgroundTime(name: "peerns.notificationAction", done: done)
                    await self?.perform(action)
                    time.end()
                }
            }
        )
        // Set before launch finishes, so a tap or an action that launched the app is routed too.
        UNUserNotificationCenter.current().delegate = router
        UNUserNotificationCenter.current().setNotificationCategories(UserNotifier.categories)
        self.router = router
        // Low Power Mode: coarser stadium-mode positions, calls answered in CallKit with the camera off.
        lowPowerWatch = powerSaver.$isOn.sink { [weak self] on in
            guard let self else { return }
            self.lowPower = on
            self.location.setLowPower(on)
            self.callKit.lowPower = on
        }
        location.onDenied = { [weak self] in
            MainActor.assumeIsolated { self?.locationDenied() }
        }
        // CallKit activates a 1:1 call's audio session once the call is answered or placed: only
        // then may its microphone and sound start.
        callKit.onAudioActivated = { [weak self, audioHeld] _ in
            // At once, not after the hop: a screen that stops its media as the answered call's
            // screen replaces it reads it (`callKitHoldsAudio`).
            audioHeld.set(true)
            Task { @MainActor [weak self] in
                self?.callAudioActive = true
                self?.callMedia?.audioSessionActivated()
            }
        }
        callKit.onAudioDeactivated = { [weak self, audioHeld] _ in
            audioHeld.set(false)
            Task { @MainActor [weak self] in
                self?.callAudioActive = false
                self?.callMedia?.audioSessionDeactivated()
            }
        }
        // At launch: PushKit delivers a push only to a registry that exists.
        if voipPush { startPush() }
    }

    /// Turns the VoIP push path on or off (a setting; it needs a push relay the user runs).
    func setVoipPush(_ on: Bool) {
        Settings.voipPush = on
        voipPush = on
        if on {
            startPush()
        } else {
            push?.stop()
            push = nil
            voipToken = nil
        }
    }

    private func startPush() {
        guard push == nil else { return }
        let push = VoipPushRegistry(callKit: callKit) { [weak self] in
            // The call is reported; start the node so that the real call can arrive.
            Task { @MainActor [weak self] in await self?.run() }
        }
        push.onToken = { [weak self] token in
            Task { @MainActor [weak self] in self?.voipToken = token }
        }
        push.start()
        self.push = push
    }

    /// The backup screen's model, kept while the node runs: a backup goes on when its screen is
    /// left (Back), and the screen opened again shows it, not a second one to start.
    private var backup: BackupModel?

    func backupModel(_ node: PeernsNode) -> BackupModel {
        if let backup { return backup }
        let model = BackupModel(node: node, powerSaver: powerSaver)
        backup = model
        return model
    }

    /// The media of a 1:1 call's screen: its sound starts once CallKit activates the audio
    /// session, or at once for a call CallKit refused to ring (the session is the media's then).
    func oneOnOneMedia() -> PhoneCallMedia {
        let knows: () -> Bool = { [weak self] in
            MainActor.assumeIsolated {
                guard let self, let active = try? self.node?.activeCall() else { return true }
                return self.callKit.knows(call: active.call)
            }
        }
        let media = PhoneCallMedia(callKitAudio: true, audioActive: callAudioActive, callKitKnowsCall: knows, onError: mediaErrors())
        callMedia = media
        return media
    }

    /// The media of a group call's screen, or of the baby monitor's stream (no CallKit: it
    /// activates the audio session itself).
    func ownSessionMedia() -> PhoneCallMedia {
        PhoneCallMedia(callKitAudio: false, sessionTaken: callKitHoldsAudio, onError: mediaErrors())
    }

    /// Whether a CallKit call holds the audio session now: a screen that stops its own media
    /// as an answered 1:1 call replaces it must not deactivate the call's session.
    var callKitHoldsAudio: () -> Bool {
        { [audioHeld] in audioHeld.get() }
    }

    /// Forgets the last media error (a call screen opens).
    func clearMediaError() { mediaError = nil }

    /// Where the media's errors go (from its own threads): `mediaError`.
    private func mediaErrors() -> @Sendable (String) -> Void {
        { [weak self] message in Task { @MainActor [weak self] in self?.mediaError = message } }
    }

    /// The app came to the foreground (`true`) or left it; kept, and told to a node that starts
    /// later (a launch in the background for a push starts one while not active).
    func setAppActive(_ active: Bool) {
        appActive = active
        try? node?.setAppActive(active: active)
    }

    /// Whether the app is in the foreground (the core assumes it is until told).
    private var appActive = UIApplication.shared.applicationState != .background

    /// A notification was tapped. Over a screen on which something runs (a 1:1 call not ended,
    /// a joined group call, a running backup: `screenRuns`), it opens nothing now, since leaving
    /// that screen would stop it (a call's sound and camera stop with its screen): a message's or
    /// a request's screen opens once the user leaves it (`pathChanged`), an incoming call's tap
    /// is dropped (its call screen is pushed when it rings). As on Android (`MainActivity.route`).
    func open(_ route: NotificationRoute) {
        if topRuns {
            if route != .call { held = (route, path.count) }
            return
        }
        show(route)
    }

    /// Opens `route`'s screen in place of those shown.
    private func show(_ route: NotificationRoute) {
        held = nil
        switch route {
        case let .chat(conversation): path = [.chat(conversation)]
        case let .group(gid): path = [.groups, .group(gid)]
        case .contacts: path = [.contacts]
        case .call: path = [.call]
        case .monitor: path = [.monitor]
        }
    }

    /// An incoming call that rang while a screen on which something runs was on top (its screen
    /// not pushed over that one).
    private var ringingUnder: String?

    /// The call screen follows the calls: an incoming call opens it, but not over a screen on
    /// which something runs (a joined group call, a backup: covering it would stop it), and never
    /// a second one. A call that rang under such a screen opens it once answered (CallKit's
    /// Answer: the user chose the call, and its media starts only from its screen), in place of
    /// the screens shown, as Android's Answer does.
    private func follow(_ event: NodeEvent) {
        switch event {
        case let .incomingCall(call, _, _, _):
            guard path.last != .call else { return }
            if topRuns {
                ringingUnder = call
            } else {
                path.append(.call)
            }
        case let .callState(call, _, status) where call == ringingUnder:
            if status.state == "connected" {
                ringingUnder = nil
                // Through show: a tap held for the screen replaced does not replace the call.
                if path.last != .call { show(.call) }
            } else if status.state == "ended" {
                ringingUnder = nil
            }
        default:
            break
        }
    }

    /// The depths in `path` (1: its first screen) of the screens on which something runs that
    /// leaving them would stop, each with the screen's own token: each such screen tells
    /// (`screenRuns`, `RunsOnScreen`), and a screen gone clears only its own entry (the screen
    /// that replaced it at that depth may have told first).
    private var runningAt: [Int: UUID] = [:]
    /// A message's or a request's tap held back by `open`, and the depth of the screen it waits for.
    @Published private var held: (route: NotificationRoute, at: Int)?

    /// Whether the screen on top runs something.
    private var topRuns: Bool { !path.isEmpty && runningAt[path.count] != nil }

    /// A call that rang under a running screen opens once nothing runs on top (once only).
    private func openCallRungUnder() {
        if ringingUnder != nil, !topRuns, path.last != .call { path.append(.call) }
    }

    /// The screen `token` at `depth` in `path` runs something now (`runs`), or no longer does: a
    /// 1:1 call not ended, a joined group call, a running backup, an armed baby monitor. Once
    /// nothing runs on top, a call that rang under such a screen opens.
    func screenRuns(_ runs: Bool, at depth: Int, token: UUID) {
        guard depth > 0 else { return }
        if runs {
            runningAt[depth] = token
        } else if runningAt[depth] == token {
            runningAt[depth] = nil
            openCallRungUnder()
        }
    }

    /// After a change of `path`: the screens gone or replaced run nothing here any more; once the
    /// screen a held tap waits for is gone (Back), the tap's screen opens, unless the screen now
    /// on top runs something too (then it waits for that one).
    private func pathChanged(from old: [Route]) {
        var kept = 0
        while kept < old.count, kept < path.count, old[kept] == path[kept] { kept += 1 }
        runningAt = runningAt.filter { $0.key <= kept }
        // A call that rang under a screen that is gone now opens (nothing runs on top).
        if ringingUnder != nil { Task { @MainActor [weak self] in self?.openCallRungUnder() } }
        guard let waiting = held, waiting.at > kept else { return }
        if topRuns {
            held = (waiting.route, path.count)
        } else {
            held = nil
            // Once the change under way (the Back) has gone through.
            Task { @MainActor [weak self] in self?.show(waiting.route) }
        }
    }

    /// A notification's action. Reply sends the text as the chat screens do (`sendMessage`,
    /// `groupSend`), starting the node first when it does not run (the action woke the app in
    /// the background); what could not be sent is told in a notification. Answer opens the call
    /// screen (even over a screen on which something runs: the user chose the call) unless it is
    /// on top already, and answers with sound (Android's Answer); Decline declines, as
    /// the call screen does. Returns once done.
    func perform(_ action: NotificationAction) async {
        switch action {
        case let .reply(conversation, text):
            await reply(conversation, group: false, text)
        case let .groupReply(group, text):
            await reply(group, group: true, text)
        case let .answer(caller):
            // Over the ringing call's own screen (pushed when it rang) nothing needs to open.
            if path.last != .call { show(.call) }
            if let node, let call = ringingCall(from: caller, node) {
                try? node.acceptCall(call: call, kinds: CallKinds(audio: true, video: false, screen: false))
            }
        case let .decline(caller):
            // No node, no call: a call lives only in a running node.
            if let node, let call = ringingCall(from: caller, node) {
                try? node.declineCall(call: call)
            }
        }
    }

    private func reply(_ conversation: String, group: Bool, _ text: String) async {
        guard let node = await startedNode() else {
            notifier.replyNotSent(conversation: conversation, group: group, text: text, reason: "PeerNS could not start")
            return
        }
        do {
            // Stored when it returns; sent now, or when the contact (the group's router) is next
            // reached, as from the chat screen.
            if group {
                _ = try await node.groupSend(group: conversation, text: text)
            } else {
                let sent = try await node.sendMessage(conversation: conversation, text: text)
                // A few seconds to go out (the node dials the contact when it starts): once the
                // action returns iOS suspends the app, and what still waits goes on its next run.
                let deadline = Date().addingTimeInterval(10)
                while Date() < deadline {
                    let now = try? await node.messages(conversation: conversation, limit: 20)
                    if let m = now?.first(where: { $0.id == sent.id }), m.status != .waiting { break }
                    try? await Task.sleep(nanoseconds: 250_000_000)
                }
            }
        } catch {
            notifier.replyNotSent(conversation: conversation, group: group, text: text, reason: errorText(error))
        }
    }

    /// The running node; when none runs, starts it as a VoIP push does and waits for it (at most
    /// `seconds`: an app woken in the background has little time). Nil if it did not start.
    private func startedNode(within seconds: TimeInterval = 15) async -> PeernsNode? {
        if let node { return node }
        if !running {
            Task { @MainActor [weak self] in await self?.run() }
        }
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            try? await Task.sleep(nanoseconds: 100_000_000)
            if let node { return node }
        } while running && Date() < deadline
        return nil
    }

    /// The call that rings here from `caller`, if one does.
    private func ringingCall(from caller: String, _ node: PeernsNode) -> String? {
        guard let active = try? node.activeCall(), active.fingerprint == caller, !active.outgoing,
              active.status.state == "ringing" else { return nil }
        return active.call
    }

    /// Starts the node and follows its status until the task is cancelled.
    func run() async {
        // Once: the screen's task and a VoIP push may both start it.
        guard !running else { return }
        running = true
        defer { running = false }
        let peerns: Peerns
        do {
            peerns = try Peerns(
                config: NodeConfig(
                    profileDir: Self.profileDirectory().path,
                    signalingUrl: Settings.signalingUrl,
                    iceServers: ["stun:stun.l.google.com:19302"],
                    loopbackOnly: false,
                    displayName: nil
                ),
                keystore: KeychainKeyStore(),
                notifier: notifier,
                location: location
            )
            try await peerns.start()
        } catch let PeernsError.KeyLost(msg) {
            keyLost = msg
            return
        } catch {
            status = NodeStatus(signaling: .offline(reason: "could not start: \(errorText(error))"))
            return
        }
        // Asked beside the start, never before it: on a launch in the background (a VoIP push)
        // the prompt cannot show, and the node must run for the call to arrive.
        Task { [notifier] in _ = try? await notifier.requestAuthorization() }
        identity = try? peerns.node.identity()
        let node = peerns.node
        self.peerns = peerns
        self.node = node
        try? node.setAppActive(active: appActive)
        network = NetworkMonitor { kind, pathId, metered in
            try? node.networkChanged(kind: kind, pathId: pathId, metered: metered)
        }
        callKit.node = node
        // An incoming call rings in CallKit and opens the call screen; CallKit follows the calls.
        let rings = Task { [weak self] in
            guard let events = try? peerns.events() else { return }
            for await event in events {
                self?.callKit.apply(event)
                self?.follow(event)
            }
        }
        defer { rings.cancel() }
        do {
            for await next in try peerns.status() {
                status = next
            }
        } catch {
            status = NodeStatus(signaling: .offline(reason: errorText(error)))
        }
        network?.cancel()
        network = nil
        backup = nil
        // Stadium mode ends with the node; a new start begins with it off.
        stadium = false
        // No call rings any more.
        ringingUnder = nil
        callKit.node = nil
        callKit.endAll()
        self.node = nil
        self.peerns = nil
        try? await peerns.stop()
    }

    /// The node's events from now on for a screen, or nil when it does not run.
    func events() -> AsyncStream<NodeEvent>? { try? peerns?.events() }

    /// The node's group events from now on for a screen, or nil when it does not run.
    func groupEvents() -> AsyncStream<GroupEvent>? { try? peerns?.groupEvents() }

    /// Stadium mode on or off; the core starts and stops the location provider.
    func setStadium(_ on: Bool) async {
        guard let node else { return }
        if on {
            guard !location.denied else {
                stadiumRefused = Self.locationRefused
                return
            }
            stadiumRefused = nil
            stadium = (try? node.startStadium()) != nil
            if !stadium { stadiumRefused = "Stadium mode could not start: is PeerNS running?" }
        } else {
            try? await node.stopStadium()
            stadium = false
        }
    }

    /// Why stadium mode is off though the user turned it on (the location refused), or nil.
    @Published private(set) var stadiumRefused: String?

    private static let locationRefused = "Stadium mode needs your location: allow it for PeerNS in Settings, then turn it on."

    /// The location was refused in the prompt stadium mode brought up: stadium mode goes off, said.
    private func locationDenied() {
        guard stadium else { return }
        stadiumRefused = Self.locationRefused
        Task { await setStadium(false) }
    }

    /// After `keyLost`: moves the old profile aside (kept, not deleted) and starts again with a
    /// new identity. The keychain item is left alone: `KeychainKeyStore.create` never overwrites,
    /// so it must be gone already for a new identity to be made (the reason for `keyLost`).
    func startNewIdentity() async {
        guard keyLost != nil else { return }
        let fm = FileManager.default
        if let profile = try? Self.profileDirectory() {
            let aside = profile.deletingLastPathComponent()
                .appendingPathComponent("profile.lost-\(Int(Date().timeIntervalSince1970))", isDirectory: true)
            try? fm.moveItem(at: profile, to: aside)
        }
        keyLost = nil
        await run()
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

/// The screens above the home screen.
enum Route: Hashable {
    case contacts
    case chat(String)
    case nearby
    case meetingRoom
    case settings
    case groups
    case group(String)
    case groupCall(String)
    case call
    /// Calls a contact (with the camera when `video`).
    case dial(String, video: Bool)
    case monitor
    case backup
}

/// The app's settings in its UserDefaults.
enum Settings {
    static let defaultSignalingUrl = "wss://0.peerjs.com:443/?key=peerjs"

    static var signalingUrl: String {
        get { UserDefaults.standard.string(forKey: "signalingUrl") ?? defaultSignalingUrl }
        set { UserDefaults.standard.set(newValue, forKey: "signalingUrl") }
    }

    /// The VoIP push path (PushKit): off by default, since PeerNS has no push server.
    static var voipPush: Bool {
        get { UserDefaults.standard.bool(forKey: "voipPush") }
        set { UserDefaults.standard.set(newValue, forKey: "voipPush") }
    }
}

/// A flag any thread may read (`NodeModel.callKitHoldsAudio`).
final class AudioHeld: @unchecked Sendable {
    private let lock = NSLock()
    private var held = false

    func set(_ value: Bool) {
        lock.lock()
        held = value
        lock.unlock()
    }

    func get() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return held
    }
}

/// Background time for one piece of work (`beginBackgroundTask`), ended once: by `end`, or by
/// iOS's expiration handler if the time runs out first; `done` is called then too.
@MainActor
private final class BackgroundTime {
    private var id = UIBackgroundTaskIdentifier.invalid
    private var done: (() -> Void)?

    init(name: String, done: @escaping () -> Void) {
        self.done = done
        id = UIApplication.shared.beginBackgroundTask(withName: name) { [weak self] in
            // Called on the main thread.
            MainActor.assumeIsolated { self?.end() }
        }
    }

    func end() {
        done?()
        done = nil
        if id != .invalid {
            UIApplication.shared.endBackgroundTask(id)
            id = .invalid
        }
    }
}
