import AVFoundation
import AudioToolbox
import CoreMedia
import UIKit
import VideoToolbox

/// Where an encoder's output goes: pts in µs, the keyframe flag, an H.264 Annex-B access unit or
/// an Opus packet (`GroupCall.pushFrame` / `CallMediaSource.pushFrame`).
public typealias EncodedFrameSink = (_ ptsUs: UInt64, _ keyframe: Bool, _ data: Data) -> Void

/// Where the microphone's Opus packets go: pts in µs, the packet, and the RFC 6464 level of the
/// PCM it encodes (0 loudest … 127 silence), which `GroupCall.pushFrame(…, audioLevel:)` and
/// `CallMediaSource.pushFrame(…, audioLevel:)` take: a group call's router tells who speaks by it.
public typealias AudioPacketSink = (_ ptsUs: UInt64, _ data: Data, _ audioLevel: UInt8) -> Void

/// How loud a block of PCM is, as RFC 6464 puts it: −dBov of its RMS, rounded, 0 loudest … 127
/// silence. The same measure as the core's `audioLevelOfPcm` (Android's `AudioLevel`, tested
/// against it), on float samples (full scale ±1) without converting them to 16 bits.
public enum AudioLevel {
    public static let silence: UInt8 = 127

    /// The level of a block whose RMS (full scale 1) is `rms`.
    public static func of(rms: Double) -> UInt8 {
        guard rms > 0 else { return silence }
        let level = (-20 * log10(rms)).rounded()
        return UInt8(min(127, max(0, level)))
    }

    /// The level of `count` float samples at `samples`.
    public static func of(_ samples: UnsafePointer<Float>, count: Int) -> UInt8 {
        guard count > 0 else { return silence }
        var sum = 0.0
        for i in 0..<count { sum += Double(samples[i]) * Double(samples[i]) }
        return of(rms: (sum / Double(count)).squareRoot())
    }
}

/// H.264 as VideoToolbox gives it (AVCC: 4-byte lengths, parameter sets in the format
/// description) turned into the Annex-B access units the core takes.
enum AnnexB {
    static let startCode = Data([0, 0, 0, 1])

    /// The AVCC NAL units of `avcc` behind start codes.
    static func fromAvcc(_ avcc: Data) -> Data {
        var out = Data()
        var at = avcc.startIndex
        while at + 4 <= avcc.endIndex {
            let length = avcc[at..<at + 4].reduce(0) { ($0 << 8) | Int($1) }
            at += 4
            guard at + length <= avcc.endIndex else { break }
            out += startCode + avcc[at..<at + length]
            at += length
        }
        return out
    }

    /// SPS and PPS of `format`, each behind a start code.
    static func parameterSets(_ format: CMFormatDescription) -> Data {
        var count = 0
        CMVideoFormatDescriptionGetH264ParameterSetAtIndex(format, parameterSetIndex: 0, parameterSetPointerOut: nil, parameterSetSizeOut: nil, parameterSetCountOut: &count, nalUnitHeaderLengthOut: nil)
        var out = Data()
        for i in 0..<count {
            var pointer: UnsafePointer<UInt8>?
            var size = 0
            if CMVideoFormatDescriptionGetH264ParameterSetAtIndex(format, parameterSetIndex: i, parameterSetPointerOut: &pointer, parameterSetSizeOut: &size, parameterSetCountOut: nil, nalUnitHeaderLengthOut: nil) == noErr, let pointer {
                out += startCode + Data(bytes: pointer, count: size)
            }
        }
        return out
    }
}

