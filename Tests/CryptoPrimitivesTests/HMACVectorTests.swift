import CryptoPrimitives
import Testing

/// HMAC-BLAKE2s and `WireGuardKDF` against vectors from Python's
/// `hmac.new(key, data, hashlib.blake2s)` (a separate implementation), over
/// every key and message length class: empty, shorter than, equal to and
/// longer than the 64-byte block (keys over 64 bytes are hashed first), and
/// messages split in two. Key bytes are `(7i + 1) mod 256`, data bytes
/// `(7i + 2) mod 256`.
@Suite struct HMACVectorTests {
    static func pattern(_ count: Int, _ seed: Int) -> [UInt8] { (0..<count).map { UInt8((7 * $0 + seed) % 256) } }

    static let hmacVectors: [(keyLength: Int, dataLength: Int, tag: String)] = [
        (0, 0, "eaf4bb25938f4d20e72656bbbc7a9bf63c0c18537333c35bdb67db1402661acd"),
        (0, 1, "26e36651af4c7384d95fc23a7c453e6c9342c7d93246b721528f7bac59f2cb52"),
        (0, 32, "2b8541b01d1162902ba44a2d124536cce31d168b689b87a79767d1743a376c5f"),
        (0, 33, "314a0cad8103f4cdd6d8ef7fbd63b037e934df5f361c67d305c27c48169cd8d6"),
        (0, 64, "c4ca0b4bdbbab5c290e3b58057fa4bc1f769fd977fc50f45c28f6d10b6b080c9"),
        (0, 65, "febde3b8b115ad675dd20af7ece154ac60c73cc11a0110358f13ffa4c786c183"),
        (0, 200, "4a07d2c80b7533e62d0385aff06b82cc81addf39930eae5ca86487f386ab57fe"),
        (1, 0, "79425d94ebbe6cb0677d3c6ede74f6cc21b700e140440176dd9587146f4746b3"),
        (1, 1, "454e87a0ef478728f80b25824ca112cdf5951eaf2eaf6db7ce7bde373ebf5b13"),
        (1, 32, "95621c156f8745f469940c899652f41c53e57ae7235a512f2423f07918678927"),
        (1, 33, "f1aedad1878361f6b7c89524b882d777231559dbe50c854ddccbdf6ab136103d"),
        (1, 64, "eb745ce1b90b19e9b4e364ff8d95a4e3005d18d0a534ebacc34ff660f6c3ac7b"),
        (1, 65, "c5ad166143af1514c1c1f413406fbd6341f0d214e0df99cc950f2ff9c7a48fed"),
        (1, 200, "dfca92c5abcdcb71b716ead1437ec2a86dd5acd867df3d08fac4cd603199a0af"),
        (16, 0, "51d7ff0b5f2b4fd0cedbe7775e6820072135c48893765715226f4c0e40ccbf7f"),
        (16, 1, "bdbfcef57eee7d30067f7e3773582e05d36cdaae5b78787273b23dc41a8e2e1c"),
        (16, 32, "2528463cb48ca8fd68739682031bc5d304b5ecd241c3951f87d698a0df040948"),
        (16, 33, "769ce10290d7eb0e3dc2486d2e28d90ccc19b60f148052e7ebfedb7d829fa31a"),
        (16, 64, "8640cdc8a82ae4c631a2a92830fecb4ff28194e7d2e5f3528888da8c60bb8dab"),
        (16, 65, "5cc03f8f19b1dd6640e14e78b76eaba23d2dadbc9c5c9fc048af69a278f710d0"),
        (16, 200, "1c8e760d1f06c13b6a1887d9df88e0f360a5cc763f86ce5a3da0cfa1de54f016"),
        (32, 0, "6742cb7da299ece6134643a2648547e903a0069f820ce3928bbdfe0f8fdd5eb3"),
        (32, 1, "b13bddbc82553d1723216275e8ec4157410b42d7a1d2d2cd1f0251dafc6d85ba"),
        (32, 32, "b3fcb9f7792b45f60dafae1a040f780001ca54a321e71a583755eecc47177093"),
        (32, 33, "89e00a950726ebdcfe84169174f70e8eead9c03d7a4a2a6fecaa24421ecb5a77"),
        (32, 64, "2ef874f46f10244a2336c99d63e9848e489b8ea57c313a7b0abf97059db8d5d4"),
        (32, 65, "175020fa94f0e6552afce4f353f649b4c6d11f0e924a0d4b4ce343880b7189a8"),
        (32, 200, "68764ed24033f2969e691adcbf8c2cefe4c7c2bd5389db417dfa9362a39e1617"),
        (63, 0, "695c11d332afb48fbc42ab2c3f712b88e33a13229824a7b41bf9c2ebd4d02b0d"),
        (63, 1, "9dee281ac4d4852d06187a86d9acfbda41af7738e623286caaa78f5f5d2bfe30"),
        (63, 32, "25f759fac2a19c84021cb9487df14559a8449b9561c09bfedd829e34c8cba18b"),
        (63, 33, "770416acf7ade705d13a613880691e54692ec159b0540845a07a77f35368ee1b"),
        (63, 64, "611dc935ef3cfc27da7fc34d83cb92acfab2674c84628fdfce00cec6dba3a89d"),
        (63, 65, "34b455d6931c99892b9927c9d2ac707662064cd8cdb906e971cfb14a3766f193"),
        (63, 200, "266de7a6c3612fe8a9bca6f5edc04763f8a3aa8f1454029a4ad38b11892641bc"),
        (64, 0, "05a93e4cf268d6bf4a771dc998f81a6fffad32cfc5808728b856308159c6a6af"),
        (64, 1, "76420161a8c99cc83c41ff0d7d291edff8fe955ea4ba631aefe0d6151311676d"),
        (64, 32, "55cb43e62c8a263e3e3e77d24cf4167f1392d0aaccb40723b0d040be84d0d3aa"),
        (64, 33, "109fb0fd5e15e672b12698bfc3d82f585a4f91cc49840ce6afa7ab41c36e65e3"),
        (64, 64, "8fb9df80b52dc3cdcd4113014d73bba9e9792ed9e52e1b71146688de0785a602"),
        (64, 65, "aabb1415977112fd227bc965a9ee6e3de829a46340320fd0a83be37a8d2efdb3"),
        (64, 200, "525f9d00465bffb330d609769226c955fbe1569e648251b8680f5380bd02868f"),
        (65, 0, "55341380a5384cf25a377a7c6eb9b9c8978bc3d022481f81a8950a4ed0ec974b"),
        (65, 1, "8fba335a409edfeaaf3fff12847349b11b6179205ebd6622deb2d2c169ae7871"),
        (65, 32, "56f1f5ec72ff6f53d4346915c3dac8cd041cc091e378ab17b60ea24fb0f70c67"),
        (65, 33, "8b68d1066e99323dd00185e47f8098a0e5fdd476286018ff294f36cb8abf92fe"),
        (65, 64, "331330bab801e3fe3845ac5c7dc36f0676427f6158390333b841f30bfb1c4925"),
        (65, 65, "e2f81565138e77c4f1baa01f75a1cd3f71652c3115ad643e87f4973004afdaec"),
        (65, 200, "c12ea9b084fa63d8509848c183a05f13ab7244c61c7c576630ce31b491585833"),
        (100, 0, "cb3b74a4c1252d13bf7d94a83020037e474407646503716c7eda9f381c066e1e"),
        (100, 1, "2e96a0e51b4ef85dfce3400bfa6dfc8aaae7496ed14a0b219f80d9734ed4b0d2"),
        (100, 32, "cdd80c16b61d7c1e6e6fd5dff80df88da1c219024234c8c82cfba844cd33febd"),
        (100, 33, "a8c3d1ff15b5c9c9938fbf44ce16db5c2e9d58bb40d93e83e94df3df98e20a61"),
        (100, 64, "a241c63b4ff211728327d364075872e7284a0a6b96230e9f888badb65e5ce0f6"),
        (100, 65, "d4157543c199d25b3f2e634f0732d47d5193d5b89b348d84e69ef082284d65ae"),
        (100, 200, "3351d92770adfae39a94154895033fb3c4c50c80dc46995bd0e30fded32ce2f8"),
    ]

