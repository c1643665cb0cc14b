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
        .library(name: "WireGuardCore", targets: ["WireGuardCore"]),
        .library(name: "Netstack", targets: ["Netstack"]),
        .library(name: "DERP", targets: ["DERP"]),
        .library(name: "Mesh", targets: ["Mesh"]),
        .library(name: "SSHServer", targets: ["SSHServer"]),
        .library(name: "Agent", targets: ["Agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
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
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
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

        .target(
            name: "WireGuardCore",
            dependencies: ["CryptoPrimitives"]
        ),

        .target(
            name: "Netstack",
            dependencies: ["CryptoPrimitives"]
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
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Linux system calls for the WireGuard device (recvmmsg/sendmmsg,
        // TUNSETIFF); imported only by Mesh.
        .target(name: "CMeshLinux"),
        .target(
            name: "Mesh",
            dependencies: [
                "WireGuardCore", "CryptoPrimitives", "CMeshLinux", "Netstack", "DERP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),

        // Test-only processes for the Mesh namespace scenarios (node, DERP
        // relay, STUN server): MeshTests runs it from the products folder.
        .executableTarget(
            name: "MeshLab",
            dependencies: [
                "Mesh", "DERP", "WireGuardCore", "CryptoPrimitives", "Netstack",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .target(
            name: "SSHServer",
            dependencies: ["CLibSSH", "CryptoPrimitives"]
        ),

        // The agent, and (Sources/Agent/Protocol) the agent <-> control plane
        // messages and their JSON codec, which ControlPlane imports from here.
        .target(
            name: "Agent",
            dependencies: [
                "CryptoPrimitives", "WireGuardCore", "Netstack", "DERP", "Mesh", "SSHServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),

        .target(
            name: "ControlPlane",
            dependencies: [
                "Agent", "CZlib",
                "CryptoPrimitives", "WireGuardCore", "Netstack", "DERP", "Mesh",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        .executableTarget(
            name: "tether",
            dependencies: [
                "CryptoPrimitives",
                "WireGuardCore",
                "Mesh",
                "DERP",
                "SSHServer",
                "Agent",
                "ControlPlane",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            // The control plane serves this very binary to workspaces
            // (init.sh), which have no Swift toolchain: the Swift runtime
            // and Foundation are linked in, so the binary needs only the C
            // libraries of ../shared/DESIGN.md. Foundation's static archive
            // names its C parts itself only to modules built against
            // swift_static, so they are listed here. `-z now` binds every
            // symbol at start (full RELRO), so no lazy lookup faults symbol
            // tables back in after the agent trims its resident set.
            // `--strip-debug` keeps the symbol table (backtraces, perf) but
            // not DWARF: every workspace downloads this file at start, and
            // the debug sections were a third of its 164 MB.
            linkerSettings: [
                .unsafeFlags(["-static-stdlib", "-Xlinker", "-z", "-Xlinker", "now", "-Xlinker", "--strip-debug"]),
                .linkedLibrary("CoreFoundation"),
                .linkedLibrary("_FoundationICU"),
                .linkedLibrary("_FoundationCollections"),
                .linkedLibrary("_FoundationCShims"),
            ]
        ),

        .testTarget(
            name: "CryptoPrimitivesTests",
            dependencies: ["CryptoPrimitives"]
        ),
        .testTarget(
            name: "WireGuardCoreTests",
            dependencies: ["WireGuardCore", "CryptoPrimitives"]
        ),
        .testTarget(
            name: "NetstackTests",
            dependencies: ["Netstack"]
        ),
        .testTarget(
            name: "DERPTests",
            dependencies: [
                "DERP",
                "CryptoPrimitives",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MeshTests",
            dependencies: [
                "Mesh", "WireGuardCore", "CryptoPrimitives", "Netstack", "DERP",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "SSHServerTests",
            dependencies: ["SSHServer", "CryptoPrimitives"]
        ),
        .testTarget(
            name: "AgentTests",
            dependencies: ["Agent"]
        ),
        // Starts real `tether server` and `tether agent` processes on loopback.
        .testTarget(
            name: "ControlPlaneTests",
            dependencies: [
                "Agent", "DERP", "CryptoPrimitives",
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Runs the built `tether` binary against real peers (wg). Like
        // ControlPlaneTests it runs the binary, so it does not depend on the
        // `tether` target: a dependency would link that target's objects and
        // its static-runtime linker settings into the test bundle, which
        // loads the shared runtime. `swift build --build-tests` builds both.
        .testTarget(
            name: "tetherTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
