// osu-latency in Swift: ping-pong one-way latency, OSU's loops and format. Uses the
// idiomatic array API (Swift arrays are malloc'd, as the C twin's buffers are).
import MPI
import OSUSupport

try MPI.initialize()
let world = Communicator.world
OSU.requireTwoRanks(world, "osu-latency")
let rank = world.rank
if rank == 0 { OSU.header("OSU MPI Latency Test (Swift)", "Latency (us)") }
let maxSize = OSU.maxSize(default: 4 << 20)
var send = [UInt8](repeating: 1, count: maxSize)
var receive = [UInt8](repeating: 0, count: maxSize)
for size in OSU.sizes(to: maxSize) {
    let (iterations, skip) = OSU.latencyLoops(size: size)
    let message = Array(send.prefix(size))
    var incoming = Array(receive.prefix(size))
    try world.barrier()
    var start = 0.0
    if rank == 0 {
        for i in 0..<(iterations + skip) {
            if i == skip { start = MPI.wtime() }
            try world.send(message, to: 1, tag: 1)
            try world.receive(into: &incoming, from: 1, tag: 1)
        }
        let latency = (MPI.wtime() - start) * 1e6 / Double(2 * iterations)
        OSU.row(size, latency)
    } else {
        for _ in 0..<(iterations + skip) {
            try world.receive(into: &incoming, from: 0, tag: 1)
            try world.send(message, to: 0, tag: 1)
        }
    }
}
try MPI.finalize()
