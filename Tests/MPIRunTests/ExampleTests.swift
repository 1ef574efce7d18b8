import XCTest
import Foundation

/// The example programs under real mpirun: each checks what every rank computed.
final class ExampleTests: XCTestCase {
    func testHelloReportsEveryRankOnce() throws {
        for ranks in 1...4 {
            let result = try MPIRun.run(ranks: ranks, "hello")
            XCTAssertEqual(result.exitCode, 0, result.output)
            let lines = result.lines(matching: "^hello from rank [0-9]+ of \(ranks) on .+$")
            let seen = Set(lines.compactMap { Int($0.split(separator: " ")[3]) })
            XCTAssertEqual(seen, Set(0..<ranks), result.output)
            XCTAssertEqual(lines.count, ranks, result.output)
        }
    }

    func testRingDeliversTheTokenIntactAtEverySize() throws {
        for ranks in [1, 2, 3] {
            let result = try MPIRun.run(ranks: ranks, "ring", ["--laps", "5", "--max-size", "1048576"])
            XCTAssertEqual(result.exitCode, 0, result.output)
            XCTAssertTrue(result.output.contains("ring ok: token intact"), result.output)
            // One row per size from 1 B to 1 MiB: 21 sizes, each with two positive figures.
            let rows = result.lines(matching: "^[0-9]+ +[0-9]+\\.[0-9]+ +[0-9]+\\.[0-9]+$")
            XCTAssertEqual(rows.map { Int($0.split(separator: " ")[0])! }, (0...20).map { 1 << $0 }, result.output)
        }
    }

