import CryptoPrimitives
import Foundation
import SSHServer
import Testing

@Suite struct HostKeyTests {
    @Test func derivedKeyIsDeterministicAndOpenSSHReadsIt() throws {
        let a = HostKey(seed: TestServer.seed)
        let b = HostKey(seed: TestServer.seed)
        #expect(a.privateKeyFile == b.privateKeyFile)
        #expect(a.publicKeyLine != HostKey(seed: Bytes32()).publicKeyLine)
        // ssh-keygen, the real peer, derives the same public key from the file.
        let path = NSTemporaryDirectory() + "tether-hostkey-\(getpid())"
        try a.privateKeyFile.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        chmod(path, 0o600)
        let derived = try run(["ssh-keygen", "-y", "-f", path])
        #expect(derived.text.hasPrefix(a.publicKeyLine))
    }
}

@Suite struct AuthorizedKeysTests {
    @Test func parsesOptionsCommentsAndBlankLines() {
        let text = """
            # comment
            ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl plain

            command="echo hi there",no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG opts
            no-agent-forwarding ecdsa-sha2-nistp256 AAAAE2VjZHNh x
            garbage line
            """
        let keys = AuthorizedKeys(text: text)
        #expect(keys.entries.map(\.type) == ["ssh-ed25519", "ssh-ed25519", "ecdsa-sha2-nistp256"])
        #expect(keys.entries[1].base64.hasPrefix("AAAAC3NzaC1lZDI1NTE5AAAAIGGG"))
    }
}

@Suite struct SFTPSessionTests {
    private func packet(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
        let length = UInt32(body.count + 1)
        return [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type]
            + body
    }

    private func drain(_ session: SFTPSession) -> [UInt8] {
        var out: [UInt8] = []
        while session.pendingOutput > 0 {
            _ = session.withPendingOutput(upTo: 1 << 20) { chunk in
                out += chunk
                return Int32(chunk.count)
            }
        }
        return out
    }

    @Test func versionNegotiation() {
        let session = SFTPSession(home: "/")
        let ok = packet(1, [0, 0, 0, 3]).withUnsafeBytes { session.feed($0) }
        #expect(ok)
        let reply = drain(session)
        #expect(reply.count > 9)
        #expect(reply[4] == 2)  // SSH_FXP_VERSION
        #expect(Array(reply[5..<9]) == [0, 0, 0, 3])
    }

    @Test func requestsSplitAcrossChunksAreReassembled() {
        let session = SFTPSession(home: "/")
        let bytes = packet(1, [0, 0, 0, 3]) + packet(16, [0, 0, 0, 9, 0, 0, 0, 1, UInt8(ascii: "/")])
        for byte in bytes { #expect([byte].withUnsafeBytes { session.feed($0) }) }
        let reply = drain(session)
        // VERSION, then NAME (104) for request 9.
        let versionLength = Int(reply[3]) + 4
        #expect(reply[versionLength + 4] == 104)
        #expect(Array(reply[(versionLength + 5)..<(versionLength + 9)]) == [0, 0, 0, 9])
    }

    @Test func oversizedLengthIsAFramingError() {
        let session = SFTPSession(home: "/")
        #expect(![0x7f, 0, 0, 0, 1].withUnsafeBytes { session.feed($0) })
    }

    /// Truncated and random request bodies of every type: answered with a
    /// status or ignored, never a trap.
    @Test func hostileRequestsNeverTrap() {
        var rng = SplitMix(seed: 42)
        let session = SFTPSession(home: NSTemporaryDirectory())
        _ = packet(1, [0, 0, 0, 3]).withUnsafeBytes { session.feed($0) }
        for round in 0..<4000 {
            let type = UInt8(round % 24 == 23 ? 200 : round % 24)
            let body = (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(packet(type, body).withUnsafeBytes { session.feed($0) })
            _ = drain(session)
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// RFC 4254 §8 encoded terminal modes.
@Suite struct TerminalModesTests {
    private func entry(_ opcode: UInt8, _ value: UInt32) -> [UInt8] {
        [opcode, UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    @Test func decodesAndApplies() {
        // VINTR = ^T, VERASE disabled (255), ECHO off, IUTF8 off, CS7, 38400 baud out.
        let bytes = entry(1, 0x14) + entry(3, 255) + entry(53, 0) + entry(42, 0) + entry(90, 1) + entry(129, 38400) + [0]
        let modes = TerminalModes(encoded: bytes)
        #expect(modes.entries.count == 6)
        var settings = termios()
        settings.c_lflag = UInt32(ECHO | ICANON)
        settings.c_iflag = UInt32(IUTF8 | ICRNL)
        settings.c_cflag = UInt32(CS8)
        modes.apply(to: &settings)
        withUnsafeBytes(of: settings.c_cc) { cc in
            #expect(cc[Int(VINTR)] == 0x14)
            #expect(cc[Int(VERASE)] == 0)
        }
        #expect(settings.c_lflag == UInt32(ICANON))
        #expect(settings.c_iflag == UInt32(ICRNL))
        #expect(settings.c_cflag & UInt32(CSIZE) == UInt32(CS7))
        #expect(cfgetospeed(&settings) == speed_t(B38400))
    }

    @Test func stopsAtEndUndefinedOpcodesAndTruncation() {
        #expect(TerminalModes(encoded: entry(53, 1) + [0] + entry(50, 1)).entries.count == 1)
        #expect(TerminalModes(encoded: entry(53, 1) + [160, 1, 2, 3, 4] + entry(50, 1)).entries.count == 1)
        #expect(TerminalModes(encoded: entry(53, 1) + [50, 0, 0]).entries.count == 1)
        #expect(TerminalModes(encoded: [UInt8]()).entries.isEmpty)
        // An opcode Linux has no flag for (VSTATUS = 17) is kept but ignored.
        var settings = termios()
        TerminalModes(encoded: entry(17, 3)).apply(to: &settings)
        #expect(withUnsafeBytes(of: settings.c_cc) { $0.allSatisfy { $0 == 0 } })
    }

    @Test func neverTrapsOnRandomBytes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var settings = termios()
            TerminalModes(encoded: bytes).apply(to: &settings)
        }
    }
}
