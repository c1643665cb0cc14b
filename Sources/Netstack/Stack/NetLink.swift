/// The link under a `NetStack`: it carries whole IP packets. The WireGuard
/// device implements it (packets in = decrypted, out = to encrypt); tests
/// use `MemoryLink`; privileged mode and kernel tests use `TUNLink`.
///
/// Inbound packets are handed to `NetStack.input` by whoever reads the link.
public protocol NetLink: Sendable {
    /// Largest IP packet the link carries; TCP's MSS is derived from it.
    var mtu: Int { get }
    /// True when the link segments and checksums TCP itself, as a TUN device
    /// with a virtio-net header does for the kernel (TSO and checksum
    /// offload). The stack then sends every TCP packet with only the
    /// pseudo-header sum in its checksum field (`CHECKSUM_PARTIAL`), and
    /// a TCP packet larger than `mtu` (up to 65,535 bytes) is to be cut
    /// into segments that each fill the MTU: `mtu` less its IP and TCP
    /// headers. The stack sends such super-packets only when that is the
    /// connection's segment size, so they split exactly as it would split
    /// them. Default: false.
    var offloadsTCP: Bool { get }
    /// Sends IP packets, each at most `mtu` bytes except for the TCP
    /// super-packets above. Must not call back into the stack synchronously.
    func send(_ packets: [[UInt8]])
}

extension NetLink {
    public var offloadsTCP: Bool { false }
}
