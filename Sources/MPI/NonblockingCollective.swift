import CMPI

// Nonblocking collectives (MPI-4.1 §6.12): each starts the operation and returns a request
// that owns what MPI writes (handed back by `wait()`) and holds what it reads (the caller's
// array, which a change by the caller meanwhile copies first), so neither can be freed or
// changed underneath MPI — the same ownership as `isend`/`irecv`. Overlap a halo exchange
// or a global sum with computation, then `wait()`.
//
// Reductions take the predefined operations only: a Swift function made with
// `Operation.custom` runs in MPI's callback during whichever later call progresses the
// operation, where it cannot be found (MPI passes no context); that is refused at once.

extension Communicator {
    @inlinable
    func nonblockingOperation(_ op: Operation, _ name: String) throws(MPIError) {
        guard op.user == nil else {
            throw MPIError(errorClass: MPI_ERR_OP, message: "\(name): an Operation.custom cannot run in a nonblocking reduction (MPI gives its callback no context); use the blocking call")
        }
    }

    /// Starts sending `root`'s `array` to every process (`MPI_Ibcast`); `wait()` returns it,
    /// on every process (the others' arrays give the count and are overwritten).
    @inlinable
    public func iBroadcast<T: MPIDatatype>(_ array: consuming [T], root: Int = 0) throws(MPIError) -> Request<[T]> {
        var array = array
        var request: MPI_Request?
        let count = try mpiCount(array.count)
        let rc = array.withUnsafeMutableBufferPointer { MPI_Ibcast($0.baseAddress, count, T.mpiDatatype, Int32(truncatingIfNeeded: root), handle, &request) }
        try check(rc)
        return Request(handle: request, buffer: array)
    }

