import Combine
import Foundation
import PeernsKit

// The models of the call screens: a 1:1 call (`CallModel`) and a group's call
// (`GroupCallModel`, with `CallGrid`). Each mirrors a Kotlin view model of the Android app
// (`CallViewModel`, `GroupCallViewModel`, `CallGrid` in android/app/src/main/kotlin/org/peerns/app/model),
// which is tested on the JVM against the real library; keep the two in step.

/// A 1:1 call: ring, answer, decline, mute, camera, hang up, from call events (`CallViewModel`).
/// Once the media is up, `startMedia` sends `media`'s microphone and camera into the call's
/// tracks and plays the peer's (a picture that starts mid-stream asks for a keyframe, at most
/// once a second). In Low Power Mode a call we place or answer with video starts with the camera
/// off (the call keeps its video, so `setCameraOff(false)` turns it on).
@MainActor
final class CallModel: ObservableObject {
    static let noMedia = CallMediaState(muted: false, cameraOff: false, screen: false, backCamera: false)
    @Published private(set) var call: String?
    @Published private(set) var name = ""
    @Published private(set) var outgoing = false
    @Published private(set) var status = ""
    @Published private(set) var reason: String?
    @Published private(set) var offeredVideo = false
    /// Our side carries video: its camera may be on, now or later (it may start off, see `local`).
    @Published private(set) var sendsVideo = false
    /// Our side carries sound (not when we only watch an armed baby monitor's stream).
    @Published private(set) var sendsAudio = true
    @Published private(set) var local = CallModel.noMedia
    @Published private(set) var remote = CallModel.noMedia
    @Published private(set) var mediaUp = false
    @Published private(set) var error: String?
    /// The phone's capture and playback (`PhoneCallMedia`); nil: nothing is sent or played.
    let media: CallMedia?
    private let node: PeernsNode
    /// Places calls through CallKit when given (the app); `node.startCall` otherwise.
    private let callKit: CallKitController?
    private let powerSaver: PowerSaver?
    /// Our encoded frames, into the call's tracks (none while the media is stopped).
    private let out = CallSources()
    private let keyframes = KeyframeAsks()
    private var sinks: CallMediaSinks?
    /// The call whose media is started (or starting).
    private var mediaCall: String?

    init(node: PeernsNode, media: CallMedia? = nil, callKit: CallKitController? = nil, powerSaver: PowerSaver? = nil) {
        self.node = node
        self.media = media
        self.callKit = callKit
        self.powerSaver = powerSaver
    }

    /// Muted in the system's call screen or by a headset: the node is told by CallKit; the
    /// microphone stops (or starts) sending here, and the screen shows it. A mute action that
    /// failed in CallKit (ours or the system's) shows as `error`. Called by the screen that shows
    /// this model (the last one shown follows).
    func followCallKitMute() {
        callKit?.onMuted = { [weak self] call, muted in
            Task { @MainActor [weak self] in self?.mutedInCallKit(call, muted) }
        }
        callKit?.onMuteFailed = { [weak self] call, muted, error in
            let message = "\(muted ? "mute" : "unmute") failed: \(errorText(error))"
            Task { @MainActor [weak self] in self?.muteFailedInCallKit(call, message) }
        }
    }

    private func mutedInCallKit(_ call: String, _ muted: Bool) {
        guard call == self.call else { return }
        local.muted = muted
        media?.setMuted(muted)
    }

    /// Nothing was muted or unmuted: `local.muted` stays as it was, the screen says why.
    private func muteFailedInCallKit(_ call: String, _ message: String) {
        guard call == self.call else { return }
        error = message
    }

    private var lowPower: Bool { powerSaver?.isOn == true }

    var ringingHere: Bool { call != nil && !outgoing && status == "ringing" }

    func refresh() async {
        await guarded {
            guard let active = try node.activeCall() else { return }
            let shown = try await contactName(active.fingerprint)
            if call != active.call { mediaUp = false }
            // A screen opened after the media came up (its event gone): a connected call's
            // media is started all the same (the library waits for it to be up).
            if active.status.state == "connected" { mediaUp = true }
            call = active.call
            name = shown
            outgoing = active.outgoing
            status = active.status.state
            reason = active.status.reason
            offeredVideo = active.callerKinds.video
            let ours = active.outgoing ? active.callerKinds : active.calleeKinds
            sendsVideo = ours.video
            sendsAudio = ours.audio
            local = active.localMedia
            remote = active.remoteMedia
        }
    }

