import AVFoundation

/// Takes one encoded frame of ours: kind `audio` or `video`, pts in µs, keyframe flag, data, and
/// for audio the RFC 6464 level of the PCM it encodes (nil for video), by which a group call's
/// router tells who speaks. Kotlin's `FrameOut`.
public typealias FrameOut = (_ kind: String, _ ptsUs: UInt64, _ keyframe: Bool, _ data: Data, _ audioLevel: UInt8?) -> Void

/// The phone's side of a call's media, as the screen models see it: the microphone and camera,
/// encoded, and the decoders of what arrives. `PhoneCallMedia` on a phone; the models work
/// without one. Kotlin's `CallMedia` (tested there through the view models).
public protocol CallMedia: AnyObject {
    /// The core's requests for the video encoder (keyframe, target bitrate).
    var videoControl: EncoderControlListener { get }
    /// Starts the microphone (unless not `microphone`: we send no sound, e.g. watching a baby
    /// monitor) and the `camera` (`user` or `environment`) unless nil, into `out`; what arrives
    /// is played either way.
    func start(camera: String?, microphone: Bool, out: @escaping FrameOut)
    /// Stops sending sound (the microphone stays measured).
    func setMuted(_ muted: Bool)
    /// Switches the camera to `facing`, or off (nil).
    func setCamera(_ facing: String?)
    /// Decodes and plays a frame of `from` (a participant or a remote track); false when the
    /// picture it is for waits for a keyframe (its decoder started mid-stream): ask `from` for one.
    func play(from: String, kind: String, ptsUs: UInt64, keyframe: Bool, data: Data) -> Bool
    /// Stops capturing and playing.
    func stop()
    /// Tells `listener` how far our picture must be turned to stand upright (0, 90, 180 or 270),
    /// when the camera starts and whenever the phone turns, on the main thread; nil: no longer.
    func setRotationListener(_ listener: ((Int) -> Void)?)
    /// A 1:1 call's peer shares its screen, or no longer: its one picture shows the screen while
    /// it does, else its camera (`RemotePicture`).
    func setRemoteScreen(_ shared: Bool)
}

/// Which of the peer's video tracks a 1:1 call's one picture shows: its `screen` while it says it
/// shares its screen, from the screen's first frame (a peer that says so without sending one keeps
/// its camera shown), else its camera, the first other video track seen (a PeerNS peer's `video`;
/// a browser's tracks have random IDs and it never says it shares a screen). Kotlin's
/// `RemotePicture` (tested there). Not thread-safe.
struct RemotePicture {
    // The peer says it shares its screen.
    private var sharing = false
    // Its screen's frames came since: the picture shows them.
    private var showingScreen = false
    private var camera: String?

    /// The track shown now (nil: no camera seen yet, no screen).
    var shown: String? { showingScreen ? "screen" : camera }

    /// Whether `track`'s frame is drawn; the first camera track seen is taken as the camera. The
    /// screen's first frame while shared takes the picture over: `gone` is told the camera's track.
    mutating func shows(_ track: String, gone: (String) -> Void = { _ in }) -> Bool {
        if track == "screen" {
            guard sharing else { return false }
            if !showingScreen {
                showingScreen = true
                if let camera { gone(camera) }
            }
            return true
        }
        if showingScreen { return false }
        if camera == nil { camera = track }
        return track == camera
    }

    /// The peer shares its screen, or no longer; returns the track no longer shown (its screen,
    /// when it stops).
    mutating func screenShared(_ shared: Bool) -> String? {
        sharing = shared
        guard !shared, showingScreen else { return nil }
        showingScreen = false
        return "screen"
    }

    /// Forgets the camera seen (the media stopped); what the peer says it shares stays.
    mutating func clear() {
        camera = nil
        showingScreen = false
    }
}

public extension CallMedia {
    func setRemoteScreen(_ shared: Bool) {}

    /// Starts the microphone and the `camera` unless nil, into `out`.
    func start(camera: String?, out: @escaping FrameOut) {
        start(camera: camera, microphone: true, out: out)
    }

    func setRotationListener(_ listener: ((Int) -> Void)?) {}
}

/// Spaces the keyframe requests of pictures that wait for one: at most one a second per picture
/// (the sender's next keyframe comes within 2 s anyway). Kotlin's `KeyframeAsks`.
public final class KeyframeAsks: @unchecked Sendable {
    private let lock = NSLock()
    private var last: [String: UInt64] = [:]

    public init() {}

    /// Whether `picture` may ask now (`now` in ns of a monotonic clock); if so it is noted as asking.
    public func mayAsk(_ picture: String, now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if let before = last[picture], now &- before < 1_000_000_000 { return false }
        last[picture] = now
        return true
    }

    /// Forgets every picture (the call's media stopped).
    public func clear() {
        lock.lock()
        last.removeAll()
        lock.unlock()
    }
}

