import CryptoPrimitives
import Testing

/// BLAKE2s (RFC 7693; the reference implementation's blake2s-kat.txt and
/// keyed KAT), keyed BLAKE2s with 16-byte output, HMAC-BLAKE2s, and
/// wireguard-go's HKDF vectors (device/kdf_test.go).
@Suite struct HashTests {
    static let kat255 = (0..<255).map { UInt8($0) }
    static let katKey = (0..<32).map { UInt8($0) }

    @Test func blake2sUnkeyedKAT() {
        #expect(BLAKE2s.hash([UInt8]()).hex == "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9")
        #expect(BLAKE2s.hash(Self.kat255).hex == "f03f5789d3336b80d002d59fdf918bdb775b00956ed5528e86aa994acb38fe2d")
        // RFC 7693 Appendix B: BLAKE2s-256("abc").
        #expect(
            BLAKE2s.hash(Array("abc".utf8)).hex == "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")
        // Two-part hashing equals hashing the concatenation.
        #expect(BLAKE2s.hash(Array(Self.kat255[0..<100]), Array(Self.kat255[100...])) == BLAKE2s.hash(Self.kat255))
    }

    /// The reference keyed KAT: key 00..1f, 32-byte output.
    @Test func blake2sKeyedKAT() {
        #expect(
            BLAKE2s.keyedHash(key: Self.katKey, [UInt8]()).hex
                == "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49")
        #expect(
            BLAKE2s.keyedHash(key: Self.katKey, [UInt8(0)]).hex
                == "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1")
        #expect(
            BLAKE2s.keyedHash(key: Self.katKey, Self.kat255).hex
                == "3fb735061abc519dfe979e54c1ee5bfad0a9d858b3315bad34bde999efd724dd")
    }

    /// The 16-byte keyed output, checked against an independent
    /// implementation (CPython's hashlib, which is the BLAKE2 reference code:
    /// `blake2s(msg, key=bytes(range(32)), digest_size=16)`).
    @Test func blake2sKeyed16ByteOutput() {
        let message = Array("The quick brown fox jumps over the lazy dog".utf8)
        let mac = BLAKE2s.mac16(key: Self.katKey, message)
        #expect(mac.bytes == hex("4e2219ec6d234a478e4ace91429bbce4"))
        // Not a truncation of the 32-byte keyed hash (which starts 96b9463f...).
        #expect(mac.bytes != hex("96b9463f887ba8eb7444074245f3b2f8"))
    }

    @Test func hmacBLAKE2s() {
        let tag = BLAKE2s.hmac(key: Array("key".utf8), Array("The quick brown fox jumps over the lazy dog".utf8))
        #expect(tag.hex == "f93215bb90d4af4c3061cd932fb169fb8bb8a91d0b4022baea1271e1323cd9a0")
        let split = BLAKE2s.hmac(
            key: Array("key".utf8), Array("The quick brown ".utf8), Array("fox jumps over the lazy dog".utf8))
        #expect(split == tag)
    }

    struct KDFVector: Sendable {
        let key, input, t0, t1, t2: String
    }

    static let kdfVectors = [
        KDFVector(
            key: "746573742d6b6579", input: "746573742d696e707574",
            t0: "6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633",
            t1: "df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a",
            t2: "fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24"),
        KDFVector(
            key: "776972656775617264", input: "776972656775617264",
            t0: "491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8",
            t1: "1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f",
            t2: "31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160"),
        KDFVector(
            key: "", input: "",
            t0: "8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0",
            t1: "58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e",
            t2: "0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e"),
    ]

    /// wireguard-go's vectors use keys shorter than 32 bytes, so they are
    /// run through the general HKDF (HMAC with any key length) here; the
    /// `WireGuardKDF` functions take a 32-byte chaining key and are checked
    /// for agreement with it.
    @Test(arguments: kdfVectors) func wireguardGoKDFVectors(_ v: KDFVector) {
        let t0 = GeneralHKDF.kdf3(key: hex(v.key), input: hex(v.input))
        #expect(t0.0.hex == v.t0)
        #expect(t0.1.hex == v.t1)
        #expect(t0.2.hex == v.t2)
    }

    @Test func wireGuardKDFAgreesWithGeneralForm() {
        let key = SecureRandom.bytes32()
        let input = SecureRandom.bytes(77)
        let general = GeneralHKDF.kdf3(key: key.bytes, input: input)
        let (a, b, c) = WireGuardKDF.kdf3(key: key, input: input)
        #expect(a == general.0 && b == general.1 && c == general.2)
        let (d, e) = WireGuardKDF.kdf2(key: key, input: input)
        #expect(d == a && e == b)
        #expect(WireGuardKDF.kdf1(key: key, input: input) == a)
    }

    @Test func constantTimeCompare() {
        #expect(constantTimeEquals(hex("0102"), hex("0102")))
        #expect(!constantTimeEquals(hex("0102"), hex("0103")))
        #expect(!constantTimeEquals(hex("0102"), hex("010203")))
        #expect(constantTimeEquals([UInt8](), [UInt8]()))
    }
}

/// HKDF as the whitepaper writes it, for keys of any length, used only to
/// run wireguard-go's vectors (whose keys are not 32 bytes).
enum GeneralHKDF {
    static func kdf3(key: [UInt8], input: [UInt8]) -> (Bytes32, Bytes32, Bytes32) {
        let t0 = BLAKE2s.hmac(key: key, input)
        let t1 = BLAKE2s.hmac(key: t0, [1])
        let t2 = BLAKE2s.hmac(key: t0, t1.bytes + [2])
        let t3 = BLAKE2s.hmac(key: t0, t2.bytes + [3])
        return (t1, t2, t3)
    }
}
