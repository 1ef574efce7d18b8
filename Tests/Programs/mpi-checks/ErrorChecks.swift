import MPI
import CMPI

func checkErrors(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size

    // Errors are thrown with MPI's class and text instead of aborting the job.
    c.expectThrows(MPI_ERR_RANK, "send to a rank that does not exist") { try world.send(1, to: size + 3) }
    c.expectThrows(MPI_ERR_RANK, "receive from a negative rank") { let _: Int = try world.receive(from: -7) }
    c.expectThrows(MPI_ERR_TAG, "negative tag") { try world.send(1, to: rank, tag: -5) }
    do {
        try world.send(1, to: size + 3)
    } catch {
        c.expect(error.message.lowercased().contains("rank"), "message is MPI's text: \(error.message)")
        c.expect(error.description.contains("MPI error"), "description")
    }

    // A message longer than the receive buffer: a truncation error, and not one byte
    // written past the buffer (a guard element behind it stays intact).
    var guarded = [Int64](repeating: -1, count: 4)
    try world.send([Int64](repeating: 7, count: 8), to: rank, tag: 21)
    var caught: MPIError?
    do {
        try guarded.withUnsafeMutableBufferPointer { buffer in
            let short = UnsafeMutableBufferPointer(rebasing: buffer[0..<2])
            try world.receive(into: short, from: rank, tag: 21)
        }
    } catch {
        caught = error as? MPIError
    }
    c.expect(caught?.isTruncation == true, "truncation error thrown: \(String(describing: caught))")
    c.expectEqual(guarded[2], -1, "no write past the buffer")
    c.expectEqual(guarded[3], -1, "no write past the buffer")

    // Wrong shapes are caught by the wrapper before MPI sees them.
    var wrongSize = [0.0]
    c.expectThrows(MPI_ERR_COUNT, "allReduce into a buffer of another count") { try world.allReduce([1.0, 2.0], into: &wrongSize, .sum) }
    c.expectThrows(MPI_ERR_COUNT, "reduceScatter counts that do not add up") { _ = try world.reduceScatter([1, 2, 3], counts: [Int](repeating: 0, count: size), .sum) }
    if size > 1 {
        c.expectThrows(MPI_ERR_COUNT, "allToAll of a count that does not divide") { _ = try world.allToAll([Int](repeating: 1, count: size * 2 + 1)) }
    }
    // Past Int32 a count goes as one derived element (LargeCountChecks); past what even that
    // spans (2³¹ blocks of 2³⁰) it is refused. Never dereferenced: the count is rejected
    // before MPI sees the pointer.
    c.expectThrows(MPI_ERR_COUNT, "a count beyond 2⁶¹") {
        try world.send(UnsafeBufferPointer<UInt8>(start: UnsafePointer(bitPattern: 0x1000), count: (Int(Int32.max) + 1) << 30), to: rank) }
    // A message whose size is not a whole number of elements.
    try world.send([UInt8](repeating: 1, count: 3), to: rank, tag: 22)
    let probed = try world.probe(from: rank, tag: 22)
    c.expectThrows(MPI_ERR_TYPE, "count of Int16 in 3 bytes") { _ = try probed.count(of: Int16.self) }
    var drain = [UInt8](repeating: 0, count: 3)
    try world.receive(into: &drain, from: rank, tag: 22)

    // Everyone is still here: errors did not kill the job.
    c.expectEqual(try world.allReduce(1, .sum), size, "job alive after errors")
}
