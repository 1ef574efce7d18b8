// mpi-checks GROUP: runs one group of checks of `import MPI` on every rank and prints
// "rank R: GROUP ok (N checks)", or the failed expectations and exit code 1. The tests
// in Tests/MPIRunTests run it under real mpirun on 1 to 4 ranks.
import MPI
#if canImport(Glibc)
import Glibc
#endif

let groups: [String: (Checker) throws -> Void] = [
    "environment": checkEnvironment,
    "point-to-point": checkPointToPoint,
    "nonblocking": checkNonblocking,
    "collectives": checkCollectives,
    "operations": checkOperations,
    "communicators": checkCommunicators,
    "topology": checkTopology,
    "datatypes": checkDatatypes,
    "files": checkFiles,
    "persistent": checkPersistent,
    "neighbors": checkNeighbors,
    "windows": checkWindows,
    "objects": checkObjects,
    "large-counts": checkLargeCounts,
    "errors": checkErrors,
    "allocations": checkAllocations,
]

let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first else {
    print("usage: mpi-checks GROUP | before-init | after-finalize | abort\ngroups: \(groups.keys.sorted().joined(separator: " "))")
    exit(2)
}

switch name {
case "before-init":
    // Using MPI before initialize must stop with a clear message, not a segfault.
    print("rank \(Communicator.world.rank)")
    exit(0)
case "after-finalize":
    try checkAfterFinalize()
    exit(0)
case "abort":
    // The last rank aborts the whole job with code 42; the others wait in a barrier.
    try MPI.initialize()
    let world = Communicator.world
    if world.rank == world.size - 1 {
        print("rank \(world.rank) aborting")
        fflush(nil)  // MPI_Abort ends the process: nothing buffered would survive
        world.abort(errorCode: 42)
    }
    try world.barrier()
    print("rank \(world.rank) FAILED: got past the barrier")
    exit(1)
case "dropped-request":
    // Rank 0 drops a receive that rank 1 completes only after a while (its deinit waits,
    // and says so on stderr once the grace period has passed); then one completed at once.
    try MPI.initialize()
    let world = Communicator.world
    if world.rank == 0 {
        do { _ = try world.irecv(into: [0], from: 1, tag: 9) }
        print("rank 0: past the slow dropped receive")
        do { _ = try world.irecv(into: [0], from: 1, tag: 10) }
        print("rank 0: past the quick dropped receive")
    } else if world.rank == 1 {
        usleep(2_500_000)
        try world.send([1], to: 0, tag: 9)
        try world.send([2], to: 0, tag: 10)
    }
    try MPI.finalize()
    exit(0)
default:
    guard let run = groups[name] else { print("unknown group \(name)"); exit(2) }
    try MPI.initialize()
    let checker = Checker(group: name)
    do {
        try run(checker)
    } catch {
        checker.failures.append("threw \(error)")
    }
    let rank = Communicator.world.rank
    if checker.failures.isEmpty {
        print("rank \(rank): \(name) ok (\(checker.checks) checks)")
    } else {
        for failure in checker.failures { print("rank \(rank): \(name) FAILED \(failure)") }
    }
    // Every rank agrees on the outcome before finalizing, so nobody hangs in finalize.
    let allPassed = try Communicator.world.allReduce(checker.failures.isEmpty, .logicalAnd)
    try MPI.finalize()
    exit(allPassed ? 0 : 1)
}
