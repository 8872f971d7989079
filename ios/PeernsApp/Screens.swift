import PeernsKit
import QuickLook
import SwiftUI
import UniformTypeIdentifiers

/// Contacts: share link, add by link or by scanning its QR code (a scanned group invite joins the
/// group), requests, trust levels.
struct ContactsScreen: View {
    @ObservedObject var node: NodeModel
    @StateObject var model: ContactsModel
    @StateObject var groups: GroupsModel
    @State private var link = ""
    @State private var scanning = false
    /// The contact whose fingerprint is being compared (`verifyMessage`).
    @State private var verifying: Contact?
    /// The contact the user asked to remove (confirmed first).
    @State private var removing: Contact?

    var body: some View {
        List {
            Section("Your share link") { Text(model.shareLink).font(.caption.monospaced()).textSelection(.enabled) }
            Section("Add a contact") {
                TextField("Paste a share link", text: $link)
                Button("Send request") { Task { if await model.add(link) { link = "" } } }
                Button("Scan QR") { scanning = true }
                if let error = model.error { Text(error).foregroundStyle(.red) }
                if let notice = model.notice { Text(notice) }
                if let error = groups.error { Text(error).foregroundStyle(.red) }
            }
            Section("Requests") {
                ForEach(model.incoming, id: \.fingerprint) { r in
                    // Borderless: in a List, a row's bordered-less buttons would all fire on one tap.
                    HStack {
                        Text("\(r.name) wants to add you" + (r.later ? " (later)" : ""))
                        Spacer()
                        Button("Accept") { Task { await model.accept(r.fingerprint) } }
                        if !r.later { Button("Later") { Task { await model.later(r.fingerprint) } } }
                        Button("Reject") { Task { await model.reject(r.fingerprint) } }
                    }
                    .buttonStyle(.borderless)
                }
                ForEach(model.outgoing, id: \.fingerprint) { r in Text("\(r.name): waiting for an answer") }
                ForEach(model.waiting, id: \.fingerprint) { w in
                    HStack {
                        Text(verbatim: "\(w.fingerprint.prefix(8)): not reachable yet, sent when you are both online")
                        Spacer()
                        Button("Cancel") { Task { await model.cancel(w.fingerprint) } }
                    }
                    .buttonStyle(.borderless)
                }
            }
            Section("Contacts") {
                ForEach(model.contacts, id: \.fingerprint) { c in
                    // Borderless buttons, not links: in a List a row's links all answer one tap.
                    VStack(alignment: .leading) {
                        Button("\(c.name)  \(c.short)") { node.path.append(.chat(c.fingerprint)) }.buttonStyle(.borderless)
                        HStack {
                            Button("Call") { node.path.append(.dial(c.fingerprint, video: false)) }
                            Button("Video call") { node.path.append(.dial(c.fingerprint, video: true)) }
                            Button(c.verified ? "Verified ✓" : "Verify") { verifying = c }
                            // A blocked contact's record is its block: the core refuses to remove it.
                            if c.trust != .blocked {
                                Button("Remove", role: .destructive) { removing = c }
                            }
                        }
                        .buttonStyle(.borderless)
                        Picker("Trust", selection: Binding(
                            get: { c.trust },
                            set: { trust in Task { await model.setTrust(c.fingerprint, trust) } }
                        )) {
                            ForEach(ContactsModel.trustChoices.indices, id: \.self) { i in
                                Text(ContactsModel.trustChoices[i].1).tag(ContactsModel.trustChoices[i].0)
                            }
                        }
                    }
                }
            }
        }
        .navigationTitle("Contacts")
        .task {
            // Subscribed first: a request that goes out while the list loads is not missed.
            let events = node.events()
            await model.refresh()
            guard let events else { return }
            for await event in events where model.concerns(event) { await model.refresh() }
        }
        .alert(
            verifying.map { "Verify \($0.name)" } ?? "",
            isPresented: Binding(get: { verifying != nil }, set: { if !$0 { verifying = nil } }),
            presenting: verifying
        ) { c in
            if c.verified {
                Button("Unmark verified") { Task { await model.setVerified(c.fingerprint, false) } }
            } else {
                Button("They match") { Task { await model.setVerified(c.fingerprint, true) } }
            }
            Button("Cancel", role: .cancel) {}
        } message: { c in
            Text(verifyMessage(c, ours: node.identity?.fingerprint))
        }
        .confirmationDialog(
            removing.map { "Remove \($0.name)? They are no longer a contact (no calls, no trust); your chat with them stays." } ?? "",
            isPresented: Binding(get: { removing != nil }, set: { if !$0 { removing = nil } }),
            titleVisibility: .visible,
            presenting: removing
        ) { c in
            Button("Remove", role: .destructive) { Task { await model.remove(c.fingerprint) } }
        }
        .sheet(isPresented: $scanning) {
            ScannerSheet { scanned in
                Task {
                    if let gid = await ScannedLink.use(scanned, contacts: model, groups: groups) { node.path.append(.group(gid)) }
                }
            }
        }
    }
}