    @Test func hmacMatchesHashlib() {
        for v in Self.hmacVectors {
            let key = Self.pattern(v.keyLength, 1)
            let data = Self.pattern(v.dataLength, 2)
            #expect(BLAKE2s.hmac(key: key, data).hex == v.tag, "key \(v.keyLength) data \(v.dataLength)")
            let split = v.dataLength / 2
            #expect(
                BLAKE2s.hmac(key: key, Array(data[..<split]), Array(data[split...])).hex == v.tag,
                "split, key \(v.keyLength) data \(v.dataLength)")
        }
    }

    /// τ1, τ2, τ3 for a 32-byte chaining key `pattern(32, 3)` and inputs
    /// `pattern(n, 4)`, computed with hashlib as the whitepaper writes HKDF.
    @Test(arguments: [
        (
            0, "496aeaedeeeefe03e531b662dc0e24abea1e823ec82139d3be872d9ae91bf23e",
            "a7838d2a32fa536866ef113833f0c8c5a8577cc474374474f67b9e338f13b19b",
            "790e04448fb9bf21ec0e4f88b17130be59d8fa2c739ff4a83ff34c1fee3e275b"
        ),
        (
            32, "b7407d177c1eed69fc3cff68929511c6aff08e4e7fcadc35a6949c00c8048eed",
            "3c11686c8d4bfaea1f0a73949a37f9e50969c5bc4c9fc47899dbbe2742d67708",
            "ea854093efc322fa8aa65af49aa33ef43e22ebe07ea1f4cf0d4291fc56da6e7a"
        ),
        (
            48, "6a273ab98fb9cd99cdad274222e910c9dd449fe1f4ad9fab0c234c8962fed6f6",
            "a19297ad393b75f6689c0761222106f1ff36eeac9e4e58864c3ed06974f3e120",
            "e5353bdc380b6bed9a5e6c44642afa91268f2331a3c835c84c8bc7db15f426f3"
        ),
    ])
    func kdfMatchesHashlib(_ v: (Int, String, String, String)) throws {
        let key = try Bytes32(Self.pattern(32, 3))
        let input = Self.pattern(v.0, 4)
        let (t1, t2, t3) = WireGuardKDF.kdf3(key: key, input: input)
        #expect([t1.hex, t2.hex, t3.hex] == [v.1, v.2, v.3])
        let (u1, u2) = WireGuardKDF.kdf2(key: key, input: input)
        #expect([u1.hex, u2.hex] == [v.1, v.2])
        #expect(WireGuardKDF.kdf1(key: key, input: input).hex == v.1)
    }
    /// Block-boundary lengths, hashed whole and fed in uneven pieces:
    /// BLAKE2s-256 of `pattern(n, 5)` and 16-byte keyed BLAKE2s under
    /// `pattern(32, 6)`, from hashlib.
    static let blockBoundaryVectors: [(length: Int, hash: String, mac16: String)] = [
        (63, "717b75d4aae8aec28d85c82470d2e6df6037d1f6af2fde5dcac73b7d5f6e6cba", "8b5b23d5a09babd9b9aada2fad982557"),
        (64, "d39b6e752e7ee621f15c4a32fdd8086bfcda67de2ab6733e7049a14b6cdef722", "760a461bbc4b455fe3c10bc83105ad21"),
        (65, "6db87ad396b0b4ab06fac1ef3c5577c7a609cd4e11ea2804313eea3a6d48334a", "56927bdb7d431e4851eff2292923f199"),
        (128, "7ca0cd9f14bd9f72d5d9f3eb4c5cfa0d8eb186467fc89835c9ba21fb3e789d39", "833f8946778f5a7947e495eb1392ee91"),
        (129, "ee47ec9c2b0cf9296a848e588e29c602e46b4c7c8fd5afd6d0d9172f7584da83", "e86aa4f97d4642425a62a8d45fa48584"),
        (1000, "a9fbf71a8573937132cfd9ff09e92804602b6c30452899207a8633dacf8357ee", "fd70ba52db98d9ddf85b0821abe8381f"),
    ]

    @Test func blockBoundariesMatchHashlib() {
        for v in Self.blockBoundaryVectors {
            let data = Self.pattern(v.length, 5)
            #expect(BLAKE2s.hash(data).hex == v.hash, "length \(v.length)")
            #expect(Hex.encode(BLAKE2s.mac16(key: Self.pattern(32, 6), data).bytes) == v.mac16, "length \(v.length)")
            for piece in [1, 7, 64, 65] {
                var h = BLAKE2s()
                var offset = 0
                while offset < data.count {
                    let end = min(data.count, offset + piece)
                    h.update(Array(data[offset..<end]))
                    offset = end
                }
                #expect(h.finalize().hex == v.hash, "length \(v.length) in pieces of \(piece)")
            }
        }
    }
}
