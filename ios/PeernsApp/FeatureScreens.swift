import PeernsKit
import QuickLook
import SwiftUI
import UIKit
import UniformTypeIdentifiers

/// Groups: ours, create one, join by an invite link.
struct GroupsScreen: View {
    @ObservedObject var node: NodeModel
    @StateObject var model: GroupsModel
    @State private var name = ""
    @State private var link = ""

    /// The last invite notice, shown until the screen is left.
    @State private var notice: String?

    var body: some View {
        List {
            if let notice { Text(notice).foregroundStyle(.green) }
            Section("Groups") {
                ForEach(model.groups, id: \.id) { g in
                    NavigationLink("\(g.name) · \(g.members.count) members\(g.membership == .pending ? " (joining…)" : g.membership == .former ? " (left)" : "")", value: Route.group(g.id))
                }
            }
            Section("New group") {
                TextField("Name", text: $name)
                Button("Create") { Task { if let gid = await model.create(name) { name = ""; node.path.append(.group(gid)) } } }
            }
            Section("Join a group") {
                TextField("Paste an invite link", text: $link)
                Button("Join") { Task { if let gid = await model.join(link) { link = ""; node.path.append(.group(gid)) } } }
            }
            if let error = model.error { Text(error).foregroundStyle(.red) }
        }
        .navigationTitle("Groups")
        .task {
            // Subscribed first: an event during the refresh is not missed.
            let events = node.groupEvents()
            await model.refresh()
            guard let events else { return }
            for await event in events { await model.apply(event) }
        }
        .onReceive(model.$notice) { value in
            // Shown once: kept on the screen, cleared in the model.
            guard let value else { return }
            notice = value
            model.noticeShown()
        }
    }
}

/// A group's chat (text, and files: shared from a picked file, shown with their size, progress
/// while they come, Open once here and verified, or that they could not be verified), members
/// (admins invite contacts by a chat message, or anyone by an invite link as text and QR code,
/// and remove members), its call, leaving. A meeting room shares no files: no file button there.
struct GroupChatScreen: View {
    @ObservedObject var node: NodeModel
    @StateObject var model: GroupChatModel
    @StateObject var invites: GroupsModel
    @State private var text = ""
    @State private var invitee = ""
    @State private var picking = false
    /// The file shown in Quick Look.
    @State private var opening: URL?
    /// Leave was tapped: asked first (only an admin's invite brings us back).
    @State private var leaving = false
    @State private var deleting = false

