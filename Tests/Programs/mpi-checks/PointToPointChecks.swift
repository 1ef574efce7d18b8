import MPI
import CMPI

/// Sends a typed array around the ring with sendReceive and checks what came back.
func ringRoundTrip<T: MPIDatatype & Equatable>(_ c: Checker, _ make: (Int) -> T) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let right = (rank + 1) % size, left = (rank + size - 1) % size
    let mine = (0..<5).map { make(rank * 10 + $0) }
    var received = [T](repeating: make(0), count: 5)
    let status = try world.sendReceive(mine, to: right, sendTag: 3, into: &received, from: left, receiveTag: 3)
    c.expectEqual(received, (0..<5).map { make(left * 10 + $0) }, "ring of \(T.self)")
    c.expectEqual(status.source, left, "status source for \(T.self)")
    c.expectEqual(status.tag, 3, "status tag for \(T.self)")
    c.expectEqual(try status.count(of: T.self), 5, "status count for \(T.self)")
}

func checkPointToPoint(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let right = (rank + 1) % size, left = (rank + size - 1) % size

    try checkSlices(c)
    try ringRoundTrip(c) { Int8(truncatingIfNeeded: $0) }
    try ringRoundTrip(c) { Int16($0) }
    try ringRoundTrip(c) { Int32($0) }
    try ringRoundTrip(c) { Int64($0) }
    try ringRoundTrip(c) { UInt8($0) }
    try ringRoundTrip(c) { UInt16($0) }
    try ringRoundTrip(c) { UInt32($0) }
    try ringRoundTrip(c) { UInt64($0) }
    try ringRoundTrip(c) { Int($0) - 1_000_000_000_000 }
    try ringRoundTrip(c) { UInt($0) + (1 << 40) }
    try ringRoundTrip(c) { Float($0) + 0.5 }
    try ringRoundTrip(c) { Double($0) + 0.25 }
    try ringRoundTrip(c) { $0 % 3 == 0 }

    // sendReceiveReplace: the array is replaced by the left neighbour's.
    var values = [Double](repeating: Double(rank), count: 4)
    try world.sendReceiveReplace(&values, to: right, from: left)
    c.expectEqual(values, [Double](repeating: Double(left), count: 4), "sendReceiveReplace")

    try checkSendModes(c)
    guard size >= 2 else { return }
    // Rank 0 and rank 1 exercise the blocking calls in pairs.
    if rank == 0 {
        try world.send(7.5, to: 1, tag: 11)
        try world.send([1, 2, 3], to: 1, tag: 12)
        try world.send(Array(0..<1000).map(Int32.init), to: 1, tag: 13)  // unknown length at the receiver
        try world.synchronousSend([UInt8](repeating: 9, count: 100), to: 1, tag: 14)
        let raw: [Int16] = [5, 6]
        try raw.withUnsafeBufferPointer { try world.send($0, to: 1, tag: 15) }
        try world.send(1 as Int, to: 1, tag: 16)
        try world.send(2 as Int, to: 1, tag: 17)
        // Answer back so rank 1 exercises send and rank 0 receive(into: buffer).
        var back = [Float](repeating: 0, count: 3)
        let status = try back.withUnsafeMutableBufferPointer { try world.receive(into: $0, from: 1, tag: 18) }
        c.expectEqual(back, [1, 2, 3], "receive into an unsafe buffer")
        c.expectEqual(status.source, 1, "status from 1")
    } else if rank == 1 {
        let value: Double = try world.receive(from: 0, tag: 11)
        c.expectEqual(value, 7.5, "single value")
        var array = [Int](repeating: 0, count: 3)
        try world.receive(into: &array, from: 0, tag: 12)
        c.expectEqual(array, [1, 2, 3], "array receive")
        // Probe first, then receive a message of unknown length.
        let probed = try world.probe(from: 0, tag: 13)
        c.expectEqual(try probed.count(of: Int32.self), 1000, "probe counts the message")
        c.expectEqual(probed.source, 0, "probe source")
        let (unknown, status) = try world.receiveArray(of: Int32.self, from: Communicator.anySource, tag: 13)
        c.expectEqual(unknown, Array(0..<1000).map(Int32.init), "receiveArray of unknown length")
        c.expectEqual(status.source, 0, "receiveArray status")
        var bytes = [UInt8](repeating: 0, count: 100)
        try world.receive(into: &bytes, from: 0, tag: 14)
        c.expectEqual(bytes, [UInt8](repeating: 9, count: 100), "synchronous send")
        var raw: [Int16] = [0, 0]
        try world.receive(into: &raw, from: 0, tag: 15)
        c.expectEqual(raw, [5, 6], "send from an unsafe buffer")
        // iprobe: messages 16 and 17 are both on their way; any tag returns one of them.
        var found: Status? = nil
        while found == nil { found = try world.iprobe(from: 0, tag: Communicator.anyTag) }
        c.expectEqual(found?.tag, 16, "iprobe sees the earlier message first (non-overtaking)")
        let (first, firstStatus) = try world.receiveWithStatus(Int.self, from: 0, tag: Communicator.anyTag)
        c.expectEqual(first, 1, "any-tag receive in order")
        c.expectEqual(firstStatus.tag, 16, "any-tag status")
        let second: Int = try world.receive(from: Communicator.anySource, tag: 17)
        c.expectEqual(second, 2, "any-source receive")
        try c.expect(try world.iprobe(from: 0, tag: 99) == nil, "iprobe finds nothing when nothing was sent")
        try world.send([Float(1), 2, 3], to: 0, tag: 18)
    }
}

