import PeernsKit
import SwiftUI

/// The one screen: this device's identity, the signaling state and the connected peers.
struct ContentView: View {
    @ObservedObject var model: NodeModel

    var body: some View {
        NavigationStack {
            List {
                Section("Identity") {
                    LabeledContent("Name", value: model.identity?.displayName ?? "(no name set)")
                    VStack(alignment: .leading, spacing: 4) {
                        Text(model.identity?.short ?? "…").font(.headline.monospaced())
                        Text(model.identity?.fingerprint ?? "").font(.caption.monospaced())
                            .textSelection(.enabled)
                    }
                }
                Section("Signaling") {
                    Text(describe(model.status.signaling))
                }
                Section("Connected peers") {
                    if model.status.peers.isEmpty {
                        Text("none").foregroundStyle(.secondary)
                    }
                    ForEach(model.status.peers.sorted(), id: \.self) { peer in
                        Text(peer).font(.body.monospaced())
                    }
                }
            }
            .navigationTitle("PeerNS")
        }
    }
}

/// The signaling state in words.
func describe(_ state: SignalingState) -> String {
    switch state {
    case .connected:
        return "connected"
    case .connecting:
        return "connecting…"
    case let .reconnecting(attempt, nextInMs):
        return "reconnecting (attempt \(attempt), next in \(nextInMs / 1000) s)"
    case let .rateLimited(untilMs):
        return "rate-limited for \(untilMs / 1000) s"
    case let .offline(reason):
        return "offline: \(reason)"
    }
}
