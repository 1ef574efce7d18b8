// osu-latency in Swift: ping-pong one-way latency, OSU's loops and format. Like the C twin
// (and OSU) it sends every size from one page-aligned max-size buffer.
import MPI
import OSUSupport

// Locals in a function, as an application would have them (top-level globals carry
// exclusivity checks that are not part of the binding).
func benchmark() throws {
    try MPI.initialize()
    let world = Communicator.world
    OSU.requireTwoRanks(world, "osu-latency")
    let rank = world.rank
    if rank == 0 { OSU.header("OSU MPI Latency Test (Swift)", "Latency (us)") }
    let maxSize = OSU.maxSize(default: 4 << 20)
    let send = OSU.buffer(of: UInt8.self, count: maxSize, filledWith: 1)
    let receive = OSU.buffer(of: UInt8.self, count: maxSize, filledWith: 0)
    for size in OSU.sizes(to: maxSize) {
        let (iterations, skip) = OSU.latencyLoops(size: size)
        let message = UnsafeBufferPointer(rebasing: send[0..<size])
        let incoming = UnsafeMutableBufferPointer(rebasing: receive[0..<size])
        try world.barrier()
        var start = 0.0
        if rank == 0 {
            for i in 0..<(iterations + skip) {
                if i == skip { start = MPI.wtime() }
                try world.send(message, to: 1, tag: 1)
                try world.receive(into: incoming, from: 1, tag: 1)
            }
            let latency = (MPI.wtime() - start) * 1e6 / Double(2 * iterations)
            OSU.row(size, latency)
        } else {
            for _ in 0..<(iterations + skip) {
                try world.receive(into: incoming, from: 0, tag: 1)
                try world.send(message, to: 0, tag: 1)
            }
        }
    }
    try MPI.finalize()
}

try benchmark()