/// `CallMedia` on the phone: `VideoEncoder` (camera → H.264), `AudioEncoder` (microphone → Opus)
/// and, for what arrives, one decoder per sender and kind: a `VideoDecoder` onto the layer given
/// for that picture (`setPicture`; a 1:1 call's first sender onto `remoteLayer`) and an
/// `AudioDecoder` per sender, all played through one `AVAudioEngine` with voice processing (echo
/// cancellation), which the microphone is read from too. Android's `AndroidCallMedia`.
///
/// The audio session: a 1:1 call's belongs to CallKit, which activates it after the call is
/// answered or started (`callKitAudio`: the sound starts on `audioSessionActivated`, or at once
/// when it was activated before); a group call's is configured and activated here
/// (`.playAndRecord`, `.videoChat`, loudspeaker) and deactivated on `stop`.
/// Thread-safe: frames come on the library's delivery thread, the rest from the main thread.
/// Never compiled (ios/README.md).
public final class PhoneCallMedia: CallMedia, @unchecked Sendable {
    private let lock = NSLock()
    private let engine: AVAudioEngine
    private let output: CallAudioOutput
    // CallKit owns the session: a 1:1 call CallKit knows (under the lock; decided at `start`).
    private var callKitAudio: Bool
    private let callKitKnowsCall: () -> Bool
    private var sessionActive: Bool
    private var out: FrameOut?
    private var capturing = false
    // The microphone is ours to send (not when only watching a stream).
    private var recording = true
    // The session was activated here for playback only (a stream watched): deactivated on stop.
    private var playbackSession = false
    private var audioRunning = false
    private var video: VideoEncoder!
    private var audio: AudioEncoder!
    // Keyed "sender/kind"; pictures too.
    private var decoders: [String: FrameDecoder] = [:]
    private var pictures: [String: AVSampleBufferDisplayLayer] = [:]
    // Which of a 1:1 call's peer's tracks `remote` shows.
    private var remotePicture = RemotePicture()
    private var remote: AVSampleBufferDisplayLayer?
    // Main thread only: who hears our picture's rotation, and the camera's latest.
    private var rotationListener: ((Int) -> Void)?
    private var rotation: Int?
    private let onError: (String) -> Void
    private let sessionTaken: () -> Bool
    // Route changes, voice processing reconfigured, interruptions: set once in init.
    private var observers: [NSObjectProtocol] = []

    /// `callKitAudio`: CallKit owns the audio session (a 1:1 call), `audioActive`: whether it has
    /// activated it already; `callKitKnowsCall` (asked on the main thread at `start`): whether
    /// CallKit has the call at all: one it refused to ring (Do Not Disturb, a Focus, a blocked
    /// caller) never gets its session activated, so the session is ours then. `sessionTaken`:
    /// whether a CallKit call holds the audio session now (a 1:1 call answered while this media
    /// ran): stopping then leaves the session active. Errors of the capture go to `onError` (on
    /// any thread).
    public init(
        callKitAudio: Bool, audioActive: Bool = false, callKitKnowsCall: @escaping () -> Bool = { true },
        sessionTaken: @escaping () -> Bool = { false }, onError: @escaping (String) -> Void
    ) {
        self.callKitAudio = callKitAudio
        self.callKitKnowsCall = callKitKnowsCall
        self.sessionActive = audioActive
        self.sessionTaken = sessionTaken
        self.onError = onError
        let engine = AVAudioEngine()
        self.engine = engine
        output = CallAudioOutput(engine: engine)
        // Every stored property has its value now: the encoders' sinks may capture self.
        video = VideoEncoder { [weak self] pts, keyframe, data in self?.send("video", pts, keyframe, data, nil) }
        video.onError = { [weak self] message in self?.onError("camera: \(message)") }
        video.onRotation = { [weak self] degrees in
            self?.rotation = degrees
            self?.rotationListener?(degrees)
        }
        audio = AudioEncoder(engine: engine, sink: { [weak self] pts, data, level in
            self?.send("audio", pts, true, data, level)
        }, onLevel: { _ in })
        // The engine stops itself when its configuration changes (a Bluetooth or wired headset
        // comes or goes, voice processing reconfigures): the sound would stay silent.
        let center = NotificationCenter.default
        observers.append(center.addObserver(forName: .AVAudioEngineConfigurationChange, object: engine, queue: nil) { [weak self] _ in
            self?.restartAudio()
        })
        // A session of our own (a group call's, a watched stream's): an interruption (a phone
        // call) that ends gives the sound back. A 1:1 call's is CallKit's, which deactivates and
        // activates it again.
        observers.append(center.addObserver(forName: AVAudioSession.interruptionNotification, object: nil, queue: nil) { [weak self] note in
            guard let self, let raw = note.userInfo?[AVAudioSessionInterruptionTypeKey] as? UInt,
                  AVAudioSession.InterruptionType(rawValue: raw) == .ended else { return }
            let (own, recording) = self.locked { (!self.callKitAudio || self.playbackSession, self.recording) }
            guard own else { return }
            self.activateSession(recording: recording)
            self.restartAudio()
        })
    }

