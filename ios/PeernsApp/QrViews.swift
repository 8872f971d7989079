import AVFoundation
import PeernsKit
import SwiftUI
import UIKit

/// A link as a QR code (one pixel a module, enlarged without smoothing so it stays sharp).
struct QrCodeView: View {
    let text: String

    var body: some View {
        if let image = QrImage.cgImage(text: text) {
            Image(decorative: image, scale: 1)
                .interpolation(.none)
                .resizable()
                .scaledToFit()
                .frame(maxWidth: 280, maxHeight: 280)
                .frame(maxWidth: .infinity)
        }
    }
}

/// The QR scanner as a sheet: the back camera's picture, read by `QrScanner`; `onLink` gets the
/// first PeerNS link (share link or group invite) after the sheet closes.
struct ScannerSheet: View {
    let onLink: (String) -> Void
    @Environment(\.dismiss) private var dismiss
    @State private var problem: String?

    var body: some View {
        NavigationStack {
            VStack(spacing: 16) {
                if let problem {
                    Text(problem).padding()
                } else {
                    CameraPreview(
                        onLink: { link in
                            dismiss()
                            onLink(link)
                        },
                        onProblem: { problem = $0 }
                    )
                    .aspectRatio(3.0 / 4.0, contentMode: .fit)
                }
                Text("Point the camera at a PeerNS QR code: a share link or a group invite.")
                    .font(.caption)
                    .padding(.horizontal)
                Spacer()
            }
            .navigationTitle("Scan a QR code")
            .toolbar {
                ToolbarItem(placement: .cancellationAction) { Button("Cancel") { dismiss() } }
            }
        }
    }
}

/// What the camera sees (`AVCaptureVideoPreviewLayer`), with a `QrScanner` reading it while the
/// view exists. Asks for the camera permission first.
struct CameraPreview: UIViewRepresentable {
    let onLink: (String) -> Void
    let onProblem: (String) -> Void

    final class PreviewView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
        var scanner: QrScanner?
    }

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        let scanner = QrScanner(onLink: onLink)
        view.scanner = scanner
        view.previewLayer.session = scanner.session
        view.previewLayer.videoGravity = .resizeAspectFill
        let onProblem = onProblem
        AVCaptureDevice.requestAccess(for: .video) { granted in
            DispatchQueue.main.async {
                guard granted else {
                    onProblem("Scanning needs the camera: allow it in the Settings app, or paste the link instead.")
                    return
                }
                do { try scanner.start() } catch { onProblem("Cannot scan: \(error)") }
            }
        }
        return view
    }

    func updateUIView(_ view: PreviewView, context: Context) {}

    static func dismantleUIView(_ view: PreviewView, coordinator: ()) {
        view.scanner?.stop()
        view.scanner = nil
    }
}
