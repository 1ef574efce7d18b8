// osu-io in Swift: every rank writes SIZE bytes at its own offset of one file together
// (File.writeAll(_:at:), MPI_File_write_at_all), 20 times a size after 2 warm-ups; the
// C twin's loops and format. The file lives in /tmp: this measures the MPI-IO path.
import MPI
import OSUSupport
#if canImport(Glibc)
import Glibc
#endif

func benchmark() throws {
    try MPI.initialize()
    let world = Communicator.world
    let rank = world.rank
    let maxSize = OSU.maxSize(default: 16 << 20)
    let data = OSU.buffer(of: UInt8.self, count: maxSize, filledWith: 1)  // page-aligned, as the C twin's
    let tag = try world.broadcast(rank == 0 ? Int32(getpid()) : 0, root: 0)
    let file = try File.open("/tmp/osu-io-swift-\(tag).bin", mode: [.create, .writeOnly, .deleteOnClose], on: world)
    if rank == 0 { OSU.header("OSU-style MPI-IO collective write (Swift)", "Bandwidth (MB/s)") }
    for size in OSU.sizes(from: 4096, to: maxSize) {
        let (iterations, skip) = (20, 2)
        let piece = UnsafeBufferPointer(rebasing: data[0..<size])
        var start = 0.0
        try world.barrier()
        for i in 0..<(iterations + skip) {
            if i == skip { try world.barrier(); start = MPI.wtime() }
            try file.writeAll(piece, at: rank * size)
        }
        try world.barrier()
        let seconds = MPI.wtime() - start
        if rank == 0 { OSU.row(size, Double(size * world.size) / 1e6 * Double(iterations) / seconds) }
    }
    try file.close()
    try MPI.finalize()
}

try benchmark()