/// Both fingerprints, to compare with what the contact's phone shows (its Settings): the same,
/// nobody is in between (Kotlin's `ContactsView.verify`).
private func verifyMessage(_ c: Contact, ours: String?) -> String {
    "\(c.name)'s fingerprint:\n\(grouped(c.fingerprint))\n\nYours:\n\(grouped(ours ?? ""))\n\n"
        + "Compare them with what \(c.name)'s phone shows, side by side or over a call. The same: nobody is in between."
}

/// A chat: messages (swipe ours to edit or delete), text and files, the calls with the contact
/// among them, and group invitations with Join.
struct ChatScreen: View {
    @ObservedObject var node: NodeModel
    @StateObject var model: ChatModel
    @State private var text = ""
    @State private var editing: ChatMessage?
    @State private var picking = false
    /// A received file shown by Quick Look.
    @State private var opening: URL?

    var body: some View {
        VStack {
            List(model.items) { item in
                switch item {
                case let .message(m):
                    messageRow(m)
                        .frame(maxWidth: .infinity, alignment: m.outgoing ? .trailing : .leading)
                        .swipeActions {
                            if m.outgoing && !m.deleted {
                                Button("Delete", role: .destructive) { Task { await model.delete(m.id) } }
                                if m.file == nil { Button("Edit") { editing = m; text = m.text } }
                            }
                        }
                case let .invitation(m, link):
                    if m.outgoing {
                        Text("Group invitation (sent)").frame(maxWidth: .infinity, alignment: .trailing)
                    } else {
                        HStack {
                            Text("Group invitation")
                            Spacer()
                            Button("Join") { Task { if let gid = await model.joinGroup(link) { node.path.append(.group(gid)) } } }
                        }
                        .buttonStyle(.borderless)
                    }
                case let .call(entry):
                    Label(describeCall(entry), systemImage: entry.kinds.video ? "video" : "phone")
                        .font(.caption)
                        .frame(maxWidth: .infinity, alignment: .center)
                }
            }
            if let warning = model.warning { Text(warning).font(.caption).foregroundStyle(.orange).padding(.horizontal) }
            if let error = model.error { Text(error).foregroundStyle(.red) }
            HStack {
                Button { picking = true } label: { Image(systemName: "paperclip") }
                TextField(editing == nil ? "Message" : "Edit", text: $text)
                Button(editing == nil ? "Send" : "Save") {
                    Task {
                        if let m = editing {
                            await model.edit(m.id, text)
                            editing = nil
                            text = ""
                        } else if await model.send(text) {
                            text = ""
                        }
                    }
                }
            }
            .padding()
        }
        .navigationTitle(model.title)
        .toolbar {
            ToolbarItemGroup(placement: .navigationBarTrailing) {
                NavigationLink(value: Route.dial(model.conversation, video: false)) { Image(systemName: "phone") }
                NavigationLink(value: Route.dial(model.conversation, video: true)) { Image(systemName: "video") }
            }
        }
        .fileImporter(isPresented: $picking, allowedContentTypes: [.item]) { result in
            guard case let .success(url) = result else { return }
            Task {
                let access = url.startAccessingSecurityScopedResource()
                defer { if access { url.stopAccessingSecurityScopedResource() } }
                await model.sendFile(url)
            }
        }
        .task {
            // Subscribed first: what arrives while the chat opens is not missed.
            let events = node.events()
            await model.open()
            // What changes the chat, as it happens (opened again: what arrives is read, as on Android).
            guard let events else { return }
            for await event in events {
                model.progress(event)
                model.warn(event)
                if model.concerns(event) { await model.open() }
            }
        }
        .onDisappear { model.close() }
        .quickLookPreview($opening)
    }

    /// A message; a file's with a progress bar while it moves, and Open once it is here.
    @ViewBuilder
    private func messageRow(_ m: ChatMessage) -> some View {
        let t = model.files[m.id]
        if m.file != nil, !m.deleted, let path = t?.path {
            HStack {
                Text(line(m, t))
                Button("Open") { opening = URL(fileURLWithPath: path) }.buttonStyle(.borderless)
            }
        } else if let file = m.file, !m.deleted, let t, t.state == .transferring, t.bytes > 0 {
            VStack(alignment: .leading) {
                Text(line(m, t))
                ProgressView(value: Double(percent(t.bytes, of: file.size)), total: 100)
            }
        } else {
            Text(line(m, t))
        }
    }

