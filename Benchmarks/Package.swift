// swift-tools-version: 6.1
// Benchmarks for Tether (ordo-one/package-benchmark), kept out of the main
// package so its build and tests stay lean. Each benchmark is paired with a
// reference measured in the same run; scripts/bench.sh prints the ratios.
import PackageDescription

let package = Package(
    name: "TetherBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Tether", path: "../"),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // The references: plain C calling libsodium directly, no Swift in the
        // loop, so "ours vs raw libsodium" measures only our wrapper's cost.
        .target(
            name: "RawSodium",
            linkerSettings: [.linkedLibrary("sodium")]
        ),
        .executableTarget(
            name: "CryptoBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "CryptoPrimitives", package: "Tether"),
                "RawSodium",
            ],
            path: "Benchmarks/CryptoBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // DERP relay vs socat and idle-client memory, measured on `tether
        // derp` from outside; a plain executable (scripts/bench.sh runs it).
        .executableTarget(
            name: "DERPBenchmarks",
            dependencies: [
                .product(name: "CryptoPrimitives", package: "Tether"),
                .product(name: "DERP", package: "Tether"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/DERPBenchmarks"
        ),
        // A plain executable: ours and the reference alternate in short
        // slices, so load changes hit both (scripts/bench.sh runs it).
        .executableTarget(
            name: "WireGuardBenchmarks",
            dependencies: [
                .product(name: "CryptoPrimitives", package: "Tether"),
                .product(name: "WireGuardCore", package: "Tether"),
                "RawSodium",
            ],
            path: "Benchmarks/WireGuardBenchmarks"
        ),
        // OpenSSH's sshd beside our server, both driven by the same OpenSSH client.
        .executableTarget(
            name: "SSHBenchmarks",
            // Our server runs as `tether ssh-server` (TETHER_BIN), a process of its own as sshd is.
            dependencies: [.product(name: "Benchmark", package: "package-benchmark")],
            path: "Benchmarks/SSHBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // A plain executable (scripts/bench.sh runs it): fixed-length runs and a
        // watchdog keep it bounded, and its scenarios need namespaces and threads.
        .executableTarget(
            name: "NetstackBenchmarks",
            dependencies: [.product(name: "Netstack", package: "Tether")],
            path: "Benchmarks/NetstackBenchmarks"
        ),
        // A load generator (1,000 simulated agents) rather than a
        // package-benchmark target: it measures the server process from outside.
        .executableTarget(
            name: "ControlPlaneBenchmarks",
            dependencies: [
                .product(name: "Agent", package: "Tether"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/ControlPlaneBenchmarks"
        ),
        // ControlPlaneBenchmarks' reference process: a minimal Swift
        // program linking Foundation, for memory and start time.
        .executableTarget(
            name: "ReferenceProcess",
            path: "Benchmarks/ReferenceProcess"
        ),
        // Two mesh nodes and a DERP relay in one process on loopback, beside
        // plain kernel TCP on the same link (a load generator, like the above).
        .executableTarget(
            name: "MeshBenchmarks",
            dependencies: [
                .product(name: "Mesh", package: "Tether"),
                .product(name: "DERP", package: "Tether"),
                .product(name: "Netstack", package: "Tether"),
                .product(name: "WireGuardCore", package: "Tether"),
                .product(name: "CryptoPrimitives", package: "Tether"),
            ],
            path: "Benchmarks/MeshBenchmarks"
        ),
    ],
    swiftLanguageModes: [.v6]
)
