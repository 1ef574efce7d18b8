/// Durations as people write them in job files: `90`, `90s`, `30m`, `1h30m`, `2d`, or
/// ISO 8601 as Azure Batch does (`PT30M`, `P1DT2H`).
public enum Durations {
    /// The longest duration taken (ten years): larger ones are typos, and infinity does not
    /// survive JSON.
    public static let maximum: Double = 3650 * 86400
    /// `90 s`, `0.5 s`: a duration in messages.
    public static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }

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

    /// A time limit as Slurm's `--time` reads it: `M` (minutes), `M:S`, `H:M:S`, `D-H`,
    /// `D-H:M`, `D-H:M:S`; and, written with units, as `seconds(_:)` does (`90s`, `PT1H`).
    public static func slurm(_ text: String) -> Double? {
        let t = text.trimmingWhitespace()
        if let minutes = Double(t), minutes >= 0 { return minutes * 60 }
        guard let first = t.first, first.isNumber, t.allSatisfy({ $0.isNumber || $0 == ":" || $0 == "-" }) else { return seconds(t) }
        var days = 0.0, rest = Substring(t)
        if let dash = t.firstIndex(of: "-") {
            guard let value = Double(t[..<dash]) else { return nil }
            days = value
            rest = t[t.index(after: dash)...]
        }
        guard !rest.contains("-") else { return nil }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map { Double($0) }
        guard !parts.isEmpty, parts.count <= 3, parts.allSatisfy({ $0 != nil }) else { return nil }
        let values = parts.map { $0! }
        if t.contains("-") {
            // D-H, D-H:M, D-H:M:S
            let hours = values[0], minutes = values.count > 1 ? values[1] : 0, seconds = values.count > 2 ? values[2] : 0
            return days * 86400 + hours * 3600 + minutes * 60 + seconds
        }
        switch values.count {
        case 2: return values[0] * 60 + values[1]  // M:S
        case 3: return values[0] * 3600 + values[1] * 60 + values[2]  // H:M:S
        default: return nil
        }
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
