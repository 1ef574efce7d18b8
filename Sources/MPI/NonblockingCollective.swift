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
    /// Starts a collective that reads `send` and writes `result` through `call` (input,
    /// output, the request to fill): the request and the result, for the caller to hand to a
    /// `Request` that holds `send` until completion.
    @inlinable
    func start<T: MPIDatatype>(reading send: [T], writing result: consuming [T],
                               _ call: (UnsafePointer<T>?, UnsafeMutablePointer<T>?, inout MPI_Request?) -> Int32) throws(MPIError) -> (MPI_Request?, [T]) {
        var result = result
        var request: MPI_Request?
        let rc = send.withUnsafeBufferPointer { input in
            result.withUnsafeMutableBufferPointer { call(input.baseAddress, $0.baseAddress, &request) }
        }
        try check(rc)
        return (request, result)
    }

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
        let count = try mpiCount(array.count)
        // The result has the input's count; every element is overwritten.
        let (request, output) = try start(reading: array, writing: array) { input, output, request in
            MPI_Iallreduce(input, output, count, T.mpiDatatype, op.handle, handle, &request)
        }
        return Request(handle: request, buffer: output, retaining: array)
    }

    /// Starts combining `contribution` element-wise into `result`, memory the caller keeps
    /// (unchanged, and unread) until `wait()` hands `result` back (`MPI_Iallreduce`, no
    /// allocation: the form for loops that reuse their buffers).
    @inlinable
    public func iAllReduce<T: MPIDatatype>(_ contribution: UnsafeBufferPointer<T>, into result: UnsafeMutableBufferPointer<T>,
                                           _ op: Operation) throws(MPIError) -> Request<UnsafeMutableBufferPointer<T>> {
        try nonblockingOperation(op, "iAllReduce")
        guard contribution.count == result.count else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "iAllReduce: \(contribution.count) elements into a result of \(result.count)")
        }
        let count = try mpiCount(contribution.count)
        var request: MPI_Request?
        try check(MPI_Iallreduce(contribution.baseAddress, result.baseAddress, count, T.mpiDatatype, op.handle, handle, &request))
        return Request(handle: request, buffer: result)
    }

    /// Starts combining `array` element-wise at `root`; `wait()` returns the result there
    /// and nil elsewhere (`MPI_Ireduce`).
    @inlinable
    public func iReduce<T: MPIDatatype>(_ array: [T], _ op: Operation, root: Int = 0) throws(MPIError) -> Request<[T]?> {
        try nonblockingOperation(op, "iReduce")
        let isRoot = rank == root
        let result: [T] = isRoot ? array : []
        let count = try mpiCount(array.count)
        let (request, output) = try start(reading: array, writing: result) { input, output, request in
            MPI_Ireduce(input, isRoot ? output : nil, count, T.mpiDatatype, op.handle, Int32(truncatingIfNeeded: root), handle, &request)
        }
        return Request(handle: request, buffer: isRoot ? output : nil, retaining: array)
    }

    /// Starts the inclusive prefix reduction (`MPI_Iscan`): process i gets ranks 0...i combined.
    @inlinable
    public func iScan<T: MPIDatatype>(_ array: [T], _ op: Operation) throws(MPIError) -> Request<[T]> {
        try nonblockingOperation(op, "iScan")
        let count = try mpiCount(array.count)
        let (request, output) = try start(reading: array, writing: array) { input, output, request in
            MPI_Iscan(input, output, count, T.mpiDatatype, op.handle, handle, &request)
        }
        return Request(handle: request, buffer: output, retaining: array)
    }

    /// Starts gathering every process's `array` (all the same count) in rank order on
    /// every process (`MPI_Iallgather`).
    @inlinable
    public func iAllGather<T: MPIDatatype>(_ array: [T]) throws(MPIError) -> Request<[T]> {
        let count = try mpiCount(array.count)
        let result = [[T]](repeating: array, count: size).flatMap { $0 }  // sized; every element is overwritten
        let (request, output) = try start(reading: array, writing: result) { input, output, request in
            MPI_Iallgather(input, count, T.mpiDatatype, output, count, T.mpiDatatype, handle, &request)
        }
        return Request(handle: request, buffer: output, retaining: array)
    }

    /// Starts gathering every process's `array` in rank order at `root` (`MPI_Igather`);
    /// nil elsewhere.
    @inlinable
    public func iGather<T: MPIDatatype>(_ array: [T], root: Int = 0) throws(MPIError) -> Request<[T]?> {
        let count = try mpiCount(array.count)
        let isRoot = rank == root
        let result = isRoot ? [[T]](repeating: array, count: size).flatMap { $0 } : []
        let (request, output) = try start(reading: array, writing: result) { input, output, request in
            MPI_Igather(input, count, T.mpiDatatype, isRoot ? output : nil, count, T.mpiDatatype, Int32(truncatingIfNeeded: root), handle, &request)
        }
        return Request(handle: request, buffer: isRoot ? output : nil, retaining: array)
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
        let result = [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        let (request, output) = try start(reading: source, writing: result) { input, output, request in
            MPI_Iscatter(isRoot ? input : nil, each, T.mpiDatatype, output, each, T.mpiDatatype, Int32(truncatingIfNeeded: root), handle, &request)
        }
        return Request(handle: request, buffer: output, retaining: source)
    }

    /// Starts sending block j of `array` (size equal blocks) to process j and receiving
    /// block i from each process i (`MPI_Ialltoall`).
    @inlinable
    public func iAllToAll<T: MPIDatatype>(_ array: [T]) throws(MPIError) -> Request<[T]> {
        guard array.count % size == 0 else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "iAllToAll: \(array.count) elements do not split into \(size) equal blocks")
        }
        let each = try mpiCount(array.count / size)
        let (request, output) = try start(reading: array, writing: array) { input, output, request in
            MPI_Ialltoall(input, each, T.mpiDatatype, output, each, T.mpiDatatype, handle, &request)
        }
        return Request(handle: request, buffer: output, retaining: array)
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
        let count = try mpiCount(each)
        let (request, output) = try start(reading: array, writing: Array(array.prefix(each))) { input, output, request in
            MPI_Ireduce_scatter_block(input, output, count, T.mpiDatatype, op.handle, handle, &request)
        }
        return Request(handle: request, buffer: output, retaining: array)
    }
}