    /// Calls contact `fingerprint` (Kotlin: `call`; `call` here is the call's ID).
    func dial(_ fingerprint: String, video: Bool) async {
        await guarded {
            let kinds = CallKinds(audio: true, video: video, screen: false)
            let shown = try await contactName(fingerprint)
            let id: String
            if let callKit {
                id = try await callKit.startCall(fingerprint: fingerprint, name: shown, kinds: kinds)
            } else {
                id = try await node.startCall(fingerprint: fingerprint, kinds: kinds)
            }
            // An event of the new call may have come first: keep what it said.
            if call != id {
                call = id
                outgoing = true
                status = "dialing"
                reason = nil
                local = Self.noMedia
                remote = Self.noMedia
                mediaUp = false
            }
            name = shown
            offeredVideo = video
            sendsVideo = video
            // Low Power Mode: the camera starts off; the peer is told.
            if video && lowPower {
                try node.setCameraOff(call: id, off: true)
                local.cameraOff = true
            }
        }
    }

    func accept(video: Bool) async {
        let cameraOff = !video || lowPower
        let answered = await withCall { call in
            try self.node.acceptCall(call: call, kinds: CallKinds(audio: true, video: video, screen: false))
            // Low Power Mode: the call has video but the camera starts off.
            if video && cameraOff { try self.node.setCameraOff(call: call, off: true) }
        }
        if answered {
            local.cameraOff = cameraOff
            sendsVideo = video
        }
    }

    /// Starts the media of the connected call: the microphone into our `audio` track, the
    /// camera into our `video` track if the call carries one, the peer's frames to `media`.
    /// No-op without `media` or when started already.
    func startMedia() async {
        guard !Task.isCancelled, let media, let call, mediaCall != call else { return }
        mediaCall = call
        let started = await guarded {
            var audio: CallMediaSource?
            do {
                audio = try await node.callMediaSource(call: call, track: "audio", encoder: NoEncoderControl())
            } catch PeernsError.InvalidInput(_) {
                audio = nil // we send nothing: watching a baby monitor
            }
            var video: CallMediaSource?
            do {
                video = try await node.callMediaSource(call: call, track: "video", encoder: media.videoControl)
            } catch PeernsError.InvalidInput(_) {
                video = nil // an audio call: no video track of ours
            }
            var tracks: [String: CallMediaSource] = [:]
            tracks["audio"] = audio
            tracks["video"] = video
            out.set(tracks)
            let frames = CallFrames(media: media, asks: keyframes)
            let sinks = try await node.callMediaSinks(call: call, listener: frames)
            // Stopped meanwhile (the screen went, the call ended): start nothing.
            guard mediaCall == call, !Task.isCancelled else {
                sinks.cancel()
                out.set([:])
                return
            }
            frames.sinks = sinks
            self.sinks = sinks
            media.setMuted(local.muted)
            media.setRemoteScreen(remote.screen)
            let camera = video != nil && !local.cameraOff ? Self.facing(back: local.backCamera) : nil
            media.start(camera: camera, microphone: audio != nil, out: out.push)
            // How far our picture must be turned, told to the peer as the phone turns.
            if video != nil {
                media.setRotationListener { [node] degrees in
                    try? node.setVideoRotation(call: call, degrees: UInt16(degrees)) // fails once the call ended
                }
            }
        }
        if !started {
            stopMedia()
            // Tried again when the media says it is up (a screen opened on a connected call
            // may try before it is).
            mediaUp = false
        }
    }

    /// Stops capturing and playing (the call goes on).
    func stopMedia() {
        keyframes.clear()
        media?.setRotationListener(nil)
        media?.stop()
        out.set([:])
        sinks?.cancel()
        sinks = nil
        mediaCall = nil
    }

    func decline() async { await withCall { try self.node.declineCall(call: $0) } }

    func hangUp() async {
        stopMedia()
        await withCall { try self.node.hangUp(call: $0) }
    }

    /// Mutes or unmutes. A call CallKit knows is muted through CallKit (`CXSetMutedCallAction`),
    /// so that the system's call UI shows it too: the action tells the node and comes back
    /// through `onMuted` (`mutedInCallKit`), once, or, if it fails, through `onMuteFailed`
    /// (`muteFailedInCallKit`: shown as `error`). Directly otherwise: without CallKit, for a call
    /// it does not know (Do Not Disturb refused its ring) or when it refused the request.
    func setMuted(_ muted: Bool) async {
        if let callKit, let call {
            // Cleared before the request: the action's failure may come before it returns.
            error = nil
            if await callKit.requestMuted(call: call, muted: muted) { return }
        }
        if await withCall({ try self.node.setMuted(call: $0, muted: muted) }) {
            local.muted = muted
            media?.setMuted(muted)
        }
    }