    var body: some View {
        List {
            Section {
                NavigationLink("Group call", value: Route.groupCall(model.group))
                if model.router { Text("This phone routes the group now").font(.caption) }
                if model.membership == .pending { Text("Joining: waiting for a member to come online").font(.caption) }
            }
            Section("Messages") {
                ForEach(model.items) { item in
                    switch item {
                    case let .message(m):
                        Text("\(who(m.author)): \(m.text)")
                    case let .file(m, f, status):
                        fileRow(m, f, status)
                    }
                }
                TextField("Message", text: $text)
                Button("Send") { Task { if await model.send(text) { text = "" } } }
                if model.canShareFiles {
                    Button { picking = true } label: { Label("Share a file", systemImage: "paperclip") }
                }
                if let error = model.error { Text(error).foregroundStyle(.red) }
            }
            Section("Members") {
                ForEach(model.members, id: \.fingerprint) { m in
                    HStack {
                        Text(who(m.fingerprint) + (m.admin ? " (admin)" : "") + (m.online && m.fingerprint != node.identity?.fingerprint ? " · online" : ""))
                        Spacer()
                        if model.admin && m.fingerprint != node.identity?.fingerprint {
                            Button("Remove", role: .destructive) { Task { await model.remove(m.fingerprint) } }
                        }
                    }
                    // Only the button acts, not a tap anywhere on the row.
                    .buttonStyle(.borderless)
                }
            }
            if model.admin {
                Section("Invite a contact") {
                    ForEach(model.invitable, id: \.fingerprint) { c in
                        HStack {
                            Text(c.name.isEmpty ? c.short : c.name)
                            Spacer()
                            if model.invited.contains(c.fingerprint) {
                                Text("invited").font(.caption)
                            } else {
                                Button("Invite") { Task { await model.sendInvite(c.fingerprint) } }
                            }
                        }
                        .buttonStyle(.borderless)
                    }
                    if model.invitable.isEmpty { Text("No contacts to invite") }
                    if let notice = model.notice { Text(notice).font(.caption) }
                }
            }
            if model.admin {
                Section("Invite anyone by a link") {
                    TextField("Fingerprint of the person to invite", text: $invitee)
                    Button("Make an invite link") { Task { await invites.invite(model.group, invitee) } }
                    if let link = invites.inviteLink {
                        Text(link).font(.caption.monospaced()).textSelection(.enabled)
                        // The invited person can scan it in their Contacts screen instead of pasting it.
                        QrCodeView(text: link)
                    }
                    if let error = invites.error { Text(error).foregroundStyle(.red) }
                }
            }
            if model.canLeave { Button("Leave the group", role: .destructive) { leaving = true } }
            if model.canDelete { Button("Delete the group", role: .destructive) { deleting = true } }
        }
        .navigationTitle(model.name)
        .confirmationDialog(
            "Leave \(model.name)? You receive nothing sent afterwards, and cannot join this group again.",
            isPresented: $leaving,
            titleVisibility: .visible
        ) {
            Button("Leave", role: .destructive) { Task { if await model.leave(), !node.path.isEmpty { node.path.removeLast() } } }
        }
        .confirmationDialog(
            "Delete \(model.name) and its messages and files from this phone?\(model.canLeave ? " You leave it first, and cannot join it again." : "")",
            isPresented: $deleting,
            titleVisibility: .visible
        ) {
            Button("Delete", role: .destructive) { Task { if await model.delete(), !node.path.isEmpty { node.path.removeLast() } } }
        }
        .fileImporter(isPresented: $picking, allowedContentTypes: [.item]) { result in
            guard case let .success(url) = result else { return }
            Task {
                let access = url.startAccessingSecurityScopedResource()
                defer { if access { url.stopAccessingSecurityScopedResource() } }
                // The core copies it into the profile before this returns.
                await model.sendFile(url)
            }
        }
        .quickLookPreview($opening)
        .task {
            // Subscribed first: a message arriving while the chat opens is not missed.
            let events = node.groupEvents()
            await model.open()
            guard let events else { return }
            for await event in events {
                let refresh = model.apply(event)
                if let file = model.fileToLoad(event) { await model.loadFile(file) }
                if refresh { await model.refresh() }
            }
        }
        .onDisappear { model.close() }
    }

    /// A shared file: its line, a progress bar while it comes, Open once it is here.
    private func fileRow(_ m: GroupMessage, _ f: GroupFileRef, _ status: GroupFileStatus) -> some View {
        VStack(alignment: .leading) {
            HStack {
                Text("\(who(m.author)): \(describeGroupFile(f, status))")
                if status.done, let path = status.path {
                    Spacer()
                    Button("Open") { opening = URL(fileURLWithPath: path) }
                }
            }
            if status.state == .transferring && status.received > 0 {
                ProgressView(value: Double(percent(status.received, of: f.size)), total: 100)
            }
        }
    }

    private func who(_ fingerprint: String) -> String {
        fingerprint == node.identity?.fingerprint ? "me" : model.nameOf(fingerprint)
    }
}

/// The meeting room for everyone nearby: joined when opened (stadium mode must be on), its
/// messages, send, leave. Going back keeps us in the room; its history is reloaded when it opens.
struct MeetingRoomScreen: View {
    @ObservedObject var node: NodeModel
    @StateObject var model: MeetingRoomModel
    @State private var text = ""

