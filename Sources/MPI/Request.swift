import CMPI

// Nonblocking communication (MPI-4.1 §3.7). A request owns the buffer it reads or
// writes until it completes, so the buffer cannot be freed or changed underneath MPI:
// `isend` keeps a reference to the array (a later change by the caller copies it first),
// `irecv` takes the array and `wait()` hands it back filled.

/// A pending nonblocking operation that owns its buffer. It must be completed with
/// `wait()`; one dropped while still pending waits for completion in its deinit, so
/// its buffer is never released while MPI may still touch it (and says so on stderr if
/// that takes long: see DroppedRequest.swift).
public struct Request<Buffer>: ~Copyable {
    @usableFromInline var handle: MPI_Request?
    @usableFromInline var buffer: Buffer?
    /// What MPI reads until completion but `wait()` does not hand back: a nonblocking
    /// collective's send array (held, so it cannot be freed or changed meanwhile).
    @usableFromInline var retained: Any?

    @inlinable init(handle: MPI_Request?, buffer: Buffer, retaining retained: Any? = nil) {
        self.handle = handle
        self.buffer = buffer
        self.retained = retained
    }

    @inlinable deinit {
        var pending = handle
        if pending != MPI_REQUEST_NULL, isActive {
            waitForDropped(&pending, what: "a Request<\(Buffer.self)>")
        }
    }

    /// Blocks until the operation completes and returns its buffer and status (`MPI_Wait`).
    @inlinable
    public consuming func wait() throws(MPIError) -> (buffer: Buffer, status: Status) {
        var status = MPI_Status()
        try check(MPI_Wait(&handle, &status))
        let result = buffer.take()!
        retained = nil
        return (result, Status(status))
    }

    /// Whether the operation has completed, without blocking (`MPI_Test`). After it
    /// returns true, `wait()` returns at once.
    @inlinable
    public mutating func test() throws(MPIError) -> Bool {
        if handle == MPI_REQUEST_NULL { return true }
        var flag: Int32 = 0
        try check(MPI_Test(&handle, &flag, nil))
        return flag != 0
    }

    /// Asks MPI to cancel the operation (`MPI_Cancel`); complete it with `wait()` and read
    /// `Status.isCancelled` to learn whether it was.
    public mutating func cancel() throws(MPIError) {
        guard handle != MPI_REQUEST_NULL else { return }
        try check(MPI_Cancel(&handle))
    }

    /// Moves the parts out, leaving a completed shell whose deinit does nothing.
    @inlinable
    mutating func release() -> (MPI_Request?, Buffer, Any?) {
        let parts = (handle, buffer.take()!, retained)
        handle = MPI_REQUEST_NULL
        retained = nil
        return parts
    }
}

/// A set of requests over buffers of one type, completed together (`MPI_Waitall`) or one
/// at a time (`MPI_Waitany`). Buffers come back in the order the requests were added.
public struct RequestGroup<Buffer>: ~Copyable {
    @usableFromInline var handles: [MPI_Request?] = []
    @usableFromInline var buffers: [Buffer?] = []
    /// Each request's send side, held until the group is done with it.
    @usableFromInline var retained: [Any?] = []

    public init() {}

    deinit {
        var pending = handles
        if isActive, pending.contains(where: { $0 != MPI_REQUEST_NULL }) {
            waitForDropped(&pending, what: "a RequestGroup of \(pending.count)")
        }
    }

    /// The number of requests added.
    public var count: Int { handles.count }

    /// Takes `request` into the group; its index is the group's count before the call.
    @inlinable
    public mutating func append(_ request: consuming Request<Buffer>) {
        let (handle, buffer, held) = request.release()
        handles.append(handle)
        buffers.append(buffer)
        retained.append(held)
    }

    /// Waits for every request and returns the buffers with their statuses (`MPI_Waitall`).
    @inlinable
    public consuming func waitAll() throws(MPIError) -> [(buffer: Buffer, status: Status)] {
        var statuses = [MPI_Status](repeating: MPI_Status(), count: handles.count)
        let rc = MPI_Waitall(Int32(handles.count), &handles, &statuses)
        if rc != MPI_SUCCESS {
            // MPI_ERR_IN_STATUS: report the first failing request's own error.
            let failing = statuses.first { $0.MPI_ERROR != MPI_SUCCESS && $0.MPI_ERROR != MPI_ERR_PENDING }
            throw MPIError(code: failing?.MPI_ERROR ?? rc)
        }
        var results: [(buffer: Buffer, status: Status)] = []
        results.reserveCapacity(buffers.count)
        for index in buffers.indices {
            results.append((buffers[index].take()!, Status(statuses[index])))
        }
        return results
    }

    /// Waits for any one pending request and returns its index, buffer and status, or nil
    /// when none is pending (`MPI_Waitany`).
    @inlinable
    public mutating func waitAny() throws(MPIError) -> (index: Int, buffer: Buffer, status: Status)? {
        var index: Int32 = 0
        var status = MPI_Status()
        try check(MPI_Waitany(Int32(handles.count), &handles, &index, &status))
        if index == MPI_UNDEFINED { return nil }
        retained[Int(index)] = nil
        return (Int(index), buffers[Int(index)].take()!, Status(status))
    }

    /// Waits for every request, then empties the group so it can be filled again without
    /// allocating; the buffers are released (`MPI_Waitall`). For windows of requests.
    @inlinable
    public mutating func complete() throws(MPIError) {
        let rc = MPI_Waitall(Int32(handles.count), &handles, nil)
        handles.removeAll(keepingCapacity: true)
        buffers.removeAll(keepingCapacity: true)
        retained.removeAll(keepingCapacity: true)
        try check(rc)
    }

