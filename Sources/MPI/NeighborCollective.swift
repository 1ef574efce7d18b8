import CMPI

// Neighbourhood collectives (MPI-4.1 §8.6): each process exchanges with the neighbours its
// topology gives it — a distributed graph's edges (an unstructured mesh's halo) or a
// Cartesian grid's two per dimension — in one call, which MPI can schedule better than a
// sendReceive per neighbour. Blocks come in `neighbors()` order. A neighbour that is the
// null process (past a non-periodic grid edge) sends nothing: its block is left as it was
// (the `into:` forms) or empty.

extension Communicator {
    /// Incoming and outgoing neighbours: what sizes the buffers.
    @usableFromInline
    func neighborhood(_ name: String) throws(MPIError) -> (sources: [Int], destinations: [Int]) {
        do { return try neighbors() } catch {
            throw MPIError(errorClass: error.errorClass, message: "\(name): \(error.message)")
        }
    }

    /// Splits `flat` into one block per source, `counts[i]` elements each; a null
    /// process's block is empty.
    @usableFromInline
    static func blocks<T>(_ flat: [T], counts: [Int], sources: [Int]) -> [[T]] {
        var blocks: [[T]] = []
        blocks.reserveCapacity(counts.count)
        var offset = 0
        for (i, count) in counts.enumerated() {
            blocks.append(sources[i] == Communicator.nullProcess ? [] : Array(flat[offset..<offset + count]))
            offset += count
        }
        return blocks
    }

    /// `count` elements of all-zero bits, which every MPI datatype's Swift type can hold
    /// (plain values): what a null process's block holds before it is dropped.
    static func zeroed<T: MPIDatatype>(_ count: Int) -> [T] {
        [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress { UnsafeMutableRawPointer(base).initializeMemory(as: UInt8.self, repeating: 0, count: count * MemoryLayout<T>.stride) }
            initialized = count
        }
    }

    @usableFromInline
    static func displacements(_ counts: [Int]) throws(MPIError) -> (counts: [Int32], displacements: [Int32]) {
        var mpiCounts: [Int32] = [], displacements: [Int32] = []
        var offset = 0
        for count in counts {
            mpiCounts.append(try mpiCount(count))
            displacements.append(try mpiCount(offset))
            offset += count
        }
        return (mpiCounts, displacements)
    }

    /// Sends `array` to every outgoing neighbour; returns each incoming neighbour's array
    /// (all of `array`'s count), one block per source (`MPI_Neighbor_allgather`).
    public func neighborAllGather<T: MPIDatatype>(_ array: [T]) throws(MPIError) -> [[T]] {
        let (sources, _) = try neighborhood("neighborAllGather")
        var result = [[T]](repeating: array, count: sources.count).flatMap { $0 }  // sized; the null process's blocks are dropped
        try neighborAllGather(array, into: &result, sources: sources)
        return Self.blocks(result, counts: Array(repeating: array.count, count: sources.count), sources: sources)
    }

    /// The same into `result`, which holds `array.count` elements per source, in order.
    public func neighborAllGather<T: MPIDatatype>(_ array: [T], into result: inout [T]) throws(MPIError) {
        try neighborAllGather(array, into: &result, sources: try neighborhood("neighborAllGather").sources)
    }