    deinit {
        observers.forEach { NotificationCenter.default.removeObserver($0) }
    }

    /// Starts the sound again if it ran (the engine stopped under it).
    private func restartAudio() {
        guard locked({ audioRunning }) else { return }
        stopAudio()
        startAudio()
    }

    /// Where a 1:1 call's received video is drawn (the call screen's layer), or nil while there is none.
    public var remoteLayer: AVSampleBufferDisplayLayer? {
        get { locked { remote } }
        set {
            locked {
                remote = newValue
                if let shown = remotePicture.shown { dropOneOnOne(shown) }
            }
        }
    }

    /// Draws `sender`'s `kind` (`video` or `screen`) on `layer` (a grid picture's). Its decoder
    /// starts again at the sender's next keyframe.
    public func setPicture(sender: String, kind: String, layer: AVSampleBufferDisplayLayer) {
        locked {
            let key = "\(sender)/\(kind)"
            decoders.removeValue(forKey: key)?.release()
            pictures[key] = layer
        }
    }

    /// No longer draws on `layer` (its view went). A layer given for the same picture since (a
    /// new view may come before the old one goes) is kept.
    public func removeLayer(_ layer: AVSampleBufferDisplayLayer) {
        locked {
            for (key, shown) in pictures where shown === layer {
                pictures.removeValue(forKey: key)
                decoders.removeValue(forKey: key)?.release()
            }
            if remote === layer {
                remote = nil
                if let shown = remotePicture.shown { dropOneOnOne(shown) }
            }
        }
    }

    public var videoControl: EncoderControlListener { video }

    /// The camera's capture session: our own preview shows it (`AVCaptureVideoPreviewLayer`).
    public var cameraSession: AVCaptureSession { video.session }

    public func start(camera: String?, microphone: Bool, out: @escaping FrameOut) {
        let known = callKitKnowsCall()
        // Playing only (watching a baby monitor), or a call CallKit refused: the session is ours.
        let (ownSession, startSound): (Bool, Bool) = locked {
            if !known { callKitAudio = false }
            let own = !callKitAudio || !microphone
            self.out = out
            capturing = true
            recording = microphone
            playbackSession = own && !microphone
            return (own, own || sessionActive)
        }
        if ownSession { activateSession(recording: microphone) }
        if startSound { startAudio() }
        setCamera(camera)
    }

    /// CallKit activated the call's audio session (`CallKitController.onAudioActivated`): the
    /// microphone and the sound may start now, never earlier.
    public func audioSessionActivated() {
        let startSound: Bool = locked {
            sessionActive = true
            return capturing
        }
        if startSound { startAudio() }
    }

    /// CallKit deactivated it (the call ended or another call took the audio).
    public func audioSessionDeactivated() {
        locked { sessionActive = false }
        stopAudio()
    }

    public func setMuted(_ muted: Bool) {
        audio.muted = muted
    }

    /// On the main thread; a camera already running tells `listener` its rotation at once.
    public func setRotationListener(_ listener: ((Int) -> Void)?) {
        rotationListener = listener
        if let listener, let rotation { listener(rotation) }
    }

    public func setCamera(_ facing: String?) {
        video.stop()
        rotation = nil
        guard let facing, locked({ capturing }) else { return }
        do { try video.start(facing: facing) } catch { onError("camera: \(error)") }
    }

    public func play(from: String, kind: String, ptsUs: UInt64, keyframe: Bool, data: Data) -> Bool {
        locked {
            let key = "\(from)/\(kind)"
            var decoder = decoders[key]
            if decoder == nil {
                if kind == "audio" {
                    // The engine is changed only while the sound runs, never while it starts or stops.
                    guard audioRunning else { return true }
                    decoder = try? output.decoder()
                } else if let layer = pictures[key] ?? oneOnOne(from, kind) {
                    decoder = VideoDecoder(layer: layer)
                }
                decoders[key] = decoder
            }
            guard let decoder else { return true }
            _ = decoder.frame(ptsUs: ptsUs, keyframe: keyframe, data: data)
            return (decoder as? VideoDecoder)?.started ?? true
        }
    }

    public func stop() {
        locked {
            out = nil
            capturing = false
        }
        video.stop()
        rotation = nil
        stopAudio()
        locked {
            decoders.values.forEach { $0.release() }
            decoders.removeAll()
            remotePicture.clear()
        }
        let (ownSession, ownCall) = locked { (!callKitAudio || playbackSession, !callKitAudio) }
        if ownSession && !(ownCall && sessionTaken()) {
            try? AVAudioSession.sharedInstance().setActive(false, options: .notifyOthersOnDeactivation)
        }
    }

