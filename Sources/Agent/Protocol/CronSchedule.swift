/// A cron schedule, parsed once and asked for its next fire time.
///
/// Fields, as Coder's script `cron` (robfig/cron with seconds) and
/// crontab(5): `[second] minute hour day-of-month month day-of-week`. Five
/// fields mean second 0. Each field is `*`, `N`, `A-B`, a step `X/S` (X one
/// of those), or a comma list of them. Day-of-week is 0–7, both 0 and 7
/// Sunday. When both day fields are restricted a day matching either fires
/// (crontab(5) "Note"). Times are UTC: containers rarely have another zone,
/// and the dashboard shows UTC too. No names (`MON`, `JAN`) and no `@daily`
/// shorthands: the spec validator rejects them with a clear message.
public struct CronSchedule: Sendable, Equatable {
    /// Bit i set: value i allowed.
    var seconds: UInt64
    var minutes: UInt64
    var hours: UInt64
    var daysOfMonth: UInt64
    var months: UInt64
    var daysOfWeek: UInt64
    var domRestricted: Bool
    var dowRestricted: Bool

    public init(parsing text: String) throws(SpecError) {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw SpecError("\"\(text)\" has \(fields.count) fields; want 5 (min hour dom month dow) or 6 (sec first)")
        }
        let f = fields.count == 6 ? fields : ["0"] + fields
        seconds = try Self.parseField(f[0], 0...59, "second")
        minutes = try Self.parseField(f[1], 0...59, "minute")
        hours = try Self.parseField(f[2], 0...23, "hour")
        daysOfMonth = try Self.parseField(f[3], 1...31, "day-of-month")
        months = try Self.parseField(f[4], 1...12, "month")
        var dow = try Self.parseField(f[5], 0...7, "day-of-week")
        if dow & (1 << 7) != 0 { dow |= 1 }
        daysOfWeek = dow & 0x7f
        domRestricted = f[3] != "*" && f[3] != "?"
        dowRestricted = f[5] != "*" && f[5] != "?"
    }

    static func parseField(_ field: String, _ range: ClosedRange<Int>, _ name: String) throws(SpecError) -> UInt64 {
        var bits: UInt64 = 0
        for part in field.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw SpecError("\(name) \"\(part)\": more than one '/'") }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s >= 1, s <= range.upperBound + 1 else {
                    throw SpecError("\(name) \"\(part)\": step must be a number from 1 to \(range.upperBound + 1)")
                }
                step = s
            }
            var low: Int
            var high: Int
            let base = pieces[0]
            if base == "*" || base == "?" {
                low = range.lowerBound
                high = range.upperBound
            } else if let dash = base.firstIndex(of: "-") {
                guard let a = Int(base[..<dash]), let b = Int(base[base.index(after: dash)...]) else {
                    throw SpecError("\(name) \"\(part)\": a range is two numbers, A-B")
                }
                low = a
                high = b
            } else {
                guard let a = Int(base) else { throw SpecError("\(name) \"\(part)\": not a number, range, list or '*'") }
                low = a
                high = pieces.count == 2 ? range.upperBound : a
            }
            guard range.contains(low), range.contains(high), low <= high else {
                throw SpecError("\(name) \"\(part)\": values must be within \(range.lowerBound)-\(range.upperBound)")
            }
            for v in stride(from: low, through: high, by: step) { bits |= 1 << UInt64(v) }
        }
        return bits
    }

    /// The first fire time strictly after `after` (Unix seconds, UTC), or
    /// nil if none within about five years (e.g. `0 0 31 2 *`).
    public func next(after: Int64) -> Int64? {
        var t = after + 1
        let limit = after + 5 * 366 * 86_400
        while t <= limit {
            let c = CivilTime(unix: t)
            if months & (1 << UInt64(c.month)) == 0 {
                t = CivilTime.unix(year: c.month == 12 ? c.year + 1 : c.year, month: c.month == 12 ? 1 : c.month + 1, day: 1)
                continue
            }
            if !dayMatches(c) {
                t = t - Int64(c.secondOfDay) + 86_400
                continue
            }
            if hours & (1 << UInt64(c.hour)) == 0 {
                t = t - Int64(c.minute * 60 + c.second) + 3_600
                continue
            }
            if minutes & (1 << UInt64(c.minute)) == 0 {
                t = t - Int64(c.second) + 60
                continue
            }
            if seconds & (1 << UInt64(c.second)) == 0 {
                t += 1
                continue
            }
            return t
        }
        return nil
    }

    private func dayMatches(_ c: CivilTime) -> Bool {
        let dom = daysOfMonth & (1 << UInt64(c.day)) != 0
        let dow = daysOfWeek & (1 << UInt64(c.weekday)) != 0
        if domRestricted && dowRestricted { return dom || dow }
        return dom && dow
    }
}

/// UTC calendar fields of a Unix time, by Howard Hinnant's days-from-civil
/// algorithms (proleptic Gregorian), so no Foundation calendar is needed.
struct CivilTime {
    var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, weekday: Int
    var secondOfDay: Int { hour * 3600 + minute * 60 + second }

    init(unix: Int64) {
        let days = unix >= 0 ? unix / 86_400 : (unix - 86_399) / 86_400
        let sod = Int(unix - days * 86_400)
        hour = sod / 3600
        minute = sod % 3600 / 60
        second = sod % 60
        weekday = Int(((days % 7) + 11) % 7)  // 1970-01-01 was a Thursday (4)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = Int(doy - (153 * mp + 2) / 5 + 1)
        month = Int(mp < 10 ? mp + 3 : mp - 9)
        year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
    }

    static func unix(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return (era * 146_097 + doe - 719_468) * 86_400
    }
}
