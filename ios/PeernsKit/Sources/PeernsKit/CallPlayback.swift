import AVFoundation
import CoreMedia

/// One received stream's decoder: a sender's picture or sound (Android's `FrameDecoder`).
/// Called on the library's delivery thread, one frame at a time.
public protocol FrameDecoder: AnyObject {
    /// Decodes one frame; false when it was dropped (a picture waiting for its first keyframe).
    func frame(ptsUs: UInt64, keyframe: Bool, data: Data) -> Bool
    /// Stops and lets go of what it renders to.
    func release()
}

extension AnnexB {
    /// NAL unit types used here (ITU-T H.264 table 7-1).
    static let sps: UInt8 = 7
    static let pps: UInt8 = 8

    /// The NAL units of an Annex-B `stream`, without their start codes (`00 00 01` or
    /// `00 00 00 01`); Kotlin's `AnnexB.nalUnits`, tested there.
    static func nalUnits(_ stream: Data) -> [Data] {
        let bytes = [UInt8](stream)
        var starts: [(code: Int, payload: Int)] = []
        var i = 0
        while i + 2 < bytes.count {
            if bytes[i] == 0 && bytes[i + 1] == 0 && bytes[i + 2] == 1 {
                starts.append((i > 0 && bytes[i - 1] == 0 ? i - 1 : i, i + 3))
                i += 3
            } else {
                i += 1
            }
        }
        return starts.enumerated().map { n, s in
            let end = n + 1 < starts.count ? starts[n + 1].code : bytes.count
            return Data(bytes[s.payload..<max(s.payload, end)])
        }
    }

    /// The type of a NAL unit (without its start code).
    static func type(_ nal: Data) -> UInt8 { nal.first.map { $0 & 0x1f } ?? 0 }

    /// `nals` as AVCC: each behind its length in 4 bytes, big-endian.
    static func avcc(_ nals: [Data]) -> Data {
        var out = Data()
        for nal in nals {
            let n = UInt32(nal.count)
            out += Data([UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)])
            out += nal
        }
        return out
    }
}

/// H.264 Annex-B access units onto an `AVSampleBufferDisplayLayer`, which decodes them (on the
/// hardware) and shows each as soon as it arrives. Starts at the first keyframe that carries
/// SPS/PPS; frames before it are dropped (ask the sender for one). Android's `VideoDecoder`.
public final class VideoDecoder: FrameDecoder {
    private let layer: AVSampleBufferDisplayLayer
    private var format: CMVideoFormatDescription?

    public init(layer: AVSampleBufferDisplayLayer) {
        self.layer = layer
    }

    /// Whether a keyframe has started it (until then every frame is dropped).
    public var started: Bool { format != nil }

    public func frame(ptsUs: UInt64, keyframe: Bool, data: Data) -> Bool {
        // A failed layer, or one the system interrupted (the app was in the background), decodes
        // again only from a keyframe after a flush: wait for one (and so ask for it).
        if layer.status == .failed || layer.requiresFlushToResumeDecoding {
            layer.flush()
            format = nil
        }
        let nals = AnnexB.nalUnits(data)
        if keyframe, let sps = nals.first(where: { AnnexB.type($0) == AnnexB.sps }),
           let pps = nals.first(where: { AnnexB.type($0) == AnnexB.pps }) {
            // Every keyframe brings its parameter sets: a new size or profile takes effect here.
            format = Self.format(sps: sps, pps: pps) ?? format
        }
        guard let format else { return false }
        let picture = nals.filter { AnnexB.type($0) != AnnexB.sps && AnnexB.type($0) != AnnexB.pps }
        guard !picture.isEmpty, let sample = Self.sample(AnnexB.avcc(picture), format: format, ptsUs: ptsUs) else { return true }
        layer.enqueue(sample)
        return true
    }

    public func release() {
        layer.flushAndRemoveImage()
        format = nil
    }

    private static func format(sps: Data, pps: Data) -> CMVideoFormatDescription? {
        var made: CMVideoFormatDescription?
        let status = sps.withUnsafeBytes { s in
            pps.withUnsafeBytes { p -> OSStatus in
                let sets = [s.bindMemory(to: UInt8.self).baseAddress!, p.bindMemory(to: UInt8.self).baseAddress!]
                let sizes = [sps.count, pps.count]
                return CMVideoFormatDescriptionCreateFromH264ParameterSets(
                    allocator: kCFAllocatorDefault, parameterSetCount: 2, parameterSetPointers: sets,
                    parameterSetSizes: sizes, nalUnitHeaderLength: 4, formatDescriptionOut: &made
                )
            }
        }
        return status == noErr ? made : nil
    }

