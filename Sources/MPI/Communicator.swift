import CMPI

/// A group of processes that talk to each other (MPI-4.1 §7): `world`, `solo`, or one
/// made from them with `dup`, `split` or `cartesian`.
///
/// Communicators Cohort creates are freed when the last reference goes, or earlier with
/// `free()`; never after `finalize()`, which releases them all.
public final class Communicator: @unchecked Sendable {
    /// The MPI handle; `MPI_COMM_NULL` once freed.
    // Read on every call: exempt from dynamic exclusivity checks (only free() writes it).
    @exclusivity(unchecked) public private(set) var handle: MPI_Comm
    @usableFromInline let owned: Bool

    @usableFromInline init(handle: MPI_Comm, owned: Bool) {
        self.handle = handle
        self.owned = owned
    }

    deinit {
        if owned, handle != MPI_COMM_NULL, isActive {
            var comm: MPI_Comm? = handle
            _ = MPI_Comm_free(&comm)
        }
    }

    /// All processes of the job (`MPI_COMM_WORLD`).
    public static let world = Communicator(handle: MPI_COMM_WORLD, owned: false)
    /// This process alone (`MPI_COMM_SELF`).
    public static let solo = Communicator(handle: MPI_COMM_SELF, owned: false)

    /// A rank that matches any sender (`MPI_ANY_SOURCE`).
    public static let anySource = Int(MPI_ANY_SOURCE)
    /// A tag that matches any tag (`MPI_ANY_TAG`).
    public static let anyTag = Int(MPI_ANY_TAG)
    /// The null process: sending to or receiving from it does nothing (`MPI_PROC_NULL`).
    public static let nullProcess = Int(MPI_PROC_NULL)
    /// The largest tag this MPI allows (`MPI_TAG_UB` attribute).
    public var maxTag: Int {
        var value: UnsafeMutablePointer<Int32>?
        var flag: Int32 = 0
        _ = withUnsafeMutablePointer(to: &value) { MPI_Comm_get_attr(handle, Int32(MPI_TAG_UB), $0, &flag) }
        return flag != 0 && value != nil ? Int(value!.pointee) : 32767
    }

    /// This process's rank in the communicator (`MPI_Comm_rank`).
    @inlinable public var rank: Int {
        var rank: Int32 = 0
        _ = MPI_Comm_rank(handle, &rank)
        return Int(rank)
    }

    /// The number of processes (`MPI_Comm_size`).
    @inlinable public var size: Int {
        var size: Int32 = 0
        _ = MPI_Comm_size(handle, &size)
        return Int(size)
    }

    /// A new communicator with the same processes and a separate message space (`MPI_Comm_dup`).
    public func dup() throws(MPIError) -> Communicator {
        var comm: MPI_Comm?
        try check(MPI_Comm_dup(handle, &comm))
        return Communicator(handle: comm!, owned: true)
    }

    /// Splits into one communicator per `color`, ranked by `key` then old rank
    /// (`MPI_Comm_split`). A `nil` color leaves this process out: it gets `nil` back.
    public func split(color: Int?, key: Int = 0) throws(MPIError) -> Communicator? {
        var comm: MPI_Comm?
        let mpiColor = try color.map { c throws(MPIError) in try mpiCount(c) } ?? MPI_UNDEFINED
        try check(MPI_Comm_split(handle, mpiColor, try mpiCount(key), &comm))
        guard let comm, comm != MPI_COMM_NULL else { return nil }
        return Communicator(handle: comm, owned: true)
    }

    /// How two communicators relate (`MPI_Comm_compare`).
    public enum Comparison: Sendable {
        /// The same communicator.
        case identical
        /// Same processes in the same order, different contexts (a `dup`).
        case congruent
        /// Same processes, different order.
        case similar
        /// Anything else.
        case unequal

        /// What MPI's compare calls answer (`MPI_IDENT`…), for communicators and groups.
        init(mpi result: Int32) {
            switch Int(result) {
            case MPI_IDENT: self = .identical
            case MPI_CONGRUENT: self = .congruent
            case MPI_SIMILAR: self = .similar
            default: self = .unequal
            }
        }
    }

    /// Compares with `other` (`MPI_Comm_compare`).
    public func compare(with other: Communicator) throws(MPIError) -> Comparison {
        var result: Int32 = 0
        try check(MPI_Comm_compare(handle, other.handle, &result))
        return Comparison(mpi: result)
    }

    /// Frees the communicator now (`MPI_Comm_free`). Freeing `world` or `solo` is an error;
    /// after `finalize()` it does nothing, since MPI released everything then.
    public func free() throws(MPIError) {
        guard owned else {
            throw MPIError(errorClass: MPI_ERR_COMM, message: "the predefined communicators cannot be freed")
        }
        guard handle != MPI_COMM_NULL, isActive else { return }
        var comm: MPI_Comm? = handle
        try check(MPI_Comm_free(&comm))
        handle = MPI_COMM_NULL
    }

    /// Whether `free()` has run.
    public var isFreed: Bool { handle == MPI_COMM_NULL }

    /// Blocks until every process has called it (`MPI_Barrier`, §6.3).
    @inlinable public func barrier() throws(MPIError) {
        try check(MPI_Barrier(handle))
    }

    /// Ends every process of this communicator with `errorCode` (`MPI_Abort`).
    public func abort(errorCode: Int32 = 1) -> Never {
        MPI.abort(self, errorCode: errorCode)
    }
}