    func neighborAllGather<T: MPIDatatype>(_ array: [T], into result: inout [T], sources: [Int]) throws(MPIError) {
        guard result.count == array.count * sources.count else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "neighborAllGather: the result holds \(result.count) elements, not \(sources.count) neighbours × \(array.count)")
        }
        let count = try mpiCount(array.count)
        let rc = array.withUnsafeBufferPointer { input in
            result.withUnsafeMutableBufferPointer { MPI_Neighbor_allgather(input.baseAddress, count, T.mpiDatatype, $0.baseAddress, count, T.mpiDatatype, handle) }
        }
        try check(rc)
    }

    /// Sends block j of `array` (equal blocks, one per outgoing neighbour) to destination j
    /// and returns the block of the same size from each source (`MPI_Neighbor_alltoall`).
    public func neighborAllToAll<T: MPIDatatype>(_ array: [T]) throws(MPIError) -> [[T]] {
        let (sources, destinations) = try neighborhood("neighborAllToAll")
        let each = try equalBlocks(array.count, destinations.count, "neighborAllToAll")
        var result: [T] = Self.zeroed(each * sources.count)
        let count = try mpiCount(each)
        let rc = array.withUnsafeBufferPointer { input in
            result.withUnsafeMutableBufferPointer { MPI_Neighbor_alltoall(input.baseAddress, count, T.mpiDatatype, $0.baseAddress, count, T.mpiDatatype, handle) }
        }
        try check(rc)
        return Self.blocks(result, counts: Array(repeating: each, count: sources.count), sources: sources)
    }

    /// Sends `blocks[j]` to destination j, of any length, and returns `receiveCounts[i]`
    /// elements from each source i (`MPI_Neighbor_alltoallv`): a halo whose faces differ.
    public func neighborAllToAll<T: MPIDatatype>(_ blocks: [[T]], receiveCounts: [Int]) throws(MPIError) -> [[T]] {
        let (sources, destinations) = try neighborhood("neighborAllToAll")
        guard blocks.count == destinations.count, receiveCounts.count == sources.count else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "neighborAllToAll: \(blocks.count) blocks and \(receiveCounts.count) receive counts for \(destinations.count) destinations and \(sources.count) sources")
        }
        let send = blocks.flatMap { $0 }
        let (sendCounts, sendDisplacements) = try Self.displacements(blocks.map(\.count))
        let (receiveMPI, receiveDisplacements) = try Self.displacements(receiveCounts)
        let total = receiveCounts.reduce(0, +)
        var result: [T] = Self.zeroed(total)
        let rc = send.withUnsafeBufferPointer { input in
            result.withUnsafeMutableBufferPointer {
                MPI_Neighbor_alltoallv(input.baseAddress, sendCounts, sendDisplacements, T.mpiDatatype,
                                       $0.baseAddress, receiveMPI, receiveDisplacements, T.mpiDatatype, handle)
            }
        }
        try check(rc)
        return Self.blocks(result, counts: receiveCounts, sources: sources)
    }

    func equalBlocks(_ count: Int, _ neighbours: Int, _ name: String) throws(MPIError) -> Int {
        guard neighbours > 0 ? count % neighbours == 0 : count == 0 else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "\(name): \(count) elements do not split into \(neighbours) equal blocks")
        }
        return neighbours > 0 ? count / neighbours : 0
    }

    // MARK: - Nonblocking (MPI_Ineighbor_*): start, compute, then wait() for the result.

    /// Starts `neighborAllGather` into `result` (`array.count` elements per source);
    /// `wait()` hands `result` back filled (`MPI_Ineighbor_allgather`).
    public func iNeighborAllGather<T: MPIDatatype>(_ array: [T], into result: consuming [T]) throws(MPIError) -> Request<[T]> {
        let (sources, _) = try neighborhood("iNeighborAllGather")
        guard result.count == array.count * sources.count else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "iNeighborAllGather: the result holds \(result.count) elements, not \(sources.count) neighbours × \(array.count)")
        }
        let count = try mpiCount(array.count)
        let (request, output) = try start(reading: array, writing: result) { input, output, request in
            MPI_Ineighbor_allgather(input, count, T.mpiDatatype, output, count, T.mpiDatatype, handle, &request)
        }
        return Request(handle: request, buffer: output, retaining: array)
    }

    /// Starts `neighborAllToAll` of equal blocks into `result` (one block per source).
    public func iNeighborAllToAll<T: MPIDatatype>(_ array: [T], into result: consuming [T]) throws(MPIError) -> Request<[T]> {
        let (sources, destinations) = try neighborhood("iNeighborAllToAll")
        let each = try equalBlocks(array.count, destinations.count, "iNeighborAllToAll")
        guard result.count == each * sources.count else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "iNeighborAllToAll: the result holds \(result.count) elements, not \(sources.count) sources × \(each)")
        }
        let count = try mpiCount(each)
        let (request, output) = try start(reading: array, writing: result) { input, output, request in
            MPI_Ineighbor_alltoall(input, count, T.mpiDatatype, output, count, T.mpiDatatype, handle, &request)
        }
        return Request(handle: request, buffer: output, retaining: array)
    }

    /// Starts `neighborAllToAll(_:receiveCounts:)` into `result`, which holds the sources'
    /// blocks one after another (`MPI_Ineighbor_alltoallv`).
    public func iNeighborAllToAll<T: MPIDatatype>(_ blocks: [[T]], receiveCounts: [Int], into result: consuming [T]) throws(MPIError) -> Request<[T]> {
        let (sources, destinations) = try neighborhood("iNeighborAllToAll")
        guard blocks.count == destinations.count, receiveCounts.count == sources.count, result.count == receiveCounts.reduce(0, +) else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "iNeighborAllToAll: \(blocks.count) blocks, \(receiveCounts.count) receive counts and \(result.count) result elements for \(destinations.count) destinations and \(sources.count) sources")
        }
        let send = blocks.flatMap { $0 }
        // Counts and displacements are read until the operation completes: the request keeps them.
        let sendLayout = try Self.displacements(blocks.map(\.count)), receiveLayout = try Self.displacements(receiveCounts)
        let layout = NeighborLayout(sendLayout.counts, sendLayout.displacements, receiveLayout.counts, receiveLayout.displacements)
        let (request, output) = try start(reading: send, writing: result) { input, output, request in
            MPI_Ineighbor_alltoallv(input, layout.sendCounts, layout.sendDisplacements, T.mpiDatatype,
                                    output, layout.receiveCounts, layout.receiveDisplacements, T.mpiDatatype, handle, &request)
        }
        return Request(handle: request, buffer: output, retaining: (send, layout))
    }
}

/// Counts and displacements in memory that stays put until a nonblocking call completes.
final class NeighborLayout: @unchecked Sendable {
    let sendCounts, sendDisplacements, receiveCounts, receiveDisplacements: UnsafeMutablePointer<Int32>

    init(_ a: [Int32], _ b: [Int32], _ c: [Int32], _ d: [Int32]) {
        func copy(_ values: [Int32]) -> UnsafeMutablePointer<Int32> {
            let pointer = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, values.count))
            pointer.initialize(from: values, count: values.count)
            return pointer
        }
        sendCounts = copy(a); sendDisplacements = copy(b); receiveCounts = copy(c); receiveDisplacements = copy(d)
    }

    deinit {
        for pointer in [sendCounts, sendDisplacements, receiveCounts, receiveDisplacements] { pointer.deallocate() }
    }
}
