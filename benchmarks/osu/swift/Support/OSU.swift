// What the Swift OSU benchmarks share with each other and with their C twins: the
// message sizes, OSU's loop counts, and OSU's output format (`%-10d%20.2f`).
import MPI

public enum OSU {
    /// Message sizes in bytes, doubling from `from` to `to`.
    public static func sizes(from: Int = 1, to: Int) -> [Int] {
        var sizes: [Int] = [], size = from
        while size <= to { sizes.append(size); size *= 2 }
        return sizes
    }

    /// The largest size, from `--max-size N` or the default.
    public static func maxSize(default value: Int) -> Int {
        let args = CommandLine.arguments
        guard let i = args.firstIndex(of: "--max-size"), i + 1 < args.count, let v = Int(args[i + 1]) else { return value }
        return v
    }

    /// OSU's (iterations, warm-up) for point-to-point tests: 10,000 + 100 up to 8 KiB, else 1,000 + 10.
    public static func latencyLoops(size: Int) -> (iterations: Int, skip: Int) {
        size > 8192 ? (1000, 10) : (10000, 100)
    }

    /// OSU's bandwidth loops: 100 + 10 up to 8 KiB, else 20 + 2.
    public static func bandwidthLoops(size: Int) -> (iterations: Int, skip: Int) {
        size > 8192 ? (20, 2) : (100, 10)
    }

    /// OSU's collective loops: 1,000 + 100 up to 8 KiB, else 100 + 10.
    public static func collectiveLoops(size: Int) -> (iterations: Int, skip: Int) {
        size > 8192 ? (100, 10) : (1000, 100)
    }

    public static func header(_ title: String, _ column: String) {
        print("# \(title)")
        print(pad("# Size", 10) + leftPad(column, 20))
    }

    /// One `%-10d%20.2f` row.
    public static func row(_ size: Int, _ value: Double) {
        print(pad(String(size), 10) + leftPad(fixed2(value), 20))
    }

    static func fixed2(_ value: Double) -> String {
        let cents = Int((value * 100).rounded())
        let whole = cents / 100, fraction = cents % 100
        return "\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    static func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }
    static func leftPad(_ s: String, _ width: Int) -> String { s.count >= width ? s : String(repeating: " ", count: width - s.count) + s }

    /// Stops the job unless it runs on exactly two ranks, as OSU's point-to-point tests do.
    public static func requireTwoRanks(_ world: Communicator, _ name: String) {
        if world.size != 2 {
            if world.rank == 0 { print("\(name) needs exactly 2 ranks") }
            MPI.abort(errorCode: 1)
        }
    }
}
