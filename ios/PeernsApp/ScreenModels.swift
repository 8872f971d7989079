import Combine
import Foundation
import PeernsKit

// The screens' models. Each mirrors a Kotlin view model of the Android app
// (android/app/src/main/kotlin/org/peerns/app/model), which is tested on the JVM against the
// real library; keep the two in step.

/// Contacts: add by share link, answer requests, set trust (`ContactsViewModel`).
@MainActor
final class ContactsModel: ObservableObject {
    @Published private(set) var contacts: [Contact] = []
    @Published private(set) var incoming: [ContactRequest] = []
    @Published private(set) var outgoing: [ContactRequest] = []
    /// Links added while their owner could not be reached: asked once both are online.
    @Published private(set) var waiting: [WaitingLink] = []
    @Published private(set) var shareLink = ""
    @Published private(set) var error: String?
    /// What the last add did when it could not send the request yet.
    @Published private(set) var notice: String?
    private let node: PeernsNode

    init(node: PeernsNode) { self.node = node }

    static let waitingNotice = "They cannot be reached now: the request is sent when you are both online."

    static let trustChoices: [(Trust, String)] = [
        (.blocked, "Blocked"), (.known, "Known"), (.trusted, "Trusted"), (.fullAccess, "Full access"),
    ]

    func refresh() async {
        await guarded {
            let requests = try await node.requests().sorted { $0.createdMs > $1.createdMs }
            contacts = try await node.contacts().sorted { $0.name.lowercased() < $1.name.lowercased() }
            incoming = requests.filter { !$0.outgoing }
            outgoing = requests.filter { $0.outgoing }
            waiting = try await node.waitingLinks()
            shareLink = try node.shareLink()
            notice = nil
        }
    }

    /// Kept for later when the owner cannot be reached now: a success with a `notice`.
    func add(_ link: String) async -> Bool {
        let link = link.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !link.isEmpty else { error = "paste a share link first"; return false }
        return await guarded {
            var kept = false
            do { _ = try await node.requestContact(link: link) } catch PeernsError.Waiting { kept = true }
            await refresh()
            if kept { notice = Self.waitingNotice }
        }
    }

    /// Cancels our request to `fingerprint`, or our link to it that waits to be reached.
    func cancel(_ fingerprint: String) async {
        await guarded { try await node.cancelRequest(fingerprint: fingerprint); await refresh() }
    }

    /// Whether `event` changes what this screen shows (Kotlin's `concerns`).
    func concerns(_ event: NodeEvent) -> Bool {
        switch event {
        case .contactRequest, .contactAdded, .contactRequestSent: return true
        default: return false
        }
    }

    func accept(_ fingerprint: String) async {
        await guarded { _ = try await node.acceptRequest(fingerprint: fingerprint); await refresh() }
    }

    func reject(_ fingerprint: String) async {
        await guarded { try await node.rejectRequest(fingerprint: fingerprint); await refresh() }
    }

    /// Leaves a request for later: kept, and listed as later.
    func later(_ fingerprint: String) async {
        await guarded { try await node.laterRequest(fingerprint: fingerprint); await refresh() }
    }

    /// Removes a contact (its trust goes; the chat stays).
    func remove(_ fingerprint: String) async {
        await guarded { try await node.removeContact(fingerprint: fingerprint); await refresh() }
    }

    /// Marks contact `fingerprint` verified (its fingerprint compared with its own phone's), or not.
    func setVerified(_ fingerprint: String, _ verified: Bool) async {
        await guarded { try await node.setVerified(fingerprint: fingerprint, verified: verified); await refresh() }
    }

    func setTrust(_ fingerprint: String, _ trust: Trust) async {
        await guarded { try await node.setTrust(fingerprint: fingerprint, trust: trust); await refresh() }
    }

    @discardableResult
    private func guarded(_ block: () async throws -> Void) async -> Bool {
        do { try await block(); error = nil; return true } catch { self.error = errorText(error); return false }
    }
}

/// One line of a 1:1 chat (`ChatItem`): a message, a group invitation (a message that is an
/// invite link), or a call.
enum ChatItem: Identifiable {
    case message(ChatMessage)
    case invitation(ChatMessage, link: String)
    case call(CallLogEntry)

