// osu-put in Swift (osu_put_latency): rank 0 puts `size` bytes into rank 1's window and
// flushes, inside one passive-target epoch (a shared lock; OSU's `-s flush`), from one
// page-aligned buffer with put(from:), which copies nothing, like the C twin.
import MPI
import OSUSupport

func benchmark() throws {
    try MPI.initialize()
    let world = Communicator.world
    OSU.requireTwoRanks(world, "osu-put")
    let rank = world.rank
    let maxSize = OSU.maxSize(default: 1 << 20)
    let source = OSU.buffer(of: UInt8.self, count: maxSize, filledWith: 97)
    let window = try Window<UInt8>.allocate(count: maxSize, communicator: world)
    if rank == 0 { OSU.header("OSU MPI_Put Latency Test (Swift)", "Latency (us)") }
    for size in OSU.sizes(to: maxSize) {
        let (iterations, skip) = OSU.latencyLoops(size: size)
        let message = UnsafeBufferPointer(rebasing: source[0..<size])
        try world.barrier()
        if rank == 0 {
            var start = 0.0
            try window.lock(1)
            for i in 0..<(iterations + skip) {
                if i == skip { start = MPI.wtime() }
                try window.put(from: message, to: 1)
                try window.flush(1)
            }
            let stop = MPI.wtime()
            try window.unlock(1)
            OSU.row(size, (stop - start) * 1e6 / Double(iterations))
        }
        try world.barrier()
    }
    try window.free()
    try MPI.finalize()
}

try benchmark()
