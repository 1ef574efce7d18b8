import CMPI

// Persistent communication requests (MPI-4.1 §3.9): a send or receive set up once and
// started again and again — a halo exchange that runs every iteration pays for matching
// its arguments once. Each request owns a fixed buffer (an array may move; MPI keeps the
// address), which is read and written only while the request is not started.

/// A persistent send or receive of `count` elements of `T` into or out of a buffer it owns.
/// `start()` begins one operation, `wait()` completes it; then the buffer may be read or
/// refilled and the request started again. Freed (`MPI_Request_free`) when the last
/// reference goes, after waiting for an operation still under way.
public final class PersistentRequest<T: MPIDatatype>: @unchecked Sendable {
    public let count: Int
    @usableFromInline let storage: UnsafeMutableBufferPointer<T>
    @usableFromInline var handle: MPI_Request?
    /// Whether an operation was started and not yet waited for.
    public private(set) var isStarted = false

    init(count: Int, _ make: (UnsafeMutablePointer<T>, Int32, inout MPI_Request?) -> Int32) throws(MPIError) {
        let length = try mpiCount(count)
        self.count = count
        storage = .allocate(capacity: max(count, 1))
        // Zero bytes: every MPIDatatype is plain bits, so this is a valid value of T.
        UnsafeMutableRawPointer(storage.baseAddress!).initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1) * MemoryLayout<T>.stride)
        var request: MPI_Request?
        let rc = make(storage.baseAddress!, length, &request)
        guard rc == MPI_SUCCESS else {
            storage.deallocate()
            throw MPIError(code: rc)
        }
        handle = request
    }

    deinit {
        if isActive {
            if isStarted { waitForDropped(&handle, what: "a started persistent request") }
            if handle != MPI_REQUEST_NULL { _ = MPI_Request_free(&handle) }
        }
        storage.deallocate()
    }

    /// Begins one operation (`MPI_Start`).
    public func start() throws(MPIError) {
        guard !isStarted else { throw Self.misuse("start() on a request already started: wait() first") }
        try check(MPI_Start(&handle))
        isStarted = true
    }

    /// Waits for the started operation (`MPI_Wait`); the request stays, ready to start again.
    @discardableResult
    public func wait() throws(MPIError) -> Status {
        guard isStarted else { throw Self.misuse("wait() on a request not started") }
        var status = MPI_Status()
        try check(MPI_Wait(&handle, &status))
        isStarted = false
        return Status(status)
    }

    /// Whether the started operation has completed (`MPI_Test`); once true, it is done and
    /// may be started again.
    public func test() throws(MPIError) -> Bool {
        guard isStarted else { return true }
        var flag: Int32 = 0
        try check(MPI_Test(&handle, &flag, nil))
        if flag != 0 { isStarted = false }
        return flag != 0
    }

    /// The buffer's contents (what a receive brought, what a send will send).
    public func values() throws(MPIError) -> [T] {
        guard !isStarted else { throw Self.misuse("the buffer of a started request is MPI's until wait()") }
        return Array(storage.prefix(count))
    }

    /// Fills the buffer for the next send (`values.count` must be `count`).
    public func set(_ values: [T]) throws(MPIError) {
        guard !isStarted else { throw Self.misuse("the buffer of a started request is MPI's until wait()") }
        guard values.count == count else { throw MPIError(errorClass: MPI_ERR_COUNT, message: "\(values.count) values for a request of \(count)") }
        _ = storage.update(from: values)
    }

    /// Reads or changes the buffer in place, without a copy.
    public func withBuffer<R>(_ body: (UnsafeMutableBufferPointer<T>) throws -> R) throws -> R {
        guard !isStarted else { throw Self.misuse("the buffer of a started request is MPI's until wait()") }
        return try body(UnsafeMutableBufferPointer(rebasing: storage.prefix(count)))
    }

    /// Starts every request at once (`MPI_Startall`).
    public static func startAll(_ requests: [PersistentRequest<T>]) throws(MPIError) {
        guard !requests.contains(where: \.isStarted) else { throw misuse("startAll with a request already started") }
        var handles = requests.map(\.handle)
        try check(MPI_Startall(Int32(handles.count), &handles))
        for request in requests { request.isStarted = true }
    }

    /// Waits for every started request (`MPI_Waitall`).
    @discardableResult
    public static func waitAll(_ requests: [PersistentRequest<T>]) throws(MPIError) -> [Status] {
        var handles = requests.map(\.handle)
        var statuses = [MPI_Status](repeating: MPI_Status(), count: handles.count)
        try check(MPI_Waitall(Int32(handles.count), &handles, &statuses))
        for request in requests { request.isStarted = false }
        return statuses.map { Status($0) }
    }

    static func misuse(_ message: String) -> MPIError { MPIError(errorClass: MPI_ERR_REQUEST, message: message) }
}

extension Communicator {
    /// A persistent send of `count` elements of `T` to `destination` (`MPI_Send_init`);
    /// `set(_:)` fills it before each `start()`.
    public func sendInit<T: MPIDatatype>(count: Int, of _: T.Type, to destination: Int, tag: Int) throws(MPIError) -> PersistentRequest<T> {
        let comm = handle
        return try PersistentRequest(count: count) { buffer, length, request in
            MPI_Send_init(buffer, length, T.mpiDatatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), comm, &request)
        }
    }

    /// A persistent send whose buffer starts as `values`.
    public func sendInit<T: MPIDatatype>(_ values: [T], to destination: Int, tag: Int) throws(MPIError) -> PersistentRequest<T> {
        let request = try sendInit(count: values.count, of: T.self, to: destination, tag: tag)
        try request.set(values)
        return request
    }

    /// A persistent receive of up to `count` elements of `T` from `source` (`MPI_Recv_init`);
    /// `values()` reads what the last operation brought.
    public func receiveInit<T: MPIDatatype>(count: Int, of _: T.Type, from source: Int, tag: Int) throws(MPIError) -> PersistentRequest<T> {
        let comm = handle
        return try PersistentRequest(count: count) { buffer, length, request in
            MPI_Recv_init(buffer, length, T.mpiDatatype, Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), comm, &request)
        }
    }
}