    var id: String {
        switch self {
        case let .message(m): return "m" + m.id
        case let .invitation(m, _): return "m" + m.id
        case let .call(c): return "c" + c.call
        }
    }

    /// When it happened, Unix ms: a message's sending time, a call's start.
    var timeMs: UInt64 {
        switch self {
        case let .message(m): return m.sentMs
        case let .invitation(m, _): return m.sentMs
        case let .call(c): return c.startedMs
        }
    }
}

/// The group invite link `text` is, or nil: the trimmed text starts with `peerns2-group:` and is
/// nothing but the link (`inviteLinkIn`).
func inviteLinkIn(_ text: String) -> String? {
    let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard PeernsLinks.isGroup(t), t.count > PeernsLinks.group.count, !t.contains(where: { $0.isWhitespace }) else { return nil }
    return t
}

/// The invite link `message` carries (not a file, not deleted), or nil (`inviteLinkOf`).
func inviteLinkOf(_ message: ChatMessage) -> String? {
    message.deleted || message.file != nil ? nil : inviteLinkIn(message.text)
}

/// The chat's lines, oldest first: messages and calls interleaved by time; at the same time a
/// message comes before a call, each in the order given (`chatItems`).
func chatItems(_ messages: [ChatMessage], _ calls: [CallLogEntry]) -> [ChatItem] {
    let lines = messages.map { m in inviteLinkOf(m).map { ChatItem.invitation(m, link: $0) } ?? .message(m) } + calls.map { ChatItem.call($0) }
    // Stable: sort by (time, original position).
    return lines.enumerated().sorted { ($0.element.timeMs, $0.offset) < ($1.element.timeMs, $1.offset) }.map(\.element)
}

/// A call as the chat shows it: "Outgoing video call · 2 min", "Missed call" (`describeCall`).
func describeCall(_ entry: CallLogEntry) -> String {
    let kind = entry.kinds.video ? "video call" : "call"
    let dir = entry.outgoing ? "Outgoing" : "Incoming"
    switch entry.outcome {
    case "completed": return "\(dir) \(kind) · \(callDuration(entry.durationMs))"
    case "missed": return "Missed \(kind)"
    case "no_answer": return entry.outgoing ? "\(dir) \(kind) · no answer" : "Missed \(kind)"
    default: return "\(dir) \(kind) · \(entry.outcome.replacingOccurrences(of: "_", with: " "))"
    }
}

/// A call's length: "45 s" under a minute, "2 min" under an hour, "1 h 5 min" above (`callDuration`).
func callDuration(_ ms: UInt64) -> String {
    let s = ms / 1000
    if s < 60 { return "\(s) s" }
    if s < 3600 { return "\(s / 60) min" }
    return "\(s / 3600) h \(s % 3600 / 60) min"
}

/// One chat: messages, edits, deletes, files, the calls with the contact among them, group
/// invitations to join (`ChatViewModel`).
@MainActor
final class ChatModel: ObservableObject {
    @Published private(set) var title: String
    @Published private(set) var messages: [ChatMessage] = []
    /// The calls with the contact, newest first.
    @Published private(set) var calls: [CallLogEntry] = []
    /// What the screen lists, oldest first (`chatItems`).
    @Published private(set) var items: [ChatItem] = []
    /// Where each file message's transfer stands, by message ID (Kotlin's `ChatState.files`).
    @Published private(set) var files: [String: FileTransferInfo] = [:]
    /// Why we may not be reaching the contact (`warningOf`), kept while the chat is shown.
    @Published private(set) var warning: String?
    @Published private(set) var online = false
    @Published private(set) var error: String?
    let conversation: String
    private let node: PeernsNode

    init(node: PeernsNode, conversation: String) {
        self.node = node
        self.conversation = conversation
        title = String(conversation.prefix(8))
    }

    func open() async {
        await guarded {
            OpenChat.opened(conversation, on: node)
            await refresh()
            try await node.markRead(conversation: conversation)
        }
    }

    func close() { OpenChat.closed(conversation, on: node) }

