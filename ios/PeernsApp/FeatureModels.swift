import Combine
import Foundation
import PeernsKit

// The models of the groups, meeting room, baby-monitor and backup screens (the calls' are in
// CallModels.swift). Each mirrors a Kotlin view model of the Android app
// (android/app/src/main/kotlin/org/peerns/app/model), which is tested on the JVM against the
// real library; keep the two in step.

/// What the screens say while Low Power Mode is on (`BatterySaver` of the Android app).
enum LowPowerNotice {
    static let nearby = "Low Power Mode: your position is updated about once a minute and less precisely, and this list less often."
    static let call = "Low Power Mode: calls start with your camera off (audio only); you can still turn it on."
    static let backup = "Low Power Mode: a backup waits until it is off (or Start now); a running one pauses until then (or Continue now)."
}

/// Groups: list, create, invite by fingerprint, join by link, joined by a contact's invite
/// (`GroupsViewModel`).
@MainActor
final class GroupsModel: ObservableObject {
    @Published private(set) var groups: [PeernsKit.Group] = []
    @Published private(set) var inviteLink: String?
    /// A contact's invite joined us to a group: "Joined Trip, invited by bob", shown once (`noticeShown`).
    @Published private(set) var notice: String?
    @Published private(set) var error: String?
    private let node: PeernsNode

    init(node: PeernsNode) { self.node = node }

    func refresh() async {
        await guarded {
            // Ours first, then the ones we left or were removed from (kept until deleted).
            groups = try await node.groups().sorted { Self.order($0) < Self.order($1) }
        }
    }

    /// Where a group goes in the list: ours before former ones, then by name.
    private static func order(_ g: PeernsKit.Group) -> (Int, String) {
        (g.membership == .former ? 1 : 0, g.name.lowercased())
    }

    func create(_ name: String) async -> String? {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty else { error = "a group needs a name"; return nil }
        var gid: String?
        await guarded { gid = try await node.groupCreate(name: name); await refresh() }
        return gid
    }

    func invite(_ group: String, _ fingerprint: String) async {
        // Also as the settings show it, in groups of four.
        let fp = String(fingerprint.filter { !$0.isWhitespace }).lowercased()
        await guarded { inviteLink = try await node.groupInvite(group: group, fingerprint: fp) }
    }

    func join(_ link: String) async -> String? {
        let link = link.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !link.isEmpty else { error = "paste an invite link first"; return nil }
        var gid: String?
        await guarded { gid = try await node.groupJoin(link: link); await refresh() }
        return gid
    }

    /// Applies a group event: reloads the list when it changes; an `invited` one also sets `notice`.
    func apply(_ event: GroupEvent) async {
        guard concerns(event) else { return }
        await refresh()
        guard case let .invited(gid, by) = event else { return }
        let contact = try? await node.contacts().first { $0.fingerprint == by }
        let who = contact.flatMap { $0.name.isEmpty ? nil : $0.name } ?? String(by.prefix(8))
        let group = groups.first { $0.id == gid }?.name ?? String(gid.prefix(8))
        notice = "Joined \(group), invited by \(who)"
    }

    /// The screen has shown `notice`.
    func noticeShown() { notice = nil }

    /// Whether `event` changes the list (members, our membership, routing).
    func concerns(_ event: GroupEvent) -> Bool {
        switch event {
        case .message, .backfill, .callRoster, .callPhase, .callSpeakers, .presence, .fileProgress, .fileDone: return false
        default: return true
        }
    }

    @discardableResult
    private func guarded(_ block: () async throws -> Void) async -> Bool {
        do { try await block(); error = nil; return true } catch { self.error = errorText(error); return false }
    }
}

/// One group: messages and members from group events, send text and files (each file's progress
/// from `fileProgress` / `fileDone` events, or from the node on `refresh` and `loadFile`), invite
/// contacts, remove, leave (`GroupChatViewModel`).
@MainActor
final class GroupChatModel: ObservableObject {
    @Published private(set) var name: String
    @Published private(set) var members: [GroupMember] = []
    @Published private(set) var membership: GroupMembership = .pending
    @Published private(set) var router = false
    @Published private(set) var messages: [GroupMessage] = []
    /// Where each shared file of `messages` stands on this phone, by file ID.
    @Published private(set) var files: [String: GroupFileStatus] = [:]
    /// This is the meeting room nearby: it shares no files.
    @Published private(set) var room = false
    /// Our contacts (not the blocked ones), by name.
    @Published private(set) var contacts: [Contact] = []
    /// The contacts we sent an invitation from this screen.
    @Published private(set) var invited: Set<String> = []
    /// What the last invitation did: "Invitation sent to bob".
    @Published private(set) var notice: String?
    @Published private(set) var error: String?
    let group: String
    private let node: PeernsNode

