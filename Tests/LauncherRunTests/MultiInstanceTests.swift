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

    /// GPUs from the pool's inventory: with gpusPerRank each rank sees only its own device
    /// (by its place on its node), with gpusPerNode every rank of a node sees the node's
    /// share, and a task waits while the GPUs it needs are held, though slots are free. The
    /// attempt records the devices it held. (The local pool's virtual nodes get their own
    /// devices of this machine: local-1's are 4-7.)
    func testEachRankSeesItsOwnGPUsAndTasksWaitForBusyOnes() throws {
        var pool = Pool.local(nodeCount: 2, slotsPerNode: 8)
        for index in pool.nodes.indices { pool.nodes[index].gpus = Array((index * 4)..<(index * 4 + 4)) }
        let report = "echo $OMPI_COMM_WORLD_RANK $COHORT_NODE_ID $CUDA_VISIBLE_DEVICES; sleep 1.5"
        var perRank = TaskSpec.shell("per-rank", report, multi: MultiInstance(instances: 2, processesPerNode: 2, transport: .shm))
        perRank.gpusPerRank = 1
        var perNode = TaskSpec.shell("per-node", report, multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .shm))
        perNode.gpusPerNode = 2
        // Slots are free for it, GPUs are not until one of the two above ends.
        var single = TaskSpec.shell("single", "echo $CUDA_VISIBLE_DEVICES $COHORT_GPUS")
        single.gpusPerNode = 1
        let run = try Harness.run(JobSpec(id: "gpus", tasks: [perRank, perNode, single]), pool: pool)
        let attempts = try run.tasks.map { try XCTUnwrap($0.attempts.first) }
        for attempt in attempts { XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))") }
        XCTAssertEqual(lines(attempts[0]), ["0 local-0 0", "1 local-0 1", "2 local-1 4", "3 local-1 5"])
        XCTAssertEqual(attempts[0].gpus, [[0, 1], [4, 5]])
        XCTAssertEqual(lines(attempts[1]), ["0 local-0 2,3", "1 local-1 6,7"])
        XCTAssertEqual(attempts[1].gpus, [[2, 3], [6, 7]])
        XCTAssertGreaterThanOrEqual(attempts[2].start, min(attempts[0].end!, attempts[1].end!) - 0.01, "single started while every GPU was held")
        let device = try XCTUnwrap(attempts[2].gpus?.first?.first)
        XCTAssertEqual(lines(attempts[2]), ["\(device) \(device)"])
    }

    /// A task asks for more GPUs or memory than any node has: refused up front, naming how to
    /// give the pool some; memory is held like slots while the task runs.
    func testGPUAndMemoryRequestsNoNodeCanMeetAreRefused() throws {
        var pool = Pool.local(nodeCount: 2, slotsPerNode: 2)
        var task = TaskSpec.shell("t", "true")
        task.gpusPerNode = 1
        XCTAssertThrowsError(try JobRunner(job: JobSpec(id: "nogpu", tasks: [task]), pool: pool, settings: Harness.settings(Harness.temporaryDirectory()))) { error in
            XCTAssertTrue("\(error)".contains("needs 1 GPUs per node but the pool's nodes have none (cohort pool add … --gpus-per-node N)"), "\(error)")
        }
        task.gpusPerNode = nil
        task.memoryPerNode = 4096
        pool.nodes[0].memoryMiB = 2048
        XCTAssertThrowsError(try JobRunner(job: JobSpec(id: "nomem", tasks: [task]), pool: pool, settings: Harness.settings(Harness.temporaryDirectory()))) { error in
            XCTAssertTrue("\(error)".contains("needs 4 GiB of memory per node but the most a node has is 2 GiB"), "\(error)")
        }
        // Two tasks of 1.5 GiB on one node of 2 GiB (the other states none): one after the other.
        task.memoryPerNode = 1536
        var a = task, b = task
        a.id = "a"
        b.id = "b"
        a.commandLine = ["sleep", "1"]
        b.commandLine = ["sleep", "1"]
        let run = try Harness.run(JobSpec(id: "mem", tasks: [a, b]), pool: pool)
        let first = try XCTUnwrap(run.tasks[0].attempts.first), second = try XCTUnwrap(run.tasks[1].attempts.first)
        XCTAssertTrue(first.succeeded && second.succeeded)
        XCTAssertEqual(first.nodes + second.nodes, ["local-0", "local-0"])
        XCTAssertTrue(first.end! <= second.start || second.end! <= first.start, "both held 1.5 GiB of local-0's 2 GiB at once")
    }

    func testAHangingRankIsEndedByTheWallClockLimit() throws {
        let multi = MultiInstance(instances: 2, processesPerNode: 1, transport: .shm)
        let task = TaskSpec.shell("hang", "if [ $OMPI_COMM_WORLD_RANK = 1 ]; then sleep 300; fi", multi: multi,
                                  constraints: Constraints(maxWallClockTime: 2, maxTaskRetryCount: 0, killGracePeriod: 1))
        let run = try Harness.run(JobSpec(id: "hang", tasks: [task]))  // no process of it left anywhere
        XCTAssertEqual(run.tasks[0].failure?.category, .timeout)
    }
}
