// heat2d: 2-D heat diffusion by Jacobi iteration on an N×N grid, split over a Cartesian
// process grid with halo exchange by nonblocking send/receive. The hot edge is the top
// (u = 1), the other edges are held at 0. With --check, rank 0 gathers the result and
// compares it with a serial run of the same iterations.
//
// Checkpoints (MPI-IO): --checkpoint PATH writes the whole N×N field there at the end,
// collectively through each rank's subarray view (raw doubles in this machine's order,
// row-major), with PATH.iterations saying how many iterations it holds; on SIGUSR1 (Slurm's
// --signal, Cohort's signalBeforeTimeLimit) it writes one at the next step and exits 3.
// --restart PATH starts from such a field, on any number of ranks, counting its iterations
// toward --iterations; --resume restarts from --checkpoint's file when there is one (a
// retried attempt continues where the warned one stopped).
//
//   mpirun -np 4 heat2d [--n 256] [--iterations 500] [--check] [--checkpoint PATH [--resume]] [--restart PATH]
import MPI
#if canImport(Glibc)
import Glibc
#endif

func option(_ name: String, default value: Int) -> Int {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]), v > 0 else { return value }
    return v
}

/// How many of `n` cells part `index` of `parts` holds, and where they start.
func partition(_ n: Int, parts: Int, index: Int) -> (count: Int, offset: Int) {
    let base = n / parts, extra = n % parts
    return (base + (index < extra ? 1 : 0), index * base + min(index, extra))
}

/// One rank's block with a one-cell halo: (rows + 2) × (columns + 2), row-major.
struct Block {
    let rows: Int, columns: Int
    var u: [Double]
    var next: [Double]
    var width: Int { columns + 2 }

    init(rows: Int, columns: Int, top: Bool) {
        self.rows = rows
        self.columns = columns
        u = [Double](repeating: 0, count: (rows + 2) * (columns + 2))
        if top { for j in 0..<(columns + 2) { u[j] = 1 } }  // the hot edge lives in the top halo row
        next = u
    }

    /// One Jacobi sweep over the interior; returns the largest change.
    mutating func sweep() -> Double {
        var change = 0.0
        let w = width
        u.withUnsafeBufferPointer { u in
            next.withUnsafeMutableBufferPointer { next in
                for i in 1...rows {
                    for j in 1...columns {
                        let k = i * w + j
                        let value = 0.25 * (u[k - w] + u[k + w] + u[k - 1] + u[k + 1])
                        change = max(change, abs(value - u[k]))
                        next[k] = value
                    }
                }
            }
        }
        // Only the interior changed; halos are refreshed by the exchange.
        swap(&u, &next)
        for i in 0..<(rows + 2) {
            next[i * w] = u[i * w]
            next[i * w + columns + 1] = u[i * w + columns + 1]
        }
        for j in 0..<w {
            next[j] = u[j]
            next[(rows + 1) * w + j] = u[(rows + 1) * w + j]
        }
        return change
    }

    func row(_ i: Int) -> [Double] { Array(u[(i * width + 1)...(i * width + columns)]) }
    func column(_ j: Int) -> [Double] { (1...rows).map { u[$0 * width + j] } }
    mutating func setRow(_ i: Int, _ values: [Double]) { for j in 0..<columns { u[i * width + 1 + j] = values[j] } }
    mutating func setColumn(_ j: Int, _ values: [Double]) { for i in 0..<rows { u[(i + 1) * width + j] = values[i] } }
    var interior: [Double] { (1...rows).flatMap { row($0) } }
    mutating func setInterior(_ values: [Double]) {
        for i in 0..<rows { setRow(i + 1, Array(values[(i * columns)..<((i + 1) * columns)])) }
        next = u
    }
}