    init(node: PeernsNode, group: String) {
        self.node = node
        self.group = group
        name = String(group.prefix(8))
    }

    var admin: Bool { membership == .admin }

    /// The contacts an admin may invite: not members yet.
    var invitable: [Contact] { contacts.filter { c in !members.contains { $0.fingerprint == c.fingerprint } } }

    /// What the chat calls `fingerprint`: our name for a contact, else its first 8 characters
    /// (Kotlin's `GroupChatState.nameOf`).
    func nameOf(_ fingerprint: String) -> String {
        contactNameIn(contacts, fingerprint)
    }

    /// What the chat lists: `messages`, the file messages as files with their `files` status.
    var items: [GroupChatItem] { groupChatItems(messages, files) }

    /// The screen offers to share a file: not in a meeting room, not once we left.
    var canShareFiles: Bool { !room && membership != .former }

    /// The screen offers to leave: we are a member (a pending one deletes the group instead).
    var canLeave: Bool { !room && (membership == .admin || membership == .member) }

    /// The screen offers to delete the group from this phone: any stored group, not the meeting room.
    var canDelete: Bool { !room }

    /// The screen is visible: no notifications for this group, then `refresh`.
    func open() async {
        OpenChat.opened(group, on: node)
        await refresh()
    }

    /// The screen is gone: notifications for this group again.
    func close() { OpenChat.closed(group, on: node) }

    func refresh() async {
        await guarded {
            // Known first: a meeting room is no stored group, and shares no files.
            room = try node.meetingRoom() == group
            guard let g = try await node.groups().first(where: { $0.id == group }) else { return }
            let page = try await node.groupHistory(group: group, before: nil, limit: 200)
            contacts = try await node.contacts().filter { $0.trust != .blocked }.sorted { $0.name.lowercased() < $1.name.lowercased() }
            var loaded: [String: GroupFileStatus] = [:]
            for f in page.messages.compactMap({ $0.file }) { loaded[f.id] = try await status(f) }
            name = g.name
            members = g.members
            membership = g.membership
            router = g.router
            messages = page.messages
            // Events applied while the node answered are newer than its answers.
            var merged: [String: GroupFileStatus] = [:]
            for (id, answer) in loaded { merged[id] = files[id]?.newer(answer) ?? answer }
            files = merged
        }
    }

    /// Shares the file at `url` with the group (the core copies it into the profile; every member
    /// fetches it); `NotAllowed` (shown as the error) in a meeting room or until the group's log
    /// has reached us.
    func sendFile(_ url: URL) async {
        await guarded {
            let sent = try await node.groupSendFile(group: group, path: url.path)
            add(sent)
            if let f = sent.file {
                let known = try await status(f)
                setStatus(f.id, known)
            }
        }
    }

    /// Asks the node where the file `file` (a `GroupFileRef.id`) of this group stands.
    func loadFile(_ file: String) async {
        await guarded {
            if let info = try await node.groupFile(group: group, file: file) { setStatus(file, GroupFileStatus(info)) }
        }
    }

    /// The file a new file message in `event` announces, whose state to ask the node for
    /// (`loadFile`): one over our size limit is refused at once, with no event to tell.
    func fileToLoad(_ event: GroupEvent) -> String? {
        guard case let .message(g, message) = event, g == group else { return nil }
        return message.file?.id
    }

    /// Where `file` stands here: the node's answer, or `.waiting` if it has none yet.
    private func status(_ file: GroupFileRef) async throws -> GroupFileStatus {
        guard let info = try await node.groupFile(group: group, file: file.id) else { return .waiting }
        return GroupFileStatus(info)
    }

    func send(_ text: String) async -> Bool {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { error = "nothing to send"; return false }
        return await guarded {
            let sent = try await node.groupSend(group: group, text: text)
            add(sent)
        }
    }