    func setCameraOff(_ off: Bool) async {
        if await withCall({ try self.node.setCameraOff(call: $0, off: off) }) {
            local.cameraOff = off
            if out.has("video") { media?.setCamera(off ? nil : Self.facing(back: local.backCamera)) }
        }
    }

    /// Switches between the front and the back camera; the peer is told, and the picture follows
    /// at once while our camera is on, else when it is turned on (`CallViewModel.switchCamera`).
    func switchCamera() async {
        if await withCall({ try self.node.switchCamera(call: $0) }) {
            local.backCamera.toggle()
            if out.has("video") && !local.cameraOff { media?.setCamera(Self.facing(back: local.backCamera)) }
        }
    }

    /// The camera a call shows: the front one (the person) unless `back`.
    private static func facing(back: Bool) -> String { back ? "environment" : "user" }

    func apply(_ event: NodeEvent) {
        switch event {
        case let .incomingCall(c, fp, n, kinds):
            call = c
            name = n.isEmpty ? String(fp.prefix(8)) : n
            outgoing = false
            status = "ringing"
            reason = nil
            offeredVideo = kinds.video
            sendsVideo = false
            sendsAudio = true
            local = Self.noMedia
            remote = Self.noMedia
            mediaUp = false
        case let .callState(c, _, s) where c == call:
            status = s.state
            reason = s.reason
            if s.state == "ended" { stopMedia() }
            // Answered outside this model (CallKit's answer, maybe with the camera off in Low
            // Power Mode): what we send is the node's, not the ringing call's defaults.
            if s.state == "connected", !outgoing, let active = try? node.activeCall(), active.call == c {
                sendsVideo = active.calleeKinds.video
                sendsAudio = active.calleeKinds.audio
                local = active.localMedia
            }
        case let .callState(c, fp, s) where call == nil || status == "ended":
            // A call we place (every incoming one starts with incomingCall), maybe before
            // startCall has returned its ID.
            call = c
            name = String(fp.prefix(8))
            outgoing = true
            status = s.state
            reason = s.reason
            sendsVideo = false
            sendsAudio = true
            local = Self.noMedia
            remote = Self.noMedia
            mediaUp = false
        case let .callMedia(c, _, state) where c == call:
            remote = state
            // The peer's screen instead of its camera while it shares one.
            media?.setRemoteScreen(state.screen)
        case let .callMediaConnected(c, _) where c == call:
            mediaUp = true
        default:
            break
        }
    }

    private func contactName(_ fingerprint: String) async throws -> String {
        try await node.contacts().first { $0.fingerprint == fingerprint }?.name ?? String(fingerprint.prefix(8))
    }

    @discardableResult
    private func withCall(_ block: (String) throws -> Void) async -> Bool {
        guard let call else { error = "no call"; return false }
        return await guarded { try block(call) }
    }

    @discardableResult
    private func guarded(_ block: () async throws -> Void) async -> Bool {
        do { try await block(); error = nil; return true } catch { self.error = errorText(error); return false }
    }
}