    /// The 1:1 call's layer, if it shows `from`'s video now (`RemotePicture`; under the lock).
    private func oneOnOne(_ from: String, _ kind: String) -> AVSampleBufferDisplayLayer? {
        guard let remote, kind == "video" else { return nil }
        // The screen's first frame takes the layer from the camera, whose decoder goes.
        let shown = remotePicture.shows(from) { gone in dropOneOnOne(gone) }
        return shown ? remote : nil
    }

    /// Releases the decoder of the 1:1 call's `track` (under the lock): the layer no longer shows it.
    private func dropOneOnOne(_ track: String) {
        decoders.removeValue(forKey: "\(track)/video")?.release()
    }

    /// A screen no longer shared gives the layer back: the camera's decoder starts at its next
    /// keyframe (asked for when its first frame is not one).
    public func setRemoteScreen(_ shared: Bool) {
        locked {
            if let gone = remotePicture.screenShared(shared) { dropOneOnOne(gone) }
        }
    }

    private func send(_ kind: String, _ pts: UInt64, _ keyframe: Bool, _ data: Data, _ level: UInt8?) {
        locked { out }?(kind, pts, keyframe, data, level)
    }

    private func activateSession(recording: Bool = true) {
        do {
            let session = AVAudioSession.sharedInstance()
            if recording {
                try session.setCategory(.playAndRecord, mode: .videoChat, options: [.allowBluetooth, .defaultToSpeaker])
            } else {
                try session.setCategory(.playback, mode: .moviePlayback)
            }
            try session.setActive(true)
        } catch {
            onError("audio session: \(error)")
        }
    }

    private func startAudio() {
        // Under the lock: no decoder is attached to the engine while it starts (nothing in here
        // takes the lock again; the tap and the encoders only wait for it).
        locked {
            guard !audioRunning else { return }
            do {
                if recording {
                    // Echo cancellation: the engine's input hears what its output plays and takes it out.
                    try engine.inputNode.setVoiceProcessingEnabled(true)
                    try audio.start()
                } else {
                    // Playback only: the input node is never touched (no microphone, no prompt);
                    // the main mixer gives the engine its output before it starts.
                    _ = engine.mainMixerNode
                    try engine.start()
                }
                audioRunning = true
            } catch {
                onError("microphone: \(error)")
            }
        }
    }

    private func stopAudio() {
        // The sound's decoders are taken out under the lock, the engine stopped outside it: the
        // tap's callback may be waiting for the lock (`send`), and removing the tap waits for it.
        let stopping: (players: [FrameDecoder], recorded: Bool)? = locked {
            guard audioRunning else { return nil }
            audioRunning = false
            let keys = decoders.keys.filter { $0.hasSuffix("/audio") }
            return (keys.compactMap { decoders.removeValue(forKey: $0) }, recording)
        }
        guard let stopping else { return }
        stopping.players.forEach { $0.release() }
        if stopping.recorded { audio.stop() }
        engine.stop()
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

/// The microphone's sound level, in dBFS, about every 100 ms while started (Kotlin's `SoundLevels`).
public protocol SoundLevels: AnyObject {
    func start(onLevel: @escaping (Float) -> Void) throws
    func stop()
}

/// The microphone's levels for the baby monitor (Android's `MicrophoneLevels`): an `AudioEncoder`
/// that only measures (muted: no packet goes anywhere), in a recording session of its own
/// (`.measurement`: no automatic gain, so a threshold means the same all night). While it runs,
/// the `audio` background mode keeps the app running with the screen off.
public final class MicrophoneLevels: SoundLevels {
    private var encoder: AudioEncoder?
    private let sessionTaken: () -> Bool

    /// `sessionTaken`: whether a CallKit call holds the audio session now (stopping then leaves
    /// it active).
    public init(sessionTaken: @escaping () -> Bool = { false }) {
        self.sessionTaken = sessionTaken
    }

    public func start(onLevel: @escaping (Float) -> Void) throws {
        stop()
        let session = AVAudioSession.sharedInstance()
        try session.setCategory(.playAndRecord, mode: .measurement, options: [.mixWithOthers])
        try session.setActive(true)
        let encoder = AudioEncoder(sink: { _, _, _ in }, onLevel: onLevel)
        encoder.muted = true
        try encoder.start()
        self.encoder = encoder
    }

    public func stop() {
        guard let encoder else { return }
        encoder.stop()
        self.encoder = nil
        if !sessionTaken() { try? AVAudioSession.sharedInstance().setActive(false, options: .notifyOthersOnDeactivation) }
    }
}
