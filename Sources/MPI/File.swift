import CMPI

/// Parallel file I/O (MPI-4.1 §14): every rank of a communicator opens one file, sets a
/// view of its own part (a subarray of a global array, say) and the ranks write or read it
/// together, collectively — a checkpoint of a distributed field in one call, in the file's
/// global order.
///
/// ```swift
/// let file = try File.open("field.bin", mode: [.create, .writeOnly], on: grid)
/// try file.setView(elementType: Double.self, fileType: try Datatype.subarray(sizes: [n, n],
///                  subsizes: [rows, columns], starts: [rowOffset, columnOffset], of: Double.self))
/// try file.writeAll(block.interior)
/// try file.close()
/// ```
/// Errors on files return (MPI's default for files is `MPI_ERRORS_RETURN`) and are thrown.
public final class File: @unchecked Sendable {
    /// How a file is opened (`MPI_MODE_*`, §14.2.1).
    public struct Mode: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let readOnly = Mode(rawValue: MPI_MODE_RDONLY)
        public static let writeOnly = Mode(rawValue: MPI_MODE_WRONLY)
        public static let readWrite = Mode(rawValue: MPI_MODE_RDWR)
        public static let create = Mode(rawValue: MPI_MODE_CREATE)
        /// Fail if the file exists (with `create`).
        public static let exclusive = Mode(rawValue: MPI_MODE_EXCL)
        public static let deleteOnClose = Mode(rawValue: MPI_MODE_DELETE_ON_CLOSE)
        public static let append = Mode(rawValue: MPI_MODE_APPEND)
    }

    /// The MPI handle; `MPI_FILE_NULL` once closed.
    public private(set) var handle: MPI_File

    init(handle: MPI_File) { self.handle = handle }

    deinit {
        // A file left open is closed (collectively: every rank drops it at the same point).
        if handle != MPI_FILE_NULL, isActive {
            var file: MPI_File? = handle
            _ = MPI_File_close(&file)
        }
    }

    /// Opens `path` on every rank of `communicator` (collective, `MPI_File_open`); `hints`
    /// are MPI_Info key/values such as `["striping_factor": "4", "cb_nodes": "2"]`.
    public static func open(_ path: String, mode: Mode, on communicator: Communicator, hints: [String: String] = [:]) throws(MPIError) -> File {
        let info = try Info(hints)
        var file: MPI_File?
        try check(path.withCString { MPI_File_open(communicator.handle, $0, mode.rawValue, info.handle, &file) })
        return File(handle: file!)
    }

    /// Closes it on every rank (collective, `MPI_File_close`).
    public func close() throws(MPIError) {
        guard handle != MPI_FILE_NULL else { return }
        var file: MPI_File? = handle
        try check(MPI_File_close(&file))
        handle = MPI_FILE_NULL
    }

    /// Deletes a file no one has open (`MPI_File_delete`).
    public static func delete(_ path: String) throws(MPIError) {
        try check(path.withCString { MPI_File_delete($0, MPI_INFO_NULL) })
    }

    /// The file's size in bytes (`MPI_File_get_size`).
    public func size() throws(MPIError) -> Int {
        var size: MPI_Offset = 0
        try check(MPI_File_get_size(handle, &size))
        return Int(size)
    }

    /// Sets the size in bytes on every rank (collective, `MPI_File_set_size`): truncates or extends.
    public func setSize(_ size: Int) throws(MPIError) {
        try check(MPI_File_set_size(handle, MPI_Offset(size)))
    }

    /// Writes what this rank wrote to the storage device (collective, `MPI_File_sync`).
    public func sync() throws(MPIError) { try check(MPI_File_sync(handle)) }

    /// This rank's view of the file (collective, `MPI_File_set_view`): it starts
    /// `displacement` bytes in, holds elements of `T`, and is tiled by `fileType` (the part
    /// that is this rank's; `nil`: every element in turn). Offsets of the `at:` calls then
    /// count elements of `T` within the view. Data is in this machine's own representation.
    public func setView<T: MPIDatatype>(displacement: Int = 0, elementType _: T.Type, fileType: Datatype? = nil) throws(MPIError) {
        try check(MPI_File_set_view(handle, MPI_Offset(displacement), T.mpiDatatype, fileType?.handle ?? T.mpiDatatype, "native", MPI_INFO_NULL))
    }

    // MARK: - Writing (§14.4)

    /// Writes `values` at `offset` (elements of the view) from this rank alone (`MPI_File_write_at`); how many were written.
    /// `values`: any contiguous storage — an array, a slice of one, a buffer pointer — used in place.
    @discardableResult
    public func write<C: Collection>(_ values: C, at offset: Int) throws(MPIError) -> Int where C.Element: MPIDatatype {
        try transfer(values, of: C.Element.self) { buffer, count, status in
            MPI_File_write_at(handle, MPI_Offset(offset), buffer, count, C.Element.mpiDatatype, status)
        }
    }

    /// Every rank writes its `values` at its `offset`, together (`MPI_File_write_at_all`):
    /// MPI merges the ranks' pieces into few large writes.
    @discardableResult
    public func writeAll<C: Collection>(_ values: C, at offset: Int) throws(MPIError) -> Int where C.Element: MPIDatatype {
        try transfer(values, of: C.Element.self) { buffer, count, status in
            MPI_File_write_at_all(handle, MPI_Offset(offset), buffer, count, C.Element.mpiDatatype, status)
        }
    }

    /// Every rank writes its `values` through its view from its individual file pointer,
    /// together (`MPI_File_write_all`): with a subarray view, a distributed array lands in
    /// the file in global order.
    @discardableResult
    public func writeAll<C: Collection>(_ values: C) throws(MPIError) -> Int where C.Element: MPIDatatype {
        try transfer(values, of: C.Element.self) { buffer, count, status in
            MPI_File_write_all(handle, buffer, count, C.Element.mpiDatatype, status)
        }
    }

    // MARK: - Reading

    /// Reads up to `count` elements at `offset` on this rank alone (`MPI_File_read_at`);
    /// fewer at the end of the file.
    public func read<T: MPIDatatype>(_ count: Int, of _: T.Type, at offset: Int) throws(MPIError) -> [T] {
        try receive(count) { buffer, status throws(MPIError) in
            try check(MPI_File_read_at(handle, MPI_Offset(offset), buffer.baseAddress, try mpiCount(count), T.mpiDatatype, status))
        }
    }

    /// Every rank reads `count` elements at its `offset`, together (`MPI_File_read_at_all`).
    public func readAll<T: MPIDatatype>(_ count: Int, of _: T.Type, at offset: Int) throws(MPIError) -> [T] {
        try receive(count) { buffer, status throws(MPIError) in
            try check(MPI_File_read_at_all(handle, MPI_Offset(offset), buffer.baseAddress, try mpiCount(count), T.mpiDatatype, status))
        }
    }

    /// Every rank reads `count` elements through its view, together (`MPI_File_read_all`).
    public func readAll<T: MPIDatatype>(_ count: Int, of _: T.Type) throws(MPIError) -> [T] {
        try receive(count) { buffer, status throws(MPIError) in
            try check(MPI_File_read_all(handle, buffer.baseAddress, try mpiCount(count), T.mpiDatatype, status))
        }
    }

    // MARK: - Pieces

    /// Runs a write over `values`' own storage (a copy only for a collection that has none)
    /// and returns the elements MPI says it moved.
    private func transfer<C: Collection>(_ values: C, of _: C.Element.Type,
                                         _ call: (UnsafeRawPointer?, Int32, UnsafeMutablePointer<MPI_Status>) -> Int32) throws(MPIError) -> Int where C.Element: MPIDatatype {
        var status = MPI_Status()
        let count = try mpiCount(values.count)
        let rc = values.withContiguousStorageIfAvailable { call(UnsafeRawPointer($0.baseAddress), count, &status) }
            ?? Array(values).withUnsafeBufferPointer { call(UnsafeRawPointer($0.baseAddress), count, &status) }
        try check(rc)
        var moved: Int32 = 0
        try check(MPI_Get_count(&status, C.Element.mpiDatatype, &moved))
        return moved == MPI_UNDEFINED ? values.count : Int(moved)
    }

    /// Reads into a new array of `count` elements, cut to what was read.
    private func receive<T: MPIDatatype>(_ count: Int, _ body: (UnsafeMutableBufferPointer<T>, UnsafeMutablePointer<MPI_Status>) throws(MPIError) -> Void) throws(MPIError) -> [T] {
        var status = MPI_Status()
        var failure: MPIError?
        var values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            // Zeroed first: whatever the file does not hold reads as 0, never as garbage.
            if let base = buffer.baseAddress { UnsafeMutableRawPointer(base).initializeMemory(as: UInt8.self, repeating: 0, count: count * MemoryLayout<T>.stride) }
            initialized = count
            do throws(MPIError) { try body(buffer, &status) } catch { failure = error }
        }
        if let failure { throw failure }
        var moved: Int32 = 0
        try check(MPI_Get_count(&status, T.mpiDatatype, &moved))
        if moved != MPI_UNDEFINED, Int(moved) < count { values.removeLast(count - Int(moved)) }
        return values
    }
}

/// Hints for MPI (`MPI_Info`, §10): key/value strings, freed with the value.
public final class Info: @unchecked Sendable {
    public let handle: MPI_Info

    /// An info object holding `pairs`; `MPI_INFO_NULL` for none.
    public init(_ pairs: [String: String] = [:]) throws(MPIError) {
        guard !pairs.isEmpty else { handle = MPI_INFO_NULL; return }
        var info: MPI_Info?
        try check(MPI_Info_create(&info))
        for (key, value) in pairs.sorted(by: { $0.key < $1.key }) {
            let rc = key.withCString { k in value.withCString { v in MPI_Info_set(info, k, v) } }
            if rc != MPI_SUCCESS {
                _ = MPI_Info_free(&info)
                throw MPIError(code: rc)
            }
        }
        handle = info!
    }

    deinit {
        guard handle != MPI_INFO_NULL, isActive else { return }
        var info: MPI_Info? = handle
        _ = MPI_Info_free(&info)
    }
}