    func refresh() async {
        await guarded {
            let name = try await node.contacts().first { $0.fingerprint == conversation }?.name
            title = name ?? String(conversation.prefix(8))
            messages = try await node.messages(conversation: conversation, limit: 200).sorted { $0.sentMs < $1.sentMs }
            calls = try await node.callLog(fingerprint: conversation, limit: 200)
            // Finished transfers (done, refused) do not change: only the others are read again,
            // each on its own (one that fails leaves its line as it was); a read never takes
            // back the bytes progress events showed meanwhile.
            var transfers: [String: FileTransferInfo] = [:]
            for m in messages where m.file != nil && !m.deleted {
                let known = files[m.id]
                if let known, known.state != .transferring {
                    transfers[m.id] = known
                } else if var t = (try? await node.fileTransfer(id: m.id)) ?? known {
                    if let now = files[m.id], now.state == .transferring, t.state == .transferring, now.bytes > t.bytes { t.bytes = now.bytes }
                    transfers[m.id] = t
                }
            }
            files = transfers
            items = chatItems(messages, calls)
            online = try node.isOnline(conversation: conversation)
        }
    }

    /// Joins the group of an invitation in this chat (opening it is the user's consent); the
    /// group's ID, or nil (a link not for us: `error`).
    func joinGroup(_ link: String) async -> String? {
        guard let link = inviteLinkIn(link) else { error = "not a group invitation"; return nil }
        var gid: String?
        await guarded { gid = try await node.groupJoin(link: link) }
        return gid
    }

    /// Whether `event` changes this chat: its messages, their delivery marks, its files, the
    /// contact coming or going, a call with the contact logged (Kotlin's `concerns`).
    func concerns(_ event: NodeEvent) -> Bool {
        switch event {
        case let .messageReceived(message): return message.conversation == conversation
        case let .messageChanged(message): return message.conversation == conversation
        case let .messageStatus(c, _, _): return c == conversation
        case let .fileReceived(c, _, _): return c == conversation
        case let .fileDone(c, _, _, _): return c == conversation
        case let .peerConnected(_, fingerprint): return fingerprint == conversation
        case let .peerDisconnected(_, fingerprint): return fingerprint == conversation
        case let .callLogged(entry): return entry.fingerprint == conversation
        default: return false
        }
    }

    /// A transfer of this chat moved on (`fileProgress`): its line shows how far, without
    /// reading the chat again (Kotlin's `ChatState.withProgress`).
    func progress(_ event: NodeEvent) {
        guard case let .fileProgress(c, id, bytes, _, _) = event, c == conversation,
              var t = files[id], t.state == .transferring, t.bytes != bytes else { return }
        t.bytes = bytes
        files[id] = t
    }

    /// A warning about this contact (`warningOf`) is shown with the chat, until the contact
    /// itself is linked.
    func warn(_ event: NodeEvent) {
        // The contact itself linked (its key proved): the warning goes.
        if case let .peerConnected(_, fingerprint) = event, fingerprint == conversation {
            warning = nil
        } else if let w = warningOf(event, conversation) {
            warning = w
        }
    }

    func send(_ text: String) async -> Bool {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { error = "nothing to send"; return false }
        return await guarded { _ = try await node.sendMessage(conversation: conversation, text: text); await refresh() }
    }

    func edit(_ id: String, _ text: String) async {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { error = "an edit needs text; delete the message instead"; return }
        await guarded { _ = try await node.editMessage(conversation: conversation, id: id, text: text); await refresh() }
    }

    func delete(_ id: String) async {
        await guarded { _ = try await node.deleteMessage(conversation: conversation, id: id); await refresh() }
    }

    func sendFile(_ url: URL) async {
        await guarded { _ = try await node.sendFile(conversation: conversation, path: url.path); await refresh() }
    }

    @discardableResult
    private func guarded(_ block: () async throws -> Void) async -> Bool {
        do { try await block(); error = nil; return true } catch { self.error = errorText(error); return false }
    }
}

/// Stadium mode: people nearby, nearest first (`NearbyViewModel`). In Low Power Mode positions
/// come about once a minute, so the screen reloads the list less often (`pollNanoseconds`).
@MainActor
final class NearbyModel: ObservableObject {
    @Published private(set) var people: [DiscoveredPeer] = []
    @Published private(set) var error: String?
    private let node: PeernsNode
    private let powerSaver: PowerSaver?

    init(node: PeernsNode, powerSaver: PowerSaver? = nil) {
        self.node = node
        self.powerSaver = powerSaver
    }

