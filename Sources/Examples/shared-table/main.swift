// shared-table: one copy per node of a large read-only table that every rank reads, as a
// crash code's material database or a CFD code's equation-of-state table — instead of one
// copy per rank. The ranks of a node find each other (MPI_Comm_split_type, shared memory);
// the node's first rank allocates the table in a shared window (MPI_Win_allocate_shared)
// and fills it, the others allocate nothing and read it in place (MPI_Win_shared_query):
// no message, no copy. Each rank then sums its share of lookups, and rank 0 checks the total.
//
//   mpirun -np 4 shared-table [--entries 1000000] [--lookups 1000000]
import MPI
#if canImport(Glibc)
import Glibc
#endif

func option(_ name: String, default value: Int) -> Int {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]), v > 0 else { return value }
    return v
}

/// The table's entry i: some costly function of i (here cheap, and exact in a Double).
func entry(_ i: Int) -> Double { Double((i &* 2_654_435_761) % 1_000_003) }

do {
    try MPI.initialize()
    let world = Communicator.world
    let entries = option("--entries", default: 1_000_000)
    let lookups = option("--lookups", default: 1_000_000)
    let node = try world.split(type: .sharedMemory)
    // Only the node's first rank holds memory; the window spans the node.
    let window = try Window<Double>.allocateShared(count: node.rank == 0 ? entries : 0, communicator: node)
    let table = try window.memory(of: 0)
    if node.rank == 0 {
        for i in 0..<entries { table[i] = entry(i) }
    }
    // The filled table is visible to the node's other ranks after this: the stores are
    // synchronised with the window (MPI_Win_sync inside a lock-all epoch) and a barrier.
    try window.lockAll()
    try window.sync()
    try node.barrier()
    try window.sync()
    try window.unlockAll()

    // Rank r looks up entries r, r + size, r + 2·size, … of a fixed pseudo-random sequence.
    var sum = 0.0
    var index = world.rank
    while index < lookups {
        sum += table[(index &* 7919) % entries]
        index += world.size
    }
    let total = try world.allReduce([sum], .sum)[0]
    let nodes = try world.allReduce([node.rank == 0 ? 1 : 0], .sum)[0]
    if world.rank == 0 {
        var expected = 0.0
        for i in 0..<lookups { expected += entry((i &* 7919) % entries) }
        let megabytes = Double(entries * MemoryLayout<Double>.stride) / 1_048_576
        print("# shared-table: \(world.size) ranks on \(nodes) node(s), one \((megabytes * 10).rounded() / 10) MiB table per node instead of per rank")
        print(total == expected ? "shared-table ok: \(lookups) lookups sum to \(total)" : "shared-table MISMATCH: \(total), expected \(expected)")
    }
    try window.free()
    try MPI.finalize()
} catch {
    print("shared-table: \(error)")
    exit(1)
}
