/// Durations as people write them in job files: `90`, `90s`, `30m`, `1h30m`, `2d`, or
/// ISO 8601 as Azure Batch does (`PT30M`, `P1DT2H`).
public enum Durations {
    /// The longest duration taken (ten years): larger ones are typos, and infinity does not
    /// survive JSON.
    public static let maximum: Double = 3650 * 86400
    public static func seconds(_ text: String) -> Double? {
        let t = text.trimmingWhitespace()
        // Too large (even infinite) is still a duration: callers bound it by `maximum` and say so.
        if let plain = Double(t), plain >= 0 { return plain }
        if t.hasPrefix("P") { return iso8601(t) }
        var total = 0.0, number = "", sawUnit = false
        for c in t {
            if c.isNumber || c == "." { number.append(c); continue }
            guard let value = Double(number) else { return nil }
            let unit: Double
            switch c {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            default: return nil
            }
            total += value * unit
            number = ""
            sawUnit = true
        }
        return sawUnit && number.isEmpty ? total : nil
    }

    static func iso8601(_ text: String) -> Double? {
        var total = 0.0, number = "", inTime = false, sawValue = false
        for c in text.dropFirst() {
            if c == "T" { inTime = true; continue }
            if c.isNumber || c == "." { number.append(c); continue }
            guard let value = Double(number) else { return nil }
            switch (inTime, c) {
            case (false, "D"): total += value * 86400
            case (false, "W"): total += value * 604_800
            case (true, "H"): total += value * 3600
            case (true, "M"): total += value * 60
            case (true, "S"): total += value
            default: return nil
            }
            number = ""
            sawValue = true
        }
        return sawValue && number.isEmpty ? total : nil
    }
}
