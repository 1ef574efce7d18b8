import MPI
#if canImport(Glibc)
import Glibc
#endif
import CMPI

func checkEnvironment(_ c: Checker) throws {
    c.expect(MPI.isInitialized, "isInitialized after initialize")
    c.expect(!MPI.isFinalized, "not finalized yet")
    c.expect(MPI.isActive, "active")
    try c.expect(try MPI.queryThreadLevel() >= .single, "thread level")
    try c.expect(!(try MPI.processorName()).isEmpty, "processor name")
    try c.expect(try MPI.libraryVersion().contains("Open MPI"), "library version names Open MPI")
    let version = try MPI.standardVersion()
    c.expect(version.major >= 3, "standard version \(version)")
    let t0 = MPI.wtime()
    var spin = 0.0
    for i in 0..<100_000 { spin += Double(i) }
    let t1 = MPI.wtime()
    c.expect(t1 >= t0 && spin > 0, "wtime does not go backwards")
    c.expect(MPI.wtick() > 0 && MPI.wtick() < 1, "wtick is a fraction of a second")
    c.expectThrows(MPI_ERR_OTHER, "initialize twice") { try MPI.initialize() }
    // The environment of mpirun says how many ranks it started; MPI must agree.
    if let launched = getenv("OMPI_COMM_WORLD_SIZE").map({ Int(String(cString: $0)) }) {
        c.expectEqual(Communicator.world.size, launched ?? -1, "world size matches the launcher's")
    }
    c.expectEqual(Communicator.solo.size, 1, "solo holds one process")
    c.expectEqual(Communicator.solo.rank, 0, "rank in solo")
    c.expect(Communicator.world.maxTag >= 32767, "MPI_TAG_UB is at least 32767")
}

/// Runs after finalize: nothing Cohort frees on its own may call MPI then.
func checkAfterFinalize() throws {
    let level = try MPI.initialize(threading: .multiple)
    precondition(level == .multiple, "Debian's Open MPI provides MPI_THREAD_MULTIPLE")
    let world = Communicator.world
    var dup: Communicator? = try world.dup()
    let type = try Datatype.vector(count: 2, blockLength: 1, stride: 2, of: Double.self)
    let sum = try Operation.custom(Int.self, commutative: true) { $0 + $1 }
    var request: Request<[Int]>? = try world.irecv(into: [0], from: world.rank, tag: 5)
    try world.send([42], to: world.rank, tag: 5)
    let (received, _) = try request.take()!.wait()
    precondition(received == [42])
    try MPI.finalize()
    precondition(MPI.isFinalized && !MPI.isActive)
    // These would be MPI calls after finalize if the wrapper did not check.
    try dup?.free()
    dup = nil
    _ = type
    _ = sum
    do {
        try MPI.finalize()
        print("after-finalize FAILED: finalize twice did not throw")
        exit(1)
    } catch {
        precondition(error.message.contains("twice"))
    }
    do {
        try MPI.initialize()
        print("after-finalize FAILED: initialize after finalize did not throw")
        exit(1)
    } catch {
        precondition(error.message.contains("after"))
    }
    print("after-finalize ok")
}
