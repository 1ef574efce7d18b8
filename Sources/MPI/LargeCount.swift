import CMPI

// Counts beyond MPI's int (2³¹ − 1 elements: 2 GiB of bytes, 16 GiB of doubles). Open MPI
// 4.1 has no MPI-4 `_c` functions, so such a buffer goes as one element of a derived type
// that spans it all — 2³⁰-element blocks plus the rest (BigMPI's way) — built, used and
// freed around the call. Below the limit nothing changes: the element's own type and count.

/// A count MPI's int can carry, with the datatype to count in.
@usableFromInline
struct MPICount {
    @usableFromInline let count: Int32
    @usableFromInline let datatype: MPI_Datatype
    @usableFromInline let derived: Bool

    /// `elements` of `base`: themselves when they fit an int, else one derived element.
    @inlinable
    init(_ elements: Int, of base: MPI_Datatype) throws(MPIError) {
        if _fastPath(elements <= Int(Int32.max)) {
            guard elements >= 0 else { throw MPIError(errorClass: MPI_ERR_COUNT, message: "count \(elements) is negative") }
            count = Int32(truncatingIfNeeded: elements)
            datatype = base
            derived = false
        } else {
            count = 1
            datatype = try largeType(elements, of: base)
            derived = true
        }
    }

    /// Frees the derived type, if one was made (MPI keeps it for operations still pending).
    @inlinable
    func release() {
        if _slowPath(derived) {
            var type: MPI_Datatype? = datatype
            _ = MPI_Type_free(&type)
        }
    }
}

/// One committed datatype of `elements` consecutive `base` values.
@usableFromInline
func largeType(_ elements: Int, of base: MPI_Datatype) throws(MPIError) -> MPI_Datatype {
    let chunk = 1 << 30
    let (blocks, rest) = elements.quotientAndRemainder(dividingBy: chunk)
    var block: MPI_Datatype?, run: MPI_Datatype?
    try check(MPI_Type_contiguous(Int32(chunk), base, &block))
    defer { _ = MPI_Type_free(&block) }
    try check(MPI_Type_contiguous(try mpiCount(blocks), block, &run))
    var result = run
    if rest > 0 {
        defer { _ = MPI_Type_free(&run) }
        var tail: MPI_Datatype?
        try check(MPI_Type_contiguous(Int32(rest), base, &tail))
        defer { _ = MPI_Type_free(&tail) }
        var lowerBound: MPI_Aint = 0, extent: MPI_Aint = 0
        try check(MPI_Type_get_extent(base, &lowerBound, &extent))
        var lengths: [Int32] = [1, 1]
        var displacements: [MPI_Aint] = [0, MPI_Aint(blocks * chunk) * extent]
        var types: [MPI_Datatype?] = [run, tail]
        var combined: MPI_Datatype?
        try check(MPI_Type_create_struct(2, &lengths, &displacements, &types, &combined))
        result = combined
    }
    try check(MPI_Type_commit(&result))
    return result!
}
