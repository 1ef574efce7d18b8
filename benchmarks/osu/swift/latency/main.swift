// osu-latency in Swift: ping-pong one-way latency, OSU's loops and format. Like the C
// twin it sends every size from one max-size buffer: here slices of two arrays, in place.
import MPI
import OSUSupport

try MPI.initialize()
let world = Communicator.world
OSU.requireTwoRanks(world, "osu-latency")
let rank = world.rank
if rank == 0 { OSU.header("OSU MPI Latency Test (Swift)", "Latency (us)") }
let maxSize = OSU.maxSize(default: 4 << 20)
let send = [UInt8](repeating: 1, count: maxSize)
var receive = [UInt8](repeating: 0, count: maxSize)
for size in OSU.sizes(to: maxSize) {
    let (iterations, skip) = OSU.latencyLoops(size: size)
    try world.barrier()
    var start = 0.0
    if rank == 0 {
        for i in 0..<(iterations + skip) {
            if i == skip { start = MPI.wtime() }
            try world.send(send[0..<size], to: 1, tag: 1)
            try world.receive(into: &receive, range: 0..<size, from: 1, tag: 1)
        }
        let latency = (MPI.wtime() - start) * 1e6 / Double(2 * iterations)
        OSU.row(size, latency)
    } else {
        for _ in 0..<(iterations + skip) {
            try world.receive(into: &receive, range: 0..<size, from: 0, tag: 1)
            try world.send(send[0..<size], to: 0, tag: 1)
        }
    }
}
try MPI.finalize()
