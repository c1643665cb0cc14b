import Testing
import WireGuardCore

@Suite struct AllowedIPsTests {
    private func p(_ s: String) -> IPPrefix { IPPrefix(s)! }
    private func a(_ s: String) -> IPAddress { IPAddress(s)! }

    @Test func longestPrefixWinsIPv4() {
        var t = AllowedIPs<Int>()
        t.insert(p("0.0.0.0/0"), 1)
        t.insert(p("10.0.0.0/8"), 2)
        t.insert(p("10.1.0.0/16"), 3)
        t.insert(p("10.1.2.3/32"), 4)
        #expect(t.lookup(a("8.8.8.8")) == 1)
        #expect(t.lookup(a("10.9.9.9")) == 2)
        #expect(t.lookup(a("10.1.9.9")) == 3)
        #expect(t.lookup(a("10.1.2.3")) == 4)
        #expect(t.lookup(a("10.1.2.4")) == 3)
        #expect(t.lookup(a("::1")) == nil, "IPv4 routes never match IPv6")
    }

    @Test func longestPrefixWinsIPv6() {
        var t = AllowedIPs<Int>()
        t.insert(p("::/0"), 1)
        t.insert(p("fd00::/8"), 2)
        t.insert(p("fd7a:115c:a1e0::/48"), 3)
        t.insert(p("fd7a:115c:a1e0:ab12:4843:cd96:6258:b240/128"), 4)
        t.insert(p("2001:db8::/33"), 5)
        #expect(t.lookup(a("2001:4860::1")) == 1)
        #expect(t.lookup(a("fd01::1")) == 2)
        #expect(t.lookup(a("fd7a:115c:a1e0:1::1")) == 3)
        #expect(t.lookup(a("fd7a:115c:a1e0:ab12:4843:cd96:6258:b240")) == 4)
        #expect(t.lookup(a("fd7a:115c:a1e0:ab12:4843:cd96:6258:b241")) == 3)
        #expect(t.lookup(a("2001:db8:7fff::1")) == 5)
        #expect(t.lookup(a("2001:db8:8000::1")) == 1, "bit 33 set: outside /33")
        #expect(t.lookup(a("10.0.0.1")) == nil)
    }

    @Test func hostBitsAreMaskedAndPrefixesMove() {
        var t = AllowedIPs<Int>()
        t.insert(p("192.168.4.77/24"), 1)
        #expect(t.prefixes(for: 1) == [p("192.168.4.0/24")])
        #expect(t.lookup(a("192.168.4.1")) == 1)
        t.insert(p("192.168.4.0/24"), 2)  // the same prefix moves to peer 2
        #expect(t.lookup(a("192.168.4.1")) == 2)
        #expect(t.prefixes(for: 1).isEmpty)
    }

    @Test func removalFallsBackToShorterPrefix() {
        var t = AllowedIPs<Int>()
        t.insert(p("10.0.0.0/8"), 1)
        t.insert(p("10.0.0.0/24"), 2)
        #expect(t.lookup(a("10.0.0.5")) == 2)
        t.removeAll(for: 2)
        #expect(t.lookup(a("10.0.0.5")) == 1)
        t.remove(p("10.0.0.0/8"))
        #expect(t.lookup(a("10.0.0.5")) == nil)
        #expect(t.isEmpty)
    }

    @Test func zeroLengthAndFullLength() {
        var t = AllowedIPs<Int>()
        t.insert(p("255.255.255.255/32"), 7)
        t.insert(p("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), 8)
        #expect(t.lookup(a("255.255.255.255")) == 7)
        #expect(t.lookup(a("255.255.255.254")) == nil)
        #expect(t.lookup(a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")) == 8)
        t.insert(p("0.0.0.0/0"), 9)
        #expect(t.lookup(a("0.0.0.0")) == 9)
    }

    /// Against a brute-force reference on random tables.
    @Test func matchesBruteForce() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            var t = AllowedIPs<Int>()
            var reference: [IPPrefix: Int] = [:]
            for v in 0..<60 {
                let length = Int.random(in: 0...32, using: &rng)
                let prefix = IPPrefix(address: .v4(UInt32.random(in: 0...UInt32.max, using: &rng)), length: length)!
                t.insert(prefix, v)
                reference[prefix] = v
            }
            for _ in 0..<500 {
                let address = IPAddress.v4(UInt32.random(in: 0...UInt32.max, using: &rng))
                let best = reference.filter { $0.key.contains(address) }.max { $0.key.length < $1.key.length }
                #expect(t.lookup(address) == best?.value)
            }
        }
    }

    @Test func parsing() {
        #expect(IPPrefix("10.0.0.1") == p("10.0.0.1/32"))
        #expect(IPPrefix("::1") == p("::1/128"))
        #expect(IPPrefix("10.0.0.0/33") == nil)
        #expect(IPPrefix("fd00::/129") == nil)
        #expect(IPPrefix("10.0.0/8") == nil)
        #expect(IPPrefix("1.2.3.256/8") == nil)
        #expect(IPAddress("::ffff:1.2.3.4") == .v6(0xffff_0102_0304))
        #expect(IPAddress("fd00::1")!.description == "fd00::1")
        #expect(IPAddress("2001:db8:0:0:1:0:0:1")!.description == "2001:db8::1:0:0:1")
        #expect(IPAddress("1:2:3:4:5:6:7:8:9") == nil)
        #expect(IPAddress("1::2::3") == nil)
        #expect(Endpoint("[fd00::1]:51820") == Endpoint(address: a("fd00::1"), port: 51820))
        #expect(Endpoint("127.0.0.1:65535")?.port == 65535)
        #expect(Endpoint("127.0.0.1:65536") == nil)
        #expect(Endpoint("fd00::1:80") == nil)
    }
}
