import Foundation
import XCTest
@testable import Launcher

final class MultiInstanceTests: XCTestCase {
    func lines(_ attempt: Attempt) -> [String] {
        Harness.read("\(attempt.directory)/stdout.txt").split(separator: "\n").map(String.init).sorted()
    }

    func testEveryRankGetsItsNodesEnvironment() throws {
        let script = "echo $OMPI_COMM_WORLD_RANK $AZ_BATCH_NODE_ID $AZ_BATCH_IS_CURRENT_NODE_MASTER $AZ_BATCH_JOB_ID $AZ_BATCH_TASK_ID $COHORT_RANKS $(pwd) $CASE"
        var job = JobSpec(id: "envjob", tasks: [.shell("env", script, multi: MultiInstance(instances: 2, processesPerNode: 2, transport: .shm))])
        job.environment = ["CASE": "wing"]
        let run = try Harness.run(job)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure))")
        let dir = attempt.directory
        XCTAssertEqual(lines(attempt), [
            "0 local-0 true envjob env 4 \(dir)/node-local-0 wing",
            "1 local-0 true envjob env 4 \(dir)/node-local-0 wing",
            "2 local-1 false envjob env 4 \(dir)/node-local-1 wing",
            "3 local-1 false envjob env 4 \(dir)/node-local-1 wing",
        ])
        XCTAssertEqual(Harness.read("\(dir)/hostfile"), "localhost slots=4\n")
        XCTAssertEqual(attempt.launchedCommand.first, "mpirun")
        XCTAssertTrue(attempt.launchedCommand.contains("-np") && attempt.launchedCommand.contains("4"))
    }

    /// Every rank starts with no signal blocked. `cohort rank-env` execs the application
    /// from a Swift concurrency thread, whose signals are all blocked; the mask survived the
    /// exec, and heat2d never saw its SIGUSR1 warning (nor would a rank mpirun's SIGTERM).
    func testRanksStartWithNoSignalBlocked() throws {
        let task = TaskSpec.shell("mask", "echo $OMPI_COMM_WORLD_RANK $(grep SigBlk /proc/$$/status | cut -f2)",
                                  multi: MultiInstance(instances: 3, processesPerNode: 2, transport: .shm))
        let run = try Harness.run(JobSpec(id: "sigmask", tasks: [task]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertEqual(lines(attempt), (0..<6).map { "\($0) 0000000000000000" })
    }

    /// The warning before the time limit reaches every rank once: Cohort signals mpirun,
    /// which passes it on to each rank (not to its own group, or local ranks got two).
    func testMpirunPassesTheWarningToEveryRankOnce() throws {
        var constraints = Constraints(maxWallClockTime: 30)
        // 5 s in: mpirun passes on nothing before its ranks run (a second or two here).
        constraints.signalBeforeTimeLimit = WarningSignal(signal: SIGUSR2, seconds: 25)
        var task = TaskSpec.shell("warned", "trap 'echo rank $OMPI_COMM_WORLD_RANK warned; exit 0' USR2; while :; do sleep 0.1; done",
                                  multi: MultiInstance(instances: 2, processesPerNode: 2, transport: .shm))
        task.constraints = constraints
        let started = Date()
        let run = try Harness.run(JobSpec(id: "warnmpi", tasks: [task]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)): \(Harness.read("\(attempt.directory)/stderr.txt"))")
        XCTAssertEqual(lines(attempt), ["rank 0 warned", "rank 1 warned", "rank 2 warned", "rank 3 warned"])
        XCTAssertLessThan(Date().timeIntervalSince(started), 20, "the ranks ended at the warning, not at the limit")
    }

    /// A hung MPI run: every rank's stacks are saved (mpirun's own are not: it only waits),
    /// and the attempt ends as hung.
    func testAHungRunIsEndedWithEveryRanksStacks() throws {
        var task = TaskSpec.shell("stuck", "exec sleep 1000", multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .shm))
        task.constraints.idleTimeout = 3
        task.constraints.killGracePeriod = 1
        let run = try Harness.run(JobSpec(id: "hungmpi", tasks: [task]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertEqual(attempt.failure?.category, .hung, "\(String(describing: attempt.failure))")
        XCTAssertTrue(attempt.failure?.message.contains("the stacks of its 2 processes") == true, attempt.failure?.message ?? "")
        let stacks = (try? FileManager.default.contentsOfDirectory(atPath: "\(attempt.directory)/stacks")) ?? []
        XCTAssertEqual(stacks.filter { $0.hasSuffix("-sleep.txt") }.count, 2, "\(stacks)")
    }

    /// The checkpoint/restart cycle HPC codes live by, end to end: heat2d on 2 × 2 ranks is
    /// warned 5 s into each attempt (signalBeforeTimeLimit; mpirun passes on nothing sent
    /// before its ranks run), writes its field with MPI-IO into COHORT_TASK_PERSIST_DIR and
    /// exits 3; each retry resumes from the very iteration the last one stopped at, until one
    /// reaches the end. (That a restart computes the uninterrupted field byte for byte:
    /// ExampleTests.)
    func testAWarnedMPIRunCheckpointsAndItsRetriesResumeWhereItStopped() throws {
        let heat2d = Harness.executable("heat2d")
        let iterations = 60_000
        var task = TaskSpec.shell("heat", "exec \(heat2d) --n 64 --iterations \(iterations) --checkpoint \"$COHORT_TASK_PERSIST_DIR/field\" --resume",
                                  multi: MultiInstance(instances: 2, processesPerNode: 2, transport: .shm))
        task.constraints = Constraints(maxWallClockTime: 300, maxTaskRetryCount: 12, killGracePeriod: 2,
                                       signalBeforeTimeLimit: WarningSignal(signal: SIGUSR1, seconds: 295))
        let run = try Harness.run(JobSpec(id: "ckptmpi", tasks: [task]))
        let attempts = run.tasks[0].attempts
        XCTAssertGreaterThanOrEqual(attempts.count, 2, "\(attempts.map { String(describing: $0.failure) })")
        XCTAssertTrue(attempts.last?.succeeded == true, "\(String(describing: attempts.last?.failure))")
        var stoppedAt = 0
        for (index, attempt) in attempts.enumerated() {
            let output = Harness.read("\(attempt.directory)/stdout.txt")
            if index > 0 {
                let resumed = output.range(of: #"restarted from \S+ after \d+ iterations"#, options: .regularExpression).map { Int(output[$0].split(separator: " ")[4]) }
                XCTAssertEqual(resumed, stoppedAt, "attempt \(attempt.number) started where the last stopped: \(output)")
            }
            guard index < attempts.count - 1 else { break }
            XCTAssertEqual(attempt.exitCode, 3, output)
            let stopped = output.range(of: #"checkpointed after \d+ of"#, options: .regularExpression).flatMap { Int(output[$0].split(separator: " ")[2]) }
            XCTAssertGreaterThan(stopped ?? 0, stoppedAt, "attempt \(attempt.number) got further: \(output)")
            stoppedAt = stopped ?? 0
        }
        let persist = URL(fileURLWithPath: attempts[0].directory).deletingLastPathComponent().appendingPathComponent("persist").path
        XCTAssertEqual(Harness.read("\(persist)/field.iterations"), "\(iterations)\n")
        XCTAssertEqual(FileManager.default.contents(atPath: "\(persist)/field")?.count, 64 * 64 * 8)
    }

    func testCoordinationRunsOnEveryNodeBeforeTheApplication() throws {
        let multi = MultiInstance(instances: 3, processesPerNode: 1,
                                  coordinationCommandLine: ["/bin/sh", "-c", "sleep 0.3; echo $AZ_BATCH_NODE_ID > $AZ_BATCH_TASK_SHARED_DIR/ready-$AZ_BATCH_NODE_ID"],
                                  transport: .shm)
        let run = try Harness.run(JobSpec(id: "coord", tasks: [.shell("app", "ls $AZ_BATCH_TASK_SHARED_DIR | grep -c ready-", multi: multi)]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure))")
        XCTAssertEqual(lines(attempt), ["3", "3", "3"], "every rank saw all three nodes ready")
        XCTAssertEqual(attempt.nodeExitCodes, ["local-0": 0, "local-1": 0, "local-2": 0])
    }

    func testFailingCoordinationStopsTheTaskAndNamesTheNode() throws {
        let multi = MultiInstance(instances: 3, processesPerNode: 1,
                                  coordinationCommandLine: ["/bin/sh", "-c", "if [ $AZ_BATCH_NODE_ID = local-1 ]; then echo disk full >&2; exit 4; fi"],
                                  transport: .shm)
        let run = try Harness.run(JobSpec(id: "coordfail", tasks: [.shell("app", "echo app ran", multi: multi)]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        let failure = try XCTUnwrap(attempt.failure)
        XCTAssertEqual(failure.category, .coordinationFailed)
        XCTAssertEqual(failure.node, "local-1")
        XCTAssertTrue(failure.message.contains("node local-1"), failure.message)
        XCTAssertEqual(failure.details, ["disk full"])
        XCTAssertEqual(attempt.nodeExitCodes["local-1"], 4)
        XCTAssertEqual(Harness.read("\(attempt.directory)/stdout.txt"), "", "the application never started")
    }

    func testAFailingRankIsNamedWithItsNode() throws {
        let multi = MultiInstance(instances: 2, processesPerNode: 2, transport: .shm)
        let run = try Harness.run(JobSpec(id: "rankfail", tasks: [.shell("app", "if [ $OMPI_COMM_WORLD_RANK = 3 ]; then exit 7; fi; sleep 0.5", multi: multi)]))
        let failure = try XCTUnwrap(run.tasks[0].failure)
        XCTAssertEqual(failure.category, .exitCode)
        XCTAssertEqual(failure.node, "local-1")
        XCTAssertEqual(failure.message, "rank 3 on node local-1 exited with code 7")
        XCTAssertTrue(failure.details.contains { $0.contains("Exit code:") }, "mpirun's report is kept")
        XCTAssertEqual(run.tasks[0].attempts.last?.nodeExitCodes["local-1"], 7)
    }

    func testHeat2DRunsOnEachTransport() throws {
        for transport in [Transport.shm, .tcp, .ucx, .auto] {
            let task = TaskSpec(id: "heat", commandLine: [Harness.executable("heat2d"), "--n", "40", "--iterations", "40", "--check"],
                                multiInstance: MultiInstance(instances: 2, processesPerNode: 2, transport: transport))
            let run = try Harness.run(JobSpec(id: "heat-\(transport.rawValue)", tasks: [task]))
            let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
            XCTAssertTrue(attempt.succeeded, "\(transport): \(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
            XCTAssertTrue(Harness.read("\(attempt.directory)/stdout.txt").contains("(ok, tolerance 1e-12)"), "\(transport)")
            let expected: Transport = transport == .auto ? .shm : transport  // no RDMA device here
            XCTAssertEqual(attempt.transport, expected)
            XCTAssertTrue(attempt.launchedCommand.containsSequence(MPIRunCommand.transportFlags(expected)), "\(attempt.launchedCommand)")
        }
    }

    func testRDMAWithoutADeviceFailsBeforeLaunch() throws {
        let task = TaskSpec(id: "ib", commandLine: ["/bin/true"], multiInstance: MultiInstance(instances: 2, processesPerNode: 1, transport: .rdma))
        let run = try Harness.run(JobSpec(id: "rdma", tasks: [task]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertEqual(attempt.failure?.category, .transportUnavailable)
        XCTAssertTrue(attempt.failure?.message.contains("no RDMA device") == true)
        XCTAssertEqual(attempt.launchedCommand, [], "nothing was launched")
        XCTAssertEqual(run.tasks[0].attempts.count, 1, "not retried: it cannot get better")
    }

    func testRawModeLetsTheCommandCallMpirunItself() throws {
        let script = "exec mpirun --allow-run-as-root --oversubscribe --hostfile \"$COHORT_HOSTFILE\" -np $COHORT_RANKS printenv COHORT_ATTEMPT_ID"
        let task = TaskSpec(id: "raw", commandLine: ["/bin/sh", "-c", script],
                            multiInstance: MultiInstance(instances: 2, processesPerNode: 2, launch: .raw))
        let run = try Harness.run(JobSpec(id: "rawjob", tasks: [task]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure))")
        XCTAssertEqual(lines(attempt), Array(repeating: try XCTUnwrap(attempt.markerId), count: 4))
        XCTAssertTrue(attempt.markerId?.hasSuffix(".rawjob.raw.a1") == true, "\(attempt.markerId ?? "")")
        XCTAssertEqual(attempt.launchedCommand.first, "/bin/sh", "Cohort did not wrap it in mpirun")
    }

    func testReplicasRunAtTheSameTimeOnDisjointGroups() throws {
        let multi = MultiInstance(instances: 2, processesPerNode: 1, transport: .shm, replicas: 2)
        let run = try Harness.run(JobSpec(id: "replicas", tasks: [.shell("twin", "echo $COHORT_REPLICA_INDEX $AZ_BATCH_NODE_ID; sleep 1", multi: multi)]))
        XCTAssertEqual(run.tasks.map(\.displayId), ["twin[0]", "twin[1]"])
        let first = try XCTUnwrap(run.tasks[0].attempts.first), second = try XCTUnwrap(run.tasks[1].attempts.first)
        XCTAssertTrue(first.succeeded && second.succeeded)
        XCTAssertTrue(Set(first.nodes).isDisjoint(with: second.nodes), "\(first.nodes) vs \(second.nodes)")
        XCTAssertLessThan(first.start, second.end!, "they overlapped in time")
        XCTAssertLessThan(second.start, first.end!, "they overlapped in time")
        XCTAssertNotEqual(first.directory, second.directory)
        XCTAssertEqual(Set(lines(first).map { $0.split(separator: " ")[0] }), ["0"])
        XCTAssertEqual(Set(lines(second).map { $0.split(separator: " ")[0] }), ["1"])
    }

    func testAHangingRankIsEndedByTheWallClockLimit() throws {
        let multi = MultiInstance(instances: 2, processesPerNode: 1, transport: .shm)
        let task = TaskSpec.shell("hang", "if [ $OMPI_COMM_WORLD_RANK = 1 ]; then sleep 300; fi", multi: multi,
                                  constraints: Constraints(maxWallClockTime: 2, maxTaskRetryCount: 0, killGracePeriod: 1))
        let run = try Harness.run(JobSpec(id: "hang", tasks: [task]))  // no process of it left anywhere
        XCTAssertEqual(run.tasks[0].failure?.category, .timeout)
    }
}
