import Agent
import Testing

/// The app proxy's pure parts: where a request goes, which headers cross,
/// and reading an app's HTTP/1.1 response (RFC 9112).
struct AppProxyRulesTests {
    @Test func targets() throws {
        #expect(try AppProxyRules.target(appURL: "http://127.0.0.1:8080") == .init(port: 8080, basePath: "/"))
        #expect(try AppProxyRules.target(appURL: "http://localhost/ui?x=1") == .init(port: 80, basePath: "/ui/"))
        #expect(try AppProxyRules.target(appURL: "http://[::1]:3000/a/") == .init(port: 3000, basePath: "/a/"))
        #expect(throws: AppProxyRules.Refusal.self) { try AppProxyRules.target(appURL: "http://10.0.0.1:80/") }
        #expect(throws: AppProxyRules.Refusal.self) { try AppProxyRules.target(appURL: "https://127.0.0.1/") }
        #expect(AppProxyRules.upstreamTarget(basePath: "/ui/", rest: "a/b", query: "q=1") == "/ui/a/b?q=1")
        #expect(AppProxyRules.upstreamTarget(basePath: "/", rest: "", query: nil) == "/")
        #expect(AppProxyRules.upstreamTarget(basePath: "/", rest: "//x", query: "") == "/x")
    }

    @Test func credentialsStayBehind() {
        #expect(AppProxyRules.droppedRequestHeaders.contains("authorization"))
        #expect(AppProxyRules.cookieWithout("tether_session", "a=1; tether_session=secret;b=2") == "a=1; b=2")
        #expect(AppProxyRules.cookieWithout("tether_session", "tether_session=secret") == nil)
        #expect(AppProxyRules.cookieWithout("tether_session", "tether_session_x=1") == "tether_session_x=1")
    }

    @Test func responseHeads() throws {
        let text = Array("HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello".utf8)
        let (head, consumed) = try #require(try HTTP1ResponseHead.parse(text))
        #expect(head.status == 404 && head.reason == "Not Found")
        #expect(head.field("x-a") == "b")
        #expect(consumed == text.count - 5)
        #expect(try head.framing(requestWasHead: false) == .length(5))
        #expect(try head.framing(requestWasHead: true) == HTTP1ResponseHead.Framing.none)
        #expect(try HTTP1ResponseHead.parse(Array("HTTP/1.1 200 OK\r\nA: b\r\n".utf8)) == nil)

        let bare = try #require(try HTTP1ResponseHead.parse(Array("HTTP/1.0 204 \n\n".utf8)))
        #expect(bare.head.status == 204 && bare.consumed == 15)
        #expect(try bare.head.framing(requestWasHead: false) == HTTP1ResponseHead.Framing.none)

        let chunked = try #require(try HTTP1ResponseHead.parse(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".utf8)))
        #expect(try chunked.head.framing(requestWasHead: false) == .chunked)
        let close = try #require(try HTTP1ResponseHead.parse(Array("HTTP/1.1 200 OK\r\n\r\n".utf8)))
        #expect(try close.head.framing(requestWasHead: false) == .untilClose)

        for bad in ["HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\n folded\r\n\r\n", "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n"] {
            #expect(throws: HTTP1ResponseHead.Malformed.self, "\(bad)") { try HTTP1ResponseHead.parse(Array(bad.utf8)) }
        }
        let badLength = try #require(try HTTP1ResponseHead.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".utf8)))
        #expect(throws: HTTP1ResponseHead.Malformed.self) { try badLength.head.framing(requestWasHead: false) }
        #expect(throws: HTTP1ResponseHead.Malformed.self) { try HTTP1ResponseHead.parse([UInt8](repeating: 65, count: 70_000)) }
    }

    @Test func chunkedBodiesDecodeInAnySplit() throws {
        let wire = Array("5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\nAFTER".utf8)
        for split in 1...wire.count {
            var decoder = ChunkedDecoder()
            var out: [UInt8] = []
            var i = 0
            while i < wire.count {
                out += try decoder.decode(Array(wire[i..<min(i + split, wire.count)]))
                i += split
            }
            #expect(String(decoding: out, as: UTF8.self) == "hello, world", "split \(split)")
            #expect(decoder.isDone)
        }
        var bad = ChunkedDecoder()
        #expect(throws: HTTP1ResponseHead.Malformed.self) { try bad.decode(Array("zz\r\n".utf8)) }
        var noCRLF = ChunkedDecoder()
        #expect(throws: HTTP1ResponseHead.Malformed.self) { try noCRLF.decode(Array("2\r\nabX\r\n".utf8)) }
        var huge = ChunkedDecoder()
        #expect(throws: HTTP1ResponseHead.Malformed.self) { try huge.decode(Array("ffffffffffffffffff\r\n".utf8)) }
    }

    @Test func parsersNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("HTTP/1.1 200 OK\r\n:;0123456789abcdef \t".utf8)
        for _ in 0..<5000 {
            let n = Int.random(in: 0...200, using: &generator)
            let bytes = (0..<n).map { _ in
                Bool.random(using: &generator) ? alphabet.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
            }
            if let parsed = try? HTTP1ResponseHead.parse(bytes) { _ = try? parsed.head.framing(requestWasHead: false) }
            var decoder = ChunkedDecoder()
            _ = try? decoder.decode(bytes)
        }
    }
}