/// How far a frame of the camera must be turned clockwise to stand upright (0, 90, 180 or 270)
/// for the way the phone is held. The capture output gives the sensor's landscape frames
/// whatever the phone's orientation, and they are sent so (turning them would cost a pass per
/// frame); the receiver turns them by what we announce, as Android's `VideoRotation` does. The
/// mapping is the one WebRTC's iOS capturer uses (a front camera's landscape is the other way
/// round). Face up, face down and unknown say nothing (nil): the way it was last held stays.
public enum CameraRotation {
    public static func of(_ device: UIDeviceOrientation, front: Bool) -> Int? {
        switch device {
        case .portrait: return 90
        case .portraitUpsideDown: return 270
        case .landscapeLeft: return front ? 180 : 0
        case .landscapeRight: return front ? 0 : 180
        default: return nil
        }
    }
}

/// The camera, encoded: AVCaptureSession → VTCompressionSession (H.264 constrained baseline,
/// real time, a keyframe every 2 s) → Annex-B access units with SPS/PPS before each keyframe.
/// Mirrors Android's `VideoEncoder` and takes the core's requests as its `EncoderControlListener`.
public final class VideoEncoder: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate, EncoderControlListener, @unchecked Sendable {
    private let sink: EncodedFrameSink
    private let capture = AVCaptureSession()
    private let queue = DispatchQueue(label: "peerns.video-encoder")
    // The capture session's configuration, start and stop, in order.
    private let sessionQueue = DispatchQueue(label: "peerns.camera-session")
    private var compression: VTCompressionSession?
    private var keyframeWanted = false
    // Main thread only: the camera in use, our picture's rotation, the orientation observer.
    private var front = false
    private var held: UIDeviceOrientation = .portrait // until the phone says otherwise
    private var rotation: Int?
    private var orientationObserver: NSObjectProtocol?

    /// Told how far our picture must be turned clockwise (`CameraRotation`) when the camera
    /// starts and whenever the phone turns, on the main thread.
    public var onRotation: ((Int) -> Void)?

    public init(sink: @escaping EncodedFrameSink) {
        self.sink = sink
    }

    /// The capture session, for our own preview (an `AVCaptureVideoPreviewLayer` shows what it sends).
    public var session: AVCaptureSession { capture }

    /// Where a camera that cannot start says so (from the session's queue).
    public var onError: ((String) -> Void)?

