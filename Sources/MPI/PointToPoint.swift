import CMPI

// Blocking point-to-point communication (MPI-4.1 §3). Arrays and buffers are sent and
// received in place: no copies, no allocation beyond what the caller asked for.

extension Communicator {
    // MARK: send

    /// Sends the elements of `buffer` to rank `destination` (`MPI_Send`, §3.2).
    @inlinable
    public func send<T: MPIDatatype>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0) throws(MPIError) {
        let n = try MPICount(buffer.count, of: T.mpiDatatype)
        defer { n.release() }
        try check(MPI_Send(buffer.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), handle))
    }

    /// Sends every element of `array` to rank `destination` (`MPI_Send`).
    @inlinable
    public func send<T: MPIDatatype>(_ array: [T], to destination: Int, tag: Int = 0) throws(MPIError) {
        let n = try MPICount(array.count, of: T.mpiDatatype)
        defer { n.release() }
        let rc = array.withUnsafeBufferPointer {
            MPI_Send($0.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), handle)
        }
        try check(rc)
    }

    /// Sends a slice of an array in place, e.g. `world.send(buffer[0..<n], to: 1)` (`MPI_Send`).
    @inlinable
    public func send<T: MPIDatatype>(_ slice: ArraySlice<T>, to destination: Int, tag: Int = 0) throws(MPIError) {
        let n = try MPICount(slice.count, of: T.mpiDatatype)
        defer { n.release() }
        let rc = slice.withUnsafeBufferPointer {
            MPI_Send($0.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), handle)
        }
        try check(rc)
    }

    /// Sends one value to rank `destination` (`MPI_Send`).
    @inlinable
    public func send<T: MPIDatatype>(_ value: T, to destination: Int, tag: Int = 0) throws(MPIError) {
        var value = value
        try check(MPI_Send(&value, 1, T.mpiDatatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), handle))
    }

    /// Sends `count` elements of a derived `datatype` starting at `buffer` (`MPI_Send`).
    @inlinable
    public func send(_ buffer: UnsafeRawPointer, count: Int, datatype: Datatype, to destination: Int, tag: Int = 0) throws(MPIError) {
        try check(MPI_Send(buffer, try mpiCount(count), datatype.handle, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), handle))
    }

    /// Synchronous send: completes only once the receive has started (`MPI_Ssend`).
    @inlinable
    public func synchronousSend<T: MPIDatatype>(_ array: [T], to destination: Int, tag: Int = 0) throws(MPIError) {
        let n = try MPICount(array.count, of: T.mpiDatatype)
        defer { n.release() }
        let rc = array.withUnsafeBufferPointer {
            MPI_Ssend($0.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: tag), handle)
        }
        try check(rc)
    }

    // MARK: receive

    /// Receives into `buffer` (`MPI_Recv`, §3.2.4). A message longer than the buffer throws
    /// a truncation error (`MPIError.isTruncation`); memory past the buffer is never written.
    @inlinable @discardableResult
    public func receive<T: MPIDatatype>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> Status {
        var status = MPI_Status()
        let n = try MPICount(buffer.count, of: T.mpiDatatype)
        defer { n.release() }
        try check(MPI_Recv(buffer.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), handle, &status))
        return Status(status)
    }

    /// Receives into the existing elements of `array`; its count is the most accepted (`MPI_Recv`).
    @inlinable @discardableResult
    public func receive<T: MPIDatatype>(into array: inout [T], from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> Status {
        var status = MPI_Status()
        let n = try MPICount(array.count, of: T.mpiDatatype)
        defer { n.release() }
        let rc = array.withUnsafeMutableBufferPointer {
            MPI_Recv($0.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), handle, &status)
        }
        try check(rc)
        return Status(status)
    }

    /// Receives into `array[range]` in place, e.g. `world.receive(into: &buffer, range: 0..<n)`
    /// (`MPI_Recv`). (An `inout ArraySlice` would copy: Array's range subscript has no
    /// in-place accessor.)
    @inlinable @discardableResult
    public func receive<T: MPIDatatype>(into array: inout [T], range: Range<Int>, from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> Status {
        precondition(range.lowerBound >= 0 && range.upperBound <= array.count, "receive range \(range) outside the array's \(array.count) elements")
        var status = MPI_Status()
        let n = try MPICount(range.count, of: T.mpiDatatype)
        defer { n.release() }
        let rc = array.withUnsafeMutableBufferPointer {
            MPI_Recv($0.baseAddress.map { $0 + range.lowerBound }, n.count, n.datatype, Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), handle, &status)
        }
        try check(rc)
        return Status(status)
    }

    /// Receives one value (`MPI_Recv`).
    @inlinable
    public func receive<T: MPIDatatype>(_: T.Type = T.self, from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> T {
        try receiveWithStatus(T.self, from: source, tag: tag).value
    }

    /// Receives one value and the status of its message (`MPI_Recv`).
    @inlinable
    public func receiveWithStatus<T: MPIDatatype>(_: T.Type = T.self, from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> (value: T, status: Status) {
        var status = MPI_Status()
        let value = try withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { buffer throws(MPIError) -> T in
            try check(MPI_Recv(buffer.baseAddress, 1, T.mpiDatatype, Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), handle, &status))
            return buffer[0]
        }
        return (value, Status(status))
    }

    /// Receives a message of unknown length: probes for it, sizes an array to fit, then
    /// receives exactly that message (`MPI_Mprobe` + `MPI_Mrecv`, so no other receive
    /// can take it in between).
    @inlinable
    public func receiveArray<T: MPIDatatype>(of _: T.Type = T.self, from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> (values: [T], status: Status) {
        var message: MPI_Message?
        var status = MPI_Status()
        try check(MPI_Mprobe(Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), handle, &message, &status))
        let count = try Status(status).count(of: T.self)
        let n = try MPICount(count, of: T.mpiDatatype)
        defer { n.release() }
        var rc: Int32 = MPI_SUCCESS
        let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            rc = MPI_Mrecv(buffer.baseAddress, n.count, n.datatype, &message, &status)
            initialized = rc == MPI_SUCCESS ? count : 0
        }
        try check(rc)
        return (values, Status(status))
    }

    /// Receives `count` elements of a derived `datatype` into `buffer` (`MPI_Recv`).
    @inlinable @discardableResult
    public func receive(into buffer: UnsafeMutableRawPointer, count: Int, datatype: Datatype, from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> Status {
        var status = MPI_Status()
        try check(MPI_Recv(buffer, try mpiCount(count), datatype.handle, Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), handle, &status))
        return Status(status)
    }

    // MARK: probe

    /// Blocks until a matching message can be received and describes it (`MPI_Probe`, §3.8).
    @inlinable
    public func probe(from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> Status {
        var status = MPI_Status()
        try check(MPI_Probe(Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), handle, &status))
        return Status(status)
    }

    /// Describes a matching message if one is there now, else returns nil (`MPI_Iprobe`).
    @inlinable
    public func iprobe(from source: Int = Communicator.anySource, tag: Int = Communicator.anyTag) throws(MPIError) -> Status? {
        var status = MPI_Status()
        var flag: Int32 = 0
        try check(MPI_Iprobe(Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: tag), handle, &flag, &status))
        return flag != 0 ? Status(status) : nil
    }

    // MARK: send-receive

    /// Sends `array` to `destination` and receives into `received` from `source` in one
    /// deadlock-free step (`MPI_Sendrecv`, §3.10): the halo-exchange primitive.
    @inlinable @discardableResult
    public func sendReceive<T: MPIDatatype>(_ array: [T], to destination: Int, sendTag: Int = 0, into received: inout [T], from source: Int = Communicator.anySource, receiveTag: Int = Communicator.anyTag) throws(MPIError) -> Status {
        var status = MPI_Status()
        let sendCount = try mpiCount(array.count), receiveCount = try mpiCount(received.count)
        let rc = array.withUnsafeBufferPointer { send in
            received.withUnsafeMutableBufferPointer { receive in
                MPI_Sendrecv(send.baseAddress, sendCount, T.mpiDatatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: sendTag),
                             receive.baseAddress, receiveCount, T.mpiDatatype, Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: receiveTag),
                             handle, &status)
            }
        }
        try check(rc)
        return Status(status)
    }

    /// Sends the contents of `array` and replaces them with what arrives (`MPI_Sendrecv_replace`).
    @inlinable @discardableResult
    public func sendReceiveReplace<T: MPIDatatype>(_ array: inout [T], to destination: Int, sendTag: Int = 0, from source: Int = Communicator.anySource, receiveTag: Int = Communicator.anyTag) throws(MPIError) -> Status {
        var status = MPI_Status()
        let count = try mpiCount(array.count)
        let rc = array.withUnsafeMutableBufferPointer {
            MPI_Sendrecv_replace($0.baseAddress, count, T.mpiDatatype, Int32(truncatingIfNeeded: destination), Int32(truncatingIfNeeded: sendTag),
                                 Int32(truncatingIfNeeded: source), Int32(truncatingIfNeeded: receiveTag), handle, &status)
        }
        try check(rc)
        return Status(status)
    }
}
