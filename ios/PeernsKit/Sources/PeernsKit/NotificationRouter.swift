import Foundation
import UserNotifications

/// What a notification tap opens.
public enum NotificationRoute: Equatable {
    /// The chat with this contact (fingerprint).
    case chat(String)
    /// The chat of this group (its ID).
    case group(String)
    /// The contact requests.
    case contacts
    /// The 1:1 call screen (an incoming call's notification).
    case call
    /// The baby monitor (an armed monitor's sound alert).
    case monitor
}

/// What a notification's action asks (`UserNotifier.categories`).
public enum NotificationAction: Equatable {
    /// Send `text` to the contact `fingerprint` (a message's Reply).
    case reply(String, text: String)
    /// Send `text` in the group `id` (a group message's Reply).
    case groupReply(String, text: String)
    /// Answer the call that rings from `caller` and show it (opens the app).
    case answer(String)
    /// Decline the call that rings from `caller`.
    case decline(String)
}

/// The `UNUserNotificationCenterDelegate`: routes a tap on one of `UserNotifier`'s notifications
/// to `onOpen` (on the main queue), hands an action (Reply, Answer, Decline) to `onAction`, and
/// shows notifications while the app is in the foreground too (the core posts none for the chat
/// that is open). Install it before the app finishes launching:
/// `UNUserNotificationCenter.current().delegate = router` (the center keeps a weak reference, so
/// the app must keep the router).
public final class NotificationRouter: NSObject, UNUserNotificationCenterDelegate, @unchecked Sendable {
    private let onOpen: (NotificationRoute) -> Void
    private let onAction: (NotificationAction, @escaping () -> Void) -> Void

    /// `onAction` gets the action and a completion to call once it is done or failed (any
    /// thread): it is the notification center's, and an app woken in the background for a reply
    /// may be suspended as soon as it is called.
    public init(
        onOpen: @escaping (NotificationRoute) -> Void,
        onAction: @escaping (NotificationAction, @escaping () -> Void) -> Void
    ) {
        self.onOpen = onOpen
        self.onAction = onAction
    }

    /// The route of a notification's `userInfo`, or nil when it is not one of ours.
    public static func route(_ userInfo: [AnyHashable: Any]) -> NotificationRoute? {
        // As on Android: an incoming call opens the call screen, not the caller's chat.
        if userInfo[UserNotifier.categoryKey] as? String == "incomingCall" {
            return .call
        }
        // The core names the requester as a request's conversation; its chat has no Accept.
        if userInfo[UserNotifier.categoryKey] as? String == "contactRequest" {
            return .contacts
        }
        if userInfo[UserNotifier.categoryKey] as? String == "monitorAlert" {
            return .monitor
        }
        if let conversation = userInfo[UserNotifier.conversationKey] as? String {
            if userInfo[UserNotifier.categoryKey] as? String == "groupMessage" {
                return .group(conversation)
            }
            return .chat(conversation)
        }
        return nil
    }

    /// The action of `response`, or nil when it is a tap, a dismissal, an empty reply or not
    /// one of ours. The conversation (the caller for a call) is the notification's `userInfo`'s.
    public static func action(_ response: UNNotificationResponse) -> NotificationAction? {
        let userInfo = response.notification.request.content.userInfo
        guard let conversation = userInfo[UserNotifier.conversationKey] as? String else { return nil }
        switch response.actionIdentifier {
        case UserNotifier.replyAction:
            guard let input = response as? UNTextInputNotificationResponse else { return nil }
            let text = input.userText.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { return nil }
            if userInfo[UserNotifier.categoryKey] as? String == "groupMessage" {
                return .groupReply(conversation, text: text)
            }
            return .reply(conversation, text: text)
        case UserNotifier.answerAction:
            return .answer(conversation)
        case UserNotifier.declineAction:
            return .decline(conversation)
        default:
            return nil
        }
    }

    public func userNotificationCenter(
        _ center: UNUserNotificationCenter,
        didReceive response: UNNotificationResponse,
        withCompletionHandler completionHandler: @escaping () -> Void
    ) {
        if let action = Self.action(response) {
            // The completion waits for the action (a reply is sent first).
            onAction(action, completionHandler)
            return
        }
        if response.actionIdentifier == UNNotificationDefaultActionIdentifier,
           let route = Self.route(response.notification.request.content.userInfo) {
            DispatchQueue.main.async { self.onOpen(route) }
        }
        completionHandler()
    }

    public func userNotificationCenter(
        _ center: UNUserNotificationCenter,
        willPresent notification: UNNotification,
        withCompletionHandler completionHandler: @escaping (UNNotificationPresentationOptions) -> Void
    ) {
        completionHandler([.banner, .list, .sound])
    }
}
