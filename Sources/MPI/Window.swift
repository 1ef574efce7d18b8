import CMPI

// One-sided communication (MPI-4.1 §12): a window exposes memory of every process of a
// communicator; any process puts into, gets from or accumulates into another's window
// without that process taking part, between synchronisations — `fence()` (everyone,
// bulk-synchronous codes), `lock`/`unlock` and `flush` (passive target: work queues,
// counters). A shared-memory window (`allocateShared`) also hands out plain pointers to
// the other processes' memory on the same node.
//
// Operations complete only at the next synchronisation that covers their target: until
// then MPI may still read what is put and write what is got. So the window keeps a copy of
// what each put or accumulate sends until then, and a get's values (`Fetched`) can be read
// only once it completed — never a buffer MPI is still writing.

/// Values a get (or a fetch-and-op, or a compare-and-swap) brings, readable once the window
/// has synchronised with their target.
public final class Fetched<T: MPIDatatype>: @unchecked Sendable {
    let storage: UnsafeMutableBufferPointer<T>
    let rank: Int
    var isComplete = false

    let count: Int

    init(count: Int, rank: Int) {
        storage = .allocate(capacity: max(1, count))
        storage.initialize(repeating: Window<T>.zeroValue)
        self.rank = rank
        self.count = count
        isComplete = count == 0
    }

    deinit { storage.deallocate() }

    /// The values; an error before a fence, flush or unlock covering the target completed them.
    public var values: [T] {
        get throws(MPIError) {
            guard isComplete else {
                throw MPIError(errorClass: MPI_ERR_RMA_SYNC, message: "a get from rank \(rank) is read before the window synchronised with it (fence, flush or unlock)")
            }
            return Array(storage.prefix(count))
        }
    }

    /// The first value (a fetch-and-op's or compare-and-swap's single result).
    public var value: T {
        get throws(MPIError) { try values[0] }
    }
}

/// Memory of every process of a communicator, open to one-sided access by the others.
/// Freed (collectively: every process must drop or `free()` it) when the last reference goes.
public final class Window<T: MPIDatatype>: @unchecked Sendable {
    /// The MPI handle; `MPI_WIN_NULL` once freed.
    @exclusivity(unchecked) public private(set) var handle: MPI_Win
    /// This process's part of the window.
    public let local: UnsafeMutableBufferPointer<T>
    /// What each put or accumulate sends, kept until the synchronisation that completes it,
    /// and what then makes a get's result readable: (target rank, copy, on completion).
    // Touched by one thread at a time (windows are not shared across threads here): exempt
    // from dynamic exclusivity checks, which cost a put + flush more than MPI's own work.
    @exclusivity(unchecked) @usableFromInline var pending: [(rank: Int, buffer: UnsafeMutableRawBufferPointer?, complete: () -> Void)] = []
    @usableFromInline let communicatorSize: Int

