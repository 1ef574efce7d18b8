/// SplitMix64: a scenario, a simulated workload or a benchmark's pool is its seed, and the
/// same seed gives the same run (for simulations, tests and benchmarks; not for secrets).
public struct SeededRandom: Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    /// A number in 0..<bound (bound ≥ 1).
    public mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(max(1, bound)))
    }

    /// True `percent` times in a hundred.
    public mutating func chance(_ percent: Int) -> Bool { next(100) < percent }
}
