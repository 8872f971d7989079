import PeernsKit
import SwiftUI
import UIKit

/// Made at launch, before any scene: a VoIP push launches the app in the background, where no
/// scene (and so no `@StateObject`) may ever be made, and PushKit delivers only to a registry
/// that exists by the end of `didFinishLaunching`; a notification tap that launched the app
/// needs the notification center's delegate set by then too. `NodeModel.init` does both.
@MainActor
final class AppDelegate: NSObject, UIApplicationDelegate {
    let model = NodeModel()

    func application(
        _ application: UIApplication,
        didFinishLaunchingWithOptions launchOptions: [UIApplication.LaunchOptionsKey: Any]? = nil
    ) -> Bool {
        _ = model // made with the delegate; named here so the order is plain
        return true
    }
}

@main
struct PeernsApp: App {
    @UIApplicationDelegateAdaptor(AppDelegate.self) private var delegate
    @Environment(\.scenePhase) private var scenePhase

    var body: some Scene {
        WindowGroup {
            ContentView(model: delegate.model)
                .task { await delegate.model.run() }
        }
        .onChange(of: scenePhase) { phase in
            // Discovery beats every 0.8 s in the foreground, every 10 s in the background.
            // `.inactive` (Control Center, the app switcher, a call's banner) changes nothing,
            // as on Android, where only a stopped activity is the background.
            switch phase {
            case .active: delegate.model.setAppActive(true)
            case .background: delegate.model.setAppActive(false)
            default: break
            }
        }
    }
}
