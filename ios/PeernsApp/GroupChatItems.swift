import Foundation
import PeernsKit

// A group chat's lines with its shared files (`GroupChatItems.kt` of the Android app, tested
// there against the real library; keep the two in step).

/// Where a group file stands on this phone, as the chat shows it (`GroupFileStatus`).
struct GroupFileStatus: Equatable {
    var state: GroupFileTransfer
    /// Bytes on disk so far.
    var received: UInt64 = 0
    /// The file, once `.done`.
    var path: String? = nil

    /// Announced; nothing on this phone yet.
    static let waiting = GroupFileStatus(state: .transferring)

    /// Arrived whole and verified (or ours), at `path`.
    var done: Bool { state == .done && path != nil }

    /// The more advanced of this and `other`, so that an older answer of the node never undoes a
    /// newer event: a finished state (done or refused) wins, otherwise the one with more bytes.
    func newer(_ other: GroupFileStatus) -> GroupFileStatus {
        if state != .transferring { return self }
        if other.state != .transferring { return other }
        return other.received > received ? other : self
    }
}

extension GroupFileStatus {
    // In an extension, so that the memberwise initializer stays.
    init(_ info: GroupFileInfo) {
        self.init(state: info.state, received: info.received, path: info.path)
    }
}

/// One line of a group chat (`GroupChatItem`): a text message, or a shared file with where it
/// stands here.
enum GroupChatItem: Identifiable {
    case message(GroupMessage)
    case file(GroupMessage, GroupFileRef, GroupFileStatus)

    var id: String {
        switch self {
        case let .message(m): return m.id
        case let .file(m, _, _): return m.id
        }
    }
}

/// `messages` as the chat lists them: file messages as `.file` with their status from `files`
/// (by file ID) (`groupChatItems`).
func groupChatItems(_ messages: [GroupMessage], _ files: [String: GroupFileStatus]) -> [GroupChatItem] {
    messages.map { m in
        guard let f = m.file else { return .message(m) }
        return .file(m, f, files[f.id] ?? .waiting)
    }
}

/// A shared file as the chat shows it: "📎 notes.txt · 12 KB", and while it comes "· receiving
/// 40 %" (or "· waiting for a member who has it" before any byte), or "· could not be verified"
/// when it was given up or refused (`describeGroupFile`).
func describeGroupFile(_ file: GroupFileRef, _ status: GroupFileStatus) -> String {
    let head = "📎 \(file.name) · \(fileSize(file.size))"
    switch status.state {
    case .done: return head
    case .refused: return "\(head) · could not be verified"
    case .transferring:
        if status.received == 0 { return "\(head) · waiting for a member who has it" }
        return "\(head) · receiving \(percent(status.received, of: file.size)) %"
    }
}

/// `received` of `size` in whole percent, 0–100 (`percent`).
func percent(_ received: UInt64, of size: UInt64) -> Int {
    size == 0 ? 100 : Int(min(received, size) * 100 / size)
}

/// A size for people: "512 B", "12 KB", "3.4 MB", "1.2 GB" (1 KB = 1024 B) (`fileSize`).
func fileSize(_ bytes: UInt64) -> String {
    let b = Double(bytes)
    if bytes < 1024 { return "\(bytes) B" }
    if bytes < 1024 * 1024 { return "\(bytes / 1024) KB" }
    if bytes < 1024 * 1024 * 1024 { return String(format: "%.1f MB", b / (1024 * 1024)) }
    return String(format: "%.1f GB", b / (1024 * 1024 * 1024))
}
