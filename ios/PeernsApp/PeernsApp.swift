import PeernsKit
import SwiftUI

@main
struct PeernsApp: App {
    @StateObject private var model = NodeModel()

    var body: some Scene {
        WindowGroup {
            ContentView(model: model)
                .task { await model.run() }
        }
    }
}
