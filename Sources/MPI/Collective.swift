import CMPI

// Collective communication (MPI-4.1 §6). Every process of the communicator must make the
// same call with matching counts. Results that exist only at the root come back as nil
// elsewhere. The `into:` and `inPlace:` forms allocate nothing.

extension Communicator {
    // MARK: broadcast (§6.4)

    /// Copies `array` from `root` into `array` on every process; all pass the same count (`MPI_Bcast`).
    @inlinable
    public func broadcast<T: MPIDatatype>(_ array: inout [T], root: Int = 0) throws(MPIError) {
        let n = try MPICount(array.count, of: T.mpiDatatype)
        defer { n.release() }
        let rc = array.withUnsafeMutableBufferPointer { MPI_Bcast($0.baseAddress, n.count, n.datatype, Int32(truncatingIfNeeded: root), handle) }
        try check(rc)
    }

    /// Returns `root`'s `value` on every process (`MPI_Bcast`).
    @inlinable
    public func broadcast<T: MPIDatatype>(_ value: T, root: Int = 0) throws(MPIError) -> T {
        var value = value
        try check(MPI_Bcast(&value, 1, T.mpiDatatype, Int32(truncatingIfNeeded: root), handle))
        return value
    }

    // MARK: reduce (§6.9)

    /// Combines `array` element-wise over all processes; the result lands at `root` (`MPI_Reduce`).
    @inlinable
    public func reduce<T: MPIDatatype>(_ array: [T], _ op: Operation, root: Int = 0) throws(MPIError) -> [T]? {
        let isRoot = rank == root
        var result = [T]()
        if isRoot { result = array }  // same count and type; every element is overwritten
        let count = try mpiCount(array.count)
        let rc = try op.withActive { () throws(MPIError) -> Int32 in
            array.withUnsafeBufferPointer { send in
                result.withUnsafeMutableBufferPointer { receive in
                    MPI_Reduce(send.baseAddress, isRoot ? receive.baseAddress : nil, count, T.mpiDatatype, op.handle, Int32(truncatingIfNeeded: root), handle)
                }
            }
        }
        try check(rc)
        return isRoot ? result : nil
    }

    /// Combines one value over all processes; the result lands at `root` (`MPI_Reduce`).
    @inlinable
    public func reduce<T: MPIDatatype>(_ value: T, _ op: Operation, root: Int = 0) throws(MPIError) -> T? {
        var send = value, result = value
        let rc = try op.withActive { () throws(MPIError) -> Int32 in
            MPI_Reduce(&send, &result, 1, T.mpiDatatype, op.handle, Int32(truncatingIfNeeded: root), handle)
        }
        try check(rc)
        return rank == root ? result : nil
    }

    /// Combines `array` element-wise; every process gets the result (`MPI_Allreduce`).
    @inlinable
    public func allReduce<T: MPIDatatype>(_ array: [T], _ op: Operation) throws(MPIError) -> [T] {
        var result = array
        try allReduce(array, into: &result, op)
        return result
    }

