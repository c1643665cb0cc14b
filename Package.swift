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
        .library(name: "SSHServer", targets: ["SSHServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
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

        .target(
            name: "SSHServer",
            dependencies: ["CLibSSH", "CryptoPrimitives"]
        ),

        .target(
            name: "Mesh",
            dependencies: ["CryptoPrimitives"]
        ),

        .executableTarget(
            name: "tether",
            dependencies: [
                "CryptoPrimitives",
                "SSHServer",
                "Mesh",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(
            name: "CryptoPrimitivesTests",
            dependencies: ["CryptoPrimitives"]
        ),
        .testTarget(
            name: "SSHServerTests",
            dependencies: ["SSHServer", "CryptoPrimitives"]
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
