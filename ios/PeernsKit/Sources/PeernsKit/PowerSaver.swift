import Combine
import Foundation

/// Follows Low Power Mode, the iOS battery saver: `isOn` is `ProcessInfo.isLowPowerModeEnabled`,
/// read at creation and again on each `NSProcessInfoPowerStateDidChange` (observed on the main
/// queue, so `isOn` changes there only). Mirrors `PowerSaver` of the Android app
/// (android/peerns-android), whose behaviour is tested; what the app does while it is on is in
/// ios/README.md ("Low Power Mode").
public final class PowerSaver: ObservableObject, @unchecked Sendable {
    @Published public private(set) var isOn: Bool
    private var observer: NSObjectProtocol?

    public init() {
        isOn = ProcessInfo.processInfo.isLowPowerModeEnabled
        observer = NotificationCenter.default.addObserver(
            forName: .NSProcessInfoPowerStateDidChange, object: nil, queue: .main
        ) { [weak self] _ in
            self?.isOn = ProcessInfo.processInfo.isLowPowerModeEnabled
        }
    }

    deinit {
        if let observer { NotificationCenter.default.removeObserver(observer) }
    }
}
