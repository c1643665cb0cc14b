/// 32 bytes as four 64-bit words: the inline storage of `Bytes32` and
/// `Nonce24`.
///
/// Not `SIMD32<UInt8>`: Swift 6.3.1 lays such a vector out in an async
/// function's frame at 16-byte alignment but stores it with 32-byte
/// alignment, overrunning the frame (swiftlang/swift#91639, fixed in 6.4).
/// Keys are held across `await` in DERP and Mesh, and that overrun corrupted
/// the heap in release builds. Plain words need only 8-byte alignment.
@usableFromInline
struct Words4: Hashable, Sendable {
    @usableFromInline var w0: UInt64 = 0
    @usableFromInline var w1: UInt64 = 0
    @usableFromInline var w2: UInt64 = 0
    @usableFromInline var w3: UInt64 = 0

    @inlinable init() {}

    @inlinable var isZero: Bool { (w0 | w1 | w2 | w3) == 0 }
}
