import Foundation
import XCTest
@testable import Launcher

/// Slurm pools on a real Slurm cluster (slurmctld here, slurmd in each virtual-cluster node,
/// munge, PMIx): ranks started by `srun --mpi=pmix` on the group Cohort chose, replicas at
/// once on disjoint nodes, many small tasks, cancel, node loss, time limits, drains, bad input.
final class SlurmTests: XCTestCase {
    override class func setUp() {
        super.setUp()
        SlurmCluster.up()
    }

    override class func tearDown() {
        SlurmCluster.down()
        super.tearDown()
    }

    override func setUpWithError() throws { try SlurmCluster.requireUp() }

    let settings = Harness.settings(Harness.temporaryDirectory())

    func run(_ job: JobSpec, pool: Pool? = nil) throws -> JobRun {
        let runner = try JobRunner(job: job, pool: pool ?? SlurmCluster.pool(), settings: settings)
        let result = runner.run()
        Harness.checkNoOrphans(result)
        return result
    }

    func lines(_ path: String) -> [String] { Harness.read(path).split(separator: "\n").map(String.init) }

    func waitUntil(_ what: String, timeout: Double = 30, _ condition: () -> Bool) {
        let deadline = Date() + timeout
        while !condition() {
            guard Date() < deadline else { return XCTFail("\(what) did not happen within \(Int(timeout)) s") }
            usleep(100_000)
        }
    }

