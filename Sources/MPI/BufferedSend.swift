import CMPI

// The send modes beside standard and synchronous (MPI-4.1 §3.4, §3.6): buffered sends
// return once the message is copied into a buffer the process attached, whatever the
// receiver does; ready sends may be used only when the matching receive is already posted.

/// Bytes each buffered message takes in the attached buffer beyond its data (`MPI_BSEND_OVERHEAD`).
public let bufferedSendOverhead = Int(MPI_BSEND_OVERHEAD)

nonisolated(unsafe) private var attachedSendBuffer: UnsafeMutableRawBufferPointer?

/// Attaches a buffer of `bytes` for buffered sends (`MPI_Buffer_attach`); one per process.
/// Size it with `bufferedSendSize` for every message that may be in it at once.
public func attachSendBuffer(bytes: Int) throws(MPIError) {
    guard attachedSendBuffer == nil else {
        throw MPIError(errorClass: MPI_ERR_BUFFER, message: "attachSendBuffer: a buffer is attached already; detach it first")
    }
    let size = try mpiCount(bytes)
    guard size > 0 else { throw MPIError(errorClass: MPI_ERR_BUFFER, message: "attachSendBuffer: \(bytes) bytes") }
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 16)
    do { try check(MPI_Buffer_attach(memory.baseAddress, size)) } catch {
        memory.deallocate()
        throw error
    }
    attachedSendBuffer = memory
}

/// Waits until every buffered message has been sent, then detaches and frees the buffer
/// (`MPI_Buffer_detach`). Returns its size.
@discardableResult
public func detachSendBuffer() throws(MPIError) -> Int {
    guard let memory = attachedSendBuffer else { throw MPIError(errorClass: MPI_ERR_BUFFER, message: "detachSendBuffer: no buffer is attached") }
    var address: UnsafeMutableRawPointer?
    var size: Int32 = 0
    try withUnsafeMutablePointer(to: &address) { pointer throws(MPIError) in try check(MPI_Buffer_detach(pointer, &size)) }
    memory.deallocate()
    attachedSendBuffer = nil
    return Int(size)
}

/// The bytes one buffered message of `count` elements of `T` needs in the attached buffer
/// (`MPI_Pack_size` plus the overhead).
public func bufferedSendSize<T: MPIDatatype>(of type: T.Type, count: Int, communicator: Communicator = .world) throws(MPIError) -> Int {
    var size: Int32 = 0
    try check(MPI_Pack_size(try mpiCount(count), T.mpiDatatype, communicator.handle, &size))
    return Int(size) + bufferedSendOverhead
}

extension Communicator {
    /// Buffered send (`MPI_Bsend`): copies the message into the attached buffer and returns,
    /// whether or not a receive is posted. Throws `MPI_ERR_BUFFER` when it does not fit — but
    /// size the buffer rather than count on that: in Open MPI 4.1 the refused message still
    /// spends its sequence number, and later messages on this communicator to that rank (a
    /// barrier too) then wait for it for ever (reproduced in C).
    public func bufferedSend<T: MPIDatatype>(_ array: [T], to destination: Int, tag: Int = 0) throws(MPIError) {
        let count = try mpiCount(array.count)
        let rc = array.withUnsafeBufferPointer {
            MPI_Bsend($0.baseAddress, count, T.mpiDatatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), handle)
        }
        try check(rc)
    }

    /// Ready send (`MPI_Rsend`): correct only if the destination has already posted the
    /// matching receive (say, an `irecv` before a barrier); it may then skip the handshake.
    public func readySend<T: MPIDatatype>(_ array: [T], to destination: Int, tag: Int = 0) throws(MPIError) {
        let count = try mpiCount(array.count)
        let rc = array.withUnsafeBufferPointer {
            MPI_Rsend($0.baseAddress, count, T.mpiDatatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), handle)
        }
        try check(rc)
    }
}