/// Our part in a group's call (`GroupCallViewModel`): join and leave, mute, camera; the roster,
/// our phase and who speaks from group events and from them the grid of pictures (`CallGrid`);
/// the others' frames counted per sender and handed to `media` to play (a picture waiting for a
/// keyframe asks its sender), and `media`'s encoded frames pushed into the call (audio with its
/// level, by which the router tells who speaks). In Low Power Mode joining with video starts
/// with the camera off (`setCameraOff(false)` turns it on).
@MainActor
final class GroupCallModel: ObservableObject {
    @Published private(set) var phase: GroupCallPhase = .out
    @Published private(set) var participants: [CallParticipant] = []
    /// The fingerprints of those speaking now, in the router's order; empty: nobody.
    @Published private(set) var speaking: [String] = []
    @Published private(set) var muted = false
    @Published private(set) var cameraOff = false
    @Published private(set) var frames: [String: Int] = [:]
    @Published private(set) var targetBps: UInt64 = 0
    /// The member our media goes to: the router, or the other participant in a call of two.
    @Published private(set) var mediaPeer: String?
    /// The grid's pictures: the fingerprints of the others whose video (or screen) is shown, in
    /// place order (`CallGrid`: at most `CallGrid.maxPictures`, places kept, speakers first).
    @Published private(set) var pictures: [String] = []
    /// Browsers (PeerJS IDs) we let into the call, admitted while we route it.
    @Published private(set) var browsers: [String] = []
    @Published private(set) var error: String?
    /// Our media goes straight to the only other participant: no relay in between.
    var direct: Bool { participants.count == 2 && participants.contains { $0.fingerprint == mediaPeer } }
    let group: String
    /// The phone's capture and playback (`PhoneCallMedia`); nil: nothing is sent or played.
    let media: CallMedia?
    private let node: PeernsNode
    private let powerSaver: PowerSaver?
    private var call: GroupCall?
    private var listener: CallListener?
    /// Our fingerprint, never given a picture (nil if the node cannot tell: nobody is left out).
    private lazy var me: String? = try? node.identity().fingerprint
    /// Everyone who spoke in the call, the most recent first.
    private var recent: [String] = []
    /// How far our picture must be turned (the camera's, as the phone is held), and its
    /// announcement under way.
    private var rotation = 0
    private var turning: Task<Void, Never>?

    init(node: PeernsNode, group: String, media: CallMedia? = nil, powerSaver: PowerSaver? = nil) {
        self.node = node
        self.group = group
        self.media = media
        self.powerSaver = powerSaver
    }

    func refresh() async {
        await guarded {
            participants = try await node.groupCallParticipants(group: group)
            regrid()
        }
    }

    /// The screen went (`close`): a join still under way leaves once it is done.
    private var closed = false

    /// The screen went for good: we leave the call (joined, or a join under way), as Android's
    /// screen does; nothing is started after this.
    func close() async {
        closed = true
        if call != nil || phase != .out {
            await leave()
        } else {
            media?.stop()
        }
    }

    /// Joins the call sending audio, and video when `video` (the camera off at first in Low Power Mode).
    func join(video: Bool) async {
        await guarded {
            call?.stop()
            let listener = CallListener(self, media: media)
            self.listener = listener
            let joined = try await node.groupCallJoin(
                group: group, kinds: CallKinds(audio: true, video: video, screen: false), frames: listener, encoder: listener
            )
            // The screen went while we joined: leave at once instead of starting the media.
            if closed {
                joined.stop()
                self.listener = nil
                try await node.groupCallLeave(group: group)
                return
            }
            call = joined
            listener.call = joined
            cameraOff = !video || powerSaver?.isOn == true
            media?.setMuted(muted)
            media?.start(camera: cameraOff ? nil : "user") { kind, pts, keyframe, data, level in
                _ = try? joined.pushFrame(kind: kind, ptsUs: pts, keyframe: keyframe, data: data, audioLevel: level)
            }
            // How far our picture must be turned, announced as the phone turns.
            if video {
                media?.setRotationListener { [weak self] degrees in
                    guard let self else { return }
                    self.rotation = degrees
                    // One announcement at a time, in order; a failed one is not the screen's error.
                    let before = self.turning
                    self.turning = Task {
                        await before?.value
                        guard !Task.isCancelled, self.call != nil else { return }
                        try? await self.announce()
                    }
                }
            }
            try await announce()
        }
    }

    /// Lets a browser's PeerJS ID into the call while we route it (admins only).
    func allowBrowser(_ peerId: String) async {
        let id = peerId.trimmingCharacters(in: .whitespaces)
        await guarded {
            try await node.allowGroupCallGuest(group: group, peerId: id)
            if !browsers.contains(id) { browsers.append(id) }
        }
    }

    func leave() async {
        await guarded {
            media?.setRotationListener(nil)
            turning?.cancel()
            turning = nil
            rotation = 0
            media?.stop()
            call?.stop()
            call = nil
            listener = nil
            try await node.groupCallLeave(group: group)
            frames = [:]
            targetBps = 0
            speaking = []
            recent = []
            pictures = []
        }
    }

    func setMuted(_ on: Bool) async {
        muted = on
        media?.setMuted(on)
        await guarded { try await announce() }
    }

    func setCameraOff(_ off: Bool) async {
        cameraOff = off
        if call != nil { media?.setCamera(off ? nil : "user") }
        await guarded { try await announce() }
    }

