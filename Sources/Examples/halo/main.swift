// halo: smoothing on an unstructured mesh, the halo exchange of a partitioned CFD or crash
// code. The mesh is a graph of cells (a ring with long-range chords, so a partition has
// neighbours that are not its left and right); each rank owns a contiguous block of cells
// and needs, each step, the values of the cells next to its own that others own (its ghosts).
//
// The partitions that share a face become a distributed graph topology
// (MPI_Dist_graph_create_adjacent), and each step's ghosts travel in one neighbourhood
// all-to-all with a block of its own length per neighbour (MPI_Ineighbor_alltoallv),
// started before the interior cells are updated and waited for before the boundary ones:
// communication overlaps computation. With --check, rank 0 runs the whole mesh alone and
// compares every cell bit for bit (same sums in the same order).
//
//   mpirun -np 4 halo [--cells 100000] [--steps 100] [--check]
import MPI
#if canImport(Glibc)
import Glibc
#endif

func option(_ name: String, default value: Int) -> Int {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]), v > 0 else { return value }
    return v
}

/// The mesh: cell i touches i ± 1 (a ring) and, for every third cell, the chord to
/// (7i + 3) mod n and back. Neighbour lists are sorted and hold no duplicate.
struct Mesh {
    let cells: Int
    let neighbours: [[Int]]

    init(cells: Int) {
        self.cells = cells
        var sets = Array(repeating: Set<Int>(), count: cells)
        for i in 0..<cells {
            for j in [(i + 1) % cells, (i + cells - 1) % cells] where j != i { sets[i].insert(j) }
            if i % 3 == 0 {
                let j = (7 * i + 3) % cells
                if j != i { sets[i].insert(j); sets[j].insert(i) }
            }
        }
        neighbours = sets.map { $0.sorted() }
    }

    /// The first cell of `rank`'s block (blocks as even as can be, the first ones one larger).
    func first(of rank: Int, ranks: Int) -> Int { rank * (cells / ranks) + min(rank, cells % ranks) }
    func owner(of cell: Int, ranks: Int) -> Int {
        var low = 0, high = ranks - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if first(of: middle, ranks: ranks) <= cell { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// One Jacobi smoothing step of a cell: its value and its neighbours', averaged.
    func smoothed(_ cell: Int, _ value: (Int) -> Double) -> Double {
        var sum = value(cell)
        for j in neighbours[cell] { sum += value(j) }
        return sum / Double(neighbours[cell].count + 1)
    }
}

func initial(_ cell: Int) -> Double { Double((cell * 37) % 101) }

do {
    try MPI.initialize()
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let cells = max(option("--cells", default: 100_000), size)
    let steps = option("--steps", default: 100)
    let check = CommandLine.arguments.contains("--check")
    let mesh = Mesh(cells: cells)
    let low = mesh.first(of: rank, ranks: size), high = mesh.first(of: rank + 1, ranks: size)

    // Who owns the cells next to mine: my neighbouring partitions. Faces are symmetric, so
    // they are both whom I send to and whom I receive from, in one order (by rank).
    var sendCells: [Int: Set<Int>] = [:], ghostCells: [Int: Set<Int>] = [:]
    var interior: [Int] = [], boundary: [Int] = []
    for cell in low..<high {
        var touchesOthers = false
        for j in mesh.neighbours[cell] where j < low || j >= high {
            let other = mesh.owner(of: j, ranks: size)
            sendCells[other, default: []].insert(cell)
            ghostCells[other, default: []].insert(j)
            touchesOthers = true
        }
        if touchesOthers { boundary.append(cell) } else { interior.append(cell) }
    }
    let partners = sendCells.keys.sorted()
    let graph = try world.distributedGraph(sources: partners, destinations: partners)
    let sendLists = partners.map { sendCells[$0]!.sorted() }
    let ghostLists = partners.map { ghostCells[$0]!.sorted() }
    let receiveCounts = ghostLists.map(\.count)
    // Where each ghost lands: its cell's slot in the received block.
    var ghostSlot: [Int: Int] = [:]
    for (offset, cell) in ghostLists.joined().enumerated() { ghostSlot[cell] = offset }

    var values = (low..<high).map(initial)
    var next = values
    var ghosts = [Double](repeating: 0, count: receiveCounts.reduce(0, +))
    try world.barrier()
    let start = MPI.wtime()
    for _ in 0..<steps {
        let blocks = sendLists.map { list in list.map { values[$0 - low] } }
        let exchange = try graph.iNeighborAllToAll(blocks, receiveCounts: receiveCounts, into: ghosts)
        // The interior needs no ghost: computed while the halo travels.
        for cell in interior { next[cell - low] = mesh.smoothed(cell) { values[$0 - low] } }
        ghosts = try exchange.wait().buffer
        for cell in boundary {
            next[cell - low] = mesh.smoothed(cell) { j in j >= low && j < high ? values[j - low] : ghosts[ghostSlot[j]!] }
        }
        swap(&values, &next)
    }
    let seconds = MPI.wtime() - start
    let total = try world.allReduce([values.reduce(0, +)], .sum)[0]
    let ghostCount = ghosts.count
    let mostNeighbours = try world.allReduce([partners.count], .max)[0]
    let mostGhosts = try world.allReduce([ghostCount], .max)[0]
    if rank == 0 {
        print("# halo: \(cells) cells on \(size) ranks, \(steps) steps; up to \(mostNeighbours) neighbouring partitions and \(mostGhosts) ghost cells a rank")
        print("halo: \((seconds * 1e6 / Double(steps) * 1000).rounded() / 1000) us a step, sum of cells \(total)")
    }
    if check {
        let gathered = try world.gather(object: values)
        if rank == 0, let gathered {
            var serial = (0..<cells).map(initial), step = serial
            for _ in 0..<steps {
                for cell in 0..<cells { step[cell] = mesh.smoothed(cell) { serial[$0] } }
                swap(&serial, &step)
            }
            let parallel = Array(gathered.joined())
            let differing = zip(parallel, serial).filter { $0 != $1 }.count
            print(differing == 0 && parallel.count == cells ? "halo ok: every cell equals the serial run's"
                                                             : "halo MISMATCH: \(differing) cells differ from the serial run (\(parallel.count) of \(cells) gathered)")
        }
    }
    try MPI.finalize()
} catch {
    print("halo: \(error)")
    exit(1)
}
