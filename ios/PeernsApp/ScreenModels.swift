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
    @Published private(set) var shareLink = ""
    @Published private(set) var error: String?
    private let node: PeernsNode

    init(node: PeernsNode) { self.node = node }

    static let trustChoices: [(Trust, String)] = [
        (.blocked, "Blocked"), (.known, "Known"), (.trusted, "Trusted"), (.fullAccess, "Full access"),
    ]

    func refresh() async {
        await guarded {
            let requests = try await node.requests().sorted { $0.createdMs > $1.createdMs }
            contacts = try await node.contacts().sorted { $0.name.lowercased() < $1.name.lowercased() }
            incoming = requests.filter { !$0.outgoing }
            outgoing = requests.filter { $0.outgoing }
            shareLink = try node.shareLink()
        }
    }

    func add(_ link: String) async -> Bool {
        let link = link.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !link.isEmpty else { error = "paste a share link first"; return false }
        return await guarded { _ = try await node.requestContact(link: link); await refresh() }
    }

    func accept(_ fingerprint: String) async {
        await guarded { _ = try await node.acceptRequest(fingerprint: fingerprint); await refresh() }
    }

    func reject(_ fingerprint: String) async {
        await guarded { try await node.rejectRequest(fingerprint: fingerprint); await refresh() }
    }

    func setTrust(_ fingerprint: String, _ trust: Trust) async {
        await guarded { try await node.setTrust(fingerprint: fingerprint, trust: trust); await refresh() }
    }

    @discardableResult
    private func guarded(_ block: () async throws -> Void) async -> Bool {
        do { try await block(); error = nil; return true } catch { self.error = "\(error)"; return false }
    }
}

/// One chat: messages, edits, deletes, files (`ChatViewModel`).
@MainActor
final class ChatModel: ObservableObject {
    @Published private(set) var title: String
    @Published private(set) var messages: [ChatMessage] = []
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
            try node.setOpenChat(conversation: conversation)
            await refresh()
            try await node.markRead(conversation: conversation)
        }
    }

    func close() { try? node.setOpenChat(conversation: nil) }

    func refresh() async {
        await guarded {
            let name = try await node.contacts().first { $0.fingerprint == conversation }?.name
            title = name ?? String(conversation.prefix(8))
            messages = try await node.messages(conversation: conversation, limit: 200).sorted { $0.sentMs < $1.sentMs }
            online = try node.isOnline(conversation: conversation)
        }
    }

    func send(_ text: String) async -> Bool {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { error = "nothing to send"; return false }
        return await guarded { _ = try await node.sendMessage(conversation: conversation, text: text); await refresh() }
    }

    func edit(_ id: String, _ text: String) async {
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
        do { try await block(); error = nil; return true } catch { self.error = "\(error)"; return false }
    }
}

/// Stadium mode: people nearby, nearest first (`NearbyViewModel`).
@MainActor
final class NearbyModel: ObservableObject {
    @Published private(set) var people: [DiscoveredPeer] = []
    @Published private(set) var error: String?
    private let node: PeernsNode

    init(node: PeernsNode) { self.node = node }

    /// How many of the people nearby are in a meeting room.
    var inRoom: Int { people.filter { $0.room != nil }.count }

    func refresh() async {
        do {
            people = try await node.nearby().sorted {
                ($0.distanceM ?? .greatestFiniteMagnitude, $0.name) < ($1.distanceM ?? .greatestFiniteMagnitude, $1.name)
            }
            error = nil
        } catch {
            self.error = "\(error)"
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
            self.error = "\(error)"
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