    /// Applies the call's roster, our phase and who speaks (and so the grid); other groups' events are ignored.
    func apply(_ event: GroupEvent) {
        switch event {
        case let .callRoster(g, list) where g == group:
            participants = list
            regrid()
        case let .callPhase(g, p, via) where g == group:
            phase = p
            mediaPeer = via
            regrid()
        case let .callSpeakers(g, list) where g == group:
            recent = CallGrid.spoke(recent: recent, speaking: list)
            speaking = list
            regrid()
        default: break
        }
    }

    /// What each picture shows: the sender's `screen` while shared, else its `video`.
    func pictureKind(_ sender: String) -> String {
        participants.first { $0.fingerprint == sender }?.media.screen == true ? "screen" : "video"
    }

    /// The grid brought up to date with the roster and the speakers (empty while out of the call).
    private func regrid() {
        pictures = phase == .out ? [] : CallGrid.next(previous: pictures, participants: participants, me: me, speaking: speaking, recent: recent)
    }

    fileprivate func received(_ counts: [String: Int]) {
        guard phase != .out else { return } // a late hand-over after leaving
        frames = counts
    }

    fileprivate func target(_ bps: UInt64) { targetBps = bps }

    private func announce() async throws {
        try await node.groupCallSetMedia(
            group: group, media: CallMediaState(muted: muted, cameraOff: cameraOff, screen: false, backCamera: false, rotation: UInt16(rotation))
        )
    }

    @discardableResult
    private func guarded(_ block: () async throws -> Void) async -> Bool {
        do { try await block(); error = nil; return true } catch { self.error = errorText(error); return false }
    }
}

/// Hands a group call's frames to the media (on the library's thread: a picture waiting for a
/// keyframe asks its sender at once) and, counted, to the model; the encoder requests to the
/// media's video encoder and the model.
private final class CallListener: GroupCallFrameListener, EncoderControlListener, @unchecked Sendable {
    private weak var model: GroupCallModel?
    private let media: CallMedia?
    private let asks = KeyframeAsks()
    private let lock = NSLock()
    private var joined: GroupCall?

    init(_ model: GroupCallModel, media: CallMedia?) {
        self.model = model
        self.media = media
    }

    /// The call, once joined (frames may come before the join returns).
    var call: GroupCall? {
        get { lock.lock(); defer { lock.unlock() }; return joined }
        set { lock.lock(); joined = newValue; lock.unlock() }
    }

    // Frames counted per sender (under `lock`), handed to the model at most once a second:
    // a main-actor task and a published change per frame would redraw the screen as often.
    private var counted: [String: Int] = [:]
    private var countsShownAt: Date?

    func onFrame(frame: GroupCallFrame) {
        let sender = frame.sender
        let counts: [String: Int]? = {
            lock.lock()
            defer { lock.unlock() }
            counted[sender, default: 0] += 1
            let now = Date()
            if let shown = countsShownAt, now.timeIntervalSince(shown) < 1 { return nil }
            countsShownAt = now
            return counted
        }()
        if let counts { Task { @MainActor [weak model] in model?.received(counts) } }
        let shown = media?.play(from: sender, kind: frame.kind, ptsUs: frame.ptsUs, keyframe: frame.keyframe, data: frame.data) ?? true
        // A picture that starts mid-call asks its sender at once, at most once a second.
        if !shown && asks.mayAsk("\(sender)/\(frame.kind)") {
            _ = try? call?.requestKeyframe(sender: sender, kind: frame.kind)
        }
    }

    func requestKeyframe() {
        media?.videoControl.requestKeyframe()
    }

    func targetBitrate(bps: UInt64) {
        media?.videoControl.targetBitrate(bps: bps)
        Task { @MainActor [weak model] in model?.target(bps) }
    }
}

/// Hands a 1:1 call's frames to the media on the library's thread; a picture waiting for a
/// keyframe asks the peer for one (`CallViewModel`'s listener).
private final class CallFrames: MediaFrameListener, @unchecked Sendable {
    private let media: CallMedia
    private let asks: KeyframeAsks
    private let lock = NSLock()
    private var held: CallMediaSinks?

    init(media: CallMedia, asks: KeyframeAsks) {
        self.media = media
        self.asks = asks
    }

    /// Where keyframe requests go, once the sinks exist.
    var sinks: CallMediaSinks? {
        get { lock.lock(); defer { lock.unlock() }; return held }
        set { lock.lock(); held = newValue; lock.unlock() }
    }

