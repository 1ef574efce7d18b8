// osu-bibw in Swift: both ranks post a window of 64 receives and 64 sends at once;
// OSU's loops and format, the unsafe-buffer isend/irecv as in osu-bw.
import MPI
import OSUSupport

// Locals in a function, as an application would have them (top-level globals carry
// exclusivity checks that are not part of the binding).
func benchmark() throws {
    let window = 64
    try MPI.initialize()
    let world = Communicator.world
    OSU.requireTwoRanks(world, "osu-bibw")
    let rank = world.rank, peer = 1 - world.rank
    if rank == 0 { OSU.header("OSU MPI Bi-Directional Bandwidth Test (Swift)", "Bandwidth (MB/s)") }
    let maxSize = OSU.maxSize(default: 4 << 20)
    let send = OSU.buffer(of: UInt8.self, count: maxSize, filledWith: 1)
    let receive = OSU.buffer(of: UInt8.self, count: maxSize, filledWith: 0)
    var sends = RequestGroup<UnsafeBufferPointer<UInt8>>(capacity: window)
    var receives = RequestGroup<UnsafeMutableBufferPointer<UInt8>>(capacity: window)
    for size in OSU.sizes(to: maxSize) {
        let (iterations, skip) = OSU.bandwidthLoops(size: size)
        let message = UnsafeBufferPointer(rebasing: send[0..<size])
        let incoming = UnsafeMutableBufferPointer(rebasing: receive[0..<size])
        try world.barrier()
        var start = 0.0
        for i in 0..<(iterations + skip) {
            if i == skip { start = MPI.wtime() }
            for _ in 0..<window { receives.append(try world.irecv(into: incoming, from: peer, tag: 10)) }
            for _ in 0..<window { sends.append(try world.isend(message, to: peer, tag: 10)) }
            try sends.complete()
            try receives.complete()
        }
        let seconds = MPI.wtime() - start
        if rank == 0 { OSU.row(size, Double(size) / 1e6 * Double(iterations * window * 2) / seconds) }
    }
    try MPI.finalize()
}

try benchmark()