    /// Sends our contact `fingerprint` the invite link as a chat message (admins only); a contact
    /// who trusts us (level 2 or more) joins at once, others see an invitation in our chat.
    func sendInvite(_ fingerprint: String) async {
        await guarded {
            _ = try await node.groupSendInvite(group: group, fingerprint: fingerprint)
            let name = contacts.first { $0.fingerprint == fingerprint }?.name ?? String(fingerprint.prefix(8))
            invited.insert(fingerprint)
            notice = "Invitation sent to \(name)"
        }
    }

    func remove(_ fingerprint: String) async {
        await guarded { try await node.groupRemove(group: group, fingerprint: fingerprint); await refresh() }
    }

    func leave() async -> Bool {
        await guarded { try await node.groupLeave(group: group); await refresh() }
    }

    /// Deletes the group from this phone: its messages and files (a member leaves it first).
    func delete() async -> Bool {
        await guarded { try await node.groupDelete(group: group) }
    }

    /// Applies a group event; events of other groups are ignored. Returns whether a `refresh`
    /// is needed (a backfill finished, or we may have become a member).
    func apply(_ event: GroupEvent) -> Bool {
        switch event {
        case let .message(g, message) where g == group:
            add(message)
        case let .memberJoined(g, fp) where g == group:
            if !members.contains(where: { $0.fingerprint == fp }) { members.append(GroupMember(fingerprint: fp, admin: false)) }
            return membership == .pending
        case let .memberLeft(g, fp) where g == group:
            members.removeAll { $0.fingerprint == fp }
        case let .presence(g, fp, online) where g == group:
            if let i = members.firstIndex(where: { $0.fingerprint == fp }) { members[i].online = online }
        case let .role(g, routes) where g == group:
            router = routes
        case let .departed(g) where g == group:
            membership = .former
        case let .purged(g, author, cutoff) where g == group:
            messages.removeAll { $0.author == author && $0.seq > cutoff }
        case let .backfill(g, _, more) where g == group:
            return !more
        case let .fileProgress(g, file, received, _) where g == group:
            setStatus(file, GroupFileStatus(state: .transferring, received: received))
        case let .fileDone(g, file, path) where g == group:
            let size = messages.first { $0.file?.id == file }?.file?.size ?? 0
            // No path: given up, no holder's bytes matched the author's signed hash.
            setStatus(file, path.map { GroupFileStatus(state: .done, received: size, path: $0) } ?? GroupFileStatus(state: .refused))
        default:
            break
        }
        return false
    }

    /// Adds `message` unless it is there (ours arrives from send and as an event); a file it
    /// announces waits for its status unless one is known.
    private func add(_ message: GroupMessage) {
        guard !messages.contains(where: { $0.id == message.id }) else { return }
        messages.append(message)
        if let f = message.file, files[f.id] == nil { files[f.id] = .waiting }
    }

    /// Sets where `file` stands, unless what is known is newer.
    private func setStatus(_ file: String, _ status: GroupFileStatus) {
        files[file] = files[file]?.newer(status) ?? status
    }

    @discardableResult
    private func guarded(_ block: () async throws -> Void) async -> Bool {
        do { try await block(); error = nil; return true } catch { self.error = errorText(error); return false }
    }
}

/// The meeting room for everyone nearby (stadium mode): join the room advertised nearby or start
/// one, messages from group events, send, leave; after a merge `.room` names the room we moved to
/// and `apply` asks for its history (`MeetingRoomViewModel`).
@MainActor
final class MeetingRoomModel: ObservableObject {
    /// The room we are in (32 hex characters), or nil.
    @Published private(set) var room: String?
    /// In display order (the node keeps them in memory only).
    @Published private(set) var messages: [GroupMessage] = []
    @Published private(set) var router = false
    /// Looking for a room advertised nearby (a few seconds).
    @Published private(set) var joining = false
    @Published private(set) var error: String?
    /// The last role seen per group: a room's may arrive before we know we are in it.
    private var roles: [String: Bool] = [:]
    private let node: PeernsNode

    init(node: PeernsNode) { self.node = node }

    /// Joins the room nearby or starts one (stadium mode must be on with a position); its ID.
    @discardableResult
    func join() async -> String? {
        joining = true
        error = nil
        defer { joining = false }
        var joined: String?
        await guarded {
            joined = try await node.meetingRoomJoin()
            await refresh()
        }
        return joined
    }

