import Foundation
import UserNotifications

/// Posts the core's notifications with `UNUserNotificationCenter`: one per conversation (a new
/// message replaces the previous one), grouped by conversation. Nothing shows until the user
/// allowed notifications (`requestAuthorization()`). Any thread may call it.
public final class UserNotifier: Notifier, @unchecked Sendable {
    /// The `userInfo` key that carries the conversation a notification opens.
    public static let conversationKey = "conversation"
    /// The `userInfo` key that carries the category (`message`, `contactRequest`, `incomingCall`,
    /// `missedCall`, `groupMessage`, `monitorAlert`).
    public static let categoryKey = "category"

    /// The categories' identifiers (`content.categoryIdentifier`).
    public static let messageCategory = "peerns.message"
    public static let groupMessageCategory = "peerns.groupMessage"
    public static let callCategory = "peerns.call"
    /// The actions' identifiers (`UNNotificationResponse.actionIdentifier`): a message's direct
    /// reply (text input), an incoming call's Answer (opens the app) and Decline.
    public static let replyAction = "peerns.reply"
    public static let answerAction = "peerns.answer"
    public static let declineAction = "peerns.decline"

    /// The categories with actions, as Android's notifications have them: Reply on a contact's
    /// or a group's messages; Answer and Decline on an incoming call (only posted without
    /// CallKit, `ringsCalls`). Register them at launch:
    /// `UNUserNotificationCenter.current().setNotificationCategories(UserNotifier.categories)`;
    /// `NotificationRouter` hands the responses to the app.
    public static var categories: Set<UNNotificationCategory> {
        let reply = UNTextInputNotificationAction(
            identifier: replyAction, title: "Reply", options: [],
            textInputButtonTitle: "Send", textInputPlaceholder: "Message"
        )
        let answer = UNNotificationAction(identifier: answerAction, title: "Answer", options: [.foreground])
        let decline = UNNotificationAction(identifier: declineAction, title: "Decline", options: [.destructive])
        return [
            UNNotificationCategory(identifier: messageCategory, actions: [reply], intentIdentifiers: [], options: []),
            UNNotificationCategory(identifier: groupMessageCategory, actions: [reply], intentIdentifiers: [], options: []),
            UNNotificationCategory(identifier: callCategory, actions: [answer, decline], intentIdentifiers: [], options: []),
        ]
    }

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
        case .monitorAlert: return "monitorAlert"
        }
    }

    public func notify(notification: PeernsNotification) {
        if case .incomingCall = notification.category, !ringsCalls { return }
        let content = UNMutableNotificationContent()
        content.title = notification.title
        content.body = notification.body
        switch notification.category {
        case .message:
            content.categoryIdentifier = Self.messageCategory
            content.sound = .default
            content.interruptionLevel = .active
        case .contactRequest:
            content.categoryIdentifier = "peerns.request"
            content.sound = .default
            content.interruptionLevel = .active
        case .incomingCall:
            // Without CallKit (the app uses it: `ringsCalls` false). Either way this only rings
            // while the app runs: PeerNS has no VoIP push server (ios/README.md).
            content.categoryIdentifier = Self.callCategory
            content.sound = .defaultCritical
            content.interruptionLevel = .timeSensitive
        case .missedCall:
            content.categoryIdentifier = "peerns.missedCall"
            content.sound = .default
            content.interruptionLevel = .active
        case .groupMessage:
            content.categoryIdentifier = Self.groupMessageCategory
            content.sound = .default
            content.interruptionLevel = .active
        case .monitorAlert:
            // An alarm: time sensitive with the critical sound. Each needs its entitlement
            // (ios/PeernsApp/project.yml); without them it is an ordinary alert with a sound.
            content.categoryIdentifier = "peerns.monitorAlert"
            content.sound = .defaultCritical
            content.interruptionLevel = .timeSensitive
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

    /// A notification's direct reply `text` to `conversation` (a group's ID when `group`) was not
    /// sent (`reason`): says so in the conversation's thread, with Reply again; a tap opens it.
    public func replyNotSent(conversation: String, group: Bool, text: String, reason: String) {
        let content = UNMutableNotificationContent()
        content.title = "Reply not sent"
        content.body = "\u{201C}\(text)\u{201D}: \(reason)"
        content.categoryIdentifier = group ? Self.groupMessageCategory : Self.messageCategory
        content.sound = .default
        content.threadIdentifier = conversation
        content.userInfo = [
            Self.categoryKey: Self.name(of: group ? .groupMessage : .message),
            Self.conversationKey: conversation,
        ]
        let request = UNNotificationRequest(identifier: "replyNotSent:\(conversation)", content: content, trigger: nil)
        center.add(request) { _ in }
    }
}