    /// Starts combining `array` element-wise; `wait()` returns the result on every process (`MPI_Iallreduce`).
    @inlinable
    public func iAllReduce<T: MPIDatatype>(_ array: [T], _ op: Operation) throws(MPIError) -> Request<[T]> {
        try nonblockingOperation(op, "iAllReduce")
        var result = array  // same count; every element is overwritten
        var request: MPI_Request?
        let count = try mpiCount(array.count)
        let rc = array.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer { MPI_Iallreduce(send.baseAddress, $0.baseAddress, count, T.mpiDatatype, op.handle, handle, &request) }
        }
        try check(rc)
        return Request(handle: request, buffer: result, retaining: array)
    }

    /// Starts combining `array` element-wise at `root`; `wait()` returns the result there
    /// and nil elsewhere (`MPI_Ireduce`).
    @inlinable
    public func iReduce<T: MPIDatatype>(_ array: [T], _ op: Operation, root: Int = 0) throws(MPIError) -> Request<[T]?> {
        try nonblockingOperation(op, "iReduce")
        let isRoot = rank == root
        var result: [T] = isRoot ? array : []
        var request: MPI_Request?
        let count = try mpiCount(array.count)
        let rc = array.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer {
                MPI_Ireduce(send.baseAddress, isRoot ? $0.baseAddress : nil, count, T.mpiDatatype, op.handle, Int32(truncatingIfNeeded: root), handle, &request)
            }
        }
        try check(rc)
        return Request(handle: request, buffer: isRoot ? result : nil, retaining: array)
    }

    /// Starts the inclusive prefix reduction (`MPI_Iscan`): process i gets ranks 0...i combined.
    @inlinable
    public func iScan<T: MPIDatatype>(_ array: [T], _ op: Operation) throws(MPIError) -> Request<[T]> {
        try nonblockingOperation(op, "iScan")
        var result = array
        var request: MPI_Request?
        let count = try mpiCount(array.count)
        let rc = array.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer { MPI_Iscan(send.baseAddress, $0.baseAddress, count, T.mpiDatatype, op.handle, handle, &request) }
        }
        try check(rc)
        return Request(handle: request, buffer: result, retaining: array)
    }

    /// Starts gathering every process's `array` (all the same count) in rank order on
    /// every process (`MPI_Iallgather`).
    @inlinable
    public func iAllGather<T: MPIDatatype>(_ array: [T]) throws(MPIError) -> Request<[T]> {
        let count = try mpiCount(array.count)
        var result = [T]()
        result.reserveCapacity(array.count * size)
        for _ in 0..<size { result.append(contentsOf: array) }  // sized; every element is overwritten
        var request: MPI_Request?
        let rc = array.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer {
                MPI_Iallgather(send.baseAddress, count, T.mpiDatatype, $0.baseAddress, count, T.mpiDatatype, handle, &request)
            }
        }
        try check(rc)
        return Request(handle: request, buffer: result, retaining: array)
    }

    /// Starts gathering every process's `array` in rank order at `root` (`MPI_Igather`);
    /// nil elsewhere.
    @inlinable
    public func iGather<T: MPIDatatype>(_ array: [T], root: Int = 0) throws(MPIError) -> Request<[T]?> {
        let count = try mpiCount(array.count)
        let isRoot = rank == root
        var result = [T]()
        if isRoot { for _ in 0..<size { result.append(contentsOf: array) } }
        var request: MPI_Request?
        let rc = array.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer {
                MPI_Igather(send.baseAddress, count, T.mpiDatatype, isRoot ? $0.baseAddress : nil, count, T.mpiDatatype,
                            Int32(truncatingIfNeeded: root), handle, &request)
            }
        }
        try check(rc)
        return Request(handle: request, buffer: isRoot ? result : nil, retaining: array)
    }

    /// Starts giving each process its `count` elements of `root`'s `array` (`MPI_Iscatter`);
    /// `array` matters at `root` only (size × count elements).
    @inlinable
    public func iScatter<T: MPIDatatype>(_ array: [T]?, count: Int, root: Int = 0) throws(MPIError) -> Request<[T]> {
        let isRoot = rank == root
        let source = array ?? []
        if isRoot, source.count != count * size {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "iScatter: root's array holds \(source.count) elements, not \(size) × \(count)")
        }
        let each = try mpiCount(count)
        // MPI writes every element before wait() returns it (MPI datatypes are plain values).
        var result = [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        var request: MPI_Request?
        let rc = source.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer {
                MPI_Iscatter(isRoot ? send.baseAddress : nil, each, T.mpiDatatype, $0.baseAddress, each, T.mpiDatatype,
                             Int32(truncatingIfNeeded: root), handle, &request)
            }
        }
        try check(rc)
        return Request(handle: request, buffer: result, retaining: source)
    }

    /// Starts sending block j of `array` (size equal blocks) to process j and receiving
    /// block i from each process i (`MPI_Ialltoall`).
    @inlinable
    public func iAllToAll<T: MPIDatatype>(_ array: [T]) throws(MPIError) -> Request<[T]> {
        guard array.count % size == 0 else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "iAllToAll: \(array.count) elements do not split into \(size) equal blocks")
        }
        let each = try mpiCount(array.count / size)
        var result = array
        var request: MPI_Request?
        let rc = array.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer {
                MPI_Ialltoall(send.baseAddress, each, T.mpiDatatype, $0.baseAddress, each, T.mpiDatatype, handle, &request)
            }
        }
        try check(rc)
        return Request(handle: request, buffer: result, retaining: array)
    }

    /// Starts combining `array` (size equal blocks) element-wise and giving block i to
    /// process i (`MPI_Ireduce_scatter_block`).
    @inlinable
    public func iReduceScatterBlock<T: MPIDatatype>(_ array: [T], _ op: Operation) throws(MPIError) -> Request<[T]> {
        try nonblockingOperation(op, "iReduceScatterBlock")
        guard array.count % size == 0, !array.isEmpty else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "iReduceScatterBlock: \(array.count) elements do not split into \(size) equal blocks")
        }
        let each = array.count / size
        var result = Array(array.prefix(each))
        var request: MPI_Request?
        let count = try mpiCount(each)
        let rc = array.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer {
                MPI_Ireduce_scatter_block(send.baseAddress, $0.baseAddress, count, T.mpiDatatype, op.handle, handle, &request)
            }
        }
        try check(rc)
        return Request(handle: request, buffer: result, retaining: array)
    }
}
