import MPI
#if canImport(Glibc)
import Glibc
#endif

func checkCollectives(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let sumOfRanks = size * (size - 1) / 2

    for root in 0..<size {
        // broadcast
        var block = rank == root ? [1.5, 2.5, Double(root)] : [0, 0, 0]
        try world.broadcast(&block, root: root)
        c.expectEqual(block, [1.5, 2.5, Double(root)], "broadcast array from \(root)")
        c.expectEqual(try world.broadcast(rank * 7, root: root), root * 7, "broadcast value from \(root)")

        // reduce
        let reduced = try world.reduce([rank, 1, rank * rank], .sum, root: root)
        if rank == root {
            let squares = (0..<size).map { $0 * $0 }.reduce(0, +)
            c.expectEqual(reduced, [sumOfRanks, size, squares], "reduce at root \(root)")
        } else {
            c.expect(reduced == nil, "reduce gives nil off the root")
        }
        let reducedValue = try world.reduce(Double(rank), .max, root: root)
        c.expectEqual(reducedValue, rank == root ? Double(size - 1) : nil, "reduce value")

        // gather / gatherv
        let gathered = try world.gather([rank, -rank], root: root)
        c.expectEqual(gathered, rank == root ? (0..<size).flatMap { [$0, -$0] } : nil, "gather at \(root)")
        let gatheredValues = try world.gather(UInt8(rank), root: root)
        c.expectEqual(gatheredValues, rank == root ? (0..<size).map(UInt8.init) : nil, "gather values")
        let varying = try world.gatherv([Int](repeating: rank, count: rank + 1), root: root)
        c.expectEqual(varying, rank == root ? (0..<size).map { [Int](repeating: $0, count: $0 + 1) } : nil, "gatherv")

        // scatter / scatterv
        let source = rank == root ? (0..<(2 * size)).map(Float.init) : nil
        c.expectEqual(try world.scatter(source, count: 2, root: root), [Float(2 * rank), Float(2 * rank + 1)], "scatter from \(root)")
        let chunks = rank == root ? (0..<size).map { [Int32](repeating: Int32($0), count: $0) } : nil
        c.expectEqual(try world.scatterv(chunks, root: root), [Int32](repeating: Int32(rank), count: rank), "scatterv from \(root)")
    }

    // allReduce: returned, into a buffer, in place, and a single value.
    let contribution = [Double(rank), 1.0, Double(rank) * 0.5]
    let expected = [Double(sumOfRanks), Double(size), Double(sumOfRanks) * 0.5]
    c.expectEqual(try world.allReduce(contribution, .sum), expected, "allReduce")
    var into = [Double](repeating: 0, count: 3)
    try world.allReduce(contribution, into: &into, .sum)
    c.expectEqual(into, expected, "allReduce into")
    var raw = [Double](repeating: 0, count: 3)
    try contribution.withUnsafeBufferPointer { send in
        try raw.withUnsafeMutableBufferPointer { try world.allReduce(send, into: $0, .sum) }
    }
    c.expectEqual(raw, expected, "allReduce between unsafe buffers")
    var inPlace = contribution
    try world.allReduce(inPlace: &inPlace, .sum)
    c.expectEqual(inPlace, expected, "allReduce in place")
    c.expectEqual(try world.allReduce(Int64(rank + 1), .product), Int64((1...size).reduce(1, *)), "allReduce product")

    // allGather(v)
    c.expectEqual(try world.allGather([rank, rank]), (0..<size).flatMap { [$0, $0] }, "allGather")
    c.expectEqual(try world.allGather(Int16(rank)), (0..<size).map(Int16.init), "allGather values")
    c.expectEqual(try world.allGatherv([UInt32](repeating: UInt32(rank), count: rank)), (0..<size).map { [UInt32](repeating: UInt32($0), count: $0) }, "allGatherv")

    // allToAll(v): block j of rank i is 100*i + j.
    let blocks = (0..<size).flatMap { [100 * rank + $0, -(100 * rank + $0)] }
    c.expectEqual(try world.allToAll(blocks), (0..<size).flatMap { [100 * $0 + rank, -(100 * $0 + rank)] }, "allToAll")
    let sendChunks = (0..<size).map { [Int](repeating: rank, count: $0 + 1) }  // rank j gets j+1 copies
    c.expectEqual(try world.allToAllv(sendChunks), (0..<size).map { [Int](repeating: $0, count: rank + 1) }, "allToAllv")

    // scan / exScan
    c.expectEqual(try world.scan([rank, 1], .sum), [rank * (rank + 1) / 2, rank + 1], "scan")
    let exclusive = try world.exScan([rank, 1], .sum)
    c.expectEqual(exclusive, rank == 0 ? nil : [rank * (rank - 1) / 2, rank], "exScan")

    // reduceScatter: rank i gets i+1 elements of the element-wise sum.
    let counts = (0..<size).map { $0 + 1 }
    let total = counts.reduce(0, +)
    let offset = counts.prefix(rank).reduce(0, +)
    let spread = try world.reduceScatter((0..<total).map { $0 * (rank + 1) }, counts: counts, .sum)
    let factor = size * (size + 1) / 2
    c.expectEqual(spread, (offset..<offset + rank + 1).map { $0 * factor }, "reduceScatter")
    let blockwise = try world.reduceScatterBlock((0..<(2 * size)).map { _ in rank }, .sum)
    c.expectEqual(blockwise, [sumOfRanks, sumOfRanks], "reduceScatterBlock")

    try checkBarrierHoldsEveryone(c, world) { try world.barrier() }
}

/// The last rank enters `barrier` `lateEntry` seconds after the others: no rank may leave
/// before then. Each rank measures its own time inside the barrier (no global clock needed);
/// a preceding barrier lines up the starts to within far less than the delay.
func checkBarrierHoldsEveryone(_ c: Checker, _ world: Communicator, _ name: String = "barrier",
                               _ barrier: () throws -> Void) throws {
    let lateEntry = 0.2
    try world.barrier()
    let last = world.size - 1
    if world.rank == last {
        let until = MPI.wtime() + lateEntry
        while MPI.wtime() < until { usleep(1_000) }
        try barrier()
    } else {
        let entered = MPI.wtime()
        try barrier()
        let inside = MPI.wtime() - entered
        c.expect(inside >= lateEntry / 2, "\(name) let rank \(world.rank) leave after \(inside) s, before rank \(last) entered (\(lateEntry) s)")
    }
}
