import MPI
import CMPI

/// A work item and its result, as a Monte Carlo or parameter-sweep driver would send them.
struct WorkItem: Codable, Equatable {
    enum Kind: String, Codable { case mesh, solve }
    var id: Int
    var kind: Kind
    var parameters: [String: Double]
    var label: String
}

/// Codable values as messages: point to point, broadcast, gather, all-gather, scatter.
func checkObjects(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    func item(_ i: Int) -> WorkItem {
        WorkItem(id: i, kind: i % 2 == 0 ? .mesh : .solve, parameters: ["re": 100.0 * Double(i + 1), "dt": 1e-3], label: "cas \(i) — ünïcode ✓")
    }

    // A ring of objects: to the next rank, from the previous, whatever their size.
    let next = (rank + 1) % size, previous = (rank - 1 + size) % size
    try world.send(object: item(rank), to: next, tag: 3)
    let (got, status) = try world.receiveObject(WorkItem.self, from: previous, tag: 3)
    c.expectEqual(got, item(previous), "an object from the previous rank")
    c.expectEqual(status.source, previous, "and where it came from")
    // Any source: a value of another shape (an array of strings).
    try world.send(object: Array(repeating: "x", count: rank + 1), to: 0, tag: 4)
    if rank == 0 {
        var lengths: [Int] = []
        for _ in 0..<size { lengths.append(try world.receiveObject([String].self, tag: 4).object.count) }
        c.expectEqual(lengths.sorted(), Array(1...size), "objects of different sizes from every rank")
    }

    c.expectEqual(try world.broadcast(object: rank == 0 ? item(42) : nil), item(42), "broadcast of the root's object")
    let gathered = try world.gather(object: item(rank), root: size - 1)
    c.expectEqual(gathered, rank == size - 1 ? (0..<size).map(item) : nil, "gather at the last rank, in rank order")
    c.expectEqual(try world.allGather(object: ["rank": rank]), (0..<size).map { ["rank": $0] }, "all-gather of dictionaries")
    c.expectEqual(try world.scatter(objects: rank == 0 ? (0..<size).map(item) : nil), item(rank), "scatter: my own item")

    // The wrong type is an error that names the sender and the type, never a crash.
    try world.send(object: "not a work item", to: next, tag: 5)
    do {
        _ = try world.receiveObject(WorkItem.self, from: previous, tag: 5)
        c.expect(false, "a string decoded as a WorkItem")
    } catch let error as ObjectMessageError {
        c.expect(error.description.contains("from rank \(previous) is not a WorkItem"), "the error names sender and type: \(error)")
    }
    if rank == 0 {
        do {
            _ = try world.broadcast(object: Optional<Int>.none)
            c.expect(false, "a root with nothing to broadcast")
        } catch let error as ObjectMessageError {
            c.expect(error.description.contains("root (rank 0) passed nil"), "\(error)")
        }
    }
}
