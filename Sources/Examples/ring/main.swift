// ring: a token travels around all ranks for L laps at message sizes from 1 B to 1 MiB.
// Prints the time per hop and the bandwidth per size, and checks the token arrives intact.
//
//   mpirun -np 4 ring [--laps 50] [--max-size 1048576]
import MPI

func option(_ name: String, default value: Int) -> Int {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]), v > 0 else { return value }
    return v
}

do {
    try MPI.initialize()
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let right = (rank + 1) % size, left = (rank + size - 1) % size
    let laps = option("--laps", default: 50)
    let maxSize = option("--max-size", default: 1 << 20)

    if rank == 0 {
        print("# ring: \(size) ranks, \(laps) laps")
        print("# Size".rightPadded(10) + "Hop latency (us)".leftPadded(20) + "Bandwidth (MB/s)".leftPadded(20))
    }
    var bytes = 1
    var intact = true
    while bytes <= maxSize {
        // Each rank adds 1 to the first and last byte as the token passes (so after L laps
        // they hold L·size); the bytes between keep their pattern. Touching two bytes keeps
        // the hop's cost the message's, not a loop over it.
        let pattern = (0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var token = pattern
        try world.barrier()
        let start = MPI.wtime()
        for _ in 0..<laps {
            if size == 1 {
                token.mark()
                try world.sendReceiveReplace(&token, to: 0, from: 0)
            } else if rank == 0 {
                token.mark()
                try world.send(token, to: right)
                try world.receive(into: &token, from: left)
            } else {
                try world.receive(into: &token, from: left)
                token.mark()
                try world.send(token, to: right)
            }
        }
        let seconds = MPI.wtime() - start
        if rank == 0 {
            let expected = UInt8(truncatingIfNeeded: laps * size)
            var reference = pattern
            reference[0] &+= expected
            if bytes > 1 { reference[bytes - 1] &+= expected }
            if token != reference { intact = false }
            let hops = Double(laps * size)
            let latency = seconds / hops * 1e6
            let bandwidth = Double(bytes) * hops / seconds / 1e6
            print(String(bytes).rightPadded(10) + fixed(latency).leftPadded(20) + fixed(bandwidth).leftPadded(20))
        }
        bytes *= 2
    }
    let ok = try world.broadcast(intact, root: 0)
    if rank == 0 { print(ok ? "ring ok: token intact after every lap" : "ring FAILED: token corrupted") }
    try MPI.finalize()
    if !ok { MPI.abort(errorCode: 1) }
} catch {
    print("ring: \(error)")
    MPI.abort(errorCode: 1)
}

func fixed(_ value: Double) -> String {
    let scaled = (value * 100).rounded() / 100
    let whole = Int(scaled)
    let cents = Int(((scaled - Double(whole)) * 100).rounded())
    return "\(whole).\(cents < 10 ? "0" : "")\(cents)"
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
    func rightPadded(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}

extension Array where Element == UInt8 {
    mutating func mark() {
        self[0] &+= 1
        if count > 1 { self[count - 1] &+= 1 }
    }
}
