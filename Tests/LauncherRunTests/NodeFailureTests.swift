import Foundation
import XCTest
@testable import Launcher

/// What happens when nodes break under a running job, on the virtual cluster: node loss,
/// partitions, unhealthy nodes, drains. Each test gets a fresh cluster.
final class NodeFailureTests: XCTestCase {
    override func setUpWithError() throws {
        VirtualCluster.up()
        try VirtualCluster.requireUp()
    }

    override func tearDown() {
        VirtualCluster.down()
        super.tearDown()
    }

    /// Starts `runner` on a thread of its own; `wait()` gives the outcome.
    final class Background: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var result: JobRun?
        init(_ runner: JobRunner) {
            Thread { [self] in
                result = runner.run()
                done.signal()
            }.start()
        }
        func wait(seconds: Double = 120) -> JobRun? {
            done.wait(timeout: .now() + seconds) == .success ? result : nil
        }
    }

    /// Waits until processes of `attemptId` run on `count` nodes; returns the group's nodes.
    func waitForRanks(_ attemptId: String, nodes count: Int, timeout: Double = 30) -> [String] {
        let deadline = Date() + timeout
        while Date() < deadline {
            let pids = ProcessSweeper.localProcesses(attemptId: attemptId)
            if let group = pids.lazy.compactMap({ VirtualCluster.environment(of: $0, "COHORT_GROUP_NODES") }).first {
                let nodes = group.split(separator: ",").map(String.init)
                let running = nodes.filter { !VirtualCluster.processes(on: $0, variable: ProcessSweeper.marker, value: attemptId).isEmpty }
                if running.count == count { return nodes }
            }
            usleep(100_000)
        }
        XCTFail("the ranks of \(attemptId) did not start on \(count) nodes")
        return []
    }

    /// The work tree the runners here use: attempt ids start with its id.
    let settings = Harness.settings(Harness.temporaryDirectory())

    func runner(_ job: JobSpec) throws -> JobRunner {
        try JobRunner(job: job, pool: VirtualCluster.pool, settings: settings)
    }

    func testALostNodeIsDetectedNamedAndTheTaskRetriedWithoutIt() throws {
        let task = TaskSpec.shell("solve", "if [ $COHORT_ATTEMPT = 1 ]; then sleep 60; fi; hostname",
                                  multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp),
                                  constraints: Constraints(maxWallClockTime: 120, maxTaskRetryCount: 1))
        let runner = try runner(JobSpec(id: "loss", pool: "vc", tasks: [task]))
        let background = Background(runner)
        let group = waitForRanks("\(settings.stateId).loss.solve.a1", nodes: 2)
        guard group.count == 2 else { return }
        let victim = group[1]
        let killed = Date()
        VirtualCluster.kill(victim)  // every process of the node, and its link
        let run = try XCTUnwrap(background.wait(), "the job hung after a node was lost")
        let first = run.tasks[0].attempts[0]
        let failure = try XCTUnwrap(first.failure)
        XCTAssertEqual(failure.category, .nodeLost)
        XCTAssertEqual(failure.node, victim)
        XCTAssertTrue(failure.message.contains("node \(victim) was lost"), failure.message)
        let detection = first.end!.timeIntervalSince(killed)
        XCTAssertLessThanOrEqual(detection, 3, "detected within 3 s (its agent's channel closed)")
        print("node loss detected and the group ended \(String(format: "%.1f", detection)) s after the kill")
        let second = try XCTUnwrap(run.tasks[0].attempts.last)
        XCTAssertEqual(run.tasks[0].attempts.count, 2)
        XCTAssertTrue(second.succeeded, "\(String(describing: second.failure))")
        XCTAssertFalse(second.nodes.contains(victim), "the retry avoided the lost node")
        XCTAssertEqual(runner.pool.nodes.first { $0.id == victim }?.state, .unusable)
        // Nothing of the job on the surviving nodes (the victim's processes died with it).
        Harness.checkNoOrphans(run)
    }

    /// Only the agent dies (the node lives on): its node is lost at once, the task runs
    /// again on another node.
    func testAKilledAgentLosesItsNodeAtOnceAndTheTaskRunsElsewhere() throws {
        let task = TaskSpec.shell("work", "if [ $COHORT_ATTEMPT = 1 ]; then sleep 60; fi; hostname",
                                  constraints: Constraints(maxWallClockTime: 120, maxTaskRetryCount: 1))
        let runner = try runner(JobSpec(id: "agentloss", pool: "vc", tasks: [task]))
        let background = Background(runner)
        let attemptId = "\(settings.stateId).agentloss.work.a1"
        var victim: String?
        let deadline = Date() + 30
        while victim == nil && Date() < deadline {
            victim = (1...4).map { "node\($0)" }.first { !VirtualCluster.processes(on: $0, variable: ProcessSweeper.marker, value: attemptId).isEmpty }
            usleep(100_000)
        }
        let node = try XCTUnwrap(victim, "the task did not start")
        let agents = VirtualCluster.pids(on: node).filter { VirtualCluster.commandLine(of: $0).contains("agent --stdio") && !VirtualCluster.commandLine(of: $0).hasPrefix("ssh") }
        XCTAssertEqual(agents.count, 1, "one agent on \(node)")
        let killed = Date()
        agents.forEach { kill($0, SIGKILL) }
        let run = try XCTUnwrap(background.wait(), "the job hung after its agent was killed")
        let first = run.tasks[0].attempts[0]
        XCTAssertEqual(first.failure?.category, .nodeLost, "\(String(describing: first.failure))")
        XCTAssertEqual(first.failure?.node, node)
        let detection = first.end!.timeIntervalSince(killed)
        print("a killed agent's node was lost and its task ended \(String(format: "%.2f", detection)) s after the kill")
        XCTAssertLessThanOrEqual(detection, 3)
        XCTAssertTrue(run.tasks[0].succeeded)
        XCTAssertNotEqual(run.tasks[0].attempts.last?.nodes, [node])
        // Its task (the agent's child, cut off) is swept when the node answers again.
        let deadlineForSweep = Date() + 15
        while !VirtualCluster.processes(on: node, variable: ProcessSweeper.marker, value: attemptId).isEmpty && Date() < deadlineForSweep { usleep(200_000) }
        Harness.checkNoOrphans(run)
    }

    func testAPartitionedNodesStaleProcessesAreKilledWhenItsLinkReturns() throws {
        let task = TaskSpec.shell("solve", "if [ $COHORT_ATTEMPT = 1 ]; then sleep 120; else sleep 6; fi",
                                  multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp),
                                  constraints: Constraints(maxWallClockTime: 180, maxTaskRetryCount: 1))
        let runner = try runner(JobSpec(id: "split", pool: "vc", tasks: [task]))
        let background = Background(runner)
        let group = waitForRanks("\(settings.stateId).split.solve.a1", nodes: 2)
        guard group.count == 2 else { return }
        let victim = group[1]
        sleep(3)  // mid-run, past Open MPI's launch handshake
        let cut = Date()
        VirtualCluster.linkDown(victim)  // its processes live on, cut off
        _ = waitForRanks("\(settings.stateId).split.solve.a2", nodes: 2)
        let first = runner.snapshot().first?.attempts.first
        XCTAssertEqual(first?.unsweptNodes, [victim], "\(String(describing: first?.failure))")
        if let end = first?.end {
            XCTAssertLessThanOrEqual(end.timeIntervalSince(cut), 3, "partition detected within 3 s (its agent's heartbeat stopped)")
            print("partition detected and the group ended \(String(format: "%.1f", end.timeIntervalSince(cut))) s after the link went down")
        }
        XCTAssertFalse(VirtualCluster.processes(on: victim, variable: ProcessSweeper.marker, value: "\(settings.stateId).split.solve.a1").isEmpty,
                       "the cut-off rank is still running during the partition")
        VirtualCluster.linkUp(victim)
        let run = try XCTUnwrap(background.wait(), "the job hung")
        XCTAssertEqual(run.tasks[0].attempts.first?.failure?.category, .nodeLost)
        XCTAssertEqual(run.tasks[0].attempts.first?.failure?.node, victim)
        XCTAssertTrue(run.tasks[0].succeeded)
        XCTAssertEqual(VirtualCluster.processes(on: victim, variable: ProcessSweeper.marker, value: "\(settings.stateId).split.solve.a1"), [],
                       "the stale rank was killed once the link returned")
        XCTAssertEqual(runner.pool.nodes.first { $0.id == victim }?.pendingSweeps ?? [], [])
        Harness.checkNoOrphans(run)
    }

    func testUnhealthyNodesAreKeptOutOfGroups() throws {
        VirtualCluster.stopSSHD("node3")  // up, but unreachable
        var pool = VirtualCluster.pool
        pool.healthCheckCommandLine = ["/bin/sh", "-c", "if [ \"$(hostname)\" = node4 ]; then echo scratch disk missing >&2; exit 1; fi"]
        let tasks = (0..<6).map { TaskSpec.shell("t\($0)", "hostname") }
            + [TaskSpec.shell("mpi", "hostname", multi: MultiInstance(instances: 2, processesPerNode: 2, transport: .tcp))]
        let runner = try JobRunner(job: JobSpec(id: "health", pool: "vc", tasks: tasks), pool: pool,
                                   settings: Harness.settings(Harness.temporaryDirectory()), policy: .spread)
        let run = runner.run()
        XCTAssertTrue(run.succeeded, "\(run.tasks.compactMap(\.failure))")
        let used = Set(run.tasks.flatMap { $0.attempts.flatMap(\.nodes) })
        XCTAssertEqual(used, ["node1", "node2"])
        let node3 = try XCTUnwrap(runner.pool.nodes.first { $0.id == "node3" })
        XCTAssertEqual(node3.state, .unusable)
        XCTAssertTrue(node3.stateReason?.contains("unreachable") == true, node3.stateReason ?? "")
        let node4 = try XCTUnwrap(runner.pool.nodes.first { $0.id == "node4" })
        XCTAssertEqual(node4.state, .unusable)
        XCTAssertTrue(node4.stateReason?.contains("scratch disk missing") == true, node4.stateReason ?? "")
        Harness.checkNoOrphans(run)
    }

    func testDrainedNodesTakeNoWorkAndNodeCommandsReportStates() throws {
        let home = Harness.temporaryDirectory()
        let add = try Harness.cohort(["pool", "add", "vc", "--hostfile", "\(VirtualCluster.directory)/hostfile",
                                      "--ssh-config", "\(VirtualCluster.directory)/ssh_config", "--network", "10.77.0.0/24",
                                      "--mca", "mpi_yield_when_idle=1"], home: home)
        XCTAssertEqual(add.exitCode, 0, add.stderr)
        XCTAssertEqual(try Harness.cohort(["node", "drain", "--pool", "vc", "node1", "--reason", "firmware update"], home: home).exitCode, 0)
        let list = try Harness.cohort(["node", "list", "--pool", "vc"], home: home)
        XCTAssertNotNil(list.stdout.range(of: #"node1\s+node1\s+2\s+0\s+offline\s+firmware update"#, options: .regularExpression), list.stdout)
        XCTAssertEqual(try Harness.cohort(["node", "drain", "--pool", "vc", "node9"], home: home).exitCode, 2)

        let job = home + "/job.yaml"
        let text = "id: drained\npool: vc\ntasks:\n" + (0..<6).map { "  - { id: t\($0), commandLine: hostname }\n" }.joined()
        try text.write(toFile: job, atomically: true, encoding: .utf8)
        let run = try Harness.cohort(["run", "--output", "json", "--policy", "spread", job], home: home)
        XCTAssertEqual(run.exitCode, 0, run.stderr)
        XCTAssertFalse(run.stdout.contains("\"node1\""), "a drained node took work")

        VirtualCluster.stopSSHD("node2")
        let check = try Harness.cohort(["node", "check", "--pool", "vc"], home: home)
        XCTAssertEqual(check.exitCode, 1, "a node failed its check")
        XCTAssertTrue(check.stdout.contains("node2  UNHEALTHY"), check.stdout)
        XCTAssertTrue(check.stdout.contains("node3  healthy"), check.stdout)
        let after = try Harness.cohort(["node", "list", "--pool", "vc"], home: home)
        XCTAssertNotNil(after.stdout.range(of: #"node2\s+node2\s+2\s+0\s+unusable\s+unreachable"#, options: .regularExpression), after.stdout)
        XCTAssertNotNil(after.stdout.range(of: #"node1\s+node1\s+2\s+0\s+offline"#, options: .regularExpression), "a drained node stays drained: \(after.stdout)")
        XCTAssertEqual(try Harness.cohort(["node", "undrain", "--pool", "vc", "node1"], home: home).exitCode, 0)
        XCTAssertNotNil(try Harness.cohort(["node", "list", "--pool", "vc"], home: home).stdout.range(of: #"node1\s+node1\s+2\s+0\s+idle"#, options: .regularExpression))
    }
}
