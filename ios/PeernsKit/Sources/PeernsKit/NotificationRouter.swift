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
}

/// The `UNUserNotificationCenterDelegate`: routes a tap on one of `UserNotifier`'s notifications
/// to `onOpen` (on the main queue) and shows notifications while the app is in the foreground
/// too (the core posts none for the chat that is open). Install it before the app finishes
/// launching: `UNUserNotificationCenter.current().delegate = router` (the center keeps a weak
/// reference, so the app must keep the router).
public final class NotificationRouter: NSObject, UNUserNotificationCenterDelegate, @unchecked Sendable {
    private let onOpen: (NotificationRoute) -> Void

    public init(onOpen: @escaping (NotificationRoute) -> Void) {
        self.onOpen = onOpen
    }

    /// The route of a notification's `userInfo`, or nil when it is not one of ours.
    public static func route(_ userInfo: [AnyHashable: Any]) -> NotificationRoute? {
        if let conversation = userInfo[UserNotifier.conversationKey] as? String {
            if userInfo[UserNotifier.categoryKey] as? String == "groupMessage" {
                return .group(conversation)
            }
            return .chat(conversation)
        }
        if userInfo[UserNotifier.categoryKey] as? String == "contactRequest" {
            return .contacts
        }
        return nil
    }

    public func userNotificationCenter(
        _ center: UNUserNotificationCenter,
        didReceive response: UNNotificationResponse,
        withCompletionHandler completionHandler: @escaping () -> Void
    ) {
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
