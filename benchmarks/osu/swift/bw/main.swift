// osu-bw in Swift: a window of 64 nonblocking sends, then a 4-byte ack; OSU's loops and
// format. Like OSU's C code, every request of a window uses the same buffer, so this
// uses the unsafe-buffer isend/irecv: the buffers live for the whole run.
import MPI
import OSUSupport

// Locals in a function, as an application would have them (top-level globals carry
// exclusivity checks that are not part of the binding).
func benchmark() throws {
    let window = 64
    try MPI.initialize()
    let world = Communicator.world
    OSU.requireTwoRanks(world, "osu-bw")
    let rank = world.rank
    if rank == 0 { OSU.header("OSU MPI Bandwidth Test (Swift)", "Bandwidth (MB/s)") }
    let maxSize = OSU.maxSize(default: 4 << 20)
    let send = OSU.buffer(of: UInt8.self, count: maxSize, filledWith: 1)
    let receive = OSU.buffer(of: UInt8.self, count: maxSize, filledWith: 0)
    var ack = [UInt8](repeating: 0, count: 4)
    var sends = RequestGroup<UnsafeBufferPointer<UInt8>>(capacity: window)
    var receives = RequestGroup<UnsafeMutableBufferPointer<UInt8>>(capacity: window)
    for size in OSU.sizes(to: maxSize) {
        let (iterations, skip) = OSU.bandwidthLoops(size: size)
        let message = UnsafeBufferPointer(rebasing: send[0..<size])
        let incoming = UnsafeMutableBufferPointer(rebasing: receive[0..<size])
        try world.barrier()
        var start = 0.0
        if rank == 0 {
            for i in 0..<(iterations + skip) {
                if i == skip { start = MPI.wtime() }
                for _ in 0..<window { sends.append(try world.isend(message, to: 1, tag: 100)) }
                try sends.complete()
                try world.receive(into: &ack, from: 1, tag: 101)
            }
            let seconds = MPI.wtime() - start
            OSU.row(size, Double(size) / 1e6 * Double(iterations * window) / seconds)
        } else {
            for _ in 0..<(iterations + skip) {
                for _ in 0..<window { receives.append(try world.irecv(into: incoming, from: 0, tag: 100)) }
                try receives.complete()
                try world.send(ack, to: 0, tag: 101)
            }
        }
    }
    try MPI.finalize()
}

try benchmark()
