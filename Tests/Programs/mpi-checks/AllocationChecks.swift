import CMPI
import MPI
#if canImport(Glibc)
import Glibc
#endif

/// The hot paths allocate nothing per call: for each pattern, 1,000 calls through the
/// wrapper must allocate no more than the same 1,000 calls made straight to the C API
/// (MPI's own allocations count on both sides). Needs malloc_count.so preloaded.
func checkAllocations(_ c: Checker) throws {
    typealias Counter = @convention(c) () -> Int
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cohort_malloc_count") else {
        c.expect(false, "malloc_count.so is not preloaded (LD_PRELOAD)")
        return
    }
    let count = unsafeBitCast(symbol, to: Counter.self)
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let right = (rank + 1) % size, left = (rank + size - 1) % size
    let n = 1000

    var outgoing = [Double](repeating: Double(rank), count: 64)
    var incoming = [Double](repeating: 0, count: 64)
    var result = [Double](repeating: 0, count: 64)
    let comm = MPI_COMM_WORLD

    /// Allocations of `body` run n times, after a warm-up.
    func allocations(_ body: () throws -> Void) rethrows -> Int {
        for _ in 0..<50 { try body() }
        let before = count()
        for _ in 0..<n { try body() }
        return count() - before
    }

    // Nonblocking: a window reused through one group, as a stencil's halo exchange does.
    let sendBuffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: 64)
    let receiveBuffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: 64)
    sendBuffer.initialize(repeating: 1)
    receiveBuffer.initialize(repeating: 0)
    defer { sendBuffer.deallocate(); receiveBuffer.deallocate() }
    var sends = RequestGroup<UnsafeBufferPointer<Double>>(capacity: 1)
    var receives = RequestGroup<UnsafeMutableBufferPointer<Double>>(capacity: 1)
    var requests = [MPI_Request?](repeating: nil, count: 2)

    let patterns: [(String, () throws -> Void, () -> Void)] = [
        ("isend/irecv through reused request groups",
         { receives.append(try world.irecv(into: receiveBuffer, from: left, tag: 5))
           sends.append(try world.isend(UnsafeBufferPointer(sendBuffer), to: right, tag: 5))
           try sends.complete(); try receives.complete() },
         { requests.withUnsafeMutableBufferPointer { r in
             MPI_Irecv(receiveBuffer.baseAddress, 64, MPI_DOUBLE, Int32(left), 5, comm, &r[0])
             MPI_Isend(sendBuffer.baseAddress, 64, MPI_DOUBLE, Int32(right), 5, comm, &r[1])
             MPI_Waitall(2, r.baseAddress, nil) } }),
        ("sendReceive of arrays",
         { try world.sendReceive(outgoing, to: right, into: &incoming, from: left) },
         { _ = outgoing.withUnsafeBufferPointer { s in incoming.withUnsafeMutableBufferPointer { r in
             MPI_Sendrecv(s.baseAddress, 64, MPI_DOUBLE, Int32(right), 0, r.baseAddress, 64, MPI_DOUBLE, Int32(left), MPI_ANY_TAG, comm, nil) } } }),
        ("allReduce into an array",
         { try world.allReduce(outgoing, into: &result, .sum) },
         { _ = outgoing.withUnsafeBufferPointer { s in result.withUnsafeMutableBufferPointer { r in
             MPI_Allreduce(s.baseAddress, r.baseAddress, 64, MPI_DOUBLE, MPI_SUM, comm) } } }),
        ("allReduce in place",
         { try world.allReduce(inPlace: &outgoing, .max) },
         { _ = outgoing.withUnsafeMutableBufferPointer { MPI_Allreduce(MPI_IN_PLACE, $0.baseAddress, 64, MPI_DOUBLE, MPI_MAX, comm) } }),
        ("allReduce of one value",
         { _ = try world.allReduce(Double(rank), .sum) },
         { var x = Double(rank), y = 0.0; _ = MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, comm) }),
        ("send and receive in a ring",
         { if rank % 2 == 0 { try world.send(outgoing, to: right); try world.receive(into: &incoming, from: left) }
           else { try world.receive(into: &incoming, from: left); try world.send(outgoing, to: right) } },
         { _ = outgoing.withUnsafeBufferPointer { s in incoming.withUnsafeMutableBufferPointer { r in
             if rank % 2 == 0 { MPI_Send(s.baseAddress, 64, MPI_DOUBLE, Int32(right), 0, comm); return MPI_Recv(r.baseAddress, 64, MPI_DOUBLE, Int32(left), 0, comm, nil) }
             MPI_Recv(r.baseAddress, 64, MPI_DOUBLE, Int32(left), 0, comm, nil); return MPI_Send(s.baseAddress, 64, MPI_DOUBLE, Int32(right), 0, comm) } } }),
    ]
    for (name, wrapper, raw) in patterns {
        if size == 1, name.hasPrefix("send and receive") { continue }  // a blocking send to oneself
        let swift = try allocations(wrapper)
        let direct = allocations(raw)
        print("rank \(rank): \(name): \(swift) allocations in \(n) wrapper calls, \(direct) through the C API")
        c.expect(swift <= direct + 2, "\(name): \(swift) allocations in \(n) calls, C API \(direct)")
    }
}
