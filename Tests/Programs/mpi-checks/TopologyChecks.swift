import MPI
import CMPI

func checkTopology(_ c: Checker) throws {
    let world = Communicator.world
    let size = world.size
    let dims = try Communicator.balancedDimensions(processes: size, dimensions: 2)
    c.expectEqual(dims.reduce(1, *), size, "balanced dimensions multiply to size")
    c.expectEqual(try Communicator.balancedDimensions(processes: 12, dimensions: 2), [4, 3], "12 → 4×3")
    c.expectEqual(try Communicator.balancedDimensions(processes: 12, dimensions: 2, fixed: [2, 0]), [2, 6], "fixed dimension kept")

    guard let grid = try world.cartesian(dimensions: dims, periodic: [true, false]) else {
        c.expect(false, "every rank fits the grid")
        return
    }
    let layout = try grid.cartesianLayout()
    c.expectEqual(layout.dimensions, dims, "layout dimensions")
    c.expectEqual(layout.periodic, [true, false], "layout periodicity")
    let coords = try grid.coordinates(of: grid.rank)
    c.expectEqual(coords, layout.coordinates, "coordinates of my rank")
    c.expectEqual(try grid.rank(at: coords), grid.rank, "rank at my coordinates")
    // Row-major numbering.
    c.expectEqual(grid.rank, coords[0] * dims[1] + coords[1], "row-major ranks")

    // Periodic dimension 0 wraps; non-periodic dimension 1 ends in the null process.
    let (up, down) = try grid.shift(dimension: 0)
    c.expectEqual(up, try grid.rank(at: [(coords[0] - 1 + dims[0]) % dims[0], coords[1]]), "periodic shift source")
    c.expectEqual(down, try grid.rank(at: [(coords[0] + 1) % dims[0], coords[1]]), "periodic shift destination")
    let (left, right) = try grid.shift(dimension: 1)
    c.expectEqual(left, coords[1] == 0 ? Communicator.nullProcess : try grid.rank(at: [coords[0], coords[1] - 1]), "edge source")
    c.expectEqual(right, coords[1] == dims[1] - 1 ? Communicator.nullProcess : try grid.rank(at: [coords[0], coords[1] + 1]), "edge destination")

    // Exchange with neighbours: the null process makes edges no-ops.
    var fromLeft = [-1]
    try grid.sendReceive([grid.rank], to: right, into: &fromLeft, from: left)
    c.expectEqual(fromLeft, [left == Communicator.nullProcess ? -1 : left], "halo exchange along the row")

    // A grid larger than the world is an error; a smaller one leaves ranks out.
    c.expectThrows(MPI_ERR_ARG, "grid larger than the world") { _ = try world.cartesian(dimensions: [size + 1], periodic: [false]) }
    if size > 1 {
        let partial = try world.cartesian(dimensions: [size - 1], periodic: [false])
        c.expect(world.rank == size - 1 ? partial == nil : partial != nil, "rank outside a smaller grid gets nil")
    }
}