    static var zeroValue: T {
        withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { buffer in
            UnsafeMutableRawPointer(buffer.baseAddress!).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.stride)
            return buffer[0]
        }
    }

    private init(handle: MPI_Win, local: UnsafeMutableBufferPointer<T>, size: Int) {
        self.handle = handle
        self.local = local
        self.communicatorSize = size
    }

    /// A window of `count` elements on each process, memory allocated by MPI (which may
    /// place it for faster remote access), zeroed (`MPI_Win_allocate`). Collective.
    public static func allocate(count: Int, communicator: Communicator) throws(MPIError) -> Window {
        try make(count: count, communicator: communicator, shared: false)
    }

    /// A window in memory the node's processes share (`MPI_Win_allocate_shared`): every
    /// process of `communicator` (one node's: `split(type: .sharedMemory)`) can also load and
    /// store the others' parts directly through `memory(of:)`. Collective.
    public static func allocateShared(count: Int, communicator: Communicator) throws(MPIError) -> Window {
        try make(count: count, communicator: communicator, shared: true)
    }

    private static func make(count: Int, communicator: Communicator, shared: Bool) throws(MPIError) -> Window {
        let bytes = MPI_Aint(count * MemoryLayout<T>.stride)
        guard count >= 0, Int(bytes) / max(1, MemoryLayout<T>.stride) == count else {
            throw MPIError(errorClass: MPI_ERR_SIZE, message: "window of \(count) elements")
        }
        var base: UnsafeMutableRawPointer?
        var win: MPI_Win?
        let unit = Int32(MemoryLayout<T>.stride)
        try withUnsafeMutablePointer(to: &base) { pointer throws(MPIError) in
            if shared {
                try check(MPI_Win_allocate_shared(bytes, unit, MPI_INFO_NULL, communicator.handle, pointer, &win))
            } else {
                try check(MPI_Win_allocate(bytes, unit, MPI_INFO_NULL, communicator.handle, pointer, &win))
            }
        }
        let typed = base.map { $0.bindMemory(to: T.self, capacity: count) }
        let local = UnsafeMutableBufferPointer(start: count > 0 ? typed : nil, count: count)
        if count > 0 { UnsafeMutableRawBufferPointer(local).initializeMemory(as: UInt8.self, repeating: 0) }
        let window = Window(handle: win!, local: local, size: communicator.size)
        // Everyone's zeroes are in place before anyone's first access.
        try check(MPI_Barrier(communicator.handle))
        return window
    }

    deinit {
        if handle != MPI_WIN_NULL, isActive {
            var win: MPI_Win? = handle
            _ = MPI_Win_free(&win)
        }
        for entry in pending { entry.buffer?.deallocate() }
    }

    /// Frees the window now (`MPI_Win_free`, collective); its memory goes with it.
    public func free() throws(MPIError) {
        guard handle != MPI_WIN_NULL, isActive else { return }
        var win: MPI_Win? = handle
        try check(MPI_Win_free(&win))
        handle = MPI_WIN_NULL
        complete { _ in true }
    }

    /// Another process's part of a shared-memory window, to load and store directly
    /// (`MPI_Win_shared_query`); the caller orders those accesses with `sync()` and a
    /// barrier (or a fence).
    public func memory(of rank: Int) throws(MPIError) -> UnsafeMutableBufferPointer<T> {
        var bytes: MPI_Aint = 0
        var unit: Int32 = 0
        var base: UnsafeMutableRawPointer?
        try withUnsafeMutablePointer(to: &base) { pointer throws(MPIError) in
            try check(MPI_Win_shared_query(handle, try mpiCount(rank), &bytes, &unit, pointer))
        }
        let count = Int(bytes) / MemoryLayout<T>.stride
        return UnsafeMutableBufferPointer(start: count > 0 ? base?.bindMemory(to: T.self, capacity: count) : nil, count: count)
    }

    // MARK: - Synchronisation

    /// Marks the pending operations whose target `covered` says complete: their copies go,
    /// their gets become readable.
    @usableFromInline func complete(_ covered: (Int) -> Bool) {
        guard !pending.isEmpty else { return }  // the copy-free forms leave nothing to complete
        var kept: [(rank: Int, buffer: UnsafeMutableRawBufferPointer?, complete: () -> Void)] = []
        for entry in pending {
            if covered(entry.rank) {
                entry.complete()
                entry.buffer?.deallocate()
            } else {
                kept.append(entry)
            }
        }
        pending = kept
    }

    /// Ends one access epoch and starts the next, on every process (`MPI_Win_fence`):
    /// everything before it has completed everywhere.
    public func fence() throws(MPIError) {
        try check(MPI_Win_fence(0, handle))
        complete { _ in true }
    }

    /// Starts access to `rank`'s part (`MPI_Win_lock`): exclusive keeps every other
    /// process out until `unlock`; shared lets other shared lockers in.
    public func lock(_ rank: Int, exclusive: Bool = false) throws(MPIError) {
        try check(MPI_Win_lock(exclusive ? Int32(MPI_LOCK_EXCLUSIVE) : Int32(MPI_LOCK_SHARED), try mpiCount(rank), 0, handle))
    }

    /// Ends access to `rank`'s part: what was done there has completed (`MPI_Win_unlock`).
    public func unlock(_ rank: Int) throws(MPIError) {
        try check(MPI_Win_unlock(try mpiCount(rank), handle))
        complete { $0 == rank }
    }

    /// Shared access to every process's part (`MPI_Win_lock_all`).
    public func lockAll() throws(MPIError) { try check(MPI_Win_lock_all(0, handle)) }

    /// Ends `lockAll`: everything has completed (`MPI_Win_unlock_all`).
    public func unlockAll() throws(MPIError) {
        try check(MPI_Win_unlock_all(handle))
        complete { _ in true }
    }

    /// Completes what was done at `rank` without ending the lock (`MPI_Win_flush`).
    @inlinable
    public func flush(_ rank: Int) throws(MPIError) {
        try check(MPI_Win_flush(try mpiCount(rank), handle))
        complete { $0 == rank }
    }

    /// Completes everything done under the current locks (`MPI_Win_flush_all`).
    public func flushAll() throws(MPIError) {
        try check(MPI_Win_flush_all(handle))
        complete { _ in true }
    }

    /// Makes this process's view of its window memory and MPI's agree (`MPI_Win_sync`):
    /// with a barrier, orders direct loads and stores on a shared-memory window.
    public func sync() throws(MPIError) { try check(MPI_Win_sync(handle)) }

    // MARK: - Access

    @inlinable @inline(__always)
    func target(_ rank: Int, _ offset: Int, _ count: Int, _ name: String) throws(MPIError) -> (Int32, MPI_Aint, Int32) {
        guard rank >= 0, rank < communicatorSize else {
            throw MPIError(errorClass: MPI_ERR_RANK, message: "\(name): rank \(rank) is not in the window's \(communicatorSize) processes")
        }
        guard offset >= 0 else { throw MPIError(errorClass: MPI_ERR_DISP, message: "\(name): offset \(offset) is negative") }
        return (try mpiCount(rank), MPI_Aint(offset), try mpiCount(count))
    }

    /// A copy of `values` that outlives this call, kept until the operation completes.
    private func keep(_ values: some Collection<T>) -> UnsafeMutableRawBufferPointer {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, values.count * MemoryLayout<T>.stride), alignment: MemoryLayout<T>.alignment)
        _ = copy.bindMemory(to: T.self).initialize(from: values)
        return copy
    }

    /// Writes `values` into `rank`'s part from element `offset` on (`MPI_Put`).
    public func put(_ values: some Collection<T>, to rank: Int, at offset: Int = 0) throws(MPIError) {
        let (target, displacement, count) = try self.target(rank, offset, values.count, "put")
        let copy = keep(values)
        let rc = MPI_Put(copy.baseAddress, count, T.mpiDatatype, target, displacement, count, T.mpiDatatype, handle)
        guard rc == MPI_SUCCESS else { copy.deallocate(); throw MPIError(code: rc) }
        pending.append((rank, copy, {}))
    }

    /// `put` from memory the caller leaves unchanged until a synchronisation covering `rank`
    /// completes it, as C's `MPI_Put`: no copy, no allocation (the form for tight loops).
    @inlinable
    public func put(from buffer: UnsafeBufferPointer<T>, to rank: Int, at offset: Int = 0) throws(MPIError) {
        let (target, displacement, count) = try self.target(rank, offset, buffer.count, "put")
        try check(MPI_Put(buffer.baseAddress, count, T.mpiDatatype, target, displacement, count, T.mpiDatatype, handle))
    }

    /// `get` into memory the caller reads only after a synchronisation covering `rank`, as
    /// C's `MPI_Get`: no allocation (the form for tight loops).
    @inlinable
    public func get(into buffer: UnsafeMutableBufferPointer<T>, from rank: Int, at offset: Int = 0) throws(MPIError) {
        let (target, displacement, count) = try self.target(rank, offset, buffer.count, "get")
        try check(MPI_Get(buffer.baseAddress, count, T.mpiDatatype, target, displacement, count, T.mpiDatatype, handle))
    }

    /// Reads `count` elements of `rank`'s part from `offset` on (`MPI_Get`): readable
    /// through the result once a synchronisation covers `rank`.
    public func get(count: Int, from rank: Int, at offset: Int = 0) throws(MPIError) -> Fetched<T> {
        let (target, displacement, mpiCount) = try self.target(rank, offset, count, "get")
        let fetched = Fetched<T>(count: count, rank: rank)
        try check(MPI_Get(fetched.storage.baseAddress, mpiCount, T.mpiDatatype, target, displacement, mpiCount, T.mpiDatatype, handle))
        pending.append((rank, nil, { fetched.isComplete = true }))
        return fetched
    }

    /// Combines `values` into `rank`'s part element-wise with `op` (`MPI_Accumulate`),
    /// atomically per element with respect to other accumulates; `.replace` is an atomic put.
    public func accumulate(_ values: some Collection<T>, to rank: Int, at offset: Int = 0, _ op: Operation) throws(MPIError) {
        try predefined(op, "accumulate")
        let (target, displacement, count) = try self.target(rank, offset, values.count, "accumulate")
        let copy = keep(values)
        let rc = MPI_Accumulate(copy.baseAddress, count, T.mpiDatatype, target, displacement, count, T.mpiDatatype, op.handle, handle)
        guard rc == MPI_SUCCESS else { copy.deallocate(); throw MPIError(code: rc) }
        pending.append((rank, copy, {}))
    }

    /// Combines `value` into element `offset` of `rank`'s part and brings the element's
    /// value before (`MPI_Fetch_and_op`): a shared counter, a ticket.
    public func fetchAndOp(_ value: T, at rank: Int, offset: Int = 0, _ op: Operation) throws(MPIError) -> Fetched<T> {
        try predefined(op, "fetchAndOp")
        let (target, displacement, _) = try self.target(rank, offset, 1, "fetchAndOp")
        let copy = keep(CollectionOfOne(value))
        let fetched = Fetched<T>(count: 1, rank: rank)
        let rc = MPI_Fetch_and_op(copy.baseAddress, fetched.storage.baseAddress, T.mpiDatatype, target, displacement, op.handle, handle)
        guard rc == MPI_SUCCESS else { copy.deallocate(); throw MPIError(code: rc) }
        pending.append((rank, copy, { fetched.isComplete = true }))
        return fetched
    }

    /// Replaces element `offset` of `rank`'s part with `value` if it equals `expected`,
    /// and brings the element's value before (`MPI_Compare_and_swap`). Open MPI 4.1's
    /// osc/rdma crashes on 64-bit elements between processes of one node
    /// (open-mpi/ompi#7967): use 32-bit flags there, or `--mca osc ucx`.
    public func compareAndSwap(_ value: T, expected: T, at rank: Int, offset: Int = 0) throws(MPIError) -> Fetched<T> {
        let (target, displacement, _) = try self.target(rank, offset, 1, "compareAndSwap")
        let copy = keep([value, expected])
        let fetched = Fetched<T>(count: 1, rank: rank)
        let base = copy.baseAddress!
        let rc = MPI_Compare_and_swap(base, base + MemoryLayout<T>.stride, fetched.storage.baseAddress, T.mpiDatatype, target, displacement, handle)
        guard rc == MPI_SUCCESS else { copy.deallocate(); throw MPIError(code: rc) }
        pending.append((rank, copy, { fetched.isComplete = true }))
        return fetched
    }

    private func predefined(_ op: Operation, _ name: String) throws(MPIError) {
        guard op.user == nil else {
            throw MPIError(errorClass: MPI_ERR_OP, message: "\(name): one-sided operations take MPI's predefined operations only, not Operation.custom")
        }
    }
}

extension Operation {
    /// Replaces the target's value (`MPI_REPLACE`): an accumulate that is an atomic put.
    @inlinable public static var replace: Operation { Operation(MPI_REPLACE) }
    /// Leaves the target's value (`MPI_NO_OP`): a fetch-and-op that is an atomic read.
    @inlinable public static var noOp: Operation { Operation(MPI_NO_OP) }
}
