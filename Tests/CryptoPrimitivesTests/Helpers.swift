import CryptoPrimitives

/// Hex literal to bytes; test vectors are written as in their sources.
func hex(_ text: String) -> [UInt8] {
    guard let bytes = Hex.decode(text) else { fatalError("bad hex literal in test: \(text)") }
    return bytes
}

func hex32(_ text: String) -> Bytes32 { try! Bytes32(hex(text)) }