    /// Room for `capacity` requests without reallocating.
    public init(capacity: Int) {
        handles.reserveCapacity(capacity)
        buffers.reserveCapacity(capacity)
        retained.reserveCapacity(capacity)
    }

    /// Waits until at least one pending request completes and returns every one that has,
    /// with its index, buffer and status; empty when none is pending (`MPI_Waitsome`).
    /// Each request is returned once.
    @inlinable
    public mutating func waitSome() throws(MPIError) -> [(index: Int, buffer: Buffer, status: Status)] {
        try some(blocking: true)
    }

    /// Every request that has completed now, without blocking; empty if none has
    /// (`MPI_Testsome`). Each request is returned once.
    @inlinable
    public mutating func testSome() throws(MPIError) -> [(index: Int, buffer: Buffer, status: Status)] {
        try some(blocking: false)
    }

    @inlinable
    mutating func some(blocking: Bool) throws(MPIError) -> [(index: Int, buffer: Buffer, status: Status)] {
        var done: Int32 = 0
        var indices = [Int32](repeating: 0, count: handles.count)
        var statuses = [MPI_Status](repeating: MPI_Status(), count: handles.count)
        let rc = blocking ? MPI_Waitsome(Int32(handles.count), &handles, &done, &indices, &statuses)
                          : MPI_Testsome(Int32(handles.count), &handles, &done, &indices, &statuses)
        if rc != MPI_SUCCESS {
            let failing = statuses.prefix(Int(max(done, 0))).first { $0.MPI_ERROR != MPI_SUCCESS }
            throw MPIError(code: failing?.MPI_ERROR ?? rc)
        }
        guard done != MPI_UNDEFINED else { return [] }
        var results: [(index: Int, buffer: Buffer, status: Status)] = []
        for slot in 0..<Int(done) {
            let index = Int(indices[slot])
            results.append((index, buffers[index].take()!, Status(statuses[slot])))
            retained[index] = nil
        }
        return results
    }

    /// One completed request now, if any, without blocking (`MPI_Testany`); nil when none
    /// has completed (or none is pending).
    @inlinable
    public mutating func testAny() throws(MPIError) -> (index: Int, buffer: Buffer, status: Status)? {
        var index: Int32 = 0, flag: Int32 = 0
        var status = MPI_Status()
        try check(MPI_Testany(Int32(handles.count), &handles, &index, &flag, &status))
        guard flag != 0, index != MPI_UNDEFINED else { return nil }
        retained[Int(index)] = nil
        return (Int(index), buffers[Int(index)].take()!, Status(status))
    }

    /// Whether every request has completed, without blocking (`MPI_Testall`).
    @inlinable
    public mutating func testAll() throws(MPIError) -> Bool {
        var flag: Int32 = 0
        try check(MPI_Testall(Int32(handles.count), &handles, &flag, nil))
        return flag != 0
    }
}

extension Communicator {
    /// Starts sending `array` to `destination` (`MPI_Isend`). The request keeps the array's
    /// storage alive and unchanged until it completes.
    @inlinable
    public func isend<T: MPIDatatype>(_ array: [T], to destination: Int, tag: Int = 0) throws(MPIError) -> Request<[T]> {
        var request: MPI_Request?
        let n = try MPICount(array.count, of: T.mpiDatatype)
        defer { n.release() }  // a derived type lives on in MPI until the send completes
        // The request holds `array`, so its storage outlives the operation; any write by
        // the caller meanwhile goes to a copy (copy-on-write), never to this storage.
        let rc = array.withUnsafeBufferPointer {
            MPI_Isend($0.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), handle, &request)
        }
        try check(rc)
        return Request(handle: request, buffer: array)
    }

    /// Starts receiving into `array`, which the request takes; `wait()` gives it back
    /// filled (`MPI_Irecv`).
    @inlinable
    public func irecv<T: MPIDatatype>(into array: consuming [T], from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> Request<[T]> {
        var request: MPI_Request?
        var array = array
        let n = try MPICount(array.count, of: T.mpiDatatype)
        defer { n.release() }
        // withUnsafeMutableBufferPointer makes the storage unique first, so nobody else
        // sees it change; the request is then its only owner until completion.
        let rc = array.withUnsafeMutableBufferPointer {
            MPI_Irecv($0.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), handle, &request)
        }
        try check(rc)
        return Request(handle: request, buffer: array)
    }

    /// Starts sending from memory the caller keeps valid and unchanged until the request
    /// completes (`MPI_Isend`). For windows of sends from one buffer, as benchmarks do.
    @inlinable
    public func isend<T: MPIDatatype>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0) throws(MPIError) -> Request<UnsafeBufferPointer<T>> {
        var request: MPI_Request?
        let n = try MPICount(buffer.count, of: T.mpiDatatype)
        defer { n.release() }
        try check(MPI_Isend(buffer.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), handle, &request))
        return Request(handle: request, buffer: buffer)
    }

    /// Starts receiving into memory the caller keeps valid and leaves alone until the
    /// request completes (`MPI_Irecv`).
    @inlinable
    public func irecv<T: MPIDatatype>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> Request<UnsafeMutableBufferPointer<T>> {
        var request: MPI_Request?
        let n = try MPICount(buffer.count, of: T.mpiDatatype)
        defer { n.release() }
        try check(MPI_Irecv(buffer.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), handle, &request))
        return Request(handle: request, buffer: buffer)
    }

    /// Starts a barrier (`MPI_Ibarrier`); wait on it like any request.
    public func ibarrier() throws(MPIError) -> Request<Void> {
        var request: MPI_Request?
        try check(MPI_Ibarrier(handle, &request))
        return Request(handle: request, buffer: ())
    }
}
