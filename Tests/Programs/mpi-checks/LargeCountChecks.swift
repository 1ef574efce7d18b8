import MPI
import CMPI

/// Messages past MPI's int count (2³¹ − 1 elements): 2 GiB + 2 bytes, point to point (known
/// and unknown size, blocking and nonblocking) and broadcast, marks checked in every 2³⁰
/// block and at the very end. Two ranks only: each holds a few GiB.
func checkLargeCounts(_ c: Checker) throws {
    let world = Communicator.world
    guard world.size == 2 else { c.expect(false, "the large-count checks run on 2 ranks"); return }
    let count = Int(Int32.max) + 3
    let marks = [0, 1 << 30, 1 << 31, count - 1]
    func marked(_ buffer: [UInt8]) -> [UInt8] { marks.map { buffer[$0] } }
    let expected: [UInt8] = [1, 2, 3, 4]
    var buffer = [UInt8](repeating: 0, count: count)
    if world.rank == 0 {
        for (mark, value) in zip(marks, expected) { buffer[mark] = value }
        try world.send(buffer, to: 1, tag: 1)
        try world.send(buffer, to: 1, tag: 2)
        let request = try world.isend(buffer, to: 1, tag: 3)
        _ = try request.wait()
    } else {
        let status = try world.receive(into: &buffer, from: 0, tag: 1)
        c.expectEqual(try status.count(of: UInt8.self), count, "the status counts past 2³¹")
        c.expectEqual(marked(buffer), expected, "a known-size receive past 2³¹")
        buffer = []
        do {
            let (values, _) = try world.receiveArray(of: UInt8.self, from: 0, tag: 2)
            c.expectEqual(values.count, count, "an unknown-size receive sizes its array past 2³¹")
            c.expectEqual(marked(values), expected, "its contents")
        }
        let request = try world.irecv(into: [UInt8](repeating: 0, count: count), from: 0, tag: 3)
        buffer = try request.wait().buffer
        c.expectEqual(marked(buffer), expected, "a nonblocking receive past 2³¹")
        buffer = [UInt8](repeating: 0, count: count)
    }
    try world.broadcast(&buffer, root: 0)
    c.expectEqual(marked(buffer), expected, "a broadcast past 2³¹")
}
