import MPI
import CMPI

func checkOperations(_ c: Checker) throws {
    let world = Communicator.world
    let rank = world.rank, size = world.size

    c.expectEqual(try world.allReduce([rank, -rank], .min), [0, -(size - 1)], "min")
    c.expectEqual(try world.allReduce([Float(rank), -Float(rank)], .max), [Float(size - 1), 0], "max")
    c.expectEqual(try world.allReduce(Double(rank + 1), .product), Double((1...size).reduce(1, *)), "product")
    // logical: rank 0 says true, the others false.
    c.expectEqual(try world.allReduce(rank == 0, .logicalAnd), size == 1, "logical and")
    c.expectEqual(try world.allReduce(rank == 0, .logicalOr), true, "logical or")
    c.expectEqual(try world.allReduce(true, .logicalXor), size % 2 == 1, "logical xor")
    // bitwise: each rank sets its own bit.
    let bit = UInt32(1) << UInt32(rank)
    c.expectEqual(try world.allReduce(bit, .bitwiseOr), (UInt32(1) << UInt32(size)) - 1, "bitwise or")
    c.expectEqual(try world.allReduce(bit | 0x100, .bitwiseAnd), size == 1 ? bit | 0x100 : 0x100, "bitwise and")
    c.expectEqual(try world.allReduce(UInt8(0xFF), .bitwiseXor), size % 2 == 1 ? 0xFF : 0, "bitwise xor")

    // minLoc / maxLoc over value/index pairs: the lowest index wins a tie.
    let value = Double((rank * 7) % size)
    let maxLoc = try world.allReduce(DoubleInt(value, Int32(rank)), .maxLoc)
    let values = (0..<size).map { Double(($0 * 7) % size) }
    let maxValue = values.max()!
    c.expectEqual(maxLoc, DoubleInt(maxValue, Int32(values.firstIndex(of: maxValue)!)), "maxLoc")
    let minLoc = try world.allReduce([FloatInt(Float(rank), Int32(rank)), FloatInt(-Float(rank), Int32(rank))], .minLoc)
    c.expectEqual(minLoc, [FloatInt(0, 0), FloatInt(-Float(size - 1), Int32(size - 1))], "minLoc")
    c.expectEqual(try world.allReduce(IntInt(Int32(rank % 2), Int32(rank)), .maxLoc), IntInt(size > 1 ? 1 : 0, size > 1 ? 1 : 0), "2INT maxLoc")
    c.expectEqual(try world.allReduce(LongInt(-rank, Int32(rank)), .minLoc), LongInt(-(size - 1), Int32(size - 1)), "LONG_INT minLoc")
    c.expectEqual(try world.allReduce(ShortInt(5, Int32(rank)), .minLoc), ShortInt(5, 0), "SHORT_INT tie goes to the lowest index")

    // A user-defined, non-commutative operation: 2x2 matrix product, in rank order.
    // Encoded as four Doubles per matrix would need a struct datatype; use a commutative
    // one on scalars plus a non-commutative one checked against the serial fold.
    let maxAbs = try Operation.custom(Int.self, commutative: true) { Swift.max(abs($0), abs($1)) }
    c.expectEqual(try world.allReduce([rank * (rank % 2 == 0 ? -1 : 1), 3], maxAbs), [size - 1, 3], "custom commutative op")
    // Non-commutative: "keep the left operand's value unless it is zero" over ranks in order
    // folds to the first non-zero contribution by rank.
    let firstNonZero = try Operation.custom(Int32.self, commutative: false) { incoming, accumulated in
        incoming != 0 ? incoming : accumulated
    }
    let contribution: Int32 = rank == 0 ? 0 : Int32(rank * 10)
    let folded = try world.allReduce(contribution, firstNonZero)
    c.expectEqual(folded, size == 1 ? 0 : 10, "custom non-commutative op folds in rank order")
    c.expectEqual(try world.scan([Int(rank) + 1], maxAbs), [rank + 1], "custom op in scan")
    let reducedCustom = try world.reduce(Int(rank), maxAbs, root: 0)
    c.expectEqual(reducedCustom, rank == 0 ? size - 1 : nil, "custom op in reduce")

    // An operation that does not apply to the type is an error, not garbage.
    c.expectThrows(MPI_ERR_OP, "bitwise or on Double") { _ = try world.allReduce(1.0, .bitwiseOr) }
}
