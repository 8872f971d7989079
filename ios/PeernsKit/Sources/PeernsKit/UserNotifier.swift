import Foundation
import UserNotifications

/// Posts the core's notifications with `UNUserNotificationCenter`: one per conversation (a new
/// message replaces the previous one), grouped by conversation. Nothing shows until the user
/// allowed notifications (`requestAuthorization()`). Any thread may call it.
public final class UserNotifier: Notifier, @unchecked Sendable {
    /// The `userInfo` key that carries the conversation a notification opens.
    public static let conversationKey = "conversation"
    /// The `userInfo` key that carries the category (`message`, `contactRequest`, `incomingCall`,
    /// `missedCall`).
    public static let categoryKey = "category"

    private let center: UNUserNotificationCenter
    /// False when CallKit rings for incoming calls (`CallKitController`): no notification then.
    private let ringsCalls: Bool

    public init(center: UNUserNotificationCenter = .current(), ringsCalls: Bool = true) {
        self.center = center
        self.ringsCalls = ringsCalls
    }

    /// Asks the user for alerts and sounds; true when allowed.
    public func requestAuthorization() async throws -> Bool {
        try await center.requestAuthorization(options: [.alert, .sound, .badge])
    }

    /// The category as it travels in `userInfo`.
    static func name(of category: NotificationCategory) -> String {
        switch category {
        case .message: return "message"
        case .contactRequest: return "contactRequest"
        case .incomingCall: return "incomingCall"
        case .missedCall: return "missedCall"
        case .groupMessage: return "groupMessage"
        }
    }

    public func notify(notification: PeernsNotification) {
        if case .incomingCall = notification.category, !ringsCalls { return }
        let content = UNMutableNotificationContent()
        content.title = notification.title
        content.body = notification.body
        switch notification.category {
        case .message:
            content.categoryIdentifier = "peerns.message"
            content.sound = .default
            content.interruptionLevel = .active
        case .contactRequest:
            content.categoryIdentifier = "peerns.request"
            content.sound = .default
            content.interruptionLevel = .active
        case .incomingCall:
            // Without CallKit (the app uses it: `ringsCalls` false). Either way this only rings
            // while the app runs: PeerNS has no VoIP push server (ios/README.md).
            content.categoryIdentifier = "peerns.call"
            content.sound = .defaultCritical
            content.interruptionLevel = .timeSensitive
        case .missedCall:
            content.categoryIdentifier = "peerns.missedCall"
            content.sound = .default
            content.interruptionLevel = .active
        case .groupMessage:
            content.categoryIdentifier = "peerns.groupMessage"
            content.sound = .default
            content.interruptionLevel = .active
        }
        var info: [String: String] = [
            Self.categoryKey: Self.name(of: notification.category),
        ]
        if let conversation = notification.conversation {
            content.threadIdentifier = conversation
            info[Self.conversationKey] = conversation
        }
        content.userInfo = info
        // One notification per conversation and category (Android tags them the same way): a
        // missed call or a contact request does not replace the contact's messages.
        let request = UNNotificationRequest(
            identifier: notification.conversation.map { "\(Self.name(of: notification.category)):\($0)" } ?? UUID().uuidString,
            content: content,
            trigger: nil
        )
        // Fails only when notifications are not allowed: then there is nothing to show.
        center.add(request) { _ in }
    }
}