    /// A message's line; a file's with where its transfer stands (Kotlin's `describe`).
    private func line(_ m: ChatMessage, _ t: FileTransferInfo?) -> String {
        let body: String
        if m.deleted {
            body = "(deleted)"
        } else if let file = m.file {
            body = "📎 \(file.name) · \(fileSize(file.size))" + transferNote(m.outgoing, file.size, t)
        } else {
            body = m.text
        }
        return m.edited && !m.deleted ? "\(body) (edited)" : body
    }

    private func transferNote(_ outgoing: Bool, _ size: UInt64, _ t: FileTransferInfo?) -> String {
        guard let t else { return "" }
        switch t.state {
        case .done: return ""
        case .refused: return outgoing ? " · refused by them (too large?)" : " · not received (too large, or damaged)"
        case .transferring:
            if t.bytes == 0 { return outgoing ? " · sent when you are both online" : " · comes when you are both online" }
            return outgoing ? " · sending \(percent(t.bytes, of: size)) %" : " · receiving \(percent(t.bytes, of: size)) %"
        }
    }
}

/// Stadium mode: on/off, the way to the meeting room, and the people nearby, nearest first.
struct NearbyScreen: View {
    @ObservedObject var node: NodeModel
    @StateObject var nearby: NearbyModel

    var body: some View {
        List {
            Section {
                Toggle("Stadium mode", isOn: Binding(
                    get: { node.stadium },
                    set: { on in Task { await node.setStadium(on) } }
                ))
                Text("Shares your approximate position with people nearby, under a pseudonym, while it is on.")
                    .font(.caption)
                if let refused = node.stadiumRefused { Text(refused).foregroundStyle(.red) }
                if node.lowPower { Text(LowPowerNotice.nearby).font(.caption).italic() }
            }
            Section("Meeting room") {
                NavigationLink("Meeting room for everyone nearby", value: Route.meetingRoom)
                if node.stadium { Text(roomLine(nearby.inRoom)).font(.caption) }
            }
            Section("People nearby") {
                if let error = nearby.error { Text(error).foregroundStyle(.red) }
                ForEach(nearby.people, id: \.fingerprint) { p in
                    HStack {
                        Text(NearbyModel.distance(p)).monospacedDigit()
                        Text(p.name + (p.room != nil ? " (in the meeting room)" : ""))
                        Spacer()
                        Text(p.short).font(.caption.monospaced())
                    }
                }
            }
        }
        .navigationTitle("Nearby")
        .task(id: node.stadium) {
            while node.stadium && !Task.isCancelled {
                await nearby.refresh()
                try? await Task.sleep(nanoseconds: nearby.pollNanoseconds)
            }
        }
    }

    private func roomLine(_ count: Int) -> String {
        switch count {
        case 0: return "Nobody nearby is in the meeting room yet"
        case 1: return "1 person nearby is in the meeting room"
        default: return "\(count) people nearby are in the meeting room"
        }
    }
}

/// Settings: name, fingerprint and our share link's QR code, signaling server.
struct SettingsScreen: View {
    @StateObject var model: SettingsModel
    @ObservedObject var node: NodeModel

    var body: some View {
        Form {
            Section("Name") {
                TextField("Your name", text: $model.name)
                Button("Save name") { Task { await model.saveName() } }
            }
            Section("Identity fingerprint") {
                Text(model.identity?.short ?? "").font(.headline.monospaced())
                Text(grouped(model.identity?.fingerprint ?? "")).font(.caption.monospaced()).textSelection(.enabled)
            }
            if !model.shareLink.isEmpty {
                Section("Your share link as a QR code") {
                    QrCodeView(text: model.shareLink)
                    Text("Others scan it in Contacts to add you.").font(.caption)
                }
            }
            Section("Signaling server") {
                TextField("wss://…", text: $model.signalingUrl).textInputAutocapitalization(.never)
                Button("Save server") { model.saveSignalingUrl() }
                if model.restartNeeded { Text("Applies when PeerNS starts again.").font(.caption) }
            }
            Section("Calls in the background (VoIP push)") {
                Toggle("Use VoIP push", isOn: Binding(get: { node.voipPush }, set: { node.setVoipPush($0) }))
                Text("""
                    PeerNS has no push server: without one, calls ring only while PeerNS runs. \
                    With this on, a push relay you run can wake PeerNS for a call with this token.
                    """).font(.caption)
                if let token = node.voipToken {
                    Text(token).font(.caption.monospaced()).textSelection(.enabled)
                }
            }
            if let error = model.error { Text(error).foregroundStyle(.red) }
        }
        .navigationTitle("Settings")
    }
}
