import MPI
import CMPI

func checkNonblocking(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let right = (rank + 1) % size, left = (rank + size - 1) % size

    // A ring with isend/irecv: the receive buffer goes into the request and comes back filled.
    var outgoing = [Double](repeating: Double(rank), count: 1000)
    let receive = try world.irecv(into: [Double](repeating: -1, count: 1000), from: left, tag: 1)
    let send = try world.isend(outgoing, to: right, tag: 1)
    // Changing our array now must not change what is being sent (the request owns its copy).
    outgoing[0] = -99
    let (received, status) = try receive.wait()
    _ = try send.wait()
    c.expectEqual(received, [Double](repeating: Double(left), count: 1000), "irecv ring")
    c.expectEqual(status.source, left, "irecv status")
    c.expectEqual(outgoing[0], -99, "caller's array is its own")

    // A group of requests: both halo directions at once, completed with waitAll.
    var group = RequestGroup<[Int]>()
    group.append(try world.irecv(into: [0, 0], from: left, tag: 2))
    group.append(try world.irecv(into: [0, 0], from: right, tag: 3))
    group.append(try world.isend([rank, 1], to: right, tag: 2))
    group.append(try world.isend([rank, 2], to: left, tag: 3))
    c.expectEqual(group.count, 4, "group count")
    let results = try group.waitAll()
    c.expectEqual(results[0].buffer, [left, 1], "waitAll: from the left")
    c.expectEqual(results[1].buffer, [right, 2], "waitAll: from the right")
    c.expectEqual(results[0].status.source, left, "waitAll status")

    // waitAny returns each request once, then nil.
    var any = RequestGroup<[Int]>()
    any.append(try world.irecv(into: [0], from: left, tag: 4))
    any.append(try world.isend([rank], to: right, tag: 4))
    var seen = Set<Int>()
    while let (index, buffer, _) = try any.waitAny() {
        seen.insert(index)
        if index == 0 { c.expectEqual(buffer, [left], "waitAny receive") }
    }
    c.expectEqual(seen, [0, 1], "waitAny visits each request once")
    try c.expect(try any.testAll(), "testAll after completion")

    // test() polls until completion.
    var polled = try world.irecv(into: [Int32(0)], from: left, tag: 5)
    try world.send([Int32(rank)], to: right, tag: 5)
    while try !polled.test() {}
    let (polledValue, _) = try polled.wait()
    c.expectEqual(polledValue, [Int32(left)], "test then wait")

    // Cancelling a receive that nothing matches.
    var cancelled = try world.irecv(into: [0.0], from: left, tag: 999)
    try cancelled.cancel()
    let (_, cancelStatus) = try cancelled.wait()
    c.expect(cancelStatus.isCancelled, "cancelled receive reports cancelled")

    // A request dropped without wait() completes in its deinit: the buffer stays valid.
    do {
        _ = try world.isend([rank, rank], to: right, tag: 6)
    }
    var late = [0, 0]
    try world.receive(into: &late, from: left, tag: 6)
    c.expectEqual(late, [left, left], "dropped request still delivered")

    // A window over one buffer, as bandwidth codes post it: unsafe-buffer requests in a
    // reusable group, completed with complete() and filled again.
    let window = 8
    let outgoingBuffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 4)
    let incomingBuffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 4 * window)
    defer { outgoingBuffer.deallocate(); incomingBuffer.deallocate() }
    _ = outgoingBuffer.initialize(from: (0..<4).map { Int32(rank * 10 + $0) })
    incomingBuffer.initialize(repeating: -1)
    var sends = RequestGroup<UnsafeBufferPointer<Int32>>(capacity: window)
    var receives = RequestGroup<UnsafeMutableBufferPointer<Int32>>(capacity: window)
    for round in 0..<2 {
        for slot in 0..<window {
            let target = UnsafeMutableBufferPointer(rebasing: incomingBuffer[(slot * 4)..<(slot * 4 + 4)])
            receives.append(try world.irecv(into: target, from: left, tag: 40 + round))
        }
        for _ in 0..<window { sends.append(try world.isend(UnsafeBufferPointer(outgoingBuffer), to: right, tag: 40 + round)) }
        c.expectEqual(receives.count, window, "window posted")
        try sends.complete()
        try receives.complete()
        c.expectEqual(receives.count, 0, "complete() empties the group for reuse")
        c.expectEqual(Array(incomingBuffer), Array((0..<window).map { _ in (0..<4).map { Int32(left * 10 + $0) } }.joined()), "window round \(round)")
    }
    // Status.error is MPI_SUCCESS for a completed receive.
    let probe = try world.irecv(into: [0], from: left, tag: 50)
    try world.send([1], to: right, tag: 50)
    c.expectEqual(try probe.wait().status.error, 0, "status error field")

    // ibarrier is not complete while a rank has not entered it, and holds every rank until then.
    try checkBarrierHoldsEveryone(c, world, "ibarrier") {
        var barrier = try world.ibarrier()
        if world.rank != world.size - 1 {
            let done = try barrier.test()
            c.expect(!done, "ibarrier completed on rank \(world.rank) before the last rank entered it")
        }
        _ = try barrier.wait()
    }

    try checkNonblockingCollectives(c)
}

