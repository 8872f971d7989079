import PeernsKit
import SwiftUI

@main
struct PeernsApp: App {
    @StateObject private var model = NodeModel()
    @Environment(\.scenePhase) private var scenePhase

    var body: some Scene {
        WindowGroup {
            ContentView(model: model)
                .task { await model.run() }
        }
        .onChange(of: scenePhase) { phase in
            // Discovery beats every 0.8 s in the foreground, every 5 s in the background.
            model.setAppActive(phase == .active)
        }
    }
}