    /// Reloads the room we are in and its messages (none: cleared).
    @discardableResult
    func refresh() async -> Bool {
        await guarded {
            let current = try node.meetingRoom()
            var history: [GroupMessage] = []
            if current != nil { history = try await node.meetingRoomHistory() }
            // Moved on meanwhile (a merge): the `.room` event that tells it asks for another refresh.
            guard try node.meetingRoom() == current else { return }
            guard let gid = current else { clear(); return }
            // Messages that arrived as events after the history was read stay.
            let ids = Set(history.map { $0.id })
            let later = room == gid ? messages.filter { !ids.contains($0.id) } : []
            room = gid
            messages = history + later
            router = roles[gid] ?? false
        }
    }

    func send(_ text: String) async -> Bool {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { error = "nothing to send"; return false }
        guard let room else { error = "not in the meeting room"; return false }
        return await guarded {
            let sent = try await node.groupSend(group: room, text: text)
            add(room, sent)
        }
    }

    func leave() async -> Bool {
        await guarded {
            try await node.meetingRoomLeave()
            clear()
        }
    }

    /// Applies a group event; other groups' events are ignored. Returns whether a `refresh` is
    /// needed (we entered a room or moved to another, or a backfill of the room finished).
    func apply(_ event: GroupEvent) -> Bool {
        switch event {
        case let .message(g, message):
            add(g, message)
        case let .role(g, routes):
            roles[g] = routes
            if g == room { router = routes }
        case let .room(g):
            guard let entered = g else { clear(); return false }
            if entered != room {
                room = entered
                messages = []
                router = roles[entered] ?? false
            }
            return true
        case let .backfill(g, _, more) where g == room:
            return !more
        default:
            break
        }
        return false
    }

    private func add(_ group: String, _ message: GroupMessage) {
        if group == room && !messages.contains(where: { $0.id == message.id }) { messages.append(message) }
    }

    private func clear() {
        room = nil
        messages = []
        router = false
        error = nil
    }

    @discardableResult
    private func guarded(_ block: () async throws -> Void) async -> Bool {
        do { try await block(); error = nil; return true } catch { self.error = errorText(error); return false }
    }
}

/// The baby monitor: arm this phone or watch a contact's, and its alerts (`MonitorViewModel`).
/// The armed phone sends its camera and microphone (`media`) into the call it places for a
/// watcher once that call's media is up, until it ends or the phone is disarmed. While armed with
/// a sound alert, the `microphone`'s levels go to the node, which decides when to alert.
@MainActor
final class MonitorModel: ObservableObject {
    struct Alert: Hashable { let fingerprint: String; let levelDbfs: Int; let at: Date }
    static let facings = ["environment", "user"]
    @Published private(set) var contacts: [Contact] = []
    @Published private(set) var watchers: Set<String> = []
    @Published private(set) var armed: String?
    @Published private(set) var alertDbfs: Float?
    /// The contact our armed camera streams to now, or nil.
    @Published private(set) var streamingTo: String?
    @Published private(set) var watchCall: String?
    @Published private(set) var watching: String?
    @Published private(set) var alerts: [Alert] = []
    @Published private(set) var error: String?
    /// The phone's camera and microphone for a watcher's call (`PhoneCallMedia`); nil: nothing sent.
    let media: CallMedia?
    private let node: PeernsNode
    private let microphone: SoundLevels?
    /// The call that streams our camera, and which camera.
    private var stream: (call: String, facing: String)?
    /// The calls whose media came up lately (the stream's may come up before we hear of it).
    private var mediaUp: [String] = []
    private let out = CallSources()

    init(node: PeernsNode, microphone: SoundLevels? = nil, media: CallMedia? = nil) {
        self.node = node
        self.microphone = microphone
        self.media = media
    }

    func refresh() async {
        await guarded {
            contacts = try await node.contacts().filter { $0.trust == .fullAccess }.sorted { $0.name.lowercased() < $1.name.lowercased() }
            let grants = try await node.rpcGrants()
            watchers = Set(grants.filter { $0.scope.hasPrefix("media:stream:camera") }.map(\.fingerprint))
            // The alerts the node took before this screen followed its events (opened from an
            // alert's notification), newest first; those heard since stay (Kotlin's refresh).
            let taken = try node.monitorAlerts().reversed().map {
                Alert(fingerprint: $0.fingerprint, levelDbfs: Int($0.levelDbfs), at: Date(timeIntervalSince1970: Double($0.atMs) / 1000))
            }
            let newest = taken.first?.at ?? .distantPast
            alerts = Array((alerts.filter { $0.at > newest } + taken).prefix(50))
        }
    }