    /// Starts the `user` (front) or `environment` (back) camera; needs the camera permission.
    /// The session is configured and started on a queue of its own (`startRunning` blocks for
    /// hundreds of ms: never on the main thread); what fails there goes to `onError`.
    public func start(facing: String) throws {
        let position: AVCaptureDevice.Position = facing == "user" ? .front : .back
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: position) else {
            throw PeernsError.InvalidInput(msg: "no \(facing) camera")
        }
        // Made first: refused without the camera permission, before anything is changed.
        let input = try AVCaptureDeviceInput(device: device)
        var made: VTCompressionSession?
        VTCompressionSessionCreate(allocator: nil, width: 640, height: 480, codecType: kCMVideoCodecType_H264, encoderSpecification: nil, imageBufferAttributes: nil, compressedDataAllocator: nil, outputCallback: nil, refcon: nil, compressionSessionOut: &made)
        guard let made else { throw PeernsError.Internal(msg: "no H.264 encoder") }
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_RealTime, value: kCFBooleanTrue)
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_ProfileLevel, value: kVTProfileLevel_H264_ConstrainedBaseline_AutoLevel)
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_AllowFrameReordering, value: kCFBooleanFalse)
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_MaxKeyFrameIntervalDuration, value: 2 as CFNumber)
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_AverageBitRate, value: 600_000 as CFNumber)
        queue.sync { compression = made }
        sessionQueue.async { [self] in
            capture.beginConfiguration()
            capture.sessionPreset = .vga640x480
            let output = AVCaptureVideoDataOutput()
            output.setSampleBufferDelegate(self, queue: queue)
            // A refused add raises an Objective-C exception: asked first.
            guard capture.canAddInput(input), capture.canAddOutput(output) else {
                capture.commitConfiguration()
                queue.sync {
                    VTCompressionSessionInvalidate(made)
                    if compression === made { compression = nil }
                }
                onError?("the camera cannot be used now")
                return
            }
            capture.addInput(input)
            capture.addOutput(output)
            capture.commitConfiguration()
            capture.startRunning()
        }
        watchOrientation(front: position == .front)
    }

    public func stop() {
        unwatchOrientation()
        sessionQueue.async { [self] in
            capture.stopRunning()
            capture.inputs.forEach(capture.removeInput)
            capture.outputs.forEach(capture.removeOutput)
        }
        queue.sync {
            if let compression { VTCompressionSessionInvalidate(compression) }
            compression = nil
        }
    }

    public func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let compression, let image = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        let pts = CMSampleBufferGetPresentationTimeStamp(sampleBuffer)
        let options = keyframeWanted ? [kVTEncodeFrameOptionKey_ForceKeyFrame: kCFBooleanTrue] as CFDictionary : nil
        keyframeWanted = false
        VTCompressionSessionEncodeFrame(compression, imageBuffer: image, presentationTimeStamp: pts, duration: .invalid, frameProperties: options, infoFlagsOut: nil) { [sink] status, _, encoded in
            guard status == noErr, let encoded, let block = CMSampleBufferGetDataBuffer(encoded), let format = CMSampleBufferGetFormatDescription(encoded) else { return }
            let attachments = CMSampleBufferGetSampleAttachmentsArray(encoded, createIfNecessary: false) as? [[CFString: Any]]
            let keyframe = !(attachments?.first?[kCMSampleAttachmentKey_NotSync] as? Bool ?? false)
            // Copied out: a block buffer need not be contiguous.
            let length = CMBlockBufferGetDataLength(block)
            var bytes = Data(count: length)
            let copied = bytes.withUnsafeMutableBytes { CMBlockBufferCopyDataBytes(block, atOffset: 0, dataLength: length, destination: $0.baseAddress!) }
            guard copied == kCMBlockBufferNoErr else { return }
            let frame = AnnexB.fromAvcc(bytes)
            let us = UInt64(max(0, CMTimeGetSeconds(CMSampleBufferGetPresentationTimeStamp(encoded)) * 1_000_000))
            sink(us, keyframe, keyframe ? AnnexB.parameterSets(format) + frame : frame)
        }
    }

    public func requestKeyframe() {
        queue.async { self.keyframeWanted = true }
    }

    private func watchOrientation(front: Bool) {
        DispatchQueue.main.async { [weak self] in
            guard let self else { return }
            self.front = front
            if self.orientationObserver == nil {
                UIDevice.current.beginGeneratingDeviceOrientationNotifications()
                self.orientationObserver = NotificationCenter.default.addObserver(
                    forName: UIDevice.orientationDidChangeNotification, object: nil, queue: .main
                ) { [weak self] _ in self?.turned(always: false) }
            }
            // A new camera (or the first): its rotation is told even when unchanged.
            self.turned(always: true)
        }
    }

    private func unwatchOrientation() {
        // Held strongly: the observer must go even if this encoder is dropped meanwhile.
        DispatchQueue.main.async { [self] in
            guard let observer = orientationObserver else { return }
            NotificationCenter.default.removeObserver(observer)
            UIDevice.current.endGeneratingDeviceOrientationNotifications()
            orientationObserver = nil
        }
    }

    /// On the main thread. Face up, face down and unknown keep the way it was last held (mapped
    /// for the camera in use now: a switched camera's landscape is the other way round).
    private func turned(always: Bool) {
        let now = UIDevice.current.orientation
        if CameraRotation.of(now, front: front) != nil { held = now }
        let degrees = CameraRotation.of(held, front: front) ?? 90
        if always || degrees != rotation {
            rotation = degrees
            onRotation?(degrees)
        }
    }

    public func targetBitrate(bps: UInt64) {
        queue.async {
            if let compression = self.compression { VTSessionSetProperty(compression, key: kVTCompressionPropertyKey_AverageBitRate, value: bps as CFNumber) }
        }
    }
}

