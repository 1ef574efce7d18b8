import CMPI

/// What a completed receive or probe tells about its message (MPI-4.1 §3.2.5).
public struct Status: @unchecked Sendable {
    /// The raw `MPI_Status`.
    public var raw: MPI_Status

    @inlinable public init(_ raw: MPI_Status) { self.raw = raw }

    /// The rank of the sender.
    @inlinable public var source: Int { Int(raw.MPI_SOURCE) }
    /// The message's tag.
    @inlinable public var tag: Int { Int(raw.MPI_TAG) }
    /// The error field (meaningful for multiple-completion calls).
    @inlinable public var error: Int32 { raw.MPI_ERROR }

    /// How many elements of `T` the message held (`MPI_Get_count`).
    @inlinable
    public func count<T: MPIDatatype>(of _: T.Type) throws(MPIError) -> Int {
        var status = raw
        var count: Int32 = 0
        try check(MPI_Get_count(&status, T.mpiDatatype, &count))
        if count == MPI_UNDEFINED {
            throw MPIError(errorClass: MPI_ERR_TYPE, message: "message size is not a multiple of \(T.self)'s size")
        }
        return Int(count)
    }

    /// Whether the request this status belongs to was cancelled (`MPI_Test_cancelled`).
    public var isCancelled: Bool {
        var status = raw
        var flag: Int32 = 0
        _ = MPI_Test_cancelled(&status, &flag)
        return flag != 0
    }
}
