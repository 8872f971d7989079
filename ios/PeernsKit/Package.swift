// swift-tools-version:5.9
// PeernsKit: the PeerNS core for iOS. ../build-xcframework.sh (macOS) produces the two generated
// inputs this package needs: Frameworks/peerns_ffiFFI.xcframework (the static library, its C
// header and module map) and Sources/PeernsKit/Generated/peerns_ffi.swift (the bindings).
import PackageDescription

let package = Package(
    name: "PeernsKit",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "PeernsKit", targets: ["PeernsKit"]),
    ],
    targets: [
        .binaryTarget(name: "peerns_ffiFFI", path: "Frameworks/peerns_ffiFFI.xcframework"),
        .target(name: "PeernsKit", dependencies: ["peerns_ffiFFI"]),
    ]
)
