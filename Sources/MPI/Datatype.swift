import CMPI

/// A Swift type that is, bit for bit, one MPI datatype (MPI-4.1 §3.2.2), so values of it
/// can be sent and received in place. Scalars conform out of the box; so do the pair
/// types that `minLoc`/`maxLoc` reduce.
public protocol MPIDatatype: BitwiseCopyable {
    /// The MPI datatype handle describing one value.
    static var mpiDatatype: MPI_Datatype { get }
}

extension Int8: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_INT8_T } }
extension Int16: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_INT16_T } }
extension Int32: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_INT32_T } }
extension Int64: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_INT64_T } }
extension UInt8: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_UINT8_T } }
extension UInt16: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_UINT16_T } }
extension UInt32: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_UINT32_T } }
extension UInt64: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_UINT64_T } }
extension Float: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_FLOAT } }
extension Double: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_DOUBLE } }
/// Swift's `Bool` is one byte holding 0 or 1, exactly C's `_Bool`.
extension Bool: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_C_BOOL } }

#if _pointerBitWidth(_64)
extension Int: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_INT64_T } }
extension UInt: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_UINT64_T } }
#else
extension Int: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_INT32_T } }
extension UInt: MPIDatatype { @inlinable public static var mpiDatatype: MPI_Datatype { MPI_UINT32_T } }
#endif

// MARK: - Value/index pairs for minLoc and maxLoc (MPI-4.1 §6.9.4)
// Each has the C layout of MPI's pair struct: the value, then an `int` index.

/// A `Double` and the index it came from: `MPI_DOUBLE_INT`.
public struct DoubleInt: MPIDatatype, Equatable, Sendable {
    public var value: Double
    public var index: Int32
    public init(_ value: Double, _ index: Int32) { self.value = value; self.index = index }
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_DOUBLE_INT }
}

/// A `Float` and an index: `MPI_FLOAT_INT`.
public struct FloatInt: MPIDatatype, Equatable, Sendable {
    public var value: Float
    public var index: Int32
    public init(_ value: Float, _ index: Int32) { self.value = value; self.index = index }
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_FLOAT_INT }
}

/// A C `long` and an index: `MPI_LONG_INT`.
public struct LongInt: MPIDatatype, Equatable, Sendable {
    public var value: Int
    public var index: Int32
    public init(_ value: Int, _ index: Int32) { self.value = value; self.index = index }
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_LONG_INT }
}

/// Two C `int`s, a value and an index: `MPI_2INT`.
public struct IntInt: MPIDatatype, Equatable, Sendable {
    public var value: Int32
    public var index: Int32
    public init(_ value: Int32, _ index: Int32) { self.value = value; self.index = index }
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_2INT }
}

/// A C `short` and an index: `MPI_SHORT_INT`.
public struct ShortInt: MPIDatatype, Equatable, Sendable {
    public var value: Int16
    public var index: Int32
    public init(_ value: Int16, _ index: Int32) { self.value = value; self.index = index }
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_SHORT_INT }
}

// MARK: - Derived datatypes (MPI-4.1 §5.1)

/// A committed derived datatype: a layout of elements in memory (strided columns,
/// blocks, structs). Freed when the last reference goes, unless MPI is finalized by then.
public final class Datatype: @unchecked Sendable {
    /// The committed MPI handle.
    public let handle: MPI_Datatype

    init(committing type: MPI_Datatype) throws(MPIError) {
        var type: MPI_Datatype? = type
        let rc = MPI_Type_commit(&type)
        if rc != MPI_SUCCESS {
            _ = MPI_Type_free(&type)
            throw MPIError(code: rc)
        }
        self.handle = type!
    }

    deinit {
        // Freeing after MPI_Finalize is erroneous; the datatype is gone with MPI then anyway.
        guard isActive else { return }
        var type: MPI_Datatype? = handle
        _ = MPI_Type_free(&type)
    }

