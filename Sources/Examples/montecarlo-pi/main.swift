// montecarlo-pi: every rank throws darts at the unit square, an allReduce adds the hits,
// rank 0 prints the estimate of π and its standard error. Deterministic for a given seed
// and rank count; runs alone as an independent task too (1 rank, no mpirun needed).
//
//   mpirun -np 4 montecarlo-pi [--samples 1000000] [--seed 42]
import MPI

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A uniform Double in [0, 1) from the top 53 bits.
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

func option(_ name: String, default value: Int) -> Int {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]), v >= 0 else { return value }
    return v
}

do {
    try MPI.initialize()
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let samples = option("--samples", default: 1_000_000)
    let seed = option("--seed", default: 42)

    let start = MPI.wtime()
    var random = SplitMix64(state: UInt64(seed) &* 0x1000_0000_01B3 &+ UInt64(rank))
    var hits = 0
    for _ in 0..<samples {
        let x = random.unit(), y = random.unit()
        if x * x + y * y < 1 { hits += 1 }
    }
    let totals = try world.allReduce([hits, samples], .sum)
    let seconds = try world.allReduce(MPI.wtime() - start, .max)
    if rank == 0 {
        let n = Double(totals[1])
        let p = Double(totals[0]) / n
        let estimate = 4 * p
        let standardError = 4 * (p * (1 - p) / n).squareRoot()
        let error = estimate - Double.pi
        print("pi ≈ \(estimate) ± \(standardError) (\(totals[1]) samples on \(size) ranks, \(seconds) s)")
        print("result pi=\(estimate) stderr=\(standardError) error=\(error) samples=\(totals[1]) ranks=\(size) seed=\(seed)")
    }
    try MPI.finalize()
} catch {
    print("montecarlo-pi: \(error)")
    MPI.abort(errorCode: 1)
}
