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
        if _slowPath(count == MPI_UNDEFINED) { return try largeCount(of: T.self) }
        return Int(count)
    }

    /// The count when MPI's int cannot say it: a message of 2³¹ elements or more, or one
    /// whose size is not a multiple of the element's (an error).
    @usableFromInline
    func largeCount<T: MPIDatatype>(of _: T.Type) throws(MPIError) -> Int {
        var status = raw
        var bytes: MPI_Count = 0, size: MPI_Count = 0
        try check(MPI_Get_elements_x(&status, MPI_BYTE, &bytes))
        try check(MPI_Type_size_x(T.mpiDatatype, &size))
        guard size > 0, bytes % size == 0 else {
            throw MPIError(errorClass: MPI_ERR_TYPE, message: "message size is not a multiple of \(T.self)'s size")
        }
        return Int(bytes / size)
    }

    /// Whether the request this status belongs to was cancelled (`MPI_Test_cancelled`).
    public var isCancelled: Bool {
        var status = raw
        var flag: Int32 = 0
        _ = MPI_Test_cancelled(&status, &flag)
        return flag != 0
    }
}
