// hello: every rank says who and where it is.
import MPI

do {
    try MPI.initialize()
    let world = Communicator.world
    print("hello from rank \(world.rank) of \(world.size) on \(try MPI.processorName())")
    try MPI.finalize()
} catch {
    print("hello: \(error)")
    MPI.abort(errorCode: 1)
}