    func onFrame(frame: MediaFrame) {
        let shown = media.play(from: frame.track, kind: frame.kind, ptsUs: frame.ptsUs, keyframe: frame.keyframe, data: frame.data)
        guard !shown, let sinks, asks.mayAsk(frame.track) else { return }
        let track = frame.track
        Task { try? await sinks.requestKeyframe(track: track) }
    }
}

/// A call's local tracks by kind: where `PhoneCallMedia`'s encoded frames go (from the encoders'
/// threads). A 1:1 call's, and the baby monitor's stream.
final class CallSources: @unchecked Sendable {
    private let lock = NSLock()
    private var sources: [String: CallMediaSource] = [:]

    /// Some track takes frames now.
    var sending: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !sources.isEmpty
    }

    func set(_ next: [String: CallMediaSource]) {
        lock.lock()
        sources = next
        lock.unlock()
    }

    func has(_ kind: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return sources[kind] != nil
    }

    /// One encoded frame into the track of its kind (a `FrameOut`).
    func push(_ kind: String, _ ptsUs: UInt64, _ keyframe: Bool, _ data: Data, _ audioLevel: UInt8?) {
        lock.lock()
        let source = sources[kind]
        lock.unlock()
        _ = source?.pushFrame(ptsUs: ptsUs, keyframe: keyframe, data: data, audioLevel: audioLevel)
    }
}

/// Audio needs no encoder control: every Opus packet stands alone, the bitrate is fixed.
final class NoEncoderControl: EncoderControlListener, @unchecked Sendable {
    func requestKeyframe() {}
    func targetBitrate(bps: UInt64) {}
}

/// Who gets a picture in a group call's grid, and where (Kotlin's `CallGrid`, tested there).
/// A picture costs a hardware decoder, and a phone has few (and a small screen): at most
/// `maxPictures`. Pictures keep their place while their participant still sends video (moving
/// one restarts its decoder, blank until the next keyframe); a newcomer takes a free place; when
/// none is free, only someone speaking takes the place of whoever has been quiet longest.
enum CallGrid {
    /// Pictures at most: 2 × 3 on a phone's screen.
    static let maxPictures = 6

    /// Whether `p` sends a picture now: its camera on, or its screen shared.
    static func sendsPicture(_ p: CallParticipant) -> Bool { p.media.screen || (p.kinds.video && !p.media.cameraOff) }

    /// The grid after a change: the fingerprints shown, in place order. `previous` is the grid
    /// before; `me` our own fingerprint (never shown); `speaking` who speaks now, as the router
    /// says; `recent` everyone who spoke, the most recent first.
    static func next(
        previous: [String], participants: [CallParticipant], me: String?, speaking: [String], recent: [String], max: Int = maxPictures
    ) -> [String] {
        let senders = participants.filter { $0.fingerprint != me && sendsPicture($0) }.map(\.fingerprint)
        var places: [String?] = previous.map { senders.contains($0) ? $0 : nil }
        func rank(_ fp: String) -> Int {
            if let i = speaking.firstIndex(of: fp) { return i }
            if let i = recent.firstIndex(of: fp) { return speaking.count + i }
            return Int.max
        }
        // Newcomers by how recently they spoke, then in the roster's order (a stable sort).
        var waiting = senders.filter { !places.contains($0) }.enumerated()
            .sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }
            .map(\.element)
        // Free places first: the holes of those who left, then new ones up to the limit.
        for i in places.indices where places[i] == nil && !waiting.isEmpty {
            places[i] = waiting.removeFirst()
        }
        while places.count < max && !waiting.isEmpty { places.append(waiting.removeFirst()) }
        // Full: a speaker takes the place of whoever has been quiet longest.
        for fp in waiting where speaking.contains(fp) {
            let quiet = places.indices
                .filter { places[$0].map { !speaking.contains($0) } ?? false }
                .max { (rank(places[$0]!), $0) < (rank(places[$1]!), $1) }
            guard let quiet else { break }
            places[quiet] = fp
        }
        return Array(places.compactMap { $0 }.prefix(max))
    }

    /// `recent` after the router says `speaking`: those speaking first, in its order.
    static func spoke(recent: [String], speaking: [String]) -> [String] {
        var seen = Set<String>()
        return (speaking + recent).filter { seen.insert($0).inserted }
    }
}