    /// How long the screen waits before it reloads the list again: 5 s, 20 s in Low Power Mode.
    var pollNanoseconds: UInt64 { powerSaver?.isOn == true ? 20_000_000_000 : 5_000_000_000 }

    /// How many of the people nearby are in a meeting room.
    var inRoom: Int { people.filter { $0.room != nil }.count }

    func refresh() async {
        do {
            people = try await node.nearby().sorted {
                ($0.distanceM ?? .greatestFiniteMagnitude, $0.name) < ($1.distanceM ?? .greatestFiniteMagnitude, $1.name)
            }
            error = nil
        } catch {
            self.error = errorText(error)
        }
    }

    static func distance(_ peer: DiscoveredPeer) -> String {
        guard let m = peer.distanceM else { return "?" }
        return m < 1000 ? "\(Int(m)) m" : String(format: "%.1f km", m / 1000)
    }
}

/// What a link read from a QR code does (`ScannedLink`).
enum ScannedLink {
    /// A share link asks its owner to become a contact (as "add by link"), a group invite joins
    /// the group (as "join by link"); failures land in those models' errors. Returns the joined
    /// group's ID, whose chat opens next.
    @MainActor
    static func use(_ link: String, contacts: ContactsModel, groups: GroupsModel) async -> String? {
        if PeernsLinks.isGroup(link) { return await groups.join(link) }
        if PeernsLinks.isContact(link) { _ = await contacts.add(link) }
        return nil
    }
}

/// Settings: display name, fingerprint and share link, signaling server (`SettingsViewModel`).
@MainActor
final class SettingsModel: ObservableObject {
    @Published var name = ""
    @Published var signalingUrl = Settings.signalingUrl
    @Published private(set) var identity: Identity?
    /// Our share link, shown as a QR code.
    @Published private(set) var shareLink = ""
    @Published private(set) var restartNeeded = false
    @Published private(set) var error: String?
    private let node: PeernsNode

    init(node: PeernsNode) {
        self.node = node
        identity = try? node.identity()
        name = identity?.displayName ?? ""
        shareLink = (try? node.shareLink()) ?? ""
    }

    func saveName() async {
        do {
            try await node.setDisplayName(name: name.trimmingCharacters(in: .whitespaces))
            identity = try node.identity()
            error = nil
        } catch {
            self.error = errorText(error)
        }
    }

    func saveSignalingUrl() {
        let url = signalingUrl.trimmingCharacters(in: .whitespaces)
        let rest: Substring? = url.hasPrefix("wss://") ? url.dropFirst(6) : url.hasPrefix("ws://") ? url.dropFirst(5) : nil
        guard let rest, !rest.isEmpty, !rest.hasPrefix("/"), !rest.contains(where: \.isWhitespace) else {
            error = "a signaling server URL starts with ws:// or wss://"
            return
        }
        if url != Settings.signalingUrl {
            Settings.signalingUrl = url
            restartNeeded = true
        }
        error = nil
    }
}

/// What the chat with `conversation` says about `event`, if it concerns it: another key answered
/// at the contact's address, or its app speaks a wire version ours cannot (Kotlin's `warningOf`).
func warningOf(_ event: NodeEvent, _ conversation: String) -> String? {
    switch event {
    case let .keyChanged(_, known, presented) where known == conversation:
        return "Someone else answered at this contact's address (fingerprint \(presented.prefix(8))), not them: nothing of yours "
            + "reaches it. If they reinstalled PeerNS, ask them for their new link and verify it."
    case let .incompatiblePeer(_, fingerprint, ours, theirs) where fingerprint == conversation:
        return "Their PeerNS speaks version \(theirs.major), this one \(ours.major): one of you needs an update to talk."
    default:
        return nil
    }
}

/// A fingerprint in groups of four characters, as people compare them (Kotlin's `grouped`).
func grouped(_ fingerprint: String) -> String {
    stride(from: 0, to: fingerprint.count, by: 4).map { i -> String in
        let start = fingerprint.index(fingerprint.startIndex, offsetBy: i)
        let end = fingerprint.index(start, offsetBy: 4, limitedBy: fingerprint.endIndex) ?? fingerprint.endIndex
        return String(fingerprint[start..<end])
    }.joined(separator: " ")
}
