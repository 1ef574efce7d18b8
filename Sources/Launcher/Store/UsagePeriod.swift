import Foundation

/// The start of a usage report's period: a date (`2026-11-01`, UTC) or an age (`7d`, `12h`).
public enum UsagePeriod {
    public static func start(_ text: String, now: Date = Date()) -> Date? {
        if let age = Durations.seconds(text), age <= Durations.maximum { return now.addingTimeInterval(-age) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.date(from: text)
    }
}