/// Slices are sent and received in place.
func checkSlices(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let right = (rank + 1) % size, left = (rank + size - 1) % size
    let outgoing = (0..<10).map { $0 + rank * 100 }
    let request = try world.irecv(into: [Int](repeating: 0, count: 4), from: left, tag: 31)
    try world.send(outgoing[3..<7], to: right, tag: 31)
    let (received, _) = try request.wait()
    c.expectEqual(received, (3..<7).map { $0 + left * 100 }, "slice sent in place")

    var incoming = [Int](repeating: -1, count: 10)
    let pending = try world.isend(Array(outgoing[0..<8]), to: right, tag: 33)
    let status = try world.receive(into: &incoming, range: 2..<10, from: left, tag: 33)
    _ = try pending.wait()
    c.expectEqual(try status.count(of: Int.self), 8, "slice receive count")
    c.expectEqual(Array(incoming[0..<2]), [-1, -1], "elements before the slice untouched")
    c.expectEqual(Array(incoming[2..<10]), (0..<8).map { $0 + left * 100 }, "slice received in place")
}

/// Buffered sends return before any receive is posted (here: every rank sends to its right
/// neighbour, then receives), within the attached buffer and no further; ready sends go to
/// receives posted before a barrier.
func checkSendModes(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let right = (rank + 1) % size, left = (rank + size - 1) % size
    c.expectThrows(MPI_ERR_BUFFER, "detaching with nothing attached") { try MPI.detachSendBuffer() }
    let message = (0..<2000).map { Double(rank * 10_000 + $0) }
    let one = try MPI.bufferedSendSize(of: Double.self, count: message.count)
    c.expect(one >= message.count * 8 + MPI.bufferedSendOverhead, "a message's size in the buffer")
    try MPI.attachSendBuffer(bytes: 2 * one)
    c.expectThrows(MPI_ERR_BUFFER, "attaching twice") { try MPI.attachSendBuffer(bytes: 64) }
    // 16 KB each: above the eager limit of shared memory, so a standard send to a rank that
    // sends too before it receives could wait; the buffered ones return at once.
    try world.bufferedSend(message, to: right, tag: 31)
    try world.bufferedSend(Array(message.reversed()), to: right, tag: 32)
    // A message larger than the whole buffer never fits, whatever has left it meanwhile (one
    // of the buffer's size could fit once the first two were delivered, and then wait for a
    // receive that never comes: detach would wait for ever). On a scratch communicator:
    // Open MPI 4.1 spends the refused message's sequence number, and the communicator's
    // later messages to that rank would wait for it for ever.
    let scratch = try world.dup()
    let tooLarge = [Double](repeating: 0, count: 3 * message.count)
    c.expectThrows(MPI_ERR_BUFFER, "a message larger than the buffer") { try scratch.bufferedSend(tooLarge, to: right, tag: 33) }
    let first = try world.receiveArray(of: Double.self, from: left, tag: 31).values
    let second = try world.receiveArray(of: Double.self, from: left, tag: 32).values
    c.expectEqual(first, (0..<2000).map { Double(left * 10_000 + $0) }, "first buffered message")
    c.expectEqual(second, first.reversed(), "second buffered message")
    c.expectEqual(try MPI.detachSendBuffer(), 2 * one, "detach waits for the messages and gives the size back")

    // Ready send: the receive is posted before the barrier, the send after it.
    let receive = try world.irecv(into: [Int](repeating: 0, count: 3), from: left, tag: 34)
    try world.barrier()
    try world.readySend([rank, rank + 1, rank + 2], to: right, tag: 34)
    let (values, _) = try receive.wait()
    c.expectEqual(values, [left, left + 1, left + 2], "ready send")
}

