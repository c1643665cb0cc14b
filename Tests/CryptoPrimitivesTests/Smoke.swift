import CryptoPrimitives
import Testing

@Test func smoke() {
    let h = BLAKE2s.hash([UInt8]())
    print(h.hex)
}
