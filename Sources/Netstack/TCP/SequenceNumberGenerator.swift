import CryptoPrimitives

/// Initial sequence numbers and timestamp offsets per RFC 9293 §3.4.1 and
/// RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secret),
/// where M ticks every 4 µs and F is keyed BLAKE2s. RFC 7323 §5.4 asks for a
/// per-connection random TSval offset; it comes from the same hash.
package struct SequenceNumberGenerator: Sendable {
    private let secret: Bytes32
    /// Tests pin the ISN (to exercise wrap-around); nil in real use.
    private let fixedISN: SeqNumber?

    package init(secret: Bytes32 = SecureRandom.bytes32()) {
        self.secret = secret
        fixedISN = nil
    }

    package init(fixedISN: SeqNumber) {
        secret = Bytes32.zero
        self.fixedISN = fixedISN
    }

    package func generate(local: SocketAddress, remote: SocketAddress, now: NetInstant) -> (
        isn: SeqNumber, timestampOffset: UInt32
    ) {
        var input: [UInt8] = []
        input.reserveCapacity(36)
        func add(_ e: SocketAddress) {
            switch e.address {
            case .v4(let a): withUnsafeBytes(of: a.value.bigEndian) { input.append(contentsOf: $0) }
            case .v6(let a):
                withUnsafeBytes(of: a.high.bigEndian) { input.append(contentsOf: $0) }
                withUnsafeBytes(of: a.low.bigEndian) { input.append(contentsOf: $0) }
            }
            input.append(UInt8(e.port >> 8))
            input.append(UInt8(e.port & 0xFF))
        }
        add(local)
        add(remote)
        let mac = BLAKE2s.mac16(key: secret, input).bytes
        let f = UInt32(mac[0]) << 24 | UInt32(mac[1]) << 16 | UInt32(mac[2]) << 8 | UInt32(mac[3])
        let offset = UInt32(mac[4]) << 24 | UInt32(mac[5]) << 16 | UInt32(mac[6]) << 8 | UInt32(mac[7])
        let m = UInt32(truncatingIfNeeded: now.nanoseconds / 4000)
        return (fixedISN ?? SeqNumber(f &+ m), offset)
    }
}
