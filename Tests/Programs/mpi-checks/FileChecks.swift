import MPI
import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// MPI-IO: independent writes at offsets, a distributed matrix written collectively through
/// subarray views and found in global order, reads back, sizes, and errors that throw.
func checkFiles(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    // One name for every rank: rank 0's pid, broadcast.
    let tag = try world.broadcast(Int64(getpid()), root: 0)
    let path = "/tmp/mpi-checks-files-\(tag).bin"

    // Independent writes: each rank its three values at its own offset; rank 0 reads them all.
    let file = try File.open(path, mode: [.create, .readWrite], on: world, hints: ["cb_nodes": "1"])
    c.expectEqual(try file.write([Int32](repeating: Int32(rank * 10), count: 3), at: rank * 3 * 4), 3, "write_at wrote 3")
    try world.barrier()
    try file.sync()
    let all = try file.read(3 * size, of: Int32.self, at: 0)
    c.expectEqual(all, (0..<size).flatMap { [Int32](repeating: Int32($0 * 10), count: 3) }, "every rank's piece, in place")
    c.expectEqual(try file.read(10, of: Int32.self, at: 3 * size * 4), [], "nothing past the end")
    c.expectEqual(try file.size(), 3 * size * 4, "size")
    try file.close()

    // Collective: a 5 × 3·size matrix of Doubles, rank r owning columns 3r..<3r+3, written
    // through a subarray view, lands in the file row-major in global order.
    let rows = 5, columns = 3 * size
    var block: [Double] = []
    for i in 0..<rows {
        for j in 0..<3 { block.append(Double(100 * rank + i * 3 + j)) }
    }
    let view = try Datatype.subarray(sizes: [rows, columns], subsizes: [rows, 3], starts: [0, 3 * rank], of: Double.self)
    let matrix = try File.open(path, mode: [.create, .readWrite], on: world)
    try matrix.setSize(0)
    try matrix.setView(elementType: Double.self, fileType: view)
    c.expectEqual(try matrix.writeAll(block), rows * 3, "write_all wrote the block")
    try matrix.sync()
    try world.barrier()
    try matrix.sync()
    c.expectEqual(try matrix.readAll(rows * 3, of: Double.self, at: 0), block, "read_at_all through the view: my block back")
    try matrix.setView(elementType: Double.self)
    let global = try matrix.readAll(rows * columns, of: Double.self, at: 0)
    var expected: [Double] = []
    for i in 0..<rows {
        for j in 0..<columns { expected.append(Double(100 * (j / 3) + i * 3 + j % 3)) }
    }
    c.expectEqual(global, expected, "the file holds the matrix row-major, in global order")
    c.expectEqual(try matrix.size(), rows * columns * 8, "size of the matrix")
    try matrix.close()
    try matrix.close()  // closing twice is harmless
    try world.barrier()
    if rank == 0 { try File.delete(path) }
    try world.barrier()

    // Errors come back as thrown MPIErrors naming the class.
    c.expectThrows(MPI_ERR_NO_SUCH_FILE, "opening a missing file to read") {
        _ = try File.open(path, mode: .readOnly, on: Communicator.solo)
    }
    c.expectThrows(MPI_ERR_ARG, "a subarray outside its array") {
        _ = try Datatype.subarray(sizes: [4, 4], subsizes: [2, 3], starts: [0, 2], of: Double.self)
    }
}
