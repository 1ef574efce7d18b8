// osu-allreduce in Swift: MPI_Allreduce of floats with MPI_SUM, a barrier between
// iterations, the average latency over ranks; OSU's loops and format. Page-aligned buffers
// like the C twin's; allReduce(_:into:) allocates nothing per call.
import MPI
import OSUSupport

// Locals in a function, as an application would have them (top-level globals carry
// exclusivity checks that are not part of the binding).
func benchmark() throws {
    try MPI.initialize()
    let world = Communicator.world
    let rank = world.rank
    if rank == 0 { OSU.header("OSU MPI Allreduce Latency Test (Swift)", "Avg Latency(us)") }
    let maxSize = OSU.maxSize(default: 1 << 20)
    let send = OSU.buffer(of: Float.self, count: maxSize / 4, filledWith: 1)
    let receive = OSU.buffer(of: Float.self, count: maxSize / 4, filledWith: 0)
    for size in OSU.sizes(from: 4, to: maxSize) {
        let count = size / MemoryLayout<Float>.size
        let (iterations, skip) = OSU.collectiveLoops(size: size)
        let contribution = UnsafeBufferPointer(rebasing: send[0..<count])
        let result = UnsafeMutableBufferPointer(rebasing: receive[0..<count])
        try world.barrier()
        var total = 0.0
        for i in 0..<(iterations + skip) {
            let start = MPI.wtime()
            try world.allReduce(contribution, into: result, .sum)
            let stop = MPI.wtime()
            if i >= skip { total += stop - start }
            try world.barrier()
        }
        let latency = total * 1e6 / Double(iterations)
        let average = try world.reduce(latency, .sum, root: 0).map { $0 / Double(world.size) }
        if let average { OSU.row(size, average) }
    }
    try MPI.finalize()
}

try benchmark()