    var body: some View {
        List {
            Section {
                Text("Everyone nearby in stadium mode can read and write here. Nothing of it is stored; it fades when the last person leaves.")
                    .font(.caption)
                if model.joining {
                    Text("Looking for the room nearby…")
                } else if model.room == nil {
                    Text("Not in the room (stadium mode must be on)")
                    Button("Join again") { Task { await model.join() } }
                } else if model.router {
                    Text("This phone routes the room now").font(.caption)
                }
            }
            Section("Messages") {
                ForEach(model.messages, id: \.id) { m in Text("\(who(m.author)): \(m.text)") }
                TextField("Message to everyone in the room", text: $text)
                Button("Send") { Task { if await model.send(text) { text = "" } } }
                if let error = model.error { Text(error).foregroundStyle(.red) }
            }
            Button("Leave the room", role: .destructive) { Task { if await model.leave(), !node.path.isEmpty { node.path.removeLast() } } }
        }
        .navigationTitle("Meeting room")
        .task {
            // Subscribed first: the stream keeps what arrives while joining.
            let events = node.groupEvents()
            if await model.refresh(), model.room == nil { await model.join() }
            guard let events else { return }
            for await event in events where model.apply(event) { await model.refresh() }
        }
    }

    private func who(_ fingerprint: String) -> String {
        fingerprint == node.identity?.fingerprint ? "me" : String(fingerprint.prefix(8))
    }
}

/// The baby monitor: arm this phone for chosen contacts, or watch a contact's armed phone.
struct MonitorScreen: View {
    @ObservedObject var node: NodeModel
    @StateObject var model: MonitorModel
    @State private var threshold = "-30"
    /// Why the phone was not armed (the camera or the microphone refused).
    @State private var armRefused: String?

    var body: some View {
        List {
            Section("This phone") {
                Text(model.armed.map { "armed (\($0 == "user" ? "front" : "back") camera)" } ?? "not armed")
                if node.tapHeld { Text(heldTapNotice).font(.caption) }
                if let watcher = model.streamingTo {
                    Text("watched by " + (model.contacts.first { $0.fingerprint == watcher }?.name ?? String(watcher.prefix(8))))
                }
                TextField("Sound alert at (dBFS; empty: no alert)", text: $threshold).keyboardType(.numbersAndPunctuation)
                HStack {
                    Button("Arm (back camera)") {
                        Task {
                            let alert = Float(threshold.trimmingCharacters(in: .whitespaces))
                            // A watcher gets the camera and the microphone, the sound alert
                            // listens to the microphone: ask for them first.
                            let allowed = await mediaAllowed(camera: true, media: model.media)
                            if allowed.camera {
                                armRefused = nil
                                await model.arm("environment", alertDbfs: alert)
                            } else {
                                // Armed without them, a watcher would see and hear nothing
                                // while this screen says armed (as on Android).
                                armRefused = "The baby monitor needs the camera and the microphone: allow them in Settings, then arm again."
                            }
                        }
                    }
                    Button("Disarm") { Task { await model.disarm() } }
                }
                .buttonStyle(.bordered)
                if let armRefused { Text(armRefused).foregroundStyle(.red) }
                if let error = model.error { Text(error).foregroundStyle(.red) }
            }
            Section("Contacts at Full access") {
                if model.contacts.isEmpty { Text("none: set a contact to Full access first") }
                ForEach(model.contacts, id: \.fingerprint) { c in
                    HStack {
                        Text(c.name)
                        Spacer()
                        Button(model.watchers.contains(c.fingerprint) ? "Disallow" : "Allow to watch") {
                            Task { if model.watchers.contains(c.fingerprint) { await model.disallow(c.fingerprint) } else { await model.allow(c.fingerprint) } }
                        }
                        Button(model.watching == c.fingerprint ? "Stop watching" : "Watch") {
                            Task {
                                if model.watching == c.fingerprint {
                                    await model.stopWatching()
                                } else {
                                    // The stream is a call, shown on the call screen (it does not ring).
                                    await model.watch(c.fingerprint)
                                    if model.watching == c.fingerprint { node.path.append(.call) }
                                }
                            }
                        }
                    }
                    .buttonStyle(.borderless)
                }
            }
            Section("Alerts") {
                ForEach(model.alerts, id: \.self) { a in
                    Text("\(a.at.formatted(date: .omitted, time: .standard))  \(String(a.fingerprint.prefix(8))) heard a sound (\(a.levelDbfs) dBFS)")
                }
            }
        }
        .navigationTitle("Baby monitor")
        .task {
            // Subscribed first: an event during the refresh is not missed.
            let events = node.events()
            await model.refresh()
            guard let events else { return }
            for await event in events { model.apply(event) }
        }
        // iOS lets no app use the camera in the background: an armed iPhone keeps this screen
        // shown, and the screen from locking.
        .onChange(of: model.armed) { armed in UIApplication.shared.isIdleTimerDisabled = armed != nil }
        // Armed, a notification's tap does not take the screen, nor does a call that rings.
        .runsOnScreen(node, model.armed != nil)
        // Back from a screen that covered it: armed, the screen stays on again.
        .onAppear { UIApplication.shared.isIdleTimerDisabled = model.armed != nil }
        .onDisappear {
            // The camera and the alert run only while this screen is shown: leaving it disarms,
            // so that a watcher is told the phone is not armed instead of being shown nothing.
            // Covered (the path still holds it: the call screen of a stream we watch) it stays.
            if node.path.contains(.monitor) { return }
            UIApplication.shared.isIdleTimerDisabled = false
            if model.armed != nil {
                Task { await model.disarm() }
            } else {
                model.close()
            }
        }
    }
}

