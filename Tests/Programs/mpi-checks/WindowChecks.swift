import MPI
import CMPI

/// One-sided communication: puts and gets under fences, accumulates and atomics under
/// locks, and a node's shared-memory window read through plain pointers.
func checkWindows(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let next = (rank + 1) % size, previous = (rank - 1 + size) % size

    // Fence epochs: each rank puts its rank into the next one's slot 0 and gets slot 1 of the previous.
    let window = try Window<Int>.allocate(count: 4, communicator: world)
    c.expectEqual(Array(window.local), [0, 0, 0, 0], "an allocated window starts zeroed")
    window.local[1] = 100 + rank
    try window.fence()
    try window.put([rank, rank * 2], to: next, at: 2)
    let got = try window.get(count: 1, from: previous, at: 1)
    c.expectThrows(MPI_ERR_RMA_SYNC, "a get read before the fence") { _ = try got.values }
    try window.fence()
    c.expectEqual(try got.values, [100 + previous], "the previous rank's slot, after the fence")
    c.expectEqual(Array(window.local[2...3]), [previous, previous * 2], "what the previous rank put here")

    // Passive target: every rank adds to rank 0's counter under a shared lock; tickets are unique.
    try window.fence()
    if rank == 0 { window.local[0] = 0 }
    try window.fence()
    try window.lock(0)
    try window.accumulate([1, rank], to: 0, at: 2, .sum)
    let ticket = try window.fetchAndOp(1, at: 0, .sum)
    try window.unlock(0)
    let tickets = try world.allGather(try ticket.value)
    c.expectEqual(tickets.sorted(), Array(0..<size), "fetch-and-op hands out each ticket once")
    try world.barrier()
    if rank == 0 {
        try window.lock(0, exclusive: true)
        let totals = try window.get(count: 4, from: 0)
        try window.flush(0)
        // Slots 2 and 3 held what the last rank put there in the first epoch.
        c.expectEqual(try totals.values, [size, 100, previous + size, previous * 2 + (0..<size).reduce(0, +)], "the counter and the accumulated sums, after a flush")
        try window.unlock(0)
    }
    try world.barrier()

    // Compare-and-swap: only the first rank to try claims the last rank's slot. 32-bit
    // elements: Open MPI 4.1's osc/rdma crashes in a 64-bit MPI_Compare_and_swap between
    // processes of one node (open-mpi/ompi#7967, #11349; C does the same).
    let owner = size - 1
    let flags = try Window<Int32>.allocate(count: 1, communicator: world)
    if rank == owner { flags.local[0] = -1 }
    try world.barrier()
    try flags.lockAll()
    let before = try flags.compareAndSwap(Int32(rank), expected: -1, at: owner)
    try flags.flushAll()
    let seen = try before.value
    try flags.unlockAll()
    let claims = try world.allGather(seen == -1 ? 1 : 0)
    c.expectEqual(claims.reduce(0, +), 1, "exactly one rank swapped")
    try flags.fence()
    let winner = try flags.get(count: 1, from: owner)
    try flags.fence()
    c.expectEqual(claims[Int(try winner.value)], 1, "the slot holds the winner's rank")

    // The copy-free forms, as C's: put from and get into memory the caller keeps until the
    // flush; every rank writes its rank into the next one's slot 1 and reads the previous one's.
    let plain = try Window<Int>.allocate(count: 2, communicator: world)
    let source = UnsafeMutableBufferPointer<Int>.allocate(capacity: 1), sink = UnsafeMutableBufferPointer<Int>.allocate(capacity: 2)
    defer { source.deallocate(); sink.deallocate() }
    source[0] = 1000 + rank
    plain.local[0] = 2000 + rank
    try world.barrier()
    try plain.lockAll()
    try plain.put(from: UnsafeBufferPointer(source), to: next, at: 1)
    try plain.flushAll()
    try world.barrier()
    try plain.get(into: sink, from: previous)
    try plain.flushAll()
    try plain.unlockAll()
    c.expectEqual(Array(sink), [2000 + previous, 1000 + (previous + size - 1) % size], "put(from:) and get(into:) after flushes")

    // Bad targets are refused before MPI sees them.
    c.expectThrows(MPI_ERR_RANK, "a rank outside the window") { try window.put([1], to: size) }
    c.expectThrows(MPI_ERR_DISP, "a negative offset") { _ = try window.get(count: 1, from: 0, at: -1) }
    c.expectThrows(MPI_ERR_OP, "a Swift-defined operation") {
        let op = try Operation.custom(Int.self, commutative: true) { $0 + $1 }
        try window.accumulate([1], to: 0, op)
    }
    try window.fence()
    try window.free()

    // A node's shared-memory window: each rank writes its own part, then reads its
    // neighbour's directly, with no MPI call per element.
    let node = try world.split(type: .sharedMemory)
    let shared = try Window<Double>.allocateShared(count: 3, communicator: node)
    for i in 0..<3 { shared.local[i] = Double(node.rank * 10 + i) }
    try shared.sync()
    try node.barrier()
    try shared.sync()
    let neighbour = try shared.memory(of: (node.rank + 1) % node.size)
    let expected = (0..<3).map { Double(((node.rank + 1) % node.size) * 10 + $0) }
    c.expectEqual(Array(neighbour), expected, "the neighbour's part, read through shared memory")
    c.expectEqual(try shared.memory(of: node.rank).baseAddress, shared.local.baseAddress, "my own part is my local memory")
    try node.barrier()
}
