import AVFoundation
import Combine
import PeernsKit
import SwiftUI
import UIKit

// The call screens: a 1:1 call and a group's call, and the view a received picture is drawn on.

/// A group's call: the pictures of those whose camera is on or who share the screen (`CallGrid`:
/// two to a row, speakers framed in green), who is in it, who speaks and whose media arrives;
/// join (the microphone's and camera's permissions asked first), leave, mute, camera.
struct GroupCallScreen: View {
    @ObservedObject var node: NodeModel
    @StateObject var model: GroupCallModel
    /// Join found the microphone refused: only Settings can allow it now (`MicrophoneRefused`).
    @State private var microphoneRefused = false

    var body: some View {
        List {
            Section {
                Text(phase)
                HStack {
                    Button(model.phase == .out ? "Join" : "Leave") {
                        Task {
                            if model.phase == .out {
                                let allowed = await mediaAllowed(camera: true, media: model.media)
                                microphoneRefused = !allowed.microphone
                                if allowed.microphone { await model.join(video: allowed.camera) }
                            } else {
                                await model.leave()
                            }
                        }
                    }
                    Button(model.muted ? "Unmute" : "Mute") { Task { await model.setMuted(!model.muted) } }
                    Button(model.cameraOff ? "Camera on" : "Camera off") { Task { await model.setCameraOff(!model.cameraOff) } }
                }
                .buttonStyle(.bordered)
                if let error = model.error ?? node.mediaError { Text(error).foregroundStyle(.red) }
                if microphoneRefused && model.phase == .out {
                    MicrophoneRefused(notice: "Joining needs the microphone: allow it in Settings, then join.")
                }
                if node.lowPower { Text(LowPowerNotice.call).font(.caption).italic() }
                if node.tapHeld { Text(heldTapNotice).font(.caption) }
            }
            if let media = model.media as? PhoneCallMedia, model.phase != .out, !model.cameraOff {
                Section("You") { OwnPreview(session: media.cameraSession).frame(width: 120, height: 160) }
            }
            if let media = model.media as? PhoneCallMedia, !model.pictures.isEmpty {
                Section {
                    LazyVGrid(columns: [GridItem(.flexible()), GridItem(.flexible())]) {
                        ForEach(model.pictures, id: \.self) { fp in
                            picture(fp, kind: model.pictureKind(fp), media: media)
                        }
                    }
                }
            }
            Section("In the call") {
                ForEach(model.participants, id: \.fingerprint) { p in
                    Text(String(p.fingerprint.prefix(8)) + marks(p))
                        .padding(4)
                        .overlay(
                            RoundedRectangle(cornerRadius: 6)
                                .stroke(model.speaking.contains(p.fingerprint) ? Color.green : Color.clear, lineWidth: 3)
                        )
                }
            }
        }
        .navigationTitle("Group call")
        .onAppear { node.clearMediaError() }
        // Back from Settings with the microphone allowed: the notice goes, Join works.
        .onReceive(NotificationCenter.default.publisher(for: UIApplication.didBecomeActiveNotification)) { _ in
            if microphoneRefused && microphoneGranted() { microphoneRefused = false }
        }
        // As on Android: the screen gone, we leave (we would stay in the call unheard, with
        // nothing on screen to leave it; a reopened screen has no handle of the call's media).
        // Nothing else is pushed over it while joined (`NodeModel.follow`); the app going to
        // the background is no disappearance.
        // Gone for good (its route left the path), not merely covered: leave.
        .onDisappear {
            if node.path.contains(.groupCall(model.group)) { return }
            Task { await model.close() }
        }
        // Joined, a notification's tap does not take the screen (our media would stop).
        .runsOnScreen(node, model.phase != .out)
        .task {
            // Subscribed first: a roster or phase change during the refresh is not missed.
            let events = node.groupEvents()
            await model.refresh()
            guard let events else { return }
            for await event in events { model.apply(event) }
        }
    }

    private var phase: String {
        switch model.phase {
        case .out: return "not in the call"
        case .waiting: return "waiting for the group's router"
        case .connecting: return "connecting…"
        case .connected:
            let label = model.direct ? "in the call, direct" : "in the call"
            return model.targetBps > 0 ? "\(label) (up to \(model.targetBps / 1000) kbit/s)" : label
        }
    }

