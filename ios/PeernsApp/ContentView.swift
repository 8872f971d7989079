import PeernsKit
import SwiftUI

/// The home screen (identity, signaling state, connected peers) and the way to the others; or
/// why the node does not run.
struct ContentView: View {
    @ObservedObject var model: NodeModel

    var body: some View {
        if let reason = model.keyLost {
            KeyLostView(reason: reason) { Task { await model.startNewIdentity() } }
        } else {
            NavigationStack(path: $model.path) {
                List {
                    Section("Identity") {
                        LabeledContent("Name", value: model.identity?.displayName ?? "(no name set)")
                        Text(model.identity?.short ?? "…").font(.headline.monospaced())
                    }
                    Section("Signaling") { Text(describe(model.status.signaling)) }
                    Section("Connected peers") {
                        if model.status.peers.isEmpty { Text("none").foregroundStyle(.secondary) }
                        ForEach(model.status.peers.sorted(), id: \.self) { Text($0).font(.body.monospaced()) }
                    }
                    if model.node != nil {
                        Section {
                            NavigationLink("Contacts", value: Route.contacts)
                            NavigationLink("Groups", value: Route.groups)
                            NavigationLink("Nearby (stadium mode)", value: Route.nearby)
                            NavigationLink("Baby monitor", value: Route.monitor)
                            NavigationLink("Backup", value: Route.backup)
                            NavigationLink("Settings", value: Route.settings)
                        }
                    }
                }
                .navigationTitle("PeerNS")
                .navigationDestination(for: Route.self) { route in
                    if let node = model.node { destination(route, node) }
                }
            }
        }
    }

    @ViewBuilder
    private func destination(_ route: Route, _ node: PeernsNode) -> some View {
        switch route {
        case .contacts: ContactsScreen(node: model, model: ContactsModel(node: node), groups: GroupsModel(node: node))
        case let .chat(conversation): ChatScreen(node: model, model: ChatModel(node: node, conversation: conversation))
        case .nearby: NearbyScreen(node: model, nearby: NearbyModel(node: node, powerSaver: model.powerSaver))
        case .meetingRoom: MeetingRoomScreen(node: model, model: MeetingRoomModel(node: node))
        case .settings: SettingsScreen(model: SettingsModel(node: node), node: model)
        case .groups: GroupsScreen(node: model, model: GroupsModel(node: node))
        case let .group(gid):
            GroupChatScreen(node: model, model: GroupChatModel(node: node, group: gid), invites: GroupsModel(node: node))
        case let .groupCall(gid):
            GroupCallScreen(
                node: model, model: GroupCallModel(node: node, group: gid, media: model.ownSessionMedia(), powerSaver: model.powerSaver)
            )
        case .call:
            CallScreen(node: model, model: CallModel(node: node, media: model.oneOnOneMedia(), callKit: model.callKit, powerSaver: model.powerSaver))
        case let .dial(fingerprint, video):
            CallScreen(
                node: model, model: CallModel(node: node, media: model.oneOnOneMedia(), callKit: model.callKit, powerSaver: model.powerSaver),
                dial: fingerprint, dialVideo: video
            )
        case .monitor:
            MonitorScreen(node: model, model: MonitorModel(node: node, microphone: MicrophoneLevels(sessionTaken: model.callKitHoldsAudio), media: model.ownSessionMedia()))
        case .backup: BackupScreen(node: model, model: model.backupModel(node))
        }
    }
}

/// Tells `node` whether something runs on this pushed screen (`NodeModel.screenRuns`): a call,
/// a joined group call, a running backup, which leaving the screen would stop; a notification
/// tapped meanwhile waits until the user leaves it. The screen's depth in `node.path` is taken
/// when it first appears (a pushed screen appears once the path holds it).
struct RunsOnScreen: ViewModifier {
    let node: NodeModel
    let runs: Bool
    @State private var depth = 0
    /// This screen's own: what it said is cleared only by itself.
    @State private var token = UUID()

    func body(content: Content) -> some View {
        content
            .onAppear {
                let at = depth == 0 ? node.path.count : depth
                depth = at
                node.screenRuns(runs, at: at, token: token)
            }
            .onChange(of: runs) { now in node.screenRuns(now, at: depth, token: token) }
            // Gone without a change of the path (the node stopped and the screen with it), or
            // covered: it runs nothing on top; it says so again when it appears.
            .onDisappear { node.screenRuns(false, at: depth, token: token) }
    }
}

extension View {
    /// `RunsOnScreen`: whether something runs on this screen now.
    func runsOnScreen(_ node: NodeModel, _ runs: Bool) -> some View {
        modifier(RunsOnScreen(node: node, runs: runs))
    }
}

/// Said on a screen on which something runs while a tapped notification waits for the user to leave it.
let heldTapNotice = "The notification you tapped opens when you leave this screen."

/// The keychain lost the key of the identity: explain, offer a new one.
struct KeyLostView: View {
    let reason: String
    let startNew: () -> Void

    var body: some View {
        VStack(alignment: .leading, spacing: 16) {
            Text("Your identity cannot be opened").font(.title2)
            Text("""
                This iPhone's keychain no longer has the key that protects your PeerNS identity \
                (for example after the phone was restored from a backup onto another device). Without it, \
                your identity, contacts and messages on this phone cannot be opened.

                You can start again with a new identity: your contacts will need to add you again. \
                The old profile is kept on this phone (moved aside), not deleted.
                """)
            Text(reason).font(.caption.monospaced()).foregroundStyle(.secondary)
            Button("Start a new identity", action: startNew).buttonStyle(.borderedProminent)
        }
        .padding()
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