    /// Combines `array` element-wise into `result`, which must have the same count (`MPI_Allreduce`).
    @inlinable
    public func allReduce<T: MPIDatatype>(_ array: [T], into result: inout [T], _ op: Operation) throws(MPIError) {
        guard result.count == array.count else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "allReduce: result holds \(result.count) elements, input \(array.count)")
        }
        let count = try mpiCount(array.count)
        let rc = try op.withActive { () throws(MPIError) -> Int32 in
            array.withUnsafeBufferPointer { send in
                result.withUnsafeMutableBufferPointer { receive in
                    MPI_Allreduce(send.baseAddress, receive.baseAddress, count, T.mpiDatatype, op.handle, handle)
                }
            }
        }
        try check(rc)
    }

    /// Combines `buffer` element-wise into `result` (same count), memory the caller manages (`MPI_Allreduce`).
    @inlinable
    public func allReduce<T: MPIDatatype>(_ buffer: UnsafeBufferPointer<T>, into result: UnsafeMutableBufferPointer<T>, _ op: Operation) throws(MPIError) {
        guard result.count == buffer.count else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "allReduce: result holds \(result.count) elements, input \(buffer.count)")
        }
        let count = try mpiCount(buffer.count)
        let rc = try op.withActive { () throws(MPIError) -> Int32 in
            MPI_Allreduce(buffer.baseAddress, result.baseAddress, count, T.mpiDatatype, op.handle, handle)
        }
        try check(rc)
    }

    /// Combines `array` element-wise over all processes, in place (`MPI_Allreduce` with `MPI_IN_PLACE`).
    @inlinable
    public func allReduce<T: MPIDatatype>(inPlace array: inout [T], _ op: Operation) throws(MPIError) {
        let count = try mpiCount(array.count)
        let rc = try op.withActive { () throws(MPIError) -> Int32 in
            array.withUnsafeMutableBufferPointer { buffer in
                MPI_Allreduce(MPI_IN_PLACE, buffer.baseAddress, count, T.mpiDatatype, op.handle, handle)
            }
        }
        try check(rc)
    }

    /// Combines one value over all processes; every process gets the result (`MPI_Allreduce`).
    @inlinable
    public func allReduce<T: MPIDatatype>(_ value: T, _ op: Operation) throws(MPIError) -> T {
        var send = value, result = value
        let rc = try op.withActive { () throws(MPIError) -> Int32 in
            MPI_Allreduce(&send, &result, 1, T.mpiDatatype, op.handle, handle)
        }
        try check(rc)
        return result
    }

    /// Inclusive prefix reduction: process i gets the combination over ranks 0...i (`MPI_Scan`, §6.11).
    @inlinable
    public func scan<T: MPIDatatype>(_ array: [T], _ op: Operation) throws(MPIError) -> [T] {
        var result = array
        let count = try mpiCount(array.count)
        let rc = try op.withActive { () throws(MPIError) -> Int32 in
            array.withUnsafeBufferPointer { send in
                result.withUnsafeMutableBufferPointer { MPI_Scan(send.baseAddress, $0.baseAddress, count, T.mpiDatatype, op.handle, handle) }
            }
        }
        try check(rc)
        return result
    }

    /// Exclusive prefix reduction: process i gets the combination over ranks 0..<i; rank 0
    /// gets nil, for which MPI defines no value (`MPI_Exscan`).
    @inlinable
    public func exScan<T: MPIDatatype>(_ array: [T], _ op: Operation) throws(MPIError) -> [T]? {
        var result = array
        let count = try mpiCount(array.count)
        let rc = try op.withActive { () throws(MPIError) -> Int32 in
            array.withUnsafeBufferPointer { send in
                result.withUnsafeMutableBufferPointer { MPI_Exscan(send.baseAddress, $0.baseAddress, count, T.mpiDatatype, op.handle, handle) }
            }
        }
        try check(rc)
        return rank == 0 ? nil : result
    }

    /// Reduces `array` element-wise, then scatters the result: process i gets `counts[i]`
    /// elements (`MPI_Reduce_scatter`, §6.10). `counts` sums to `array.count`.
    @inlinable
    public func reduceScatter<T: MPIDatatype>(_ array: [T], counts: [Int], _ op: Operation) throws(MPIError) -> [T] {
        guard counts.count == size, counts.reduce(0, +) == array.count else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "reduceScatter: counts must have one entry per rank and sum to the input's \(array.count) elements")
        }
        var mpiCounts = [Int32]()
        for c in counts { mpiCounts.append(try mpiCount(c)) }
        let mine = counts[rank]
        var result = [T](array.prefix(mine))
        let rc = try op.withActive { () throws(MPIError) -> Int32 in
            array.withUnsafeBufferPointer { send in
                result.withUnsafeMutableBufferPointer { MPI_Reduce_scatter(send.baseAddress, $0.baseAddress, &mpiCounts, T.mpiDatatype, op.handle, handle) }
            }
        }
        try check(rc)
        return result
    }

    /// Reduces `array` element-wise and gives each process its block of `array.count / size`
    /// elements (`MPI_Reduce_scatter_block`).
    @inlinable
    public func reduceScatterBlock<T: MPIDatatype>(_ array: [T], _ op: Operation) throws(MPIError) -> [T] {
        let n = size
        guard array.count % n == 0 else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "reduceScatterBlock: \(array.count) elements do not divide over \(n) ranks")
        }
        let block = array.count / n
        var result = [T](array.prefix(block))
        let rc = try op.withActive { () throws(MPIError) -> Int32 in
            array.withUnsafeBufferPointer { send in
                result.withUnsafeMutableBufferPointer { MPI_Reduce_scatter_block(send.baseAddress, $0.baseAddress, Int32(block), T.mpiDatatype, op.handle, handle) }
            }
        }
        try check(rc)
        return result
    }

    // MARK: gather (§6.5)

    /// Concatenates every process's `array` (all the same count) at `root`, in rank order (`MPI_Gather`).
    @inlinable
    public func gather<T: MPIDatatype>(_ array: [T], root: Int = 0) throws(MPIError) -> [T]? {
        let isRoot = rank == root
        let count = try mpiCount(array.count)
        let total = isRoot ? array.count * size : 0
        var rc: Int32 = MPI_SUCCESS
        let result = [T](unsafeUninitializedCapacity: total) { receive, initialized in
            rc = array.withUnsafeBufferPointer {
                MPI_Gather($0.baseAddress, count, T.mpiDatatype, receive.baseAddress, count, T.mpiDatatype, Int32(truncatingIfNeeded: root), handle)
            }
            initialized = rc == MPI_SUCCESS ? total : 0
        }
        try check(rc)
        return isRoot ? result : nil
    }

    /// Gathers arrays of any length at `root`, one per rank in rank order (`MPI_Gatherv`;
    /// the counts travel first in an `MPI_Gather`).
    @inlinable
    public func gatherv<T: MPIDatatype>(_ array: [T], root: Int = 0) throws(MPIError) -> [[T]]? {
        guard let counts = try gather(Int32(try mpiCount(array.count)), root: root) else {
            try gathervRaw(array, counts: [], root: root)
            return nil
        }
        let flat = try gathervRaw(array, counts: counts, root: root)
        return split(flat, counts: counts)
    }

    @usableFromInline
    @discardableResult
    func gathervRaw<T: MPIDatatype>(_ array: [T], counts: [Int32], root: Int) throws(MPIError) -> [T] {
        var displacements = [Int32](repeating: 0, count: counts.count)
        for i in counts.indices.dropFirst() { displacements[i] = displacements[i - 1] + counts[i - 1] }
        let total = Int(counts.reduce(0, +))
        let count = try mpiCount(array.count)
        var rc: Int32 = MPI_SUCCESS
        let flat = [T](unsafeUninitializedCapacity: total) { receive, initialized in
            rc = array.withUnsafeBufferPointer {
                MPI_Gatherv($0.baseAddress, count, T.mpiDatatype, receive.baseAddress, counts, displacements, T.mpiDatatype, Int32(truncatingIfNeeded: root), handle)
            }
            initialized = rc == MPI_SUCCESS ? total : 0
        }
        try check(rc)
        return flat
    }

    /// Gathers one value from every process at `root` (`MPI_Gather`).
    @inlinable
    public func gather<T: MPIDatatype>(_ value: T, root: Int = 0) throws(MPIError) -> [T]? {
        try gather([value], root: root)
    }

    /// Concatenates every process's `array` (all the same count) on every process (`MPI_Allgather`).
    @inlinable
    public func allGather<T: MPIDatatype>(_ array: [T]) throws(MPIError) -> [T] {
        let count = try mpiCount(array.count)
        let total = array.count * size
        var rc: Int32 = MPI_SUCCESS
        let result = [T](unsafeUninitializedCapacity: total) { receive, initialized in
            rc = array.withUnsafeBufferPointer {
                MPI_Allgather($0.baseAddress, count, T.mpiDatatype, receive.baseAddress, count, T.mpiDatatype, handle)
            }
            initialized = rc == MPI_SUCCESS ? total : 0
        }
        try check(rc)
        return result
    }

    /// Gathers one value from every process, on every process (`MPI_Allgather`).
    @inlinable
    public func allGather<T: MPIDatatype>(_ value: T) throws(MPIError) -> [T] {
        try allGather([value])
    }

    /// Gathers arrays of any length on every process, one per rank (`MPI_Allgatherv`).
    @inlinable
    public func allGatherv<T: MPIDatatype>(_ array: [T]) throws(MPIError) -> [[T]] {
        let counts = try allGather(try mpiCount(array.count))
        var displacements = [Int32](repeating: 0, count: counts.count)
        for i in counts.indices.dropFirst() { displacements[i] = displacements[i - 1] + counts[i - 1] }
        let total = Int(counts.reduce(0, +))
        let count = try mpiCount(array.count)
        var rc: Int32 = MPI_SUCCESS
        let flat = [T](unsafeUninitializedCapacity: total) { receive, initialized in
            rc = array.withUnsafeBufferPointer {
                MPI_Allgatherv($0.baseAddress, count, T.mpiDatatype, receive.baseAddress, counts, displacements, T.mpiDatatype, handle)
            }
            initialized = rc == MPI_SUCCESS ? total : 0
        }
        try check(rc)
        return split(flat, counts: counts)
    }

    // MARK: scatter (§6.6)

    /// Splits `array` (read at `root` only; pass nil elsewhere) into `size` blocks of
    /// `count` elements; process i gets block i (`MPI_Scatter`).
    @inlinable
    public func scatter<T: MPIDatatype>(_ array: [T]?, count: Int, root: Int = 0) throws(MPIError) -> [T] {
        if rank == root {
            guard let array, array.count == count * size else {
                throw MPIError(errorClass: MPI_ERR_COUNT, message: "scatter: root must pass \(count * size) elements (count × size)")
            }
        }
        let n = try mpiCount(count)
        var rc: Int32 = MPI_SUCCESS
        let result = [T](unsafeUninitializedCapacity: count) { receive, initialized in
            rc = (array ?? []).withUnsafeBufferPointer {
                MPI_Scatter($0.baseAddress, n, T.mpiDatatype, receive.baseAddress, n, T.mpiDatatype, Int32(truncatingIfNeeded: root), handle)
            }
            initialized = rc == MPI_SUCCESS ? count : 0
        }
        try check(rc)
        return result
    }

    /// Sends `chunks[i]` (read at `root` only; pass nil elsewhere) to process i; chunks may
    /// differ in length (`MPI_Scatterv`; the counts travel first in an `MPI_Scatter`).
    @inlinable
    public func scatterv<T: MPIDatatype>(_ chunks: [[T]]?, root: Int = 0) throws(MPIError) -> [T] {
        let isRoot = rank == root
        var counts = [Int32](), displacements = [Int32](), flat = [T]()
        if isRoot {
            guard let chunks, chunks.count == size else {
                throw MPIError(errorClass: MPI_ERR_COUNT, message: "scatterv: root must pass one chunk per rank (\(size))")
            }
            var offset: Int32 = 0
            for chunk in chunks {
                counts.append(try mpiCount(chunk.count))
                displacements.append(offset)
                offset += counts.last!
                flat.append(contentsOf: chunk)
            }
        }
        let mine = Int(try scatter(isRoot ? counts : nil, count: 1, root: root)[0])
        var rc: Int32 = MPI_SUCCESS
        let result = [T](unsafeUninitializedCapacity: mine) { receive, initialized in
            rc = flat.withUnsafeBufferPointer {
                MPI_Scatterv($0.baseAddress, counts, displacements, T.mpiDatatype, receive.baseAddress, Int32(mine), T.mpiDatatype, Int32(truncatingIfNeeded: root), handle)
            }
            initialized = rc == MPI_SUCCESS ? mine : 0
        }
        try check(rc)
        return result
    }

    // MARK: all-to-all (§6.8)

    /// Every process sends block j of `array` (`array.count / size` elements) to process j
    /// and receives block i from process i (`MPI_Alltoall`).
    @inlinable
    public func allToAll<T: MPIDatatype>(_ array: [T]) throws(MPIError) -> [T] {
        let n = size
        guard array.count % n == 0 else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "allToAll: \(array.count) elements do not divide over \(n) ranks")
        }
        let block = try mpiCount(array.count / n)
        var rc: Int32 = MPI_SUCCESS
        let result = [T](unsafeUninitializedCapacity: array.count) { receive, initialized in
            rc = array.withUnsafeBufferPointer {
                MPI_Alltoall($0.baseAddress, block, T.mpiDatatype, receive.baseAddress, block, T.mpiDatatype, handle)
            }
            initialized = rc == MPI_SUCCESS ? array.count : 0
        }
        try check(rc)
        return result
    }

    /// Sends `chunks[j]` to process j and returns what each process sent here, by rank;
    /// chunks may differ in length (`MPI_Alltoallv`; counts travel first in an `MPI_Alltoall`).
    @inlinable
    public func allToAllv<T: MPIDatatype>(_ chunks: [[T]]) throws(MPIError) -> [[T]] {
        guard chunks.count == size else {
            throw MPIError(errorClass: MPI_ERR_COUNT, message: "allToAllv: pass one chunk per rank (\(size))")
        }
        var sendCounts = [Int32](), sendDisplacements = [Int32](), flat = [T]()
        for chunk in chunks {
            sendDisplacements.append(try mpiCount(flat.count))
            sendCounts.append(try mpiCount(chunk.count))
            flat.append(contentsOf: chunk)
        }
        let receiveCounts = try allToAll(sendCounts)
        var receiveDisplacements = [Int32](repeating: 0, count: receiveCounts.count)
        for i in receiveCounts.indices.dropFirst() { receiveDisplacements[i] = receiveDisplacements[i - 1] + receiveCounts[i - 1] }
        let total = Int(receiveCounts.reduce(0, +))
        var rc: Int32 = MPI_SUCCESS
        let received = [T](unsafeUninitializedCapacity: total) { receive, initialized in
            rc = flat.withUnsafeBufferPointer {
                MPI_Alltoallv($0.baseAddress, sendCounts, sendDisplacements, T.mpiDatatype,
                              receive.baseAddress, receiveCounts, receiveDisplacements, T.mpiDatatype, handle)
            }
            initialized = rc == MPI_SUCCESS ? total : 0
        }
        try check(rc)
        return split(received, counts: receiveCounts)
    }

    @usableFromInline
    func split<T>(_ flat: [T], counts: [Int32]) -> [[T]] {
        var result = [[T]](), offset = 0
        result.reserveCapacity(counts.count)
        for count in counts {
            result.append(Array(flat[offset..<offset + Int(count)]))
            offset += Int(count)
        }
        return result
    }
}