/// Backup: choose folders, the device to back up into, the progress; in Low Power Mode a notice,
/// and a backup that waits for it to go off can be started now, one it paused continued now.
struct BackupScreen: View {
    @ObservedObject var node: NodeModel
    /// The node's (`NodeModel.backupModel`): a backup outlives its screen.
    @ObservedObject var model: BackupModel
    @State private var picking = false

    var body: some View {
        List {
            if node.lowPower { Text(LowPowerNotice.backup).font(.caption).italic() }
            Section("Folders") {
                ForEach(model.folders, id: \.self) { f in
                    HStack { Text(f.lastPathComponent); Spacer(); Button("Remove") { model.drop(f) } }
                        .buttonStyle(.borderless)
                }
                Button("Choose a folder") { picking = true }
            }
            Section("Back up into (it must serve \(BackupModel.into) and let this phone write there)") {
                ForEach(model.contacts, id: \.fingerprint) { c in
                    Button(c.name) { Task { await model.backup(to: c.fingerprint) } }.disabled(model.running)
                }
            }
            Section {
                if model.waitingForLowPower {
                    Text("waiting until Low Power Mode is off…")
                    Button("Start now") { model.startNow() }
                } else if model.pausedForLowPower {
                    Text("paused: Low Power Mode")
                    Button("Continue now") { model.startNow() }
                } else if let p = model.progress, model.running {
                    Text("file \(p.filesDone + 1) of \(p.filesTotal): \((p.path as NSString).lastPathComponent)")
                    if p.size > 0 { ProgressView(value: Double(p.bytes), total: Double(p.size)) }
                } else if let s = model.summary {
                    Text(s.line)
                }
                if let error = model.error { Text(error).foregroundStyle(.red) }
                if node.tapHeld { Text(heldTapNotice).font(.caption) }
            }
        }
        .navigationTitle("Backup")
        // Running, a notification's tap does not take the screen (its progress would be lost).
        .runsOnScreen(node, model.running)
        .fileImporter(isPresented: $picking, allowedContentTypes: [.folder]) { result in
            if case let .success(url) = result { model.choose(url) }
        }
        .task { await model.refresh() }
    }
}
