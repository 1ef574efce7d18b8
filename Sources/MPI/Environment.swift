import CMPI

/// The thread support an MPI library provides (MPI-4.1 §11.6).
public enum ThreadLevel: Int32, Comparable, Sendable, CaseIterable {
    case single, funneled, serialized, multiple

    init(mpi value: Int32) {
        switch Int(value) {
        case MPI_THREAD_SINGLE: self = .single
        case MPI_THREAD_FUNNELED: self = .funneled
        case MPI_THREAD_SERIALIZED: self = .serialized
        default: self = .multiple
        }
    }

    var mpiValue: Int32 {
        switch self {
        case .single: Int32(MPI_THREAD_SINGLE)
        case .funneled: Int32(MPI_THREAD_FUNNELED)
        case .serialized: Int32(MPI_THREAD_SERIALIZED)
        case .multiple: Int32(MPI_THREAD_MULTIPLE)
        }
    }

    public static func < (a: ThreadLevel, b: ThreadLevel) -> Bool { a.mpiValue < b.mpiValue }
}

/// Initializes MPI (`MPI_Init_thread`, MPI-4.1 §11.2.1) and returns the thread level provided,
/// which may be lower than the one asked for. Installs `MPI_ERRORS_RETURN` on the world and
/// self communicators, so every later failure is a thrown `MPIError`.
@discardableResult
public func initialize(threading required: ThreadLevel = .single) throws(MPIError) -> ThreadLevel {
    if isFinalized {
        throw MPIError(errorClass: MPI_ERR_OTHER, message: "MPI.initialize() called after MPI.finalize(): MPI cannot be restarted")
    }
    if isInitialized {
        throw MPIError(errorClass: MPI_ERR_OTHER, message: "MPI.initialize() called twice")
    }
    var provided: Int32 = 0
    try check(MPI_Init_thread(nil, nil, required.mpiValue, &provided))
    try check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN))
    try check(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN))
    return ThreadLevel(mpi: provided)
}

/// Finalizes MPI (`MPI_Finalize`, MPI-4.1 §11.2.2). Collective over all processes; call it
/// exactly once, after every request has completed.
public func finalize() throws(MPIError) {
    guard isInitialized else {
        throw MPIError(errorClass: MPI_ERR_OTHER, message: "MPI.finalize() called before MPI.initialize()")
    }
    guard !isFinalized else {
        throw MPIError(errorClass: MPI_ERR_OTHER, message: "MPI.finalize() called twice")
    }
    try check(MPI_Finalize())
}

/// Whether `initialize` has run (`MPI_Initialized`); stays true after finalize.
public var isInitialized: Bool {
    var flag: Int32 = 0
    _ = MPI_Initialized(&flag)
    return flag != 0
}

/// Whether `finalize` has run (`MPI_Finalized`).
public var isFinalized: Bool {
    var flag: Int32 = 0
    _ = MPI_Finalized(&flag)
    return flag != 0
}

/// True between initialize and finalize: when MPI calls are allowed.
public var isActive: Bool { isInitialized && !isFinalized }

/// The thread level in force (`MPI_Query_thread`).
public func queryThreadLevel() throws(MPIError) -> ThreadLevel {
    var level: Int32 = 0
    try check(MPI_Query_thread(&level))
    return ThreadLevel(mpi: level)
}

/// Elapsed wall-clock seconds since an arbitrary time in the past (`MPI_Wtime`, §9.6).
@inlinable @inline(__always)
public func wtime() -> Double { MPI_Wtime() }

/// The resolution of `wtime()` in seconds (`MPI_Wtick`).
public func wtick() -> Double { MPI_Wtick() }

/// The name of the processor this process runs on (`MPI_Get_processor_name`, §9.1).
public func processorName() throws(MPIError) -> String {
    var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
    var length: Int32 = 0
    try check(MPI_Get_processor_name(&buffer, &length))
    return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The MPI library's own version string (`MPI_Get_library_version`, §9.1.1).
public func libraryVersion() throws(MPIError) -> String {
    var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING) + 1)
    var length: Int32 = 0
    try check(MPI_Get_library_version(&buffer, &length))
    let text = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return text.trimmingSuffix { $0 == "\n" || $0 == "\0" }
}

/// The version of the MPI standard the library implements (`MPI_Get_version`).
public func standardVersion() throws(MPIError) -> (major: Int, minor: Int) {
    var major: Int32 = 0, minor: Int32 = 0
    try check(MPI_Get_version(&major, &minor))
    return (Int(major), Int(minor))
}

/// Ends every process of `communicator`'s group with `errorCode` (`MPI_Abort`, §11.5).
public func abort(_ communicator: Communicator = .world, errorCode: Int32 = 1) -> Never {
    _ = MPI_Abort(communicator.handle, errorCode)
    fatalError("MPI_Abort returned")
}

extension String {
    func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        var text = self
        while let last = text.last, predicate(last) { text.removeLast() }
        return text
    }
}