    /// One place of the grid: `sender`'s `kind` on a layer of its own (a new one when the kind changes).
    private func picture(_ sender: String, kind: String, media: PhoneCallMedia) -> some View {
        VStack(spacing: 2) {
            PictureView(
                show: { media.setPicture(sender: sender, kind: kind, layer: $0) },
                hide: { media.removeLayer($0) },
                rotation: kind == "video" ? Int(model.participants.first { $0.fingerprint == sender }?.media.rotation ?? 0) : 0
            )
            .frame(height: model.pictures.count == 1 ? 240 : 140)
            Text(String(sender.prefix(8)) + (kind == "screen" ? " (screen)" : "")).font(.caption)
        }
        .padding(3)
        .overlay(
            RoundedRectangle(cornerRadius: 6)
                .stroke(model.speaking.contains(sender) ? Color.green : Color.clear, lineWidth: 3)
        )
        .id("\(sender)/\(kind)")
    }

    private func marks(_ p: CallParticipant) -> String {
        var m: [String] = []
        if model.speaking.contains(p.fingerprint) { m.append("speaking") }
        if p.media.muted { m.append("muted") }
        if p.media.cameraOff || !p.kinds.video { m.append("camera off") }
        if !p.connected { m.append("connecting") }
        if let n = model.frames[p.fingerprint] { m.append("\(n) frames") }
        return m.isEmpty ? "" : "  (\(m.joined(separator: ", ")))"
    }
}

/// The 1:1 call: answer or decline while it rings; mute, camera, hang up in the call, the
/// peer's picture. Once the media is up, the microphone's (and with video the camera's)
/// permission is asked and the media starts; leaving the screen stops it. A refused microphone
/// leaves the call without media and shows the way to Settings (`MicrophoneRefused`); back in the
/// app with it allowed, the media starts. With `dial`, it calls that contact first (with the
/// camera when `dialVideo`).
struct CallScreen: View {
    @ObservedObject var node: NodeModel
    @StateObject var model: CallModel
    var dial: String?
    var dialVideo = false
    /// The screen is shown (between `onAppear` and `onDisappear`; not while another covers it).
    @State private var shown = false
    /// The sound goes to the built-in receiver (the earpiece), as the audio session's route says.
    @State private var onReceiver = false
    /// The call whose media found the microphone refused (a refusal is that call's: the screen
    /// may show the next one); nil: none.
    @State private var microphoneRefusedIn: String?
    /// Bumped to start the media again (the microphone allowed in Settings meanwhile).
    @State private var mediaAttempt = 0

