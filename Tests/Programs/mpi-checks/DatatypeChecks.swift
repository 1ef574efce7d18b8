import MPI
import CMPI

struct Particle: Equatable {
    var position: Double
    var charge: Int32
    var alive: Bool
}

func checkDatatypes(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size
    let right = (rank + 1) % size, left = (rank + size - 1) % size

    // Layouts Swift and MPI must agree on.
    c.expectEqual(MemoryLayout<DoubleInt>.stride, 16, "DoubleInt has C's layout")
    c.expectEqual(MemoryLayout<FloatInt>.stride, 8, "FloatInt")
    c.expectEqual(MemoryLayout<IntInt>.stride, 8, "IntInt")
    c.expectEqual(MemoryLayout<ShortInt>.stride, 8, "ShortInt")
    c.expectEqual(MemoryLayout<LongInt>.stride, 16, "LongInt")
    for (swiftSize, type, name) in [(MemoryLayout<Bool>.size, Bool.mpiDatatype, "Bool"), (MemoryLayout<Int>.size, Int.mpiDatatype, "Int"),
                                    (MemoryLayout<UInt>.size, UInt.mpiDatatype, "UInt"), (MemoryLayout<Float>.size, Float.mpiDatatype, "Float")] {
        var mpiSize: Int32 = 0
        MPI_Type_size(type, &mpiSize)
        c.expectEqual(Int(mpiSize), swiftSize, "size of \(name)")
    }

    // A column of a 4×5 row-major matrix as a vector type: no packing by hand.
    let rows = 4, columns = 5
    let column = try Datatype.vector(count: rows, blockLength: 1, stride: columns, of: Double.self)
    c.expectEqual(try column.size(), rows * 8, "vector size")
    c.expectEqual(try column.extent().extent, ((rows - 1) * columns + 1) * 8, "vector extent")
    let matrix = (0..<(rows * columns)).map { Double($0 + 100 * rank) }
    var fromLeft = [Double](repeating: -1, count: rows * columns)
    // Empty messages are legal and complete normally.
    let empty = try world.irecv(into: [Double](), from: left, tag: 99)
    _ = try world.isend([Double](), to: right, tag: 99).wait()
    let (nothing, emptyStatus) = try empty.wait()
    try c.expect(nothing.isEmpty && (emptyStatus.count(of: Double.self)) == 0, "empty message")

    // Blocking exchange with derived types in both directions.
    do {
        try matrix.withUnsafeBufferPointer { send in
            try fromLeft.withUnsafeMutableBufferPointer { receive in
                // rank → right; receive from left. Use sendReceive via two halves to avoid deadlock:
                // even ranks send first, odd ranks receive first; with one rank, a self-message.
                if size == 1 {
                    var request = try world.irecv(into: [Double](repeating: 0, count: rows), from: 0, tag: 7)
                    try world.send(UnsafeRawPointer(send.baseAddress! + 2), count: 1, datatype: column, to: 0, tag: 7)
                    _ = try request.test()
                    let (values, _) = try request.wait()
                    for r in 0..<rows { receive[r * columns + 4] = values[r] }
                } else if rank % 2 == 0 {
                    try world.send(UnsafeRawPointer(send.baseAddress! + 2), count: 1, datatype: column, to: right, tag: 7)
                    try world.receive(into: UnsafeMutableRawPointer(receive.baseAddress! + 4), count: 1, datatype: column, from: left, tag: 7)
                } else {
                    try world.receive(into: UnsafeMutableRawPointer(receive.baseAddress! + 4), count: 1, datatype: column, from: left, tag: 7)
                    try world.send(UnsafeRawPointer(send.baseAddress! + 2), count: 1, datatype: column, to: right, tag: 7)
                }
            }
        }
    }
    for r in 0..<rows {
        c.expectEqual(fromLeft[r * columns + 4], Double(r * columns + 2 + 100 * left), "column element \(r)")
        c.expectEqual(fromLeft[r * columns + 3], -1, "neighbouring column untouched")
    }

    // contiguous: three Int32 as one element.
    let triple = try Datatype.contiguous(count: 3, of: Int32.self)
    c.expectEqual(try triple.size(), 12, "contiguous size")

    // A Swift struct described field by field.
    let particleType = try Datatype.structure(fields: [
        (MemoryLayout<Particle>.offset(of: \.position)!, MPI_DOUBLE, 1),
        (MemoryLayout<Particle>.offset(of: \.charge)!, MPI_INT32_T, 1),
        (MemoryLayout<Particle>.offset(of: \.alive)!, MPI_C_BOOL, 1),
    ], stride: MemoryLayout<Particle>.stride)
    c.expectEqual(try particleType.extent().extent, MemoryLayout<Particle>.stride, "struct extent is Swift's stride")
    let particles = (0..<3).map { Particle(position: Double(rank) + Double($0) / 10, charge: Int32(rank - $0), alive: $0 % 2 == 0) }
    var arrived = [Particle](repeating: Particle(position: 0, charge: 0, alive: false), count: 3)
    try particles.withUnsafeBufferPointer { send in
        try arrived.withUnsafeMutableBufferPointer { receive in
            if rank % 2 == 0 || size == 1 {
                if size == 1 {
                    // A small self-message is buffered eagerly, so send then receive completes.
                    try world.send(UnsafeRawPointer(send.baseAddress!), count: 3, datatype: particleType, to: 0, tag: 9)
                    try world.receive(into: UnsafeMutableRawPointer(receive.baseAddress!), count: 3, datatype: particleType, from: 0, tag: 9)
                } else {
                    try world.send(UnsafeRawPointer(send.baseAddress!), count: 3, datatype: particleType, to: right, tag: 9)
                    try world.receive(into: UnsafeMutableRawPointer(receive.baseAddress!), count: 3, datatype: particleType, from: left, tag: 9)
                }
            } else {
                try world.receive(into: UnsafeMutableRawPointer(receive.baseAddress!), count: 3, datatype: particleType, from: left, tag: 9)
                try world.send(UnsafeRawPointer(send.baseAddress!), count: 3, datatype: particleType, to: right, tag: 9)
            }
        }
    }
    c.expectEqual(arrived, (0..<3).map { Particle(position: Double(left) + Double($0) / 10, charge: Int32(left - $0), alive: $0 % 2 == 0) }, "structs via a struct datatype")
}