    /// One AVCC access unit as a sample shown at once (real time: no clock of ours to follow).
    private static func sample(_ avcc: Data, format: CMVideoFormatDescription, ptsUs: UInt64) -> CMSampleBuffer? {
        var block: CMBlockBuffer?
        guard CMBlockBufferCreateWithMemoryBlock(
            allocator: kCFAllocatorDefault, memoryBlock: nil, blockLength: avcc.count, blockAllocator: kCFAllocatorDefault,
            customBlockSource: nil, offsetToData: 0, dataLength: avcc.count, flags: 0, blockBufferOut: &block
        ) == kCMBlockBufferNoErr, let block else { return nil }
        let copied = avcc.withUnsafeBytes { bytes in
            CMBlockBufferReplaceDataBytes(with: bytes.baseAddress!, blockBuffer: block, offsetIntoDestination: 0, dataLength: avcc.count)
        }
        guard copied == kCMBlockBufferNoErr else { return nil }
        var timing = CMSampleTimingInfo(
            duration: .invalid, presentationTimeStamp: CMTime(value: CMTimeValue(ptsUs), timescale: 1_000_000), decodeTimeStamp: .invalid
        )
        var size = avcc.count
        var sample: CMSampleBuffer?
        guard CMSampleBufferCreateReady(
            allocator: kCFAllocatorDefault, dataBuffer: block, formatDescription: format, sampleCount: 1,
            sampleTimingEntryCount: 1, sampleTimingArray: &timing, sampleSizeEntryCount: 1, sampleSizeArray: &size,
            sampleBufferOut: &sample
        ) == noErr, let sample else { return nil }
        if let attachments = CMSampleBufferGetSampleAttachmentsArray(sample, createIfNecessary: true), CFArrayGetCount(attachments) > 0 {
            let first = unsafeBitCast(CFArrayGetValueAtIndex(attachments, 0), to: CFMutableDictionary.self)
            CFDictionarySetValue(
                first, Unmanaged.passUnretained(kCMSampleAttachmentKey_DisplayImmediately).toOpaque(),
                Unmanaged.passUnretained(kCFBooleanTrue).toOpaque()
            )
        }
        return sample
    }
}

/// Where a call's sound is played: the call's `AVAudioEngine` (the one the microphone is read
/// from, so that voice processing cancels the echo of what it plays), one player per sender,
/// mixed by the engine.
public final class CallAudioOutput {
    /// 48 kHz mono float: what each sender's Opus decodes to.
    static let pcm = AVAudioFormat(commonFormat: .pcmFormatFloat32, sampleRate: 48_000, channels: 1, interleaved: false)!
    let engine: AVAudioEngine

    public init(engine: AVAudioEngine) {
        self.engine = engine
    }

    /// A decoder for one sender's Opus packets, playing into this engine.
    public func decoder() throws -> AudioDecoder { try AudioDecoder(output: self) }
}

/// Opus packets (48 kHz mono) of one sender to the speaker: AVAudioConverter decodes each into
/// PCM, an `AVAudioPlayerNode` plays them in order. Never blocks the delivery thread; what is
/// queued beyond 200 ms is dropped, so a burst after a stall does not delay the sound for good.
/// Android's `AudioDecoder`.
public final class AudioDecoder: FrameDecoder {
    private static let samplesPerPacket: AVAudioFrameCount = 960
    private static let maxQueued = 10
    private let output: CallAudioOutput
    private let player = AVAudioPlayerNode()
    private let opus: AVAudioFormat
    private let converter: AVAudioConverter
    private let lock = NSLock()
    private var queued = 0

    init(output: CallAudioOutput) throws {
        var description = AudioStreamBasicDescription(
            mSampleRate: 48_000, mFormatID: kAudioFormatOpus, mFormatFlags: 0, mBytesPerPacket: 0,
            mFramesPerPacket: Self.samplesPerPacket, mBytesPerFrame: 0, mChannelsPerFrame: 1, mBitsPerChannel: 0, mReserved: 0
        )
        guard let opus = AVAudioFormat(streamDescription: &description),
              let converter = AVAudioConverter(from: opus, to: CallAudioOutput.pcm) else {
            throw PeernsError.Internal(msg: "no Opus decoder")
        }
        self.output = output
        self.opus = opus
        self.converter = converter
        output.engine.attach(player)
        output.engine.connect(player, to: output.engine.mainMixerNode, format: CallAudioOutput.pcm)
        if output.engine.isRunning { player.play() }
    }

    public func frame(ptsUs: UInt64, keyframe: Bool, data: Data) -> Bool {
        guard !data.isEmpty, let pcm = decode(data) else { return false }
        lock.lock()
        let full = queued >= Self.maxQueued
        if !full { queued += 1 }
        lock.unlock()
        if full { return false }
        if !player.isPlaying && output.engine.isRunning { player.play() }
        player.scheduleBuffer(pcm) { [weak self] in
            guard let self else { return }
            self.lock.lock()
            self.queued -= 1
            self.lock.unlock()
        }
        return true
    }

    public func release() {
        player.stop()
        output.engine.detach(player)
    }

    private func decode(_ packet: Data) -> AVAudioPCMBuffer? {
        let input = AVAudioCompressedBuffer(format: opus, packetCapacity: 1, maximumPacketSize: packet.count)
        packet.withUnsafeBytes { input.data.copyMemory(from: $0.baseAddress!, byteCount: packet.count) }
        input.byteLength = UInt32(packet.count)
        input.packetCount = 1
        input.packetDescriptions?[0] = AudioStreamPacketDescription(mStartOffset: 0, mVariableFramesInPacket: 0, mDataByteSize: UInt32(packet.count))
        // An Opus packet holds at most 120 ms.
        guard let pcm = AVAudioPCMBuffer(pcmFormat: CallAudioOutput.pcm, frameCapacity: 5_760) else { return nil }
        var given = false
        var error: NSError?
        let status = converter.convert(to: pcm, error: &error) { _, inputStatus in
            if given { inputStatus.pointee = .noDataNow; return nil }
            given = true
            inputStatus.pointee = .haveData
            return input
        }
        return (status == .haveData || status == .inputRanDry) && pcm.frameLength > 0 ? pcm : nil
    }
}
