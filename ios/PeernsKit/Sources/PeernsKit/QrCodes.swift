import AVFoundation
import CoreGraphics
import CoreMedia
import CoreVideo
import Foundation

// QR codes of share and invite links, drawn and read by the core (`qrEncode`, `qrDecode`): no
// barcode library, the same code as on Android. Mirrors `org.peerns.qr` (`PeernsLinks`,
// `QrFrames`, `QrPixels`) and `org.peerns.android` (`QrBitmap`, `QrScanner`), which are tested.

/// The links a PeerNS QR code carries: a contact's share link or a group's invite link.
public enum PeernsLinks {
    public static let contact = "peerns2:"
    public static let group = "peerns2-group:"

    public static func isContact(_ text: String) -> Bool { text.hasPrefix(contact) }
    public static func isGroup(_ text: String) -> Bool { text.hasPrefix(group) }
    public static func isPeerns(_ text: String) -> Bool { isContact(text) || isGroup(text) }
}

/// A camera frame's luma plane → the first PeerNS link in it; other QR content is ignored.
public enum QrFrames {
    /// `width` × `height` pixels, rows `rowStride` bytes apart; nil when no PeerNS link reads.
    public static func firstLink(width: Int, height: Int, rowStride: Int, luma: Data) -> String? {
        guard width > 0, height > 0, rowStride >= width else { return nil }
        guard let texts = try? qrDecode(width: UInt32(width), height: UInt32(height), rowStride: UInt32(rowStride), luma: luma) else {
            return nil
        }
        return texts.first(where: PeernsLinks.isPeerns)
    }

    /// Plane 0 (Y) of a bi-planar 4:2:0 frame (`kCVPixelFormatType_420YpCbCr8BiPlanarFullRange`).
    public static func firstLink(in frame: CVPixelBuffer) -> String? {
        CVPixelBufferLockBaseAddress(frame, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(frame, .readOnly) }
        guard CVPixelBufferGetPlaneCount(frame) >= 1, let base = CVPixelBufferGetBaseAddressOfPlane(frame, 0) else { return nil }
        let width = CVPixelBufferGetWidthOfPlane(frame, 0)
        let height = CVPixelBufferGetHeightOfPlane(frame, 0)
        let stride = CVPixelBufferGetBytesPerRowOfPlane(frame, 0)
        guard width > 0, height > 0 else { return nil }
        let luma = Data(bytes: base, count: stride * (height - 1) + width)
        return firstLink(width: width, height: height, rowStride: stride, luma: luma)
    }
}

/// QR codes as images: black on white, `scale` pixels a module, a quiet zone of 4 modules.
public enum QrImage {
    public static let quietZone = 4

    /// `code` as an 8-bit grey image, or nil for a malformed code or a scale below 1.
    public static func cgImage(_ code: QrCode, scale: Int) -> CGImage? {
        let modules = Int(code.size)
        guard scale >= 1, code.dark.count == modules * modules else { return nil }
        let side = (modules + 2 * quietZone) * scale
        var pixels = [UInt8](repeating: 255, count: side * side)
        for my in 0..<modules {
            for mx in 0..<modules where code.dark[my * modules + mx] {
                for y in (my + quietZone) * scale..<(my + quietZone + 1) * scale {
                    for x in (mx + quietZone) * scale..<(mx + quietZone + 1) * scale {
                        pixels[y * side + x] = 0
                    }
                }
            }
        }
        guard let provider = CGDataProvider(data: Data(pixels) as CFData) else { return nil }
        return CGImage(
            width: side, height: side, bitsPerComponent: 8, bitsPerPixel: 8, bytesPerRow: side,
            space: CGColorSpaceCreateDeviceGray(), bitmapInfo: CGBitmapInfo(rawValue: CGImageAlphaInfo.none.rawValue),
            provider: provider, decode: nil, shouldInterpolate: false, intent: .defaultIntent
        )
    }

    /// `text` (1 to 2048 bytes) as an image; nil when it cannot be a QR code.
    public static func cgImage(text: String, scale: Int = 1) -> CGImage? {
        guard let code = try? qrEncode(text: text) else { return nil }
        return cgImage(code, scale: scale)
    }
}

/// Reads a PeerNS link from the back camera: an `AVCaptureSession` into an
/// `AVCaptureVideoDataOutput` (`kCVPixelFormatType_420YpCbCr8BiPlanarFullRange`); plane 0 of a
/// frame every 0.25 s goes to `QrFrames`. The first link goes to `onLink` on the main queue, once,
/// and the camera stops. Needs the camera permission; `stop()` when the screen goes.
public final class QrScanner: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate, @unchecked Sendable {
    /// For the preview (`AVCaptureVideoPreviewLayer.session`).
    public let session = AVCaptureSession()
    private let onLink: (String) -> Void
    /// Frames arrive here.
    private let frames = DispatchQueue(label: "peerns.qr-scanner.frames")
    /// `startRunning`/`stopRunning` block: they run here.
    private let control = DispatchQueue(label: "peerns.qr-scanner.session")
    /// On `frames`.
    private var lastRead = Date.distantPast
    private var found = false
    /// On the main queue.
    private var stopped = false

    public init(onLink: @escaping (String) -> Void) {
        self.onLink = onLink
    }

    /// Starts the back camera (on the main queue).
    public func start() throws {
        guard !stopped else { return }
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back)
            ?? AVCaptureDevice.default(for: .video)
        else {
            throw PeernsError.InvalidInput(msg: "this phone has no camera")
        }
        let input = try AVCaptureDeviceInput(device: device)
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_420YpCbCr8BiPlanarFullRange]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: frames)
        session.beginConfiguration()
        if session.canSetSessionPreset(.hd1280x720) { session.sessionPreset = .hd1280x720 }
        guard session.canAddInput(input), session.canAddOutput(output) else {
            session.commitConfiguration()
            throw PeernsError.InvalidInput(msg: "the camera cannot be used now")
        }
        session.addInput(input)
        session.addOutput(output)
        session.commitConfiguration()
        control.async { [session] in session.startRunning() }
    }

    /// Stops the camera (on the main queue); nothing is reported after.
    public func stop() {
        stopped = true
        control.async { [session] in session.stopRunning() }
    }

    public func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        let now = Date()
        guard !found, now.timeIntervalSince(lastRead) >= 0.25, let frame = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        lastRead = now
        guard let link = QrFrames.firstLink(in: frame) else { return }
        found = true
        control.async { [session] in session.stopRunning() }
        DispatchQueue.main.async { [weak self] in
            guard let self, !self.stopped else { return }
            self.stopped = true
            self.onLink(link)
        }
    }
}