    func allow(_ fingerprint: String) async {
        await guarded { try await node.rpcGrant(fingerprint: fingerprint, scopes: Self.scopes); await refresh() }
    }

    func disallow(_ fingerprint: String) async {
        await guarded { _ = try await node.rpcRevoke(fingerprint: fingerprint, scopes: Self.scopes); await refresh() }
    }

    func arm(_ facing: String, alertDbfs: Float?) async {
        await guarded {
            try node.rpcServe(roots: [])
            try node.rpcArmCamera(facing: facing)
            try node.rpcSoundAlert(thresholdDbfs: alertDbfs)
            microphone?.stop()
            // While a stream runs the microphone is the call's; the alert listens after it.
            if alertDbfs != nil && !out.sending {
                try microphone?.start { [node] level in try? node.rpcSoundLevel(dbfs: level) }
            }
            armed = facing
            self.alertDbfs = alertDbfs
        }
    }

    /// Disarms: no new stream, and the one running ends (a person disarming expects it to stop).
    func disarm() async {
        await guarded {
            // First: no stream starts and the alert stops listening from here on.
            let ending = stopStream(resumeAlert: false)
            armed = nil
            alertDbfs = nil
            microphone?.stop()
            try node.rpcSoundAlert(thresholdDbfs: nil)
            try node.rpcArmCamera(facing: nil)
            if let ending { try? node.hangUp(call: ending) }
        }
    }

    func watch(_ fingerprint: String, facing: String = "environment") async {
        await guarded {
            watchCall = try await node.rpcWatch(fingerprint: fingerprint, facing: facing, timeoutMs: 15_000)
            watching = fingerprint
        }
    }

    func stopWatching() async {
        await guarded {
            if let call = watchCall { try node.hangUp(call: call) }
            watchCall = nil
            watching = nil
        }
    }

    func apply(_ event: NodeEvent) {
        switch event {
        case let .monitorAlert(fp, level):
            alerts = Array(([Alert(fingerprint: fp, levelDbfs: Int(level), at: Date())] + alerts).prefix(50))
        case let .callState(c, _, s) where s.state == "ended":
            if c == watchCall {
                watchCall = nil
                watching = nil
            }
            if c == stream?.call { stopStream() }
        case let .monitorStream(call, fingerprint, facing):
            // Placed as we disarmed: nobody is to stream into it.
            guard armed != nil else { try? node.hangUp(call: call); return }
            stream = (call, facing)
            streamingTo = fingerprint
            if mediaUp.contains(call) { Task { await startStream() } }
        case let .callMediaConnected(call, _):
            mediaUp = Array((mediaUp + [call]).suffix(8))
            if call == stream?.call { Task { await startStream() } }
        default:
            break
        }
    }

    /// Sends the camera and the microphone into the stream's call (once).
    private func startStream() async {
        guard armed != nil, let media, let stream, !out.sending else { return }
        do {
            let audio = try await node.callMediaSource(call: stream.call, track: "audio", encoder: NoEncoderControl())
            let video = try await node.callMediaSource(call: stream.call, track: "video", encoder: media.videoControl)
            // Ended, replaced or disarmed while we waited: send nothing.
            guard armed != nil, self.stream?.call == stream.call, !out.sending else { return }
            out.set(["audio": audio, "video": video])
            // The watcher hears the sound live: the alert pauses while the microphone is the
            // call's (one capture at a time), and resumes after.
            microphone?.stop()
            media.setMuted(false)
            media.start(camera: stream.facing, out: out.push)
            // Which way up the picture is, told to the watcher as the phone turns.
            media.setRotationListener { [node] degrees in
                try? node.setVideoRotation(call: stream.call, degrees: UInt16(degrees)) // fails once the call ended
            }
        } catch {
            self.error = errorText(error)
        }
    }

    /// Stops sending into the stream's call, and listens for the sound alert again when
    /// `resumeAlert` and it is on; the call that was.
    @discardableResult
    private func stopStream(resumeAlert: Bool = true) -> String? {
        guard let ended = stream else { return nil }
        stream = nil
        streamingTo = nil
        let sent = out.sending
        media?.setRotationListener(nil)
        media?.stop()
        out.set([:])
        if sent, resumeAlert, armed != nil, alertDbfs != nil {
            try? microphone?.start { [node] level in try? node.rpcSoundLevel(dbfs: level) }
        }
        return ended.call
    }