    var body: some View {
        VStack(spacing: 16) {
            Text(model.name.isEmpty ? "No call" : model.name).font(.title)
            Text(status)
            if model.remote.muted { Text("\(model.name) is muted").font(.caption) }
            if model.remote.cameraOff { Text("\(model.name)'s camera is off").font(.caption) }
            if let error = model.error ?? node.mediaError { Text(error).foregroundStyle(.red) }
            if microphoneRefused && model.status == "connected" {
                MicrophoneRefused(notice: "The microphone is not allowed. Allowing it in Settings may make iOS restart PeerNS, which ends this call.")
            }
            if node.lowPower { Text(LowPowerNotice.call).font(.caption).italic() }
            if node.tapHeld { Text(heldTapNotice).font(.caption) }
            if let media = model.media as? PhoneCallMedia, model.mediaUp, model.status == "connected" {
                PictureView(show: { media.remoteLayer = $0 }, hide: { media.removeLayer($0) }, rotation: Int(model.remote.rotation))
                    .frame(maxWidth: .infinity)
                    .frame(height: 240)
                    .overlay(alignment: .bottomTrailing) {
                        // Ourselves, small, while our camera sends.
                        if model.sendsVideo && !model.local.cameraOff {
                            OwnPreview(session: media.cameraSession).frame(width: 90, height: 120).padding(6)
                        }
                    }
            }
            if model.ringingHere {
                HStack {
                    Button("Answer") { Task { await model.accept(video: false) } }
                    Button("Answer with video") { Task { await model.accept(video: true) } }
                    Button("Decline", role: .destructive) { Task { await model.decline() } }
                }
            } else if model.call != nil && model.status != "ended" {
                HStack {
                    Button(model.local.muted ? "Unmute" : "Mute") { Task { await model.setMuted(!model.local.muted) } }
                    // An audio call has no camera to turn on or switch.
                    if model.sendsVideo {
                        Button(model.local.cameraOff ? "Camera on" : "Camera off") { Task { await model.setCameraOff(!model.local.cameraOff) } }
                        Button(model.local.backCamera ? "Front camera" : "Back camera") { Task { await model.switchCamera() } }
                    }
                    Button("Hang up", role: .destructive) { Task { await model.hangUp() } }
                }
            }
        }
        .buttonStyle(.bordered)
        .padding()
        .navigationTitle("Call")
        .onAppear {
            node.clearMediaError()
            shown = true
            onReceiver = Self.soundOnReceiver()
            // Set here too: a screen this one replaced may turn it off after this one appeared.
            UIDevice.current.isProximityMonitoringEnabled = atEar
        }
        // A call not ended: a notification's tap does not take the screen (its media would stop),
        // nor does Back (it would leave the call connected, silent and out of reach): Hang up.
        .runsOnScreen(node, runs)
        .navigationBarBackButtonHidden(runs)
        // Where the sound goes, as it changes (CallKit's session activated, a headset, the speaker).
        .onReceive(NotificationCenter.default.publisher(for: AVAudioSession.routeChangeNotification).receive(on: DispatchQueue.main)) { _ in
            onReceiver = Self.soundOnReceiver()
        }
        .onChange(of: atEar) { on in UIDevice.current.isProximityMonitoringEnabled = on }
        // Back from Settings with the microphone allowed: the media starts as below.
        .onReceive(NotificationCenter.default.publisher(for: UIApplication.didBecomeActiveNotification)) { _ in
            guard microphoneRefused, microphoneGranted() else { return }
            microphoneRefusedIn = nil
            mediaAttempt += 1
        }
        .task {
            // Here, not in the model's init: SwiftUI makes throwaway models on every render.
            model.followCallKitMute()
            // Subscribed first: an event during the dial or the refresh is not missed.
            let events = node.events()
            // The task runs again when the screen reappears (covered by another): dial once.
            if let fingerprint = dial, model.call == nil { await model.dial(fingerprint, video: dialVideo) } else { await model.refresh() }
            guard let events else { return }
            for await event in events { model.apply(event) }
        }
        // Once the call is connected and its media up, whichever comes last (or again once the
        // refused microphone is allowed); cancelled when the screen goes (startMedia then starts
        // nothing).
        .task(id: MediaStart(ready: model.mediaUp && model.status == "connected", attempt: mediaAttempt)) {
            guard model.mediaUp, model.status == "connected" else { return }
            // A call we send nothing in (watching a baby monitor) only plays: no permission asked.
            if model.sendsAudio {
                guard await mediaAllowed(camera: model.sendsVideo, media: model.media).microphone else {
                    // iOS asks only once: from now on only Settings can allow it.
                    if !Task.isCancelled { microphoneRefusedIn = model.call }
                    return
                }
            }
            await model.startMedia()
        }
        .onDisappear {
            shown = false
            UIDevice.current.isProximityMonitoringEnabled = false
            model.stopMedia()
        }
    }

    /// A call that is not over runs on this screen (leaving it stops its media).
    private var runs: Bool { model.call != nil && model.status != "ended" }

    /// The call shown found the microphone refused (its media not started).
    private var microphoneRefused: Bool { microphoneRefusedIn != nil && microphoneRefusedIn == model.call }

    /// When the media starts: once ready, and at each new attempt.
    private struct MediaStart: Hashable {
        let ready: Bool
        let attempt: Int
    }

    /// Held to the ear, the screen goes off (the proximity sensor) so that a cheek presses nothing
    /// (Hang up, Mute): a connected call with sound only (no video sent or offered) whose sound
    /// goes to the earpiece, while this screen is shown. CallKit's own call screen does this for
    /// itself, not for the app's (Android's `ProximityScreenLock`).
    private var atEar: Bool {
        shown && onReceiver && model.status == "connected" && !model.sendsVideo && !model.offeredVideo
    }

    /// Whether the audio session's current route plays through the built-in receiver.
    private static func soundOnReceiver() -> Bool {
        AVAudioSession.sharedInstance().currentRoute.outputs.contains { $0.portType == .builtInReceiver }
    }

    private var status: String {
        if model.call == nil { return "" }
        if model.ringingHere { return "is calling you (\(model.offeredVideo ? "video" : "audio"))" }
        if model.status == "ended" { return "call ended" + (model.reason.map { " (\($0))" } ?? "") }
        if model.status == "connected" && !model.mediaUp { return "connecting the media…" }
        return model.status
    }
}