    /// `count` consecutive elements of `T` (`MPI_Type_contiguous`).
    public static func contiguous<T: MPIDatatype>(count: Int, of _: T.Type) throws(MPIError) -> Datatype {
        var type: MPI_Datatype?
        try check(MPI_Type_contiguous(try mpiCount(count), T.mpiDatatype, &type))
        return try Datatype(committing: type!)
    }

    /// `count` blocks of `blockLength` elements of `T`, block starts `stride` elements apart
    /// (`MPI_Type_vector`): a column of a row-major matrix is `vector(count: rows,
    /// blockLength: 1, stride: columns)`.
    public static func vector<T: MPIDatatype>(count: Int, blockLength: Int, stride: Int, of _: T.Type) throws(MPIError) -> Datatype {
        var type: MPI_Datatype?
        try check(MPI_Type_vector(try mpiCount(count), try mpiCount(blockLength), try mpiCount(stride), T.mpiDatatype, &type))
        return try Datatype(committing: type!)
    }

    /// A block of an N-dimensional row-major array (`MPI_Type_create_subarray`, C order):
    /// of an array of `sizes`, the `subsizes` elements starting at `starts` in each
    /// dimension. As a file view, it places a rank's block of a distributed array in the
    /// global array's order; in memory, it picks a block out of a larger local one.
    public static func subarray<T: MPIDatatype>(sizes: [Int], subsizes: [Int], starts: [Int], of _: T.Type) throws(MPIError) -> Datatype {
        guard !sizes.isEmpty, sizes.count == subsizes.count, sizes.count == starts.count,
              zip(zip(sizes, subsizes), starts).allSatisfy({ $0.1 >= 0 && $1 >= 0 && $0.1 + $1 <= $0.0 }) else {
            throw MPIError(errorClass: MPI_ERR_ARG, message: "a subarray of \(sizes) needs as many subsizes and starts, each block inside: \(subsizes) at \(starts)")
        }
        var sizes32 = [Int32](), subsizes32 = [Int32](), starts32 = [Int32]()
        for index in sizes.indices {
            sizes32.append(try mpiCount(sizes[index]))
            subsizes32.append(try mpiCount(subsizes[index]))
            starts32.append(try mpiCount(starts[index]))
        }
        var type: MPI_Datatype?
        try check(MPI_Type_create_subarray(Int32(sizes.count), &sizes32, &subsizes32, &starts32, MPI_ORDER_C, T.mpiDatatype, &type))
        return try Datatype(committing: type!)
    }

    /// A struct laid out as `fields`, each an MPI datatype at a byte offset, with
    /// `stride` bytes between consecutive values (`MPI_Type_create_struct` then
    /// `MPI_Type_create_resized`). Use `MemoryLayout<S>.offset(of:)` and `.stride`.
    public static func structure(fields: [(offset: Int, datatype: MPI_Datatype, count: Int)], stride: Int) throws(MPIError) -> Datatype {
        var lengths = [Int32](), offsets = [MPI_Aint](), types = [MPI_Datatype?]()
        for field in fields {
            lengths.append(try mpiCount(field.count))
            offsets.append(MPI_Aint(field.offset))
            types.append(field.datatype)
        }
        var raw: MPI_Datatype?
        try check(MPI_Type_create_struct(try mpiCount(fields.count), &lengths, &offsets, &types, &raw))
        var resized: MPI_Datatype?
        let rc = MPI_Type_create_resized(raw, 0, MPI_Aint(stride), &resized)
        _ = MPI_Type_free(&raw)
        try check(rc)
        return try Datatype(committing: resized!)
    }

    /// The number of bytes of data the type describes (`MPI_Type_size`).
    public func size() throws(MPIError) -> Int {
        var size: Int32 = 0
        try check(MPI_Type_size(handle, &size))
        return Int(size)
    }

    /// Lower bound and extent in bytes (`MPI_Type_get_extent`).
    public func extent() throws(MPIError) -> (lowerBound: Int, extent: Int) {
        var lb: MPI_Aint = 0, extent: MPI_Aint = 0
        try check(MPI_Type_get_extent(handle, &lb, &extent))
        return (Int(lb), Int(extent))
    }
}
