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
        .executableTarget(
            name: "NetstackBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "Netstack", package: "Tether"),
            ],
            path: "Benchmarks/NetstackBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