    func testRanksStartUnderSrunWithPMIxOnTheHostsOfTheirGroup() throws {
        let where_ = TaskSpec.shell("where", "echo $(hostname) $AZ_BATCH_NODE_ID $SLURMD_NODENAME $SLURM_PROCID $(pwd) $COHORT_WORKING_DIR $AZ_BATCH_IS_CURRENT_NODE_MASTER",
                                    multi: MultiInstance(instances: 3, processesPerNode: 2, transport: .tcp))
        let hello = TaskSpec(id: "hello", commandLine: [Harness.executable("hello")], multiInstance: MultiInstance(instances: 4, processesPerNode: 1, transport: .tcp))
        let run = try run(JobSpec(id: "slurm-where", pool: "slurm", tasks: [where_, hello]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/srun.txt"))")
        XCTAssertEqual(attempt.launchedCommand.first, "srun")
        XCTAssertTrue(attempt.launchedCommand.contains("--mpi=pmix"), "\(attempt.launchedCommand)")
        XCTAssertFalse(attempt.launchedCommand.contains { $0.hasSuffix("mpirun") }, "no mpirun: Slurm starts the ranks")
        let id = try XCTUnwrap(attempt.slurmJobId, "the Slurm job id is recorded with the attempt")
        XCTAssertNotNil(Int(id), id)
        let output = lines("\(attempt.directory)/stdout.txt")
        XCTAssertEqual(output.count, 6, output.joined(separator: "\n"))
        XCTAssertEqual(Set(output.compactMap { $0.split(separator: " ").dropFirst(3).first.map(String.init) }), Set((0..<6).map(String.init)), "ranks 0-5")
        for line in output {
            let f = line.split(separator: " ").map(String.init)
            XCTAssertEqual(f[0], f[1], "the rank's host is the node Cohort says it is: \(line)")
            XCTAssertEqual(f[0], f[2], "and the node Slurm started it on: \(line)")
            XCTAssertTrue(attempt.nodes.contains(f[0]), "\(f[0]) is in the group \(attempt.nodes)")
            XCTAssertEqual(f[4], "\(attempt.directory)/node-\(f[0])", "each rank starts in its node's working directory")
            XCTAssertEqual(f[4], f[5])
            XCTAssertEqual(f[6], f[0] == attempt.nodes[0] ? "true" : "false", "the first node of the group is the master: \(line)")
            XCTAssertEqual(Int(f[3])! / 2, attempt.nodes.firstIndex(of: f[0]), "ranks fill the group's nodes in order: \(line)")
        }
        // A Swift MPI program: PMIx wires the 4 ranks up across the 4 hosts.
        let helloAttempt = try XCTUnwrap(run.tasks[1].attempts.first)
        XCTAssertTrue(helloAttempt.succeeded, "\(String(describing: helloAttempt.failure))")
        let greetings = lines("\(helloAttempt.directory)/stdout.txt").sorted()
        XCTAssertEqual(greetings, (0..<4).map { "hello from rank \($0) of 4 on node\($0 + 1)" }.sorted())
        XCTAssertEqual(SlurmCluster.cohortJobs(), [], "nothing of the job is left in Slurm")
    }

    /// -N 3 -n 4 on Slurm: srun spreads them itself (2, 1, 1), and each rank's variables
    /// name the node Slurm started it on.
    func testRanksThatDoNotFillEveryNodeAlikeAreSpreadBySlurm() throws {
        var multi = MultiInstance(instances: 3, processesPerNode: 2, transport: .tcp)
        multi.totalRanks = 4
        let task = TaskSpec.shell("uneven", "echo $SLURM_PROCID $SLURMD_NODENAME $COHORT_NODE_ID $COHORT_RANKS", multi: multi)
        let run = try run(JobSpec(id: "slurm-uneven", pool: "slurm", tasks: [task]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
        XCTAssertTrue(attempt.launchedCommand.contains("--ntasks=4"), "\(attempt.launchedCommand)")
        let lines = lines("\(attempt.directory)/stdout.txt").sorted()
        XCTAssertEqual(lines.count, 4, "\(lines)")
        for line in lines {
            let fields = line.split(separator: " ").map(String.init)
            XCTAssertEqual(fields[1], fields[2], "named as Slurm placed it: \(line)")
            XCTAssertEqual(fields[3], "4")
        }
        XCTAssertEqual(Dictionary(grouping: lines, by: { $0.split(separator: " ")[1] }).values.map(\.count).sorted(), [1, 1, 2])
    }

    /// Hybrid ranks on Slurm: `--cpus-per-task`, so Slurm gives (and binds) each rank its
    /// cores, and the rank gets OMP_NUM_THREADS.
    func testHybridRanksGetTheirCoresFromSlurm() throws {
        var hybrid = TaskSpec.shell("hybrid", "echo $OMP_NUM_THREADS $SLURM_CPUS_PER_TASK $(grep Cpus_allowed_list /proc/self/status | cut -f2)",
                                    multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp))
        hybrid.multiInstance?.cpusPerRank = 2
        let run = try run(JobSpec(id: "slurm-hybrid", pool: "slurm", tasks: [hybrid]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
        XCTAssertTrue(attempt.launchedCommand.contains("--cpus-per-task=2"), "\(attempt.launchedCommand)")
        XCTAssertEqual(lines("\(attempt.directory)/stdout.txt"), ["2 2 0-1", "2 2 0-1"])
    }

    func testReplicasRunAtOnceOnDisjointNodesEachItsOwnSlurmJob() throws {
        let task = TaskSpec.shell("rep", "date +%s.%N; sleep 2", multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp, replicas: 2))
        let run = try run(JobSpec(id: "slurm-replicas", pool: "slurm", tasks: [task]))
        XCTAssertEqual(run.tasks.count, 2)
        let attempts = try run.tasks.map { try XCTUnwrap($0.attempts.first) }
        for attempt in attempts { XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure))") }
        XCTAssertTrue(Set(attempts[0].nodes).isDisjoint(with: attempts[1].nodes), "\(attempts[0].nodes) and \(attempts[1].nodes)")
        XCTAssertNotEqual(attempts[0].slurmJobId, attempts[1].slurmJobId)
        // At once: each replica's ranks started before the other's ended.
        let starts = attempts.map { lines("\($0.directory)/stdout.txt").compactMap(Double.init).min() ?? 0 }
        XCTAssertLessThan(abs(starts[0] - starts[1]), 1.5, "the replicas started together: \(starts)")
    }

    func testManySmallTasksEachRunAsTheirOwnSlurmJobOnEveryNode() throws {
        let tasks = (0..<40).map { TaskSpec.shell(String(format: "t%02d", $0), "echo $SLURM_JOB_ID $(hostname) $AZ_BATCH_NODE_ID") }
        let run = try run(JobSpec(id: "slurm-many", pool: "slurm", tasks: tasks))
        XCTAssertEqual(run.tasks.filter(\.succeeded).count, 40)
        var ids = Set<String>(), hosts = Set<String>()
        for task in run.tasks {
            let attempt = try XCTUnwrap(task.attempts.first)
            let f = Harness.read("\(attempt.directory)/stdout.txt").split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            XCTAssertEqual(f.count, 3, "\(task.taskId): \(f)")
            XCTAssertEqual(f.first, attempt.slurmJobId, "the recorded Slurm job is the one the task ran in")
            XCTAssertEqual(f[1], f[2])
            XCTAssertEqual([f[1]], attempt.nodes)
            ids.insert(f[0])
            hosts.insert(f[1])
        }
        XCTAssertEqual(ids.count, 40, "one Slurm job a task")
        XCTAssertGreaterThan(hosts.count, 1, "spread over the nodes: \(hosts)")
    }

    /// An array's elements become Slurm jobs named after them (`cohort.…pi[3].a1`), and a sweep
    /// of MPI runs becomes srun steps with each element's words.
    func testAnArrayAndASweepRunOnSlurm() throws {
        let job = try JobFile.parse("""
            id: slurm-array
            pool: slurm
            tasks:
              - { id: pi, commandLine: [/bin/sh, -c, 'echo {index} $COHORT_ARRAY_INDEX $SLURM_JOB_NAME'], array: 0-5%3 }
              - id: ens
                commandLine: [/bin/sh, -c, 'echo $SLURM_PROCID {re}']
                sweep: { re: ["100", "1000"] }
                multiInstance: { instances: 2, processesPerNode: 1, transport: tcp }
            """, file: "slurm-array.yaml")
        let run = try run(job)
        XCTAssertTrue(run.succeeded, "\(run.tasks.map { "\($0.taskId) \(String(describing: $0.failure))" })")
        for index in 0...5 {
            let attempt = try XCTUnwrap(run.tasks.first { $0.taskId == "pi[\(index)]" }?.attempts.first)
            let f = Harness.read("\(attempt.directory)/stdout.txt").split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            XCTAssertEqual(f.prefix(2), ["\(index)", "\(index)"])
            XCTAssertTrue(f.last?.hasSuffix(".pi[\(index)].a1") == true, "\(f)")
        }
        for (index, re) in ["100", "1000"].enumerated() {
            let attempt = try XCTUnwrap(run.tasks.first { $0.taskId == "ens[\(index)]" }?.attempts.first)
            XCTAssertEqual(lines("\(attempt.directory)/stdout.txt").sorted(), ["0 \(re)", "1 \(re)"])
        }
        XCTAssertEqual(SlurmCluster.cohortJobs(), [], "nothing of the job is left in Slurm")
    }

    func testACancelLeavesNothingInSlurmNorOnAnyNode() throws {
        let tasks = [TaskSpec.shell("solve", "sleep 60", multi: MultiInstance(instances: 2, processesPerNode: 2, transport: .tcp))]
            + (0..<4).map { TaskSpec.shell("side\($0)", "sleep 60") }
        let runner = try JobRunner(job: JobSpec(id: "slurm-cancel", pool: "slurm", tasks: tasks), pool: SlurmCluster.pool(), settings: settings)
        let done = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var run: JobRun? }
        let box = Box()
        Thread { box.run = runner.run(); done.signal() }.start()
        waitUntil("five Slurm jobs running") { SlurmCluster.cohortJobs().filter { $0.hasSuffix("RUNNING") }.count == 5 }
        let cancelled = Date()
        runner.cancel()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "the cancelled job ended")
        let run = try XCTUnwrap(box.run)
        print("a cancel ended 5 Slurm jobs in \(String(format: "%.2f", Date().timeIntervalSince(cancelled))) s")
        for task in run.tasks {
            XCTAssertEqual(task.attempts.first?.failure?.category, .cancelled, "\(task.taskId): \(task.attempts.map { "\($0.failure?.message ?? "no failure") \($0.seconds) s" })")
        }
        waitUntil("Slurm forgot the jobs", timeout: 10) { SlurmCluster.cohortJobs().isEmpty }
        XCTAssertEqual(SlurmCluster.cohortJobs(), [])
        for node in (1...4).map({ "node\($0)" }) {
            XCTAssertEqual(VirtualCluster.pids(on: node).filter { VirtualCluster.commandLine(of: $0).hasPrefix("sleep") }, [], "no sleep left on \(node)")
        }
        Harness.checkNoOrphans(run)
    }

