import MPI
import CMPI

/// Persistent requests: a ring exchange set up once and started every round, with
/// startAll/waitAll and start/test/wait; the buffer is refused while a request is started.
func checkPersistent(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let right = (rank + 1) % size, left = (rank + size - 1) % size
    let send = try world.sendInit(count: 4, of: Double.self, to: right, tag: 21)
    let receive = try world.receiveInit(count: 4, of: Double.self, from: left, tag: 21)
    c.expectEqual(try receive.values(), [0, 0, 0, 0], "a new buffer is zeros")
    for round in 0..<5 {
        try send.set((0..<4).map { Double(1000 * round + 10 * rank + $0) })
        try PersistentRequest.startAll([receive, send])
        c.expect(send.isStarted && receive.isStarted, "both started, round \(round)")
        c.expectThrows(MPI_ERR_REQUEST, "the receive buffer is MPI's while started") { _ = try receive.values() }
        c.expectThrows(MPI_ERR_REQUEST, "a started request is not started twice") { try send.start() }
        let statuses = try PersistentRequest.waitAll([receive, send])
        c.expectEqual(statuses[0].source, left, "from the left, round \(round)")
        c.expectEqual(try receive.values(), (0..<4).map { Double(1000 * round + 10 * left + $0) }, "the left's values, round \(round)")
    }
    // One at a time: start, poll with test, wait.
    try send.set([1, 2, 3, Double(rank)])
    try receive.start()
    try send.start()
    while try !receive.test() {}
    c.expect(!receive.isStarted, "test() true completes it")
    try send.wait()
    c.expectEqual(try receive.values().last, Double(left), "the last round came through start/test/wait")
    c.expectThrows(MPI_ERR_COUNT, "a buffer of the wrong length") { try send.set([1, 2]) }
    c.expectThrows(MPI_ERR_REQUEST, "wait() on a request not started") { try send.wait() }
    // In place, no copy: doubled where it lies.
    try send.withBuffer { buffer in for index in buffer.indices { buffer[index] *= 2 } }
    c.expectEqual(try send.values(), [2, 4, 6, Double(2 * rank)], "changed in place")
    try world.barrier()
}
