import Foundation

/// RFC 3339 timestamps, written and read without `DateFormatter`.
///
/// Events carry times as UTC with millisecond precision
/// (`2026-03-01T12:00:00.123Z`). Reading accepts any fractional precision
/// (truncated to milliseconds) and any numeric offset, because channels send
/// local offsets (`-05:00`). A hand-written parser keeps this exact, fast and
/// identical on every platform.
public enum RFC3339 {
    /// Formats `date` as UTC with exactly three fractional digits.
    public static func format(_ date: Date) -> String {
        let totalMillis = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var days = totalMillis / 86_400_000
        var millisOfDay = totalMillis % 86_400_000
        if millisOfDay < 0 { millisOfDay += 86_400_000; days -= 1 }
        let (y, m, d) = civil(fromDays: days)
        let hour = millisOfDay / 3_600_000
        let minute = millisOfDay / 60_000 % 60
        let second = millisOfDay / 1000 % 60
        let millis = millisOfDay % 1000
        if (0...9999).contains(y) {
            // Every record carries two or three of these: written into one buffer rather
            // than concatenated from a dozen small strings.
            return String(unsafeUninitializedCapacity: 24) { buffer in
                func put(_ value: Int64, _ width: Int, at offset: Int) {
                    var rest = value
                    for index in stride(from: offset + width - 1, through: offset, by: -1) {
                        buffer[index] = UInt8(truncatingIfNeeded: 48 + rest % 10)
                        rest /= 10
                    }
                }
                put(y, 4, at: 0)
                buffer[4] = UInt8(ascii: "-")
                put(m, 2, at: 5)
                buffer[7] = UInt8(ascii: "-")
                put(d, 2, at: 8)
                buffer[10] = UInt8(ascii: "T")
                put(hour, 2, at: 11)
                buffer[13] = UInt8(ascii: ":")
                put(minute, 2, at: 14)
                buffer[16] = UInt8(ascii: ":")
                put(second, 2, at: 17)
                buffer[19] = UInt8(ascii: ".")
                put(millis, 3, at: 20)
                buffer[23] = UInt8(ascii: "Z")
                return 24
            }
        }
        return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + "T" + pad(hour, 2) + ":" + pad(minute, 2) + ":"
            + pad(second, 2) + "." + pad(millis, 3) + "Z"
    }

    /// Formats a calendar date (`YYYY-MM-DD`) in UTC, as used for promised delivery dates.
    public static func formatDate(_ date: Date) -> String {
        String(format(date).prefix(10))
    }

    /// Parses an RFC 3339 `date-time`; returns nil for anything else.
    public static func parse(_ text: String) -> Date? {
        parse(text, allowMissingOffset: false, allowDateOnly: false)
    }

    /// Parses RFC 3339, optionally accepting the sloppier forms carriers send:
    /// a date-time without offset (taken as UTC) or a bare date (midnight UTC).
    static func parse(_ text: String, allowMissingOffset: Bool, allowDateOnly: Bool) -> Date? {
        var text = text
        return text.withUTF8 { parse(utf8: $0, allowMissingOffset: allowMissingOffset, allowDateOnly: allowDateOnly) }
    }

    private static func parse(utf8 b: UnsafeBufferPointer<UInt8>, allowMissingOffset: Bool, allowDateOnly: Bool) -> Date? {
        var i = 0
        func digits(_ count: Int) -> Int64? {
            guard i + count <= b.count else { return nil }
            var v: Int64 = 0
            for k in 0..<count {
                let c = b[i + k]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
            }
            i += count
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(45), let month = digits(2), expect(45), let day = digits(2) else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year) else { return nil }
        let dayNumber = days(fromCivil: year, month, day)
        if i == b.count {
            return allowDateOnly ? Date(timeIntervalSince1970: Double(dayNumber * 86_400)) : nil
        }
        guard i < b.count, b[i] == 84 || b[i] == 116 else { return nil }  // T or t
        i += 1
        guard let hour = digits(2), expect(58), let minute = digits(2), expect(58), let second = digits(2) else { return nil }
        guard hour < 24, minute < 60, second < 61 else { return nil }
        var millis: Int64 = 0
        if expect(46) {
            var count = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if count < 3 { millis = millis * 10 + Int64(b[i] - 48) }
                count += 1
                i += 1
            }
            guard count > 0 else { return nil }
            if count < 3 { for _ in count..<3 { millis *= 10 } }
        }
        var offsetSeconds: Int64 = 0
        if i == b.count {
            guard allowMissingOffset else { return nil }
        } else if b[i] == 90 || b[i] == 122 {  // Z or z
            i += 1
        } else if b[i] == 43 || b[i] == 45 {  // + or -
            let sign: Int64 = b[i] == 45 ? -1 : 1
            i += 1
            guard let oh = digits(2), expect(58), let om = digits(2), oh < 24, om < 60 else { return nil }
            offsetSeconds = sign * (oh * 3600 + om * 60)
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let seconds = dayNumber * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds * 1000 + millis) / 1000)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    private static func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    private static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, m, d)
    }
}
