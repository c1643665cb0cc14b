import Foundation

// The reference for ControlPlaneBenchmarks' whole-process figures: the
// smallest Swift process that links Foundation and uses it (JSON, dates,
// the environment), built with the same flags as `tether`. It prints one
// line when it is up, then idles until stdin closes, so the benchmark can
// read its start time and its resident memory the way it reads the agent's.
struct Line: Codable {
    var pid: Int32
    var at: Date
    var home: String
}

let line = Line(pid: getpid(), at: Date(), home: ProcessInfo.processInfo.environment["HOME"] ?? "")
let bytes = try JSONEncoder().encode(line)
print(String(decoding: bytes, as: UTF8.self))
fflush(nil)
while readLine() != nil {}