    /// Parses `result pi=... stderr=... samples=...` into numbers.
    func piResult(_ output: String) -> [String: Double] {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("result ") }) else { return [:] }
        var values: [String: Double] = [:]
        for field in line.split(separator: " ").dropFirst() {
            let parts = field.split(separator: "=")
            if parts.count == 2 { values[String(parts[0])] = Double(parts[1]) }
        }
        return values
    }

    func testMonteCarloPiLandsWithinItsStatedErrorAndIsDeterministic() throws {
        for ranks in 1...4 {
            let result = try MPIRun.run(ranks: ranks, "montecarlo-pi", ["--samples", "200000", "--seed", "7"])
            XCTAssertEqual(result.exitCode, 0, result.output)
            let values = piResult(result.output)
            let pi = try XCTUnwrap(values["pi"], result.output)
            let standardError = try XCTUnwrap(values["stderr"])
            XCTAssertEqual(values["samples"], Double(200_000 * ranks))
            XCTAssertLessThan(abs(pi - Double.pi), 4 * standardError, "π within 4 standard errors")
            XCTAssertLessThan(standardError, 0.01)
            let again = try MPIRun.run(ranks: ranks, "montecarlo-pi", ["--samples", "200000", "--seed", "7"])
            XCTAssertEqual(piResult(again.output)["pi"], pi, "same seed, same estimate")
        }
        let other = try MPIRun.run(ranks: 2, "montecarlo-pi", ["--samples", "200000", "--seed", "8"])
        let first = try MPIRun.run(ranks: 2, "montecarlo-pi", ["--samples", "200000", "--seed", "7"])
        XCTAssertNotEqual(piResult(other.output)["pi"], piResult(first.output)["pi"], "another seed, another sample")
    }

    func testMonteCarloPiRunsAsAnIndependentTaskWithoutMpirun() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: MPIRun.executable("montecarlo-pi"))
        process.arguments = ["--samples", "100000"]
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertEqual(piResult(output)["ranks"], 1, output)
    }

    func testHeat2DMatchesTheSerialGridOnEveryProcessGrid() throws {
        // 37 does not divide by 2 or 3: uneven blocks are part of what is checked.
        for ranks in 1...4 {
            let result = try MPIRun.run(ranks: ranks, "heat2d", ["--n", "37", "--iterations", "60", "--check"])
            XCTAssertEqual(result.exitCode, 0, result.output)
            let line = try XCTUnwrap(result.lines(matching: "^max difference from serial: ").first, result.output)
            let difference = try XCTUnwrap(Double(line.split(separator: " ")[4]), line)
            XCTAssertLessThanOrEqual(difference, 1e-12, line)
            XCTAssertTrue(line.contains("(ok"), line)
        }
    }

    /// The unstructured halo exchange (dist-graph neighbourhood all-to-all, nonblocking,
    /// overlapping the interior's update): every cell equals the serial run's, on 1-4 ranks
    /// and a cell count no rank count divides; partitions have more neighbours than left
    /// and right (the mesh's chords).
    func testTheHaloExchangeOnAnUnstructuredMeshMatchesTheSerialRun() throws {
        for ranks in 1...4 {
            let result = try MPIRun.run(ranks: ranks, "halo", ["--cells", "1001", "--steps", "25", "--check"])
            XCTAssertEqual(result.exitCode, 0, result.output)
            XCTAssertTrue(result.output.contains("halo ok: every cell equals the serial run's"), result.output)
            if ranks == 4 {
                let header = try XCTUnwrap(result.lines(matching: "^# halo: ").first, result.output)
                XCTAssertTrue(header.contains("up to 3 neighbouring partitions"), "chords reach past the next partition: \(header)")
            }
        }
    }

    /// One copy of a table per node in a shared-memory window, read in place by every rank
    /// of the node: the lookups of all ranks sum to what one process computes.
    func testASharedTableIsReadInPlaceByEveryRankOfTheNode() throws {
        for ranks in 1...4 {
            let result = try MPIRun.run(ranks: ranks, "shared-table", ["--entries", "100003", "--lookups", "200000"])
            XCTAssertEqual(result.exitCode, 0, result.output)
            XCTAssertTrue(result.output.contains("shared-table ok: 200000 lookups sum to"), result.output)
            XCTAssertTrue(result.output.contains("\(ranks) ranks on 1 node(s)"), result.output)
        }
    }

    /// MPI-IO checkpoints: the field written collectively on 4 ranks is byte for byte the
    /// serial run's, and 2 ranks restarted from a 4-rank checkpoint end exactly where an
    /// uninterrupted run does.
    func testHeat2DCheckpointsAreTheSerialFieldAndRestartOnFewerRanks() throws {
        let folder = NSTemporaryDirectory() + "heat2d-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let n = 45
        func run(_ ranks: Int, _ arguments: [String]) throws {
            let result = try MPIRun.run(ranks: ranks, "heat2d", ["--n", String(n)] + arguments)
            XCTAssertEqual(result.exitCode, 0, result.output)
        }
        try run(1, ["--iterations", "120", "--checkpoint", "\(folder)/serial"])
        try run(4, ["--iterations", "120", "--checkpoint", "\(folder)/four"])
        try run(4, ["--iterations", "50", "--checkpoint", "\(folder)/half"])
        try run(2, ["--iterations", "120", "--restart", "\(folder)/half", "--checkpoint", "\(folder)/restarted"])
        let serial = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/serial"))
        XCTAssertEqual(serial.count, n * n * 8, "the whole N×N field, doubles")
        let top = serial.withUnsafeBytes { Array($0.bindMemory(to: Double.self).prefix(n)) }
        XCTAssertTrue(top.allSatisfy { $0 > 0.2 && $0 < 1 }, "the first row is next to the hot edge: \(top)")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/four")), serial, "4 ranks wrote the serial field")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/restarted")), serial, "restarted on 2 ranks after 50 of 120")
        XCTAssertEqual(try String(contentsOfFile: "\(folder)/restarted.iterations", encoding: .utf8), "120\n")
        let missing = try MPIRun.run(ranks: 2, "heat2d", ["--n", "16", "--restart", "\(folder)/nothing"])
        XCTAssertNotEqual(missing.exitCode, 0)
        XCTAssertTrue(missing.output.contains("no checkpoint at \(folder)/nothing"), missing.output)
    }

    func testHeat2DConvergesTowardsSteadyState() throws {
        let short = try MPIRun.run(ranks: 2, "heat2d", ["--n", "16", "--iterations", "10"])
        let long = try MPIRun.run(ranks: 2, "heat2d", ["--n", "16", "--iterations", "400"])
        func residual(_ r: MPIRun.Result) -> Double? { r.lines(matching: "^residual ").first.flatMap { Double($0.split(separator: " ")[1].replacingOccurrences(of: ",", with: "")) } }
        let early = try XCTUnwrap(residual(short), short.output)
        let late = try XCTUnwrap(residual(long), long.output)
        XCTAssertLessThan(late, early / 10, "the residual falls as the iteration converges")
    }
}
