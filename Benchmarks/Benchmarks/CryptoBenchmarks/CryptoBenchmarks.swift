import Benchmark
import CryptoPrimitives
import RawSodium

/// Transport-sized AEAD and X25519, ours beside raw libsodium from C in the
/// same run. Names pair as "<work> · ours" / "<work> · libsodium" so
/// scripts/bench.sh can print the ratio (goal ≥ 0.95, issue 2).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )
    _ = raw_sodium_init()

    let packetSize = 1420
    let key = SecureRandom.bytes32()
    let rawKey = key.bytes

    // Seal: packets/s at 1420 bytes, in place, header room as on the wire.
    Benchmark("ChaCha20-Poly1305 seal 1420 B, k packets per s · ours") { benchmark in
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: packetSize + 16, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5a)
        var counter: UInt64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            counter &+= 1
            blackHole(
                try ChaCha20Poly1305.seal(
                    key: key, nonce: Nonce12(counter: counter), buffer: buffer, plaintextCount: packetSize))
        }
    }
    Benchmark("ChaCha20-Poly1305 seal 1420 B, k packets per s · libsodium") { benchmark in
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: packetSize + 16)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0x5a, count: packetSize + 16)
        var counter: UInt64 = 0
        benchmark.startMeasurement()
        rawKey.withUnsafeBufferPointer { k in
            for _ in benchmark.scaledIterations {
                counter &+= 1
                raw_chacha_seal(buffer, packetSize, k.baseAddress!, counter)
            }
        }
        blackHole(buffer.pointee)
    }

    // Open: a valid packet is sealed once per counter value up front so
    // each iteration authenticates and decrypts for real.
    let openBatch = 64
    func sealedPackets(_ count: Int) -> [[UInt8]] {
        (0..<count).map { i in
            ChaCha20Poly1305.seal(
                key: key, nonce: Nonce12(counter: UInt64(i)), plaintext: [UInt8](repeating: 0x5a, count: packetSize))
        }
    }
    Benchmark("ChaCha20-Poly1305 open 1420 B, k packets per s · ours") { benchmark in
        let packets = sealedPackets(openBatch)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: packetSize + 16, alignment: 16)
        defer { buffer.deallocate() }
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            packets[i].withUnsafeBytes { buffer.copyMemory(from: $0) }
            blackHole(try ChaCha20Poly1305.open(key: key, nonce: Nonce12(counter: UInt64(i)), buffer: buffer))
            i = (i + 1) % openBatch
        }
    }
    Benchmark("ChaCha20-Poly1305 open 1420 B, k packets per s · libsodium") { benchmark in
        let packets = sealedPackets(openBatch)
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: packetSize + 16)
        defer { buffer.deallocate() }
        var i = 0
        benchmark.startMeasurement()
        rawKey.withUnsafeBufferPointer { k in
            for _ in benchmark.scaledIterations {
                packets[i].withUnsafeBytes {
                    buffer.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: packetSize + 16)
                }
                precondition(raw_chacha_open(buffer, packetSize + 16, k.baseAddress!, UInt64(i)) == 0)
                i = (i + 1) % openBatch
            }
        }
    }

    // X25519: ops/s for one shared-secret computation.
    Benchmark("X25519 shared secret, ops per s · ours", configuration: .init(scalingFactor: .one)) { benchmark in
        let mine = X25519.PrivateKey()
        let peer = X25519.PrivateKey().publicKey
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try mine.sharedSecret(with: peer))
        }
    }
    Benchmark("X25519 shared secret, ops per s · libsodium", configuration: .init(scalingFactor: .one)) { benchmark in
        let scalar = SecureRandom.bytes(32)
        let point = X25519.PrivateKey().publicKey.raw.bytes
        var out = [UInt8](repeating: 0, count: 32)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            precondition(raw_x25519(&out, scalar, point) == 0)
        }
        blackHole(out)
    }
}