/// Asks for the microphone's permission, and the camera's when `camera`, before a call's media
/// starts: whether each may be used (without `media` there is nothing to ask: both true). A
/// refused camera leaves the call with sound only.
@MainActor
func mediaAllowed(camera: Bool, media: CallMedia?) async -> (microphone: Bool, camera: Bool) {
    guard media != nil else { return (true, true) }
    let microphone = await microphoneAllowed()
    // Nothing starts without the microphone: no camera prompt for it.
    guard microphone else { return (false, false) }
    var cameraAllowed = false
    if camera { cameraAllowed = await AVCaptureDevice.requestAccess(for: .video) }
    return (microphone, cameraAllowed)
}

/// Asks for the microphone's permission (once; later the answer given): whether it may be used.
@MainActor
func microphoneAllowed() async -> Bool {
    await withCheckedContinuation { done in
        AVAudioSession.sharedInstance().requestRecordPermission { done.resume(returning: $0) }
    }
}

/// Whether the microphone is allowed now, without asking (`AVAudioSession.recordPermission`; the
/// app supports iOS 16, before `AVAudioApplication`).
func microphoneGranted() -> Bool {
    AVAudioSession.sharedInstance().recordPermission == .granted
}

/// The microphone was refused (iOS asks only once; after that only the Settings app can allow
/// it): `notice`, and a button that opens the app's page in Settings. The screens look again when
/// the app becomes active (Android's "Allow the microphone", which asks again or opens the
/// app's settings page).
struct MicrophoneRefused: View {
    let notice: String

    var body: some View {
        Text(notice).font(.caption)
        Button("Allow the microphone in Settings") {
            if let url = URL(string: UIApplication.openSettingsURLString) { UIApplication.shared.open(url) }
        }
    }
}

/// A received picture: a view with an `AVSampleBufferDisplayLayer`, given to `show` when the view
/// is made and to `hide` when it goes, turned clockwise by `rotation` (0, 90, 180 or 270: as the
/// sender says its camera's picture stands; the layer is laid out on its side for a quarter turn).
struct PictureView: UIViewRepresentable {
    let show: (AVSampleBufferDisplayLayer) -> Void
    let hide: (AVSampleBufferDisplayLayer) -> Void
    var rotation: Int = 0

    final class LayerView: UIView {
        let display = AVSampleBufferDisplayLayer()
        var hide: ((AVSampleBufferDisplayLayer) -> Void)?
        var rotation = 0 {
            didSet { if rotation != oldValue { setNeedsLayout() } }
        }

        override init(frame: CGRect) {
            super.init(frame: frame)
            display.videoGravity = .resizeAspect
            layer.addSublayer(display)
        }

        required init?(coder: NSCoder) { return nil }

        override func layoutSubviews() {
            super.layoutSubviews()
            let sideways = rotation % 180 != 0
            CATransaction.begin()
            CATransaction.setDisableActions(true)
            display.setAffineTransform(.identity)
            display.bounds = CGRect(
                x: 0, y: 0, width: sideways ? bounds.height : bounds.width, height: sideways ? bounds.width : bounds.height
            )
            display.position = CGPoint(x: bounds.midX, y: bounds.midY)
            display.setAffineTransform(CGAffineTransform(rotationAngle: CGFloat(rotation) * .pi / 180))
            CATransaction.commit()
        }
    }

    func makeUIView(context: Context) -> LayerView {
        let view = LayerView()
        view.backgroundColor = .black
        view.clipsToBounds = true
        view.rotation = rotation
        view.hide = hide
        show(view.display)
        return view
    }

    func updateUIView(_ view: LayerView, context: Context) {
        view.rotation = rotation
    }

    static func dismantleUIView(_ view: LayerView, coordinator: ()) {
        view.hide?(view.display)
    }
}

/// Our own camera, as it is sent: a preview layer on the encoder's capture session.
struct OwnPreview: UIViewRepresentable {
    let session: AVCaptureSession

    final class PreviewView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var preview: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
    }

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.backgroundColor = .black
        view.preview.videoGravity = .resizeAspectFill
        view.preview.session = session
        return view
    }

    func updateUIView(_ view: PreviewView, context: Context) {
        if view.preview.session !== session { view.preview.session = session }
    }
}