func text(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

struct CheckpointError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Set by SIGUSR1: write a checkpoint at the next step and stop.
nonisolated(unsafe) var warned: sig_atomic_t = 0

/// This rank's block of the global N×N field, as a view of the checkpoint file.
func blockView(n: Int, rows: Int, columns: Int, rowOffset: Int, columnOffset: Int) throws -> Datatype {
    try Datatype.subarray(sizes: [n, n], subsizes: [rows, columns], starts: [rowOffset, columnOffset], of: Double.self)
}

/// Writes the field collectively to PATH (through PATH.partial, renamed once complete) and
/// how many iterations it holds to PATH.iterations.
func writeCheckpoint(_ path: String, block: Block, view: Datatype, iterations: Int, on grid: Communicator) throws {
    let partial = path + ".partial"
    let file = try File.open(partial, mode: [.create, .writeOnly], on: grid)
    try file.setSize(0)
    try file.setView(elementType: Double.self, fileType: view)
    try file.writeAll(block.interior)
    try file.sync()
    try file.close()
    if grid.rank == 0 {
        // The old count goes first: a field is never paired with another field's count.
        unlink(path + ".iterations")
        guard rename(partial, path) == 0 else { throw CheckpointError(message: "cannot rename \(partial)") }
        let count = "\(iterations)\n"
        let descriptor = open(path + ".iterations", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0, write(descriptor, count, count.utf8.count) == count.utf8.count, fsync(descriptor) == 0 else {
            throw CheckpointError(message: "cannot write \(path).iterations")
        }
        close(descriptor)
    }
    try grid.barrier()
}

/// Reads this rank's block of the field at PATH and the iterations it holds (nil: none there).
func readCheckpoint(_ path: String, view: Datatype, count: Int, on grid: Communicator) throws -> (values: [Double], iterations: Int)? {
    var done = 0
    if grid.rank == 0, let descriptor = Optional(open(path + ".iterations", O_RDONLY)), descriptor >= 0 {
        var bytes = [UInt8](repeating: 0, count: 32)
        let got = read(descriptor, &bytes, 31)
        close(descriptor)
        done = got > 0 ? Int(String(decoding: bytes[0..<got], as: UTF8.self).filter(\.isNumber)) ?? -1 : -1
    } else if grid.rank == 0 {
        done = -1
    }
    done = try grid.broadcast(done, root: 0)
    guard done >= 0 else { return nil }
    let file = try File.open(path, mode: .readOnly, on: grid)
    try file.setView(elementType: Double.self, fileType: view)
    let values = try file.readAll(count, of: Double.self)
    try file.close()
    guard values.count == count else { throw CheckpointError(message: "\(path) holds less than an N×N field") }
    return (values, done)
}

do {
    try MPI.initialize()
    let world = Communicator.world
    let n = option("--n", default: 256)
    let iterations = option("--iterations", default: 500)
    let check = CommandLine.arguments.contains("--check")

    let dims = try Communicator.balancedDimensions(processes: world.size, dimensions: 2)
    guard let grid = try world.cartesian(dimensions: dims, periodic: [false, false]) else { fatalError("every rank fits the grid") }
    let coords = try grid.coordinates(of: grid.rank)
    let (rows, rowOffset) = partition(n, parts: dims[0], index: coords[0])
    let (columns, columnOffset) = partition(n, parts: dims[1], index: coords[1])
    guard rows > 0, columns > 0 else {
        print("heat2d: a \(n)×\(n) grid is too small for a \(dims[0])×\(dims[1]) process grid")
        MPI.abort(errorCode: 2)
    }
    let (up, down) = try grid.shift(dimension: 0)
    let (left, right) = try grid.shift(dimension: 1)
    var block = Block(rows: rows, columns: columns, top: coords[0] == 0)
    let view = try blockView(n: n, rows: rows, columns: columns, rowOffset: rowOffset, columnOffset: columnOffset)
    let checkpoint = text("--checkpoint")
    var restart = text("--restart")
    if restart == nil, CommandLine.arguments.contains("--resume") { restart = checkpoint }
    var first = 0
    if let restart {
        if let (values, done) = try readCheckpoint(restart, view: view, count: rows * columns, on: grid) {
            block.setInterior(values)
            first = min(done, iterations)
            if grid.rank == 0 { print("heat2d: restarted from \(restart) after \(done) iterations") }
        } else if text("--restart") != nil {
            if grid.rank == 0 { print("heat2d: no checkpoint at \(restart) (or no \(restart).iterations)") }
            MPI.abort(errorCode: 2)
        }
    }
    if checkpoint != nil { signal(SIGUSR1) { _ in warned = 1 } }

    let tags = (up: 1, down: 2, left: 3, right: 4)
    try grid.barrier()
    let start = MPI.wtime()
    var residual = 0.0
    for iteration in first..<iterations {
        // Warned: every rank agrees (every 10 steps), writes its part, and stops.
        if let checkpoint, iteration % 10 == 0, try grid.allReduce(warned != 0, .logicalOr) {
            try writeCheckpoint(checkpoint, block: block, view: view, iterations: iteration, on: grid)
            if grid.rank == 0 { print("heat2d: warned; checkpointed after \(iteration) of \(iterations) iterations to \(checkpoint)") }
            try MPI.finalize()
            exit(3)
        }
        // Halo exchange: post the four receives, send the four edges, wait for all.
        var halos = RequestGroup<[Double]>()
        halos.append(try grid.irecv(into: [Double](repeating: 0, count: columns), from: up, tag: tags.down))
        halos.append(try grid.irecv(into: [Double](repeating: 0, count: columns), from: down, tag: tags.up))
        halos.append(try grid.irecv(into: [Double](repeating: 0, count: rows), from: left, tag: tags.right))
        halos.append(try grid.irecv(into: [Double](repeating: 0, count: rows), from: right, tag: tags.left))
        halos.append(try grid.isend(block.row(1), to: up, tag: tags.up))
        halos.append(try grid.isend(block.row(rows), to: down, tag: tags.down))
        halos.append(try grid.isend(block.column(1), to: left, tag: tags.left))
        halos.append(try grid.isend(block.column(columns), to: right, tag: tags.right))
        let arrived = try halos.waitAll()
        // At the domain's edge the neighbour is the null process: keep the boundary value.
        if up != Communicator.nullProcess { block.setRow(0, arrived[0].buffer) }
        if down != Communicator.nullProcess { block.setRow(rows + 1, arrived[1].buffer) }
        if left != Communicator.nullProcess { block.setColumn(0, arrived[2].buffer) }
        if right != Communicator.nullProcess { block.setColumn(columns + 1, arrived[3].buffer) }
        residual = try grid.allReduce(block.sweep(), .max)
    }
    let seconds = try grid.allReduce(MPI.wtime() - start, .max)
    if let checkpoint { try writeCheckpoint(checkpoint, block: block, view: view, iterations: iterations, on: grid) }

    var passed = true
    if grid.rank == 0 {
        print("heat2d: \(n)×\(n) grid, \(dims[0])×\(dims[1]) processes, \(iterations) iterations")
        print("residual \(residual), \(seconds / Double(iterations) * 1e6) us per iteration, \(seconds) s")
    }
    if check {
        // Gather every block with its position, rebuild the grid, compare with a serial run.
        let placed = try grid.gatherv([Double(rowOffset), Double(rows), Double(columnOffset), Double(columns)] + block.interior, root: 0)
        if let placed {
            var parallel = [Double](repeating: 0, count: n * n)
            for part in placed {
                let (r0, r, c0, c) = (Int(part[0]), Int(part[1]), Int(part[2]), Int(part[3]))
                for i in 0..<r { for j in 0..<c { parallel[(r0 + i) * n + c0 + j] = part[4 + i * c + j] } }
            }
            var serial = Block(rows: n, columns: n, top: true)
            for _ in 0..<iterations { _ = serial.sweep() }
            let reference = serial.interior
            let difference = zip(parallel, reference).map { abs($0 - $1) }.max() ?? 0
            passed = difference <= 1e-12
            print("max difference from serial: \(difference) (\(passed ? "ok" : "FAILED"), tolerance 1e-12)")
        }
        passed = try grid.broadcast(passed, root: 0)
    }
    try MPI.finalize()
    if !passed { MPI.abort(errorCode: 1) }
} catch {
    print("heat2d: \(error)")
    MPI.abort(errorCode: 1)
}
