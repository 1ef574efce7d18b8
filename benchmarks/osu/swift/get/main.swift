// osu-get in Swift (osu_get_bw): rank 0 gets a window of 64 messages of `size` bytes from
// rank 1's window, then flushes, inside one passive-target epoch (a shared lock; OSU's
// `-s flush`), into one page-aligned buffer with get(into:), which allocates nothing.
import MPI
import OSUSupport

func benchmark() throws {
    try MPI.initialize()
    let world = Communicator.world
    OSU.requireTwoRanks(world, "osu-get")
    let rank = world.rank
    let messages = 64
    let maxSize = OSU.maxSize(default: 1 << 18)
    let sink = OSU.buffer(of: UInt8.self, count: maxSize * messages, filledWith: 0)
    let window = try Window<UInt8>.allocate(count: maxSize * messages, communicator: world)
    for i in window.local.indices { window.local[i] = 98 }
    try world.barrier()
    if rank == 0 { OSU.header("OSU MPI_Get Bandwidth Test (Swift)", "Bandwidth (MB/s)") }
    for size in OSU.sizes(to: maxSize) {
        let (iterations, skip) = OSU.bandwidthLoops(size: size)
        try world.barrier()
        if rank == 0 {
            var start = 0.0
            try window.lock(1)
            for i in 0..<(iterations + skip) {
                if i == skip { start = MPI.wtime() }
                // The j-th message's place, as the C twin's r_buf + j * size.
                for j in 0..<messages {
                    try window.get(into: UnsafeMutableBufferPointer(start: sink.baseAddress! + j * size, count: size), from: 1, at: j * size)
                }
                try window.flush(1)
            }
            let stop = MPI.wtime()
            try window.unlock(1)
            OSU.row(size, Double(size * messages * iterations) / 1e6 / (stop - start))
        }
        try world.barrier()
    }
    try window.free()
    try MPI.finalize()
}

try benchmark()