/// The nonblocking collectives give what the blocking ones give, own their buffers while
/// pending (a caller's change after the start does not reach MPI), overlap with work, and
/// complete through a group with waitSome/testSome/testAny, each once.
func checkNonblockingCollectives(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size

    var mine = (0..<4).map { Double(rank * 4 + $0) }
    let sum = try world.iAllReduce(mine, .sum)
    mine[0] = -1_000  // after the start: the request reads its own copy
    c.expectEqual(try sum.wait().buffer, try world.allReduce((0..<4).map { Double(rank * 4 + $0) }, .sum), "iAllReduce = allReduce")

    // Into memory the caller keeps: no allocation, the same sums.
    let contribution = UnsafeMutableBufferPointer<Double>.allocate(capacity: 4), total = UnsafeMutableBufferPointer<Double>.allocate(capacity: 4)
    defer { contribution.deallocate(); total.deallocate() }
    for i in 0..<4 { contribution[i] = Double(rank * 4 + i) }
    let pending = try world.iAllReduce(UnsafeBufferPointer(contribution), into: total, .sum)
    c.expectEqual(Array(try pending.wait().buffer), try world.allReduce(Array(contribution), .sum), "iAllReduce(_:into:) = allReduce")
    c.expectThrows(MPI_ERR_COUNT, "a result of another length") { _ = try world.iAllReduce(UnsafeBufferPointer(contribution), into: UnsafeMutableBufferPointer(rebasing: total[0..<3]), .sum) }

    let reduced = try world.iReduce([rank, 1], .max, root: size - 1)
    let (atRoot, _) = try reduced.wait()
    c.expectEqual(atRoot, rank == size - 1 ? [size - 1, 1] : nil, "iReduce at its root only")

    let broadcast = try world.iBroadcast(rank == 0 ? [7, 8, 9] : [0, 0, 0])
    c.expectEqual(try broadcast.wait().buffer, [7, 8, 9], "iBroadcast")

    c.expectEqual(try world.iScan([1], .sum).wait().buffer, [rank + 1], "iScan")
    c.expectEqual(try world.iAllGather([rank, -rank]).wait().buffer, (0..<size).flatMap { [$0, -$0] }, "iAllGather")
    c.expectEqual(try world.iGather([Int32(rank)], root: 0).wait().buffer, rank == 0 ? (0..<size).map(Int32.init) : nil, "iGather")
    let scattered = try world.iScatter(rank == 0 ? (0..<(2 * size)).map { $0 * 10 } : nil, count: 2, root: 0)
    c.expectEqual(try scattered.wait().buffer, [rank * 20, rank * 20 + 10], "iScatter")
    let exchanged = try world.iAllToAll((0..<size).map { rank * 100 + $0 })
    c.expectEqual(try exchanged.wait().buffer, (0..<size).map { $0 * 100 + rank }, "iAllToAll")
    let blocks = try world.iReduceScatterBlock((0..<(2 * size)).map { _ in 1 }, .sum)
    c.expectEqual(try blocks.wait().buffer, [size, size], "iReduceScatterBlock")

    // Overlap: work between the start and the wait, the sum still right.
    let overlap = try world.iAllReduce([Int64(rank)], .sum)
    var work = 0.0
    for i in 0..<100_000 { work += Double(i).squareRoot() }
    c.expect(work > 0, "work done meanwhile")
    c.expectEqual(try overlap.wait().buffer, [Int64(size * (size - 1) / 2)], "iAllReduce after overlapped work")

    // A custom Swift operation cannot run in a nonblocking reduction: refused, not a crash.
    let custom = try Operation.custom(Int.self, commutative: true) { $0 + $1 }
    c.expectThrows(MPI_ERR_OP, "iAllReduce with Operation.custom") { _ = try world.iAllReduce([1], custom) }

    // Several collectives in one group: waitSome returns each once, then nothing.
    var group = RequestGroup<[Int]>()
    group.append(try world.iAllReduce([rank], .sum))
    group.append(try world.iAllGather([rank]))
    group.append(try world.iBroadcast(rank == 0 ? [42] : [0]))
    var seen: [Int: [Int]] = [:]
    while true {
        let done = try group.waitSome()
        if done.isEmpty { break }
        for (index, buffer, _) in done {
            c.expect(seen[index] == nil, "waitSome returned request \(index) twice")
            seen[index] = buffer
        }
    }
    c.expectEqual(seen[0], [size * (size - 1) / 2], "waitSome: the sum")
    c.expectEqual(seen[1], Array(0..<size), "waitSome: the gather")
    c.expectEqual(seen[2], [42], "waitSome: the broadcast")

    // testSome and testAny poll; a barrier in flight completes once every rank is in it.
    var polled = RequestGroup<[Int]>()
    polled.append(try world.iAllReduce([1], .sum))
    polled.append(try world.iAllReduce([2], .sum))
    var results: [Int: [Int]] = [:]
    while results.count < 2 {
        for (index, buffer, _) in try polled.testSome() { results[index] = buffer }
        if results.count < 2, let (index, buffer, _) = try polled.testAny() { results[index] = buffer }
    }
    c.expectEqual(results[0], [size], "testSome/testAny: first")
    c.expectEqual(results[1], [2 * size], "testSome/testAny: second")
    c.expectEqual(try polled.testSome().count, 0, "nothing left to report")
}

