// osu-iallreduce in Swift (osu_iallreduce's pure-communication latency): iAllReduce of
// floats with sum, started and waited for at once, a barrier between iterations, the
// average over ranks. Page-aligned buffers like the C twin's; iAllReduce(_:into:)
// allocates nothing per call.
import MPI
import OSUSupport

func benchmark() throws {
    try MPI.initialize()
    let world = Communicator.world
    let rank = world.rank
    if rank == 0 { OSU.header("OSU MPI Iallreduce Latency Test (Swift)", "Avg Latency(us)") }
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
            let request = try world.iAllReduce(contribution, into: result, .sum)
            _ = try request.wait()
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
