// osu-allreduce in Swift: MPI_Allreduce of floats with MPI_SUM, a barrier between
// iterations, the average latency over ranks; OSU's loops and format. Uses allReduce(into:),
// which allocates nothing per call.
import MPI
import OSUSupport

try MPI.initialize()
let world = Communicator.world
let rank = world.rank
if rank == 0 { OSU.header("OSU MPI Allreduce Latency Test (Swift)", "Avg Latency(us)") }
let maxSize = OSU.maxSize(default: 1 << 20)
for size in OSU.sizes(from: 4, to: maxSize) {
    let count = size / MemoryLayout<Float>.size
    let (iterations, skip) = OSU.collectiveLoops(size: size)
    let contribution = [Float](repeating: 1, count: count)
    var result = [Float](repeating: 0, count: count)
    try world.barrier()
    var total = 0.0
    for i in 0..<(iterations + skip) {
        let start = MPI.wtime()
        try world.allReduce(contribution, into: &result, .sum)
        let stop = MPI.wtime()
        if i >= skip { total += stop - start }
        try world.barrier()
    }
    let latency = total * 1e6 / Double(iterations)
    let average = try world.reduce(latency, .sum, root: 0).map { $0 / Double(world.size) }
    if let average { OSU.row(size, average) }
}
try MPI.finalize()
