// swift-tools-version: 6.1
// Tether: module layout follows ../shared/DESIGN.md ("Modules"). Dependencies
// point downward only. A module appears here with its first real code.
import PackageDescription

let package = Package(
    name: "Tether",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tether", targets: ["tether"]),
        .library(name: "CryptoPrimitives", targets: ["CryptoPrimitives"]),
        .library(name: "DERP", targets: ["DERP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C libraries from Debian; each is imported by exactly one Swift module.
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CLibSSH",
            pkgConfig: "libssh",
            providers: [.apt(["libssh-dev"])]
        ),

        .target(
            name: "CryptoPrimitives",
            dependencies: ["CSodium", "COpenSSL"]
        ),

        // DERP relay (Tailscale framing v2): a pure codec plus SwiftNIO
        // server, client and mesh.
        .target(
            name: "DERP",
            dependencies: [
                "CryptoPrimitives",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .target(
            name: "Mesh",
            dependencies: ["CryptoPrimitives"]
        ),

        .executableTarget(
            name: "tether",
            dependencies: [
                "CryptoPrimitives",
                "DERP",
                "Mesh",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .testTarget(
            name: "CryptoPrimitivesTests",
            dependencies: ["CryptoPrimitives"]
        ),
        .testTarget(
            name: "DERPTests",
            dependencies: [
                "DERP",
                "CryptoPrimitives",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MeshTests",
            dependencies: ["Mesh", "CryptoPrimitives"]
        ),
        // Runs the built `tether` binary against real peers (wg).
        .testTarget(
            name: "tetherTests",
            dependencies: ["tether"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
