import XCTest

/// Runs every group of Tests/Programs/mpi-checks under real mpirun on 1 to 4 ranks and
/// requires each rank to report its group passed.
final class MPIChecksTests: XCTestCase {
    func runGroup(_ group: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for ranks in 1...4 {
            let result = try MPIRun.run(ranks: ranks, "mpi-checks", [group])
            let passed = result.lines(matching: "^rank [0-9]+: \(group) ok \\([0-9]+ checks\\)$")
            XCTAssertEqual(result.exitCode, 0, "\(group) on \(ranks) ranks:\n\(result.output)", file: file, line: line)
            XCTAssertEqual(passed.count, ranks, "\(group) on \(ranks) ranks: every rank reports ok\n\(result.output)", file: file, line: line)
            let ranksSeen = Set(passed.compactMap { $0.split(separator: ":").first?.split(separator: " ").last.flatMap { Int($0) } })
            XCTAssertEqual(ranksSeen, Set(0..<ranks), "\(group): one report from each rank", file: file, line: line)
        }
    }

    func testEnvironment() throws { try runGroup("environment") }
    func testPointToPoint() throws { try runGroup("point-to-point") }
    func testNonblocking() throws { try runGroup("nonblocking") }
    func testCollectives() throws { try runGroup("collectives") }
    func testOperations() throws { try runGroup("operations") }
    func testCommunicators() throws { try runGroup("communicators") }
    func testTopology() throws { try runGroup("topology") }
    func testDatatypes() throws { try runGroup("datatypes") }
    func testFiles() throws { try runGroup("files") }
    func testPersistentRequests() throws { try runGroup("persistent") }
    func testGroupsTopologiesAndNeighborhoodCollectives() throws { try runGroup("neighbors") }
    func testOneSidedWindows() throws { try runGroup("windows") }
    func testCodableObjectMessages() throws { try runGroup("objects") }
    func testErrors() throws { try runGroup("errors") }

    /// 2 GiB + 2 bytes in one message (past MPI's int count), on 2 ranks: a few GiB each.
    func testMessagesPastTwoToTheThirtyOneElements() throws {
        let result = try MPIRun.run(ranks: 2, "mpi-checks", ["large-counts"], timeout: 300)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(result.lines(matching: "^rank [01]: large-counts ok \\([0-9]+ checks\\)$").count, 2, result.output)
    }

    /// A request dropped before completing waits in its deinit (its buffer may still be
    /// written); one that waits past the grace period says so on stderr instead of hanging
    /// silently, and one that completes at once says nothing.
    func testADroppedPendingRequestIsReportedWhileItWaits() throws {
        let result = try MPIRun.run(ranks: 2, "mpi-checks", ["dropped-request"], flags: ["-x", "MPI_SWIFT_DROPPED_REQUEST_SECONDS=1"], timeout: 60)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(result.lines(matching: "dropped without wait\\(\\) is still pending after 1 s").count, 1, result.output)
        XCTAssertTrue(result.output.contains("rank 0: a Request<Array<Int>> dropped"), result.output)
        XCTAssertEqual(result.lines(matching: "^rank 0: past the (slow|quick) dropped receive$").count, 2, result.output)
    }

    func testUseBeforeInitializeStopsWithAClearMessage() throws {
        let result = try MPIRun.run(ranks: 1, "mpi-checks", ["before-init"])
        XCTAssertNotEqual(result.exitCode, 0)
        XCTAssertTrue(result.output.contains("called before MPI_INIT"), result.output)
        XCTAssertFalse(result.output.contains("Segmentation fault"), result.output)
        XCTAssertFalse(result.output.contains("Program crashed"), result.output)
    }

    func testAbortEndsEveryRankWithItsCode() throws {
        let result = try MPIRun.run(ranks: 3, "mpi-checks", ["abort"], timeout: 60)
        // mpirun exits with the code given to MPI_Abort. (Its "MPI_ABORT was invoked" help
        // text is not asserted: Open MPI 4.1 sometimes loses it in a show_help race.)
        XCTAssertEqual(result.exitCode, 42, result.output)
        XCTAssertTrue(result.output.contains("rank 2 aborting"), result.output)
        XCTAssertFalse(result.output.contains("got past the barrier"), result.output)
        XCTAssertLessThan(result.seconds, 30, "no rank was left waiting")
    }

    /// Builds the malloc counter that the allocation checks preload.
    func mallocCounter() throws -> String {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Programs/malloc-count/malloc_count.c").path
        let library = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-malloc-count-\(getpid()).so").path
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: try MPIRun.which("cc"))
        cc.arguments = ["-shared", "-fPIC", "-O2", "-o", library, source]
        try cc.run()
        cc.waitUntilExit()
        XCTAssertEqual(cc.terminationStatus, 0, "cc could not build the malloc counter")
        return library
    }

    func testHotPathsAllocateNoMoreThanTheCAPI() throws {
        let library = try mallocCounter()
        for ranks in 1...3 {
            let result = try MPIRun.run(ranks: ranks, "mpi-checks", ["allocations"], flags: ["-x", "LD_PRELOAD=\(library)"])
            XCTAssertEqual(result.exitCode, 0, result.output)
            XCTAssertEqual(result.lines(matching: "^rank [0-9]+: allocations ok").count, ranks, result.output)
            XCTAssertEqual(result.lines(matching: "0 allocations in 1000 wrapper calls").count > 0, true, result.output)
        }
    }

    func testNothingCallsMPIAfterFinalize() throws {
        let result = try MPIRun.run(ranks: 2, "mpi-checks", ["after-finalize"])
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(result.lines(matching: "^after-finalize ok$").count, 2, result.output)
        XCTAssertFalse(result.output.contains("after MPI_FINALIZE"), result.output)
    }
}
