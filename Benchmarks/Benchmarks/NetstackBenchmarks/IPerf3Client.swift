import Foundation
import Netstack

/// A minimal iperf3 client (one TCP stream) on our stack, so the kernel's
/// `iperf3 -s` measures us exactly as it measures a kernel client. The
/// control protocol, as iperf3's iperf_api.c runs it:
///
///     client → server  cookie (36 characters + NUL) on the control connection
///     server → client  state PARAM_EXCHANGE (9)
///     client → server  u32 BE length ‖ JSON test parameters
///     server → client  CREATE_STREAMS (10); client opens the data connection,
///                      sends the cookie on it
///     server → client  TEST_START (1), TEST_RUNNING (2); data flows
///     client → server  TEST_END (4) when its timer expires
///     server → client  EXCHANGE_RESULTS (13); each side sends u32 BE length ‖
///                      JSON results, client first
///     server → client  DISPLAY_RESULTS (14); client → server IPERF_DONE (16)
struct IPerf3Client {
    enum State: UInt8 {
        case testStart = 1, testRunning = 2, testEnd = 4, paramExchange = 9, createStreams = 10
        case exchangeResults = 13, displayResults = 14, iperfDone = 16
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let stack: NetStack
    let server: SocketAddress

    /// Runs one test for `seconds`; returns bytes per second as the receiving side counted them.
    func run(seconds: Int, reverse: Bool) async throws -> Double {
        let control = try await stack.dial(server, noDelay: true)
        defer { control.close() }
        var reader = StreamReader(stream: control)
        let cookie = Array((0..<36).map { _ in UInt8(ascii: "a") + UInt8.random(in: 0..<26) }) + [0]
        try await control.write(cookie)
        try await expect(&reader, .paramExchange)
        var parameters = #"{"tcp":true,"omit":0,"time":\#(seconds),"num":0,"blockcount":0,"parallel":1,"len":131072,"#
        parameters += #""pacing_timer":1000,"client_version":"3.12""#
        if reverse { parameters += #","reverse":true"# }
        parameters += "}"
        try await control.write(framed(parameters))
        try await expect(&reader, .createStreams)
        let data = try await stack.dial(server, noDelay: false)
        defer { data.close() }
        try await data.write(cookie)
        try await expect(&reader, .testStart)
        try await expect(&reader, .testRunning)

        let start = ContinuousClock.now
        let end = start + .seconds(seconds)
        var moved = 0
        if reverse {
            let deadline = Task {
                try? await Task.sleep(until: end)
                try? await control.write([State.testEnd.rawValue])
            }
            // The server stops sending at TEST_END; read until it has and the results are due.
            let drain = Task { () -> Int in
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                defer { buffer.deallocate() }
                var total = 0
                while let n = try? await data.read(into: buffer), n > 0 { total += n }
                return total
            }
            try await expect(&reader, .exchangeResults)
            _ = await deadline.value
            moved = 0
            data.abort()
            moved = await drain.value
        } else {
            let block = [UInt8](repeating: 0x5a, count: 128 * 1024)
            while ContinuousClock.now < end {
                try await data.write(block)
                moved += block.count
            }
            try await control.write([State.testEnd.rawValue])
            try await expect(&reader, .exchangeResults)
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let results =
            #"{"cpu_util_total":0,"cpu_util_user":0,"cpu_util_system":0,"sender_has_retransmits":0,"#
            + #""streams":[{"id":1,"bytes":\#(moved),"retransmits":0,"jitter":0,"errors":0,"packets":0,"#
            + #""start_time":0,"end_time":\#(seconds)}]}"#
        try await control.write(framed(results))
        let theirs = try await reader.frame()
        try await expect(&reader, .displayResults)
        try await control.write([State.iperfDone.rawValue])
        // Sending, the server's count of what it received is the measure.
        if !reverse, let received = Self.streamBytes(theirs) { return Double(received) / seconds }
        return Double(moved) / seconds
    }

    private func framed(_ json: String) -> [UInt8] {
        let body = Array(json.utf8)
        let n = UInt32(body.count)
        return [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + body
    }

    private func expect(_ reader: inout StreamReader, _ state: State) async throws {
        let b = try await reader.bytes(1)[0]
        guard b == state.rawValue else { throw Failure(description: "iperf3: expected state \(state), got \(b)") }
    }

    /// The "bytes" of the first stream in a results JSON.
    static func streamBytes(_ json: [UInt8]) -> Int? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
            let streams = o["streams"] as? [[String: Any]], let first = streams.first
        else { return nil }
        return (first["bytes"] as? NSNumber)?.intValue
    }
}

/// Exact-length reads over a `TCPStream`.
struct StreamReader {
    let stream: TCPStream
    var buffered: [UInt8] = []

    mutating func bytes(_ n: Int) async throws -> [UInt8] {
        while buffered.count < n {
            let d = try await stream.read()
            if d.isEmpty { throw IPerf3Client.Failure(description: "iperf3: control connection closed") }
            buffered += d
        }
        let out = Array(buffered.prefix(n))
        buffered.removeFirst(n)
        return out
    }

    mutating func frame() async throws -> [UInt8] {
        let h = try await bytes(4)
        let n = Int(h[0]) << 24 | Int(h[1]) << 16 | Int(h[2]) << 8 | Int(h[3])
        return try await bytes(n)
    }
}
