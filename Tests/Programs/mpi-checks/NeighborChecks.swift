import MPI
import CMPI

/// Groups, communicators made from them, node-local communicators, Cartesian sub-grids,
/// distributed graphs and the neighbourhood collectives over both kinds of topology.
func checkNeighbors(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size

    // Groups: local set algebra over world's processes.
    let everyone = try world.group()
    c.expectEqual(everyone.size, size, "world's group size")
    c.expectEqual(everyone.rank, rank, "my rank in world's group")
    let evens = try everyone.including(Array(stride(from: 0, to: size, by: 2)))
    let odds = try everyone.excluding(Array(stride(from: 0, to: size, by: 2)))
    c.expectEqual(evens.size + odds.size, size, "evens and odds partition the world")
    c.expectEqual(evens.rank, rank % 2 == 0 ? rank / 2 : nil, "my rank among the evens, or none")
    c.expectEqual(try evens.union(odds).size, size, "union")
    c.expectEqual(try evens.intersection(odds).size, 0, "intersection of disjoint groups")
    c.expectEqual(try everyone.subtracting(odds).compare(with: evens), .identical, "world minus odds is the evens")
    c.expectEqual(try evens.union(odds).compare(with: everyone), size > 2 ? .similar : .identical, "same processes, other order")
    c.expectEqual(try everyone.translate(Array(0..<size), to: evens), (0..<size).map { $0 % 2 == 0 ? $0 / 2 : nil }, "world ranks among the evens")
    let reversed = try everyone.including(Array((0..<size).reversed()))
    c.expectEqual(try reversed.translate([0], to: everyone), [size - 1], "rank 0 of the reversed group is the last")
    c.expectEqual(Group.empty.size, 0, "the empty group")
    c.expectThrows(MPI_ERR_RANK, "a rank outside the group") { _ = try everyone.including([size]) }

    // Communicators from groups: all of world calls create(group:), members get one.
    let evenComm = try world.create(group: evens)
    c.expect(rank % 2 == 0 ? evenComm?.size == evens.size : evenComm == nil, "create(group:) gives members a communicator")
    if let evenComm { c.expectEqual(try evenComm.allReduce(1, .sum), evens.size, "a collective on the created communicator") }
    // Only the members call create(group:tag:): the odds make theirs at the same time.
    let mine = rank % 2 == 0 ? evens : odds
    let own = try world.create(group: mine, tag: 7)
    c.expectEqual(own?.size, mine.size, "create(group:tag:) among the members only")
    c.expectEqual(try own?.allReduce(rank, .sum), (0..<size).filter { $0 % 2 == rank % 2 }.reduce(0, +), "its collective")

    // One communicator per node: the ranks that run under this rank's host name, in world's order.
    let node = try world.split(type: .sharedMemory)
    let hosts = try world.allGatherv(Array(try MPI.processorName().utf8))
    let sameHost = (0..<size).filter { hosts[$0] == hosts[rank] }
    c.expectEqual(node.size, sameHost.count, "one communicator per host")
    c.expectEqual(node.rank, sameHost.firstIndex(of: rank), "node-local ranks follow world's (key 0)")

    // A Cartesian grid: rows by cartesianSub, and a halo exchange as one neighbourhood call.
    let dims = try Communicator.balancedDimensions(processes: size, dimensions: 2)
    let grid = try world.cartesian(dimensions: dims, periodic: [true, false])!
    let coords = try grid.coordinates(of: grid.rank)
    let row = try grid.cartesianSub(keeping: [false, true])
    c.expectEqual(row.size, dims[1], "a row holds the second dimension's extent")
    c.expectEqual(row.rank, coords[1], "ranked by the kept coordinate")
    c.expectEqual(try row.allReduce(grid.rank, .sum), (0..<dims[1]).reduce(0) { $0 + coords[0] * dims[1] + $1 }, "a collective along the row")
    c.expectEqual(grid.topology, .cartesian, "the grid's topology")
    c.expect(world.topology == nil, "world has none")
    let (sources, destinations) = try grid.neighbors()
    let (up, down) = try grid.shift(dimension: 0), (left, right) = try grid.shift(dimension: 1)
    c.expectEqual(sources, [up, down, left, right], "a grid's neighbours: negative side first, per dimension")
    c.expectEqual(destinations, sources, "sends go the same way")
    let gathered = try grid.neighborAllGather([grid.rank, 100 + grid.rank])
    c.expectEqual(gathered, sources.map { $0 == Communicator.nullProcess ? [] : [$0, 100 + $0] }, "each neighbour's block; none past an edge")
    // Block j goes to neighbour j: each neighbour sends me the block meant for its opposite side.
    let faces = try grid.neighborAllToAll([10 * grid.rank + 0, 10 * grid.rank + 1, 10 * grid.rank + 2, 10 * grid.rank + 3])
    let expectedFaces: [[Int]] = sources.enumerated().map { i, source in
        source == Communicator.nullProcess ? [] : [10 * source + (i ^ 1)]
    }
    // Along a periodic dimension of extent 1 or 2 both sides are the same rank, and which of
    // its two blocks lands where is not pinned down: compare the unambiguous sides only.
    let clear = (0..<sources.count).filter { $0 >= 2 || dims[0] >= 3 }
    c.expectEqual(clear.map { faces[$0] }, clear.map { expectedFaces[$0] }, "each side's face comes from the neighbour across it")
    var flat = [Int](repeating: -1, count: 2 * sources.count)
    var pending = try grid.iNeighborAllGather([grid.rank, -grid.rank], into: flat)
    _ = try pending.test()
    flat = try pending.wait().buffer
    for (i, source) in sources.enumerated() {
        c.expectEqual(Array(flat[2 * i..<2 * i + 2]), source == Communicator.nullProcess ? [-1, -1] : [source, -source], "nonblocking gather, block \(i) (an edge's left as it was)")
    }

    // An unstructured halo: a ring where each rank sends to the next two and hears from the
    // previous two, with faces of different sizes.
    let next = [(rank + 1) % size, (rank + 2) % size], previous = [(rank - 1 + size) % size, (rank - 2 + 2 * size) % size]
    let graph = try world.distributedGraph(sources: previous, destinations: next, sourceWeights: [2, 1], destinationWeights: [2, 1])
    c.expectEqual(graph.topology, .distributedGraph, "the graph's topology")
    let around = try graph.neighbors()
    c.expectEqual(around.sources, previous, "the graph's sources as given")
    c.expectEqual(around.destinations, next, "the graph's destinations as given")
    c.expectEqual(try graph.neighborAllGather([rank]), previous.map { [$0] }, "gather from the previous two")
    // Rank r sends r+1 elements to its next neighbour and 1 to the one after.
    let sent = try graph.neighborAllToAll([Array(repeating: rank, count: rank + 1), [-rank]], receiveCounts: [previous[0] + 1, 1])
    c.expectEqual(sent, [Array(repeating: previous[0], count: previous[0] + 1), [-previous[1]]], "faces of different sizes")
    var request = try graph.iNeighborAllToAll([[rank, rank], [rank]], receiveCounts: [2, 1], into: [Int](repeating: 0, count: 3))
    c.expectEqual(try request.wait().buffer, [previous[0], previous[0], previous[1]], "the nonblocking alltoallv")
    let equal = try graph.iNeighborAllToAll([rank, 1000 + rank], into: [0, 0])
    c.expectEqual(try equal.wait().buffer, [previous[0], 1000 + previous[1]], "the nonblocking alltoall: block 0 to the next, 1 to the one after")
    let unweighted = try world.distributedGraph(sources: previous, destinations: next)
    c.expectEqual(try unweighted.neighbors().sources, previous, "an unweighted graph")

    // Bad shapes are refused before MPI sees them.
    c.expectThrows(MPI_ERR_COUNT, "a result of the wrong size") { var wrong = [0]; try grid.neighborAllGather([1, 2], into: &wrong) }
    c.expectThrows(MPI_ERR_COUNT, "blocks that do not split evenly") { _ = try grid.neighborAllToAll([1, 2, 3]) }
    c.expectThrows(MPI_ERR_COUNT, "one block per destination") { _ = try graph.neighborAllToAll([[1]], receiveCounts: [1, 1]) }
    c.expectThrows(MPI_ERR_ARG, "a weight per edge") { _ = try world.distributedGraph(sources: previous, destinations: next, sourceWeights: [1]) }
    c.expectThrows(MPI_ERR_TOPOLOGY, "no topology, no neighbours") { _ = try world.neighborAllGather([1]) }
}
