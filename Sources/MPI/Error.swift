import CMPI

/// An error returned by an MPI call (MPI-4.1 §9.4): MPI's error code, its class and message.
///
/// Cohort installs `MPI_ERRORS_RETURN` on `MPI_COMM_WORLD` and `MPI_COMM_SELF` at
/// initialization, so failures arrive here instead of aborting the job.
public struct MPIError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The code the call returned (may be implementation-specific).
    public let code: Int32
    /// The error class of `code` (`MPI_ERR_TRUNCATE`, `MPI_ERR_RANK`, ...).
    public let errorClass: Int32
    /// MPI's own text for the code, or Cohort's for errors it detects itself.
    public let message: String

    public init(code: Int32) {
        self.code = code
        // MPI-4 allows MPI_Error_class/MPI_Error_string at any time, but Open MPI 4.1 aborts
        // when they are called outside init..finalize; predefined codes are their own class.
        guard isActive else {
            self.errorClass = code
            self.message = "MPI error code \(code) (MPI is not initialized, so it cannot describe it)"
            return
        }
        var cls: Int32 = code
        _ = MPI_Error_class(code, &cls)
        self.errorClass = cls
        self.message = MPIError.string(for: code)
    }

    /// An error Cohort's wrapper detects itself (misuse of the lifetime, bad arguments).
    public init(errorClass: Int32, message: String) {
        self.code = errorClass
        self.errorClass = errorClass
        self.message = message
    }

    /// True when a receive buffer was too small for the incoming message.
    public var isTruncation: Bool { errorClass == MPI_ERR_TRUNCATE }

    public var description: String { "MPI error \(code) (class \(errorClass)): \(message)" }

    static func string(for code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &buffer, &length) == MPI_SUCCESS else { return "unknown MPI error \(code)" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Turns an MPI return code into a thrown `MPIError`. Inlined so the success path is one compare.
@inlinable @inline(__always)
func check(_ code: Int32) throws(MPIError) {
    if _slowPath(code != MPI_SUCCESS) { throw MPIError(code: code) }
}

/// Converts a Swift count to MPI's `int`, throwing instead of trapping on overflow.
@inlinable @inline(__always)
func mpiCount(_ value: Int) throws(MPIError) -> Int32 {
    guard let count = Int32(exactly: value) else {
        throw MPIError(errorClass: MPI_ERR_COUNT, message: "count \(value) does not fit MPI's int")
    }
    return count
}
