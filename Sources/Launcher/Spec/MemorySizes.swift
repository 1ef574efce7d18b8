/// Memory sizes as Slurm's `--mem` takes them: a whole number of MiB, or one with a suffix
/// K, M, G or T (powers of 1024; `GB`/`GiB` read alike), e.g. `512`, `4G`, `1.5T`.
public enum MemorySizes {
    /// The most a task may ask of one node: 64 TiB (larger is a typo).
    public static let maximumMiB = 64 << 20

    /// The size in MiB (rounded up), or nil if `text` is not a size.
    public static func mebibytes(_ text: String) -> Int? {
        var t = Substring(text.trimmingWhitespace()).uppercased()[...]
        for ending in ["IB", "B"] where t.hasSuffix(ending) && t.count > ending.count {
            t = t.dropLast(ending.count)
            break
        }
        var scale = 1.0
        if let unit = t.last, !unit.isNumber, unit != "." {
            switch unit {
            case "K": scale = 1.0 / 1024
            case "M": scale = 1
            case "G": scale = 1024
            case "T": scale = 1024 * 1024
            default: return nil
            }
            t = t.dropLast()
        }
        guard !t.isEmpty, t.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let value = Double(t), value > 0 else { return nil }
        let mebibytes = (value * scale).rounded(.up)
        guard mebibytes <= Double(maximumMiB) else { return nil }
        return Int(mebibytes)
    }
}