    /// Stops the stream's media and the sound alert's listening (the screen went; as on Android).
    func close() {
        microphone?.stop()
        stopStream(resumeAlert: false)
    }

    private static var scopes: [String] { facings.map { "media:stream:camera:\($0)" } }

    @discardableResult
    private func guarded(_ block: () async throws -> Void) async -> Bool {
        do { try await block(); error = nil; return true } catch { self.error = errorText(error); return false }
    }
}

extension RpcBackupSummary {
    /// What a finished backup did, as the screen says it (`RpcBackupSummary.line()` on Android).
    var line: String {
        var text = "done: \(files) \(files == 1 ? "file" : "files") sent (\(bytes) bytes), \(skipped) already there"
        if leftOut > 0 { text += ", \(leftOut) left out (a name a path cannot hold, or one taken twice)" }
        if unreadable > 0 { text += ", \(unreadable) could not be read" }
        return text
    }
}

/// Backup of chosen folders into another device, with progress (`BackupViewModel`). A backup
/// started in Low Power Mode waits until it is off (or `startNow`); one running when it comes on
/// is paused (`rpcBackupCancel`, which stops it in the core: cancelling a Swift task never
/// reaches a call into the library) and started again with the same arguments when it goes off
/// (or `startNow`): the core skips the files the peer has and resumes a partly sent one.
/// Cancelling the task of `backup(to:)` stops it for good.
@MainActor
final class BackupModel: ObservableObject {
    static let into = "/incoming"
    @Published private(set) var contacts: [Contact] = []
    @Published private(set) var folders: [URL] = []
    @Published private(set) var running = false
    /// The backup waits for Low Power Mode to go off (`startNow` starts it anyway).
    @Published private(set) var waitingForLowPower = false
    /// The running backup was paused when Low Power Mode came on; it goes on when the mode goes
    /// off (`startNow` continues it now).
    @Published private(set) var pausedForLowPower = false
    @Published private(set) var progress: RpcBackupProgress?
    @Published private(set) var summary: RpcBackupSummary?
    @Published private(set) var error: String?
    /// The user wants the waiting backup to start, or the paused one to continue, despite Low Power Mode.
    @Published private var overridden = false
    /// Low Power Mode cancelled the current `rpcBackup` call (a pause, not the user's cancel).
    private var pausing = false
    private let node: PeernsNode
    private let powerSaver: PowerSaver?

    init(node: PeernsNode, powerSaver: PowerSaver? = nil) {
        self.node = node
        self.powerSaver = powerSaver
        folders = BackupFolderStore.load()
    }

    /// Starts the backup that waits for Low Power Mode, or continues the paused one, now.
    func startNow() { overridden = true }

    func refresh() async {
        await guarded { contacts = try await node.contacts().sorted { $0.name.lowercased() < $1.name.lowercased() } }
    }

    /// Adds `folder`; kept for the next visit and launch (`BackupFolderStore`), as on Android.
    func choose(_ folder: URL) {
        if !folders.contains(folder) { folders.append(folder) }
        BackupFolderStore.save(folders)
    }

    func drop(_ folder: URL) {
        folders.removeAll { $0 == folder }
        BackupFolderStore.save(folders)
    }

    /// Backs the chosen folders up (each opened for the time of the backup: picked folders are
    /// security-scoped). Paused while Low Power Mode is on, as the type says.
    func backup(to fingerprint: String) async {
        guard !folders.isEmpty else { error = "choose a folder first"; return }
        guard !running else { error = "a backup is running"; return }
        running = true
        progress = nil
        summary = nil
        overridden = false
        defer {
            running = false
            waitingForLowPower = false
            pausedForLowPower = false
        }
        let opened = folders.filter { $0.startAccessingSecurityScopedResource() }
        defer { opened.forEach { $0.stopAccessingSecurityScopedResource() } }
        let paths = folders.map(\.path)
        var started = false
        while !Task.isCancelled {
            if let powerSaver, powerSaver.isOn, !overridden {
                await awaitLowPowerOff(powerSaver, paused: started)
                // The screen went away meanwhile: nothing more is sent.
                if Task.isCancelled { return }
            }
            started = true
            var result: RpcBackupSummary?
            guard await guarded({ result = try await attempt(fingerprint, paths: paths) }) else { return }
            if let result {
                summary = result
                return
            }
        }
    }