/// The microphone, encoded: an AVAudioEngine input tap, converted to 48 kHz mono Opus by
/// AVAudioConverter, one packet per 20 ms to `sink` with the RFC 6464 level (`AudioLevel`) of the
/// tap buffer it came from; the RMS level in dBFS to `onLevel` per tap buffer (about every 100 ms).
/// Mirrors Android's `AudioEncoder`; needs the microphone permission and an audio session in the
/// `.playAndRecord` category with the `.voiceChat` or `.videoChat` mode. A call passes its own
/// `engine`, the one its sound is played through (`CallAudioOutput`), so that voice processing
/// cancels the echo of what the phone plays; the engine is started here if it is not running.
public final class AudioEncoder {
    private let engine: AVAudioEngine
    private let ownsEngine: Bool
    private let sink: AudioPacketSink
    private let onLevel: (Float) -> Void
    private var samples: UInt64 = 0
    /// While true the level is measured but nothing is sent.
    public var muted = false

    public init(engine: AVAudioEngine? = nil, sink: @escaping AudioPacketSink, onLevel: @escaping (Float) -> Void) {
        self.engine = engine ?? AVAudioEngine()
        self.ownsEngine = engine == nil
        self.sink = sink
        self.onLevel = onLevel
    }

    public func start() throws {
        let input = engine.inputNode.outputFormat(forBus: 0)
        var description = AudioStreamBasicDescription(mSampleRate: 48_000, mFormatID: kAudioFormatOpus, mFormatFlags: 0, mBytesPerPacket: 0, mFramesPerPacket: 960, mBytesPerFrame: 0, mChannelsPerFrame: 1, mBitsPerChannel: 0, mReserved: 0)
        guard let opus = AVAudioFormat(streamDescription: &description), let converter = AVAudioConverter(from: input, to: opus) else {
            throw PeernsError.Internal(msg: "no Opus encoder")
        }
        converter.bitRate = 32_000
        engine.inputNode.installTap(onBus: 0, bufferSize: AVAudioFrameCount(input.sampleRate / 10), format: input) { [weak self] buffer, _ in
            self?.encode(buffer, with: converter, into: opus)
        }
        if !engine.isRunning {
            do {
                try engine.start()
            } catch {
                // A tap left installed would make the next start's installTap raise.
                engine.inputNode.removeTap(onBus: 0)
                throw error
            }
        }
    }

    /// Stops reading the microphone (and the engine, unless it is the call's).
    public func stop() {
        engine.inputNode.removeTap(onBus: 0)
        if ownsEngine { engine.stop() }
    }

    private func encode(_ pcm: AVAudioPCMBuffer, with converter: AVAudioConverter, into opus: AVAudioFormat) {
        // The block's level: in dBFS for the baby monitor, and as RFC 6464 on each of its packets.
        var level = AudioLevel.silence
        if let channel = pcm.floatChannelData?[0], pcm.frameLength > 0 {
            let sum = (0..<Int(pcm.frameLength)).reduce(Float(0)) { $0 + channel[$1] * channel[$1] }
            let rms = (sum / Float(pcm.frameLength)).squareRoot()
            onLevel(rms > 0 ? max(-120, 20 * log10(rms)) : -120)
            level = AudioLevel.of(rms: Double(rms))
        }
        var given = false
        while true {
            let out = AVAudioCompressedBuffer(format: opus, packetCapacity: 1, maximumPacketSize: converter.maximumOutputPacketSize)
            var error: NSError?
            let status = converter.convert(to: out, error: &error) { _, inputStatus in
                if given { inputStatus.pointee = .noDataNow; return nil }
                given = true
                inputStatus.pointee = .haveData
                return pcm
            }
            guard status == .haveData, out.packetCount > 0, let description = out.packetDescriptions?[0] else { return }
            let packet = Data(bytes: out.data + Int(description.mStartOffset), count: Int(description.mDataByteSize))
            if !muted { sink(samples * 1_000_000 / 48_000, packet, level) }
            samples += 960
        }
    }
}
