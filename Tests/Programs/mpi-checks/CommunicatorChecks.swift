import MPI
import CMPI

func checkCommunicators(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size

    let dup = try world.dup()
    c.expectEqual(dup.size, size, "dup size")
    c.expectEqual(dup.rank, rank, "dup rank")
    c.expectEqual(try dup.compare(with: world), .congruent, "dup is congruent")
    c.expectEqual(try world.compare(with: world), .identical, "world is identical to itself")
    // Messages on the dup do not match receives on world (separate context).
    try dup.send(rank, to: rank, tag: 1)
    try c.expect(try world.iprobe(from: rank, tag: 1) == nil, "dup's message is not visible on world")
    let mine: Int = try dup.receive(from: rank, tag: 1)
    c.expectEqual(mine, rank, "receive on dup")

    // split into even and odd ranks, ordered by descending rank.
    let half = try world.split(color: rank % 2, key: -rank)!
    let sameParity = (0..<size).filter { $0 % 2 == rank % 2 }
    c.expectEqual(half.size, sameParity.count, "split size")
    c.expectEqual(half.rank, sameParity.reversed().firstIndex(of: rank)!, "split rank ordered by key")
    c.expectEqual(try half.allReduce(rank, .sum), sameParity.reduce(0, +), "collective on a split")
    if size > 1 {
        c.expectEqual(try half.compare(with: world), .unequal, "split differs from world")
    }
    let reversed = try world.split(color: 0, key: size - rank)!
    c.expectEqual(try reversed.compare(with: world), size > 1 ? .similar : .congruent, "same group, other order")

    // A nil color leaves the process out.
    let onlyZero = try world.split(color: rank == 0 ? 1 : nil)
    c.expect(rank == 0 ? onlyZero?.size == 1 : onlyZero == nil, "split with no color")

    try half.free()
    c.expect(half.isFreed, "freed")
    try half.free()  // freeing twice is harmless
    c.expectThrows(MPI_ERR_COMM, "freeing world") { try world.free() }
    c.expectThrows(MPI_ERR_COMM, "freeing solo") { try Communicator.solo.free() }
    // Communicators dropped without free() are freed by their deinit. Open MPI gives a new
    // communicator the lowest free Fortran handle (MPI_Comm_c2f): if dropped dups were
    // leaked, a dup made after 100 of them would get a handle 100 places further on.
    let before = MPI_Comm_c2f(try world.dup().handle)
    for _ in 0..<100 { _ = try world.dup() }
    let after = MPI_Comm_c2f(try world.dup().handle)
    c.expectEqual(after, before, "a dropped dup's handle is free again (its deinit freed it)")

    try checkIntercommunicators(c)
}

/// Evens and odds as the two groups of an intercommunicator: each local rank r talks to the
/// other group's rank r, and merging ranks the evens (low) before the odds (high).
func checkIntercommunicators(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    c.expect(!world.isIntercommunicator, "world is an intracommunicator")
    c.expectEqual(world.remoteSize, 0, "no remote group on world")
    c.expectThrows(MPI_ERR_COMM, "merging an intracommunicator") { _ = try world.merged(high: false) }
    guard size >= 2 else { return }
    let parity = rank % 2
    let local = try world.split(color: parity, key: rank)!
    let evens = (size + 1) / 2, odds = size / 2
    // Leaders: world rank 0 for the evens, world rank 1 for the odds.
    let inter = try local.intercommunicator(localLeader: 0, peer: world, remoteLeader: parity == 0 ? 1 : 0, tag: 77)
    c.expect(inter.isIntercommunicator, "an intercommunicator")
    c.expectEqual(inter.size, local.size, "its local group")
    c.expectEqual(inter.remoteSize, parity == 0 ? odds : evens, "the other group's size")
    c.expectEqual(try inter.remoteGroup().size, inter.remoteSize, "the remote group")
    if local.rank < inter.remoteSize {
        // Ranks name the other group's processes: both send first, then receive (buffered by
        // Open MPI's eager protocol at this size, and sendReceive is safe either way).
        var received = [0]
        _ = try inter.sendReceive([rank], to: local.rank, sendTag: 5, into: &received, from: local.rank, receiveTag: 5)
        c.expectEqual(received[0], 2 * local.rank + (1 - parity), "the other group's process of my local rank")
    }
    let merged = try inter.merged(high: parity == 1)
    c.expectEqual(merged.size, size, "merged size")
    c.expectEqual(merged.rank, parity == 0 ? rank / 2 : evens + rank / 2, "evens first, then odds")
    c.expectEqual(try merged.allReduce(rank, .sum), size * (size - 1) / 2, "a collective on the merged communicator")
}
