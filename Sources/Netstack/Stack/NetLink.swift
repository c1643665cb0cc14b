/// The link under a `NetStack`: it carries whole IP packets. The WireGuard
/// device implements it (packets in = decrypted, out = to encrypt); tests
/// use `MemoryLink`; privileged mode and kernel tests use `TUNLink`.
///
/// Inbound packets are handed to `NetStack.input` by whoever reads the link.
public protocol NetLink: Sendable {
    /// Largest IP packet the link carries; TCP's MSS is derived from it.
    var mtu: Int { get }
    /// Sends IP packets, each at most `mtu` bytes. Must not call back into the stack synchronously.
    func send(_ packets: [[UInt8]])
}