    func testTheTimeLimitEndsTheTaskAsATimeoutAndFreesItsNodes() throws {
        let task = TaskSpec.shell("slow", "sleep 30", multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp),
                                  constraints: Constraints(maxWallClockTime: 2))
        let run = try run(JobSpec(id: "slurm-timeout", pool: "slurm", tasks: [task]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertEqual(attempt.failure?.category, .timeout, "\(String(describing: attempt.failure))")
        XCTAssertLessThan(attempt.seconds, 10)
        XCTAssertTrue(attempt.launchedCommand.contains("--time=0:02"), "Slurm's own limit too: \(attempt.launchedCommand)")
        waitUntil("Slurm freed the nodes", timeout: 10) { SlurmCluster.cohortJobs().isEmpty }
    }

    func testAFailingRankIsNamedWithItsNodeAndExitCode() throws {
        let task = TaskSpec.shell("bad", "if [ $SLURMD_NODENAME = $(echo $COHORT_GROUP_NODES | cut -d, -f2) ]; then sleep 1; echo broken >&2; exit 7; fi; sleep 20",
                                  multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp))
        let missing = TaskSpec(id: "missing", commandLine: ["/no/such/program"])
        let run = try run(JobSpec(id: "slurm-fail", pool: "slurm", tasks: [task, missing]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        let failure = try XCTUnwrap(attempt.failure)
        XCTAssertEqual(failure.category, .exitCode)
        XCTAssertEqual(failure.node, attempt.nodes[1])
        XCTAssertEqual(attempt.exitCode, 7)
        XCTAssertTrue(failure.message.contains("rank 1 on node \(attempt.nodes[1]) exited with code 7"), failure.message)
        // srun's own words name it too. (The rank's last output may be lost: with
        // --kill-on-bad-exit, Slurm 22.05 sometimes ends the step before it forwarded it.)
        XCTAssertTrue(failure.details.contains("srun: error: \(attempt.nodes[1]): task 1: Exited with exit code 7"), "\(failure.details)")
        XCTAssertLessThan(attempt.seconds, 10, "the other rank was ended at once (--kill-on-bad-exit)")
        let notFound = try XCTUnwrap(run.tasks[1].attempts.first?.failure)
        XCTAssertEqual(notFound.category, .launchFailed, notFound.message)
        XCTAssertTrue(notFound.message.contains("/no/such/program"), notFound.message)
    }

    /// A partition that Slurm no longer has (the pool was defined before it went): Slurm's
    /// refusal in its words, and no retry, since none could change it.
    func testAnAllocationSlurmRefusesAsInvalidIsNamedAndNotRetried() throws {
        var pool = try SlurmCluster.pool()
        pool.slurm?.partition = "gone"
        let task = TaskSpec.shell("solve", "hostname", multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp),
                                  constraints: Constraints(maxTaskRetryCount: 3))
        let run = try run(JobSpec(id: "slurm-refused", pool: "slurm", tasks: [task]), pool: pool)
        XCTAssertEqual(run.tasks[0].attempts.count, 1, "not retried")
        let failure = try XCTUnwrap(run.tasks[0].attempts.first?.failure)
        XCTAssertEqual(failure.category, .rejected)
        XCTAssertEqual(failure.message, "Slurm refused the allocation: Invalid partition name specified")
    }

    func testALostNodeIsNamedAndTheTaskRunsAgainWithoutIt() throws {
        let task = TaskSpec.shell("solve", "if [ $COHORT_ATTEMPT = 1 ]; then sleep 120; fi; hostname",
                                  multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp),
                                  constraints: Constraints(maxWallClockTime: 180, maxTaskRetryCount: 1))
        let runner = try JobRunner(job: JobSpec(id: "slurm-loss", pool: "slurm", tasks: [task]), pool: SlurmCluster.pool(), settings: settings)
        let done = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var run: JobRun? }
        let box = Box()
        Thread { box.run = runner.run(); done.signal() }.start()
        let attemptId = "\(settings.stateId).slurm-loss.solve.a1"
        var group: [String] = []
        waitUntil("the ranks started") {
            group = (1...4).map { "node\($0)" }.filter { !VirtualCluster.processes(on: $0, variable: ProcessSweeper.marker, value: attemptId).isEmpty }
            return group.count == 2
        }
        let victim = try XCTUnwrap(group.last)
        // The node dies: slurmd, its step daemon and the rank (its sshd stays, unused).
        let killed = Date()
        for pid in VirtualCluster.pids(on: victim) where !VirtualCluster.commandLine(of: pid).contains("sshd") { kill(pid, SIGKILL) }
        defer { SlurmCluster.nodeUp(victim) }
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success, "the job ended after a node was lost")
        let run = try XCTUnwrap(box.run)
        let first = run.tasks[0].attempts[0]
        XCTAssertEqual(first.failure?.category, .nodeLost, "\(String(describing: first.failure))")
        XCTAssertEqual(first.failure?.node, victim)
        print("Slurm's node loss reached Cohort \(String(format: "%.1f", first.end!.timeIntervalSince(killed))) s after the kill")
        XCTAssertEqual(run.tasks[0].attempts.count, 2)
        let second = run.tasks[0].attempts[1]
        XCTAssertTrue(second.succeeded, "\(String(describing: second.failure))")
        XCTAssertFalse(second.nodes.contains(victim), "the retry avoided the lost node: \(second.nodes)")
        Harness.checkNoOrphans(run)
    }

    /// Slurm preempts a task for a job of a partition of a higher priority tier on the same
    /// nodes (the cluster's `urgent`; PreemptMode=CANCEL): the attempt is interrupted, not
    /// failed, and the task runs again once the nodes are free, without spending a retry.
    func testAPreemptedTaskRunsAgainWithoutSpendingARetry() throws {
        var options = SlurmCluster.options
        options.partition = "pair"
        let task = TaskSpec.shell("solve", "if [ $COHORT_ATTEMPT = 1 ]; then sleep 120; fi; hostname",
                                  multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp),
                                  constraints: Constraints(maxWallClockTime: 180, maxTaskRetryCount: 0))
        let runner = try JobRunner(job: JobSpec(id: "slurm-preempted", pool: "slurm", tasks: [task]), pool: SlurmCluster.pool(options), settings: settings)
        let done = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var run: JobRun? }
        let box = Box()
        Thread { box.run = runner.run(); done.signal() }.start()
        let attemptId = "\(settings.stateId).slurm-preempted.solve.a1"
        waitUntil("the ranks started") {
            (1...2).allSatisfy { !VirtualCluster.processes(on: "node\($0)", variable: ProcessSweeper.marker, value: attemptId).isEmpty }
        }
        // The urgent job waits for nothing: Slurm ends Cohort's to give it the two nodes.
        let urgent = SlurmCluster.run(["srun", "--partition=urgent", "--nodes=2", "--exclusive", "--job-name=urgent", "hostname"])
        XCTAssertEqual(Set(urgent.split(separator: "\n").map(String.init)), ["node1", "node2"], "the urgent job ran on the preempted nodes")
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success, "the job ended after its task was preempted")
        let run = try XCTUnwrap(box.run)
        let first = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertEqual(first.failure?.category, .interrupted, "\(String(describing: first.failure))")
        XCTAssertTrue(first.failure?.message.contains("Slurm preempted the task") == true, "\(String(describing: first.failure))")
        XCTAssertEqual(run.tasks[0].attempts.count, 2, "run again although maxTaskRetryCount is 0")
        XCTAssertTrue(run.tasks[0].attempts.last?.succeeded == true, "\(String(describing: run.tasks[0].attempts.last?.failure))")
        XCTAssertTrue(run.tasks[0].succeeded)
        Harness.checkNoOrphans(run)
    }

    func testDrainsGoThroughSlurmAndDrainedNodesTakeNoWork() throws {
        let home = Harness.temporaryDirectory()
        let conf = ["--slurm-conf", SlurmCluster.configuration]
        let added = try Harness.cohort(["pool", "add", "sl", "--slurm"] + conf, home: home)
        XCTAssertEqual(added.exitCode, 0, added.stderr)
        XCTAssertEqual(added.stdout, "pool sl: 4 nodes, 8 slots\n")
        let drained = try Harness.cohort(["node", "drain", "--pool", "sl", "node3", "node4", "--reason", "bad DIMM"], home: home)
        XCTAssertEqual(drained.exitCode, 0, drained.stderr)
        var resumedAlready = false
        defer { if !resumedAlready { _ = try? Harness.cohort(["node", "undrain", "--pool", "sl", "node3", "node4"], home: home) } }
        XCTAssertEqual(SlurmCluster.run(["sinfo", "--noheader", "--Node", "--nodes=node[3-4]", "--format=%N %T %E"]).split(separator: "\n").sorted(),
                       ["node3 drained bad DIMM", "node4 drained bad DIMM"], "Slurm has the drains and their reason")
        let unknown = try Harness.cohort(["node", "drain", "--pool", "sl", "node9"], home: home)
        XCTAssertEqual(unknown.exitCode, 2)
        XCTAssertTrue(unknown.stderr.contains("pool sl has no node node9"), unknown.stderr)
        let listed = try Harness.cohort(["node", "list", "--pool", "sl"], home: home)
        let row = listed.stdout.split(separator: "\n").first { $0.hasPrefix("node3 ") }.map(String.init) ?? ""
        XCTAssertTrue(row.contains("offline") && row.contains("bad DIMM"), listed.stdout)
        let jobFile = "\(home)/spread.yaml"
        try (["id: spread", "pool: sl", "tasks:"] + (0..<12).map { "  - { id: t\($0), commandLine: hostname }" })
            .joined(separator: "\n").write(toFile: jobFile, atomically: true, encoding: .utf8)
        let result = try Harness.cohort(["run", "--output", "json", "--quiet", jobFile], home: home)
        XCTAssertEqual(result.exitCode, 0, result.stderr)
        let nodes = try (JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["tasks"] as? [[String: Any]] ?? []
        XCTAssertEqual(nodes.count, 12)
        let used = Set(nodes.flatMap { (($0["attempts"] as? [[String: Any]]) ?? []).flatMap { ($0["nodes"] as? [String]) ?? [] } })
        XCTAssertFalse(used.isEmpty)
        XCTAssertTrue(used.isSubset(of: ["node1", "node2"]), "the drained nodes took no work: \(used)")
        let resumed = try Harness.cohort(["node", "undrain", "--pool", "sl", "node3", "node4"], home: home)
        resumedAlready = true
        XCTAssertEqual(resumed.exitCode, 0, resumed.stderr)
        // Resumed nodes are idle at once, flagged not responding (idle*) until Slurm's next ping.
        waitUntil("node3 and node4 idle again", timeout: 15) {
            SlurmCluster.run(["sinfo", "--noheader", "--Node", "--nodes=node[3-4]", "--format=%T"]).split(separator: "\n") == ["idle", "idle"]
        }
    }

    func testBadSlurmInputAndAnUnreachableControllerAreClearErrorsNeverHangs() throws {
        let home = Harness.temporaryDirectory()
        let conf = ["--slurm-conf", SlurmCluster.configuration]
        let bogus = try Harness.cohort(["pool", "add", "p", "--slurm", "--partition", "bogus"] + conf, home: home)
        XCTAssertEqual(bogus.exitCode, 2)
        XCTAssertTrue(bogus.stderr.contains("Slurm has no partition 'bogus'"), bogus.stderr)
        let option = try Harness.cohort(["pool", "add", "p", "--slurm", "--partition=--exclusive"] + conf, home: home)
        XCTAssertEqual(option.exitCode, 2)
        XCTAssertTrue(option.stderr.contains("--partition: '--exclusive' is not a Slurm name"), option.stderr)
        let mixed = try Harness.cohort(["pool", "add", "p", "--slurm", "--hosts", "node[1-2]"] + conf, home: home)
        XCTAssertEqual(mixed.exitCode, 2)
        XCTAssertTrue(mixed.stderr.contains("--hosts does not apply to a Slurm pool"), mixed.stderr)
        let stray = try Harness.cohort(["pool", "add", "p", "--hosts", "node[1-2]", "--partition", "debug"], home: home)
        XCTAssertEqual(stray.exitCode, 2)
        XCTAssertTrue(stray.stderr.contains("--partition is for Slurm pools"), stray.stderr)
        // The pair partition: two nodes.
        let pair = try Harness.cohort(["pool", "add", "pair", "--slurm", "--partition", "pair"] + conf, home: home)
        XCTAssertEqual(pair.stdout, "pool pair: 2 nodes, 4 slots\n", pair.stderr)
        XCTAssertEqual(try Harness.cohort(["pool", "list"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["pool", "list"], home: home).stderr, "", "no pool was stored by a refused add")
        // The controller out of reach: the pool's nodes are unusable with Slurm's reason, and a
        // task waits rather than hangs; `pool add` fails with Slurm's words.
        let unreachable = "\(home)/unreachable.conf"
        try Harness.read(SlurmCluster.configuration).replacingOccurrences(of: "SlurmctldPort=16817", with: "SlurmctldPort=16899")
            .write(toFile: unreachable, atomically: true, encoding: .utf8)
        let started = Date()
        let away = try Harness.cohort(["pool", "add", "away", "--slurm", "--slurm-conf", unreachable], home: home)
        XCTAssertEqual(away.exitCode, 2)
        XCTAssertTrue(away.stderr.contains("Unable to contact slurm controller"), away.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 25)
        var pool = try SlurmCluster.pool(name: "away")
        pool.slurm = SlurmOptions(configuration: unreachable)
        pool = pool.withLiveState()
        XCTAssertTrue(pool.nodes.allSatisfy { $0.state == .unusable && ($0.stateReason ?? "").contains("Unable to contact slurm controller") },
                      "\(pool.nodes.map { "\($0.state) \($0.stateReason ?? "")" })")
    }

    /// Azure's shape (launch: raw): the commandLine runs once, on the group's first node, as a
    /// batch job holding the group; its own `mpirun -host $AZ_BATCH_HOST_LIST` starts its
    /// daemons through Slurm; the coordination command ran on every node first.
    func testAzuresMultiInstanceSampleRunsUnchangedAsABatchJob() throws {
        let directory = Harness.temporaryDirectory()
        try "#!/bin/sh\necho \"rank $OMPI_COMM_WORLD_RANK on $(hostname) in $SLURM_JOB_ID\"\n".write(toFile: "\(directory)/where.sh", atomically: true, encoding: .utf8)
        chmod("\(directory)/where.sh", 0o755)
        let job = try JobFile.parse("""
        {"id": "azure-mpi", "poolInfo": {"poolId": "slurm"}, "tasks": [{"id": "mpi",
          "commandLine": "/bin/bash -c \\"hostname > primary.txt; mpirun -np 3 -host $AZ_BATCH_HOST_LIST \(directory)/where.sh\\"",
          "multiInstanceSettings": {"numberOfInstances": 3, "coordinationCommandLine": "/bin/bash -c \\"hostname\\""}}]}
        """, file: "azure-mpi.json")
        let run = try run(job)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
        XCTAssertEqual(attempt.launchedCommand.first, "sbatch")
        let id = try XCTUnwrap(attempt.slurmJobId)
        let ranks = lines("\(attempt.directory)/stdout.txt").sorted()
        XCTAssertEqual(ranks.count, 3, "the commandLine ran once: \(ranks)")
        XCTAssertEqual(Set(ranks.map { String($0.split(separator: " ")[3]) }), Set(attempt.nodes), "a rank on each node of the group")
        XCTAssertEqual(Set(ranks.map { String($0.split(separator: " ").last!) }), [id], "all within the attempt's Slurm job")
        XCTAssertEqual(Harness.read("\(attempt.directory)/node-\(attempt.nodes[0])/primary.txt"), "\(attempt.nodes[0])\n", "on the first node, in its directory")
        XCTAssertEqual(lines("\(attempt.directory)/coordination-stdout.txt").sorted(), attempt.nodes.enumerated().map { "\($0.offset): \($0.element)" })
    }

    /// Inside an allocation (the ensemble case): the pool is its nodes with the CPUs it holds,
    /// and each replica is a step of it on nodes of its own, at once.
    func testInsideAnAllocationReplicasAreStepsOnDisjointNodes() throws {
        let allocated = SlurmCluster.run(["salloc", "--no-shell", "--nodes=4", "--ntasks-per-node=1", "--job-name=ensemble"])
        _ = allocated
        let id = try XCTUnwrap(SlurmCluster.run(["squeue", "--noheader", "--name=ensemble", "--format=%i"]).split(separator: "\n").first.map(String.init))
        defer { SlurmCluster.run(["scancel", id]) }
        let home = Harness.temporaryDirectory()
        let added = try Harness.cohort(["pool", "add", "inside", "--slurm-allocation", id, "--slurm-conf", SlurmCluster.configuration], home: home)
        XCTAssertEqual(added.stdout, "pool inside: 4 nodes, 4 slots\n", "its nodes, one CPU held on each: \(added.stderr)")
        let refused = try Harness.cohort(["pool", "add", "x", "--slurm-allocation", id, "--partition", "debug", "--slurm-conf", SlurmCluster.configuration], home: home)
        XCTAssertEqual(refused.exitCode, 2)
        XCTAssertTrue(refused.stderr.contains("the allocation already has its partition"), refused.stderr)
        let jobFile = "\(home)/ensemble.yaml"
        try """
            id: ensemble
            pool: inside
            tasks:
              - id: solve
                commandLine: sh -c 'echo $SLURM_JOB_ID.$SLURM_STEP_ID $(hostname) $(date +%s.%N); sleep 2'
                multiInstance: { instances: 2, processesPerNode: 1, replicas: 2 }
            """.write(toFile: jobFile, atomically: true, encoding: .utf8)
        let result = try Harness.cohort(["run", "--output", "json", "--quiet", jobFile], home: home, environment: ["SLURM_CONF": SlurmCluster.configuration])
        XCTAssertEqual(result.exitCode, 0, result.stderr + result.stdout)
        let tasks = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["tasks"] as? [[String: Any]])
        XCTAssertEqual(tasks.count, 2)
        var groups: [Set<String>] = [], steps = Set<String>(), starts: [Double] = []
        for task in tasks {
            let attempt = try XCTUnwrap((task["attempts"] as? [[String: Any]])?.first)
            XCTAssertEqual(attempt["slurmJobId"] as? String, id, "recorded: the allocation")
            let output = lines("\(attempt["directory"] as! String)/stdout.txt")
            XCTAssertEqual(output.count, 2, "\(output)")
            for line in output {
                let f = line.split(separator: " ").map(String.init)
                XCTAssertTrue(f[0].hasPrefix("\(id)."), "a step of the allocation: \(line)")
                steps.insert(f[0])
                starts.append(Double(f[2]) ?? 0)
            }
            groups.append(Set(output.map { String($0.split(separator: " ")[1]) }))
        }
        XCTAssertEqual(steps.count, 2, "one step a replica: \(steps)")
        XCTAssertTrue(groups[0].isDisjoint(with: groups[1]), "\(groups)")
        XCTAssertLessThan((starts.max() ?? 0) - (starts.min() ?? 0), 1.5, "at once: \(starts)")
        // Steps end as their srun does; Slurm forgets them a moment later.
        let remainingSteps = { SlurmCluster.run(["squeue", "--noheader", "--steps", "--jobs=\(id)", "--format=%i"]).split(separator: "\n").filter { !$0.hasSuffix(".extern") } }
        waitUntil("no step left running in the allocation", timeout: 10) { remainingSteps().isEmpty }

        // Many small tasks: through one agent per node, each agent a step of the allocation.
        let many = "\(home)/many.yaml"
        try (["id: many", "pool: inside", "tasks:"] + (0..<60).map { "  - { id: t\($0), commandLine: sh -c 'echo $SLURM_JOB_ID.$SLURM_STEP_ID $(hostname) $AZ_BATCH_NODE_ID' }" })
            .joined(separator: "\n").write(toFile: many, atomically: true, encoding: .utf8)
        let small = try Harness.cohort(["run", "--output", "json", "--quiet", many], home: home, environment: ["SLURM_CONF": SlurmCluster.configuration])
        XCTAssertEqual(small.exitCode, 0, small.stderr + small.stdout)
        let runs = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(small.stdout.utf8)) as? [String: Any])?["tasks"] as? [[String: Any]])
        var agentSteps: [String: Set<String>] = [:]
        for task in runs {
            let attempt = try XCTUnwrap((task["attempts"] as? [[String: Any]])?.first)
            let f = Harness.read("\(attempt["directory"] as! String)/stdout.txt").split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            XCTAssertEqual(f.count, 3, "\(f)")
            XCTAssertTrue(f[0].hasPrefix("\(id)."), "inside the allocation: \(f)")
            XCTAssertEqual(f[1], f[2], "on the node Cohort says: \(f)")
            agentSteps[f[1], default: []].insert(f[0])
        }
        XCTAssertEqual(runs.count, 60)
        XCTAssertTrue(agentSteps.values.allSatisfy { $0.count == 1 }, "one step per node (its agent's), not one per task: \(agentSteps)")
        waitUntil("the agents' steps ended with the run", timeout: 10) { remainingSteps().isEmpty }
    }

    /// `cohort serve` killed -9 while a Slurm task runs: its srun lives on under the spawner
    /// and Slurm keeps the job; the restarted server cancels that job, runs the task again,
    /// and leaves nothing in Slurm.
    func testARestartedServerCancelsWhatADeadOneLeftInSlurm() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "sl", "--slurm", "--slurm-conf", SlurmCluster.configuration], home: home).exitCode, 0)
        var server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let submitted = server.request("POST", "/v1/jobs", body: """
            id: survive
            pool: sl
            tasks:
              - id: solve
                commandLine: sh -c 'if [ $COHORT_ATTEMPT = 1 ]; then sleep 300; fi; hostname'
                multiInstance: { instances: 2, processesPerNode: 1 }
            """)
        XCTAssertEqual(submitted.status, 201, submitted.text)
        var first: [String] = []
        waitUntil("the first attempt's Slurm job running") {
            first = SlurmCluster.cohortJobs().filter { $0.contains(".survive.") && $0.contains(".solve.a1 ") && $0.hasSuffix("RUNNING") }
            return !first.isEmpty
        }
        server.killHard()
        usleep(500_000)
        XCTAssertEqual(SlurmCluster.cohortJobs().filter { $0.contains(".solve.a1 ") }.count, 1, "Slurm kept the job of the dead server")
        server = try ServerProcess(home: home)
        try server.waitUntilListening()
        defer { _ = server.stop() }
        let summary = try waitCompleted("survive", home: home)
        XCTAssertEqual(summary.succeeded, 1, "\(summary)")
        XCTAssertTrue(server.log.contains("cancelled 1 Slurm job(s) its attempts left"), server.log)
        XCTAssertEqual(SlurmCluster.cohortJobs().filter { $0.contains(".survive.") && !$0.hasSuffix("COMPLETED") }, [], "nothing of the job left in Slurm")
        let record = try XCTUnwrap(try JobStore(stateDirectory: home).tasks(jobId: "survive").first)
        XCTAssertEqual(record.attempts.count, 2)
        XCTAssertEqual(record.attempts.first?.failure?.category, .interrupted, "\(String(describing: record.attempts.first?.failure))")
        XCTAssertNotNil(record.attempts.last?.slurmJobId)
    }

    /// The daemons the cluster script starts keep no descriptor of whoever started it.
    /// munged kept them all, and a test process waiting for the script's end (Foundation's
    /// Process learns it from a socket the child inherits) waited for ever on a machine where
    /// munged was not yet running — CI's: the suite hung until CI's 90 minutes ran out.
    func testTheClustersDaemonsKeepNoDescriptorOfTheirStarter() throws {
        let held = "\(Harness.temporaryDirectory())/held"
        XCTAssertTrue(FileManager.default.createFile(atPath: held, contents: nil))
        _ = VirtualCluster.shell(["pkill", "-x", "munged"])  // as on a fresh machine
        usleep(300_000)
        let failed = VirtualCluster.shell(["bash", "-c", "exec 9>>\"$0\"; exec bash \"$1\" up 4", held, SlurmCluster.script], timeout: 120)
        XCTAssertNil(failed, "the cluster came up again")
        var holders: [String] = []
        for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(pid) != nil {
            let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            if descriptors.contains(where: { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == held }) {
                holders.append("\(pid) \(VirtualCluster.commandLine(of: Int32(pid)!))")
            }
        }
        XCTAssertEqual(holders, [], "processes holding the starter's descriptor")
        XCTAssertFalse(SlurmCluster.run(["sinfo", "--noheader", "--format=%T"]).isEmpty, "Slurm answers")
    }

    func waitCompleted(_ job: String, home: String, timeout: Double = 120) throws -> JobStore.JobSummary {
        try Harness.waitCompleted(job, home: home, timeout: timeout)
    }
}