    /// Waits (before the backup or paused in it) until Low Power Mode is off or `startNow`.
    private func awaitLowPowerOff(_ powerSaver: PowerSaver, paused: Bool) async {
        overridden = false
        waitingForLowPower = !paused
        pausedForLowPower = paused
        for await (on, now) in powerSaver.$isOn.combineLatest($overridden).values where !on || now { break }
        waitingForLowPower = false
        pausedForLowPower = false
    }

    /// One `rpcBackup` call: its summary, or nil when Low Power Mode came on and cancelled it.
    private func attempt(_ fingerprint: String, paths: [String]) async throws -> RpcBackupSummary? {
        let node = node
        let listener = ProgressListener(self)
        let run = Task {
            try await node.rpcBackup(fingerprint: fingerprint, paths: paths, into: Self.into, listener: listener)
        }
        pausing = false
        let pause = Task { @MainActor [weak self] in
            guard let self, let powerSaver = self.powerSaver else { return }
            await self.lowPowerComesOn(powerSaver)
            guard !Task.isCancelled else { return }
            self.pausing = true
            node.rpcBackupCancel()
        }
        defer { pause.cancel() }
        do {
            return try await withTaskCancellationHandler { try await run.value } onCancel: { node.rpcBackupCancel() }
        } catch {
            // A cancelled call may still deliver a late step.
            listener.stop()
            if pausing && !Task.isCancelled { return nil }
            throw error
        }
    }

    /// Returns when Low Power Mode comes on; after `startNow` (the backup runs in Low Power Mode)
    /// only once it has gone off and comes on again.
    private func lowPowerComesOn(_ powerSaver: PowerSaver) async {
        if overridden { for await on in powerSaver.$isOn.values where !on { break } }
        for await on in powerSaver.$isOn.values where on { break }
    }

    fileprivate func step(_ p: RpcBackupProgress) { progress = p }

    @discardableResult
    private func guarded(_ block: () async throws -> Void) async -> Bool {
        do { try await block(); error = nil; return true } catch { self.error = errorText(error); return false }
    }
}

/// Hands a backup's progress from a library thread to the model.
private final class ProgressListener: BackupListener, @unchecked Sendable {
    private weak var model: BackupModel?
    /// Its `rpcBackup` call was cancelled: later steps are dropped.
    @MainActor private var stopped = false

    init(_ model: BackupModel) { self.model = model }

    @MainActor func stop() { stopped = true }

    func onBackupProgress(progress: RpcBackupProgress) {
        Task { @MainActor [weak self] in
            guard let self, !self.stopped else { return }
            self.model?.step(progress)
        }
    }
}

/// Our name for contact `fingerprint` among `contacts`, else its first 8 characters (Kotlin's `contactName`).
func contactNameIn(_ contacts: [Contact], _ fingerprint: String) -> String {
    if let name = contacts.first(where: { $0.fingerprint == fingerprint })?.name, !name.trimmingCharacters(in: .whitespaces).isEmpty {
        return name
    }
    return String(fingerprint.prefix(8))
}

/// The chat on the screen, which the core does not notify of (its one slot): a screen that goes
/// clears it only if it is still its own, since SwiftUI may show the next chat (`.task`) before
/// the last one's `onDisappear`.
@MainActor
enum OpenChat {
    private static var shown: String?

    static func opened(_ conversation: String, on node: PeernsNode) {
        shown = conversation
        try? node.setOpenChat(conversation: conversation)
    }

    static func closed(_ conversation: String, on node: PeernsNode) {
        guard shown == conversation else { return }
        shown = nil
        try? node.setOpenChat(conversation: nil)
    }
}

/// The backup's folders across launches: bookmarks in the app's defaults (a picked folder's
/// bookmark keeps its access, to be opened again with `startAccessingSecurityScopedResource`).
/// Folders whose bookmark no longer resolves (moved, deleted) are left out.
enum BackupFolderStore {
    private static let key = "backupFolders"

    static func load() -> [URL] {
        let saved = UserDefaults.standard.array(forKey: key) as? [Data] ?? []
        return saved.compactMap { data in
            var stale = false
            return try? URL(resolvingBookmarkData: data, bookmarkDataIsStale: &stale)
        }
    }

    static func save(_ folders: [URL]) {
        let bookmarks = folders.compactMap { url -> Data? in
            let access = url.startAccessingSecurityScopedResource()
            defer { if access { url.stopAccessingSecurityScopedResource() } }
            return try? url.bookmarkData()
        }
        UserDefaults.standard.set(bookmarks, forKey: key)
    }
}
