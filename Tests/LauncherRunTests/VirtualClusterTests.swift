import Foundation
import XCTest
@testable import Launcher

/// Multi-node runs on a virtual cluster: 4 network namespaces with their own addresses,
/// hostnames and sshd (scripts/virtual-cluster.sh). Needs root: CI runs as root, and a
/// run without it fails here rather than skipping.
final class VirtualClusterTests: XCTestCase {
    override class func setUp() {
        super.setUp()
        VirtualCluster.up()
    }

    override class func tearDown() {
        VirtualCluster.down()
        super.tearDown()
    }

    var pool: Pool { VirtualCluster.pool }

    override func setUpWithError() throws { try VirtualCluster.requireUp() }

    func output(_ attempt: Attempt) -> [String] {
        Harness.read("\(attempt.directory)/stdout.txt").split(separator: "\n").map(String.init)
    }

    func testRanksRunOnTheHostsOfTheirGroup() throws {
        let task = TaskSpec.shell("where", "echo $(hostname) $AZ_BATCH_NODE_ID $OMPI_COMM_WORLD_RANK", multi: MultiInstance(instances: 3, processesPerNode: 2, transport: .tcp))
        let run = try Harness.run(JobSpec(id: "vc-where", pool: "vc", tasks: [task]), pool: pool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
        let lines = output(attempt)
        XCTAssertEqual(lines.count, 6)
        for line in lines {
            let fields = line.split(separator: " ").map(String.init)
            XCTAssertEqual(fields[0], fields[1], "the rank's host is the node Cohort says it is: \(line)")
            XCTAssertTrue(attempt.nodes.contains(fields[0]), "\(fields[0]) is in the group \(attempt.nodes)")
            XCTAssertEqual(attempt.nodes[Int(fields[2])! / 2], fields[0], "ranks fill the group's nodes in order")
        }
        XCTAssertEqual(Set(lines.map { $0.split(separator: " ")[0] }).count, 3)
        XCTAssertEqual(Harness.read("\(attempt.directory)/hostfile").split(separator: "\n").count, 3)
    }

    /// GPUs on remote hosts: each rank of an uneven group (-N 2 -n 3: 2 and 1) gets its own
    /// device on the host it runs on, chosen by its place there, through the agents' channel.
    func testEachRemoteRankGetsItsOwnGPU() throws {
        var gpuPool = pool
        for index in gpuPool.nodes.indices { gpuPool.nodes[index].gpus = [0, 1, 2, 3] }
        var multi = MultiInstance(instances: 2, processesPerNode: 2, transport: .tcp)
        multi.totalRanks = 3
        var task = TaskSpec.shell("gpus", "echo $OMPI_COMM_WORLD_RANK $(hostname) $CUDA_VISIBLE_DEVICES", multi: multi)
        task.gpusPerRank = 2
        let run = try Harness.run(JobSpec(id: "vc-gpus", pool: "vc", tasks: [task]), pool: gpuPool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
        XCTAssertEqual(attempt.gpus, [[0, 1, 2, 3], [0, 1, 2, 3]])
        XCTAssertEqual(output(attempt).sorted(), ["0 \(attempt.nodes[0]) 0,1", "1 \(attempt.nodes[0]) 2,3", "2 \(attempt.nodes[1]) 0,1"])
    }

    /// Slurm's -N 3 -n 4 on remote nodes: 2, 1, 1 ranks, numbered node by node, each rank
    /// on the node Cohort names for it.
    func testRanksThatDoNotFillEveryNodeAlikeAreSpreadAsSlurmDoes() throws {
        var multi = MultiInstance(instances: 3, processesPerNode: 2, transport: .tcp)
        multi.totalRanks = 4
        let task = TaskSpec.shell("uneven", "echo $OMPI_COMM_WORLD_RANK $(hostname) $COHORT_NODE_ID $COHORT_RANKS", multi: multi)
        let run = try Harness.run(JobSpec(id: "vc-uneven", pool: "vc", tasks: [task]), pool: pool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
        let lines = output(attempt).sorted()
        XCTAssertEqual(lines.count, 4, "\(lines)")
        for line in lines {
            let fields = line.split(separator: " ").map(String.init)
            XCTAssertEqual(fields[1], fields[2], "the rank runs on the node Cohort names: \(line)")
            XCTAssertEqual(fields[3], "4")
        }
        XCTAssertEqual(lines.map { $0.split(separator: " ")[2] }.map(String.init), [attempt.nodes[0], attempt.nodes[0], attempt.nodes[1], attempt.nodes[2]],
                       "ranks 0-1 on the first node, 2 and 3 on the others")
    }

    /// Hybrid MPI+OpenMP ranks: each rank takes a slot per core, is bound to its cores
    /// (`--map-by ppr:1:node:PE=2`) and gets OMP_NUM_THREADS; an exclusive group's nodes take
    /// nothing else while it runs.
    func testHybridRanksAreBoundToTheirCoresAndGetTheirThreads() throws {
        var hybrid = TaskSpec.shell("hybrid", "echo $(hostname) $OMP_NUM_THREADS $(grep Cpus_allowed_list /proc/self/status | cut -f2); sleep 1",
                                    multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp))
        hybrid.multiInstance?.cpusPerRank = 2
        hybrid.multiInstance?.exclusive = true
        let small = (0..<4).map { TaskSpec.shell("s\($0)", "hostname; sleep 0.5") }
        let run = try Harness.run(JobSpec(id: "vc-hybrid", pool: "vc", tasks: [hybrid] + small), pool: pool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
        XCTAssertTrue(attempt.launchedCommand.contains("ppr:1:node:PE=2"), "\(attempt.launchedCommand)")
        let bindings = Harness.read("\(attempt.directory)/stderr.txt")
        // ("bound to all available processors" where the node has only the rank's two cores)
        XCTAssertTrue(bindings.contains("MCW rank 0 ") && bindings.contains("MCW rank 1 "), "the binding is shown in the attempt: \(bindings)")
        let lines = output(attempt)
        XCTAssertEqual(lines.count, 2, "\(lines)")
        for line in lines {
            let fields = line.split(separator: " ").map(String.init)
            XCTAssertEqual(fields.count, 3, line)
            XCTAssertEqual(fields[1], "2", "OMP_NUM_THREADS: \(line)")
            XCTAssertEqual(fields.last, "0-1", "bound to two cores: \(line)")
        }
        for task in run.tasks.dropFirst() {
            let small = try XCTUnwrap(task.attempts.first)
            let overlaps = small.start < (attempt.end ?? Date()) && attempt.start < (small.end ?? Date())
            XCTAssertFalse(overlaps && !Set(small.nodes).isDisjoint(with: attempt.nodes), "\(task.taskId) ran on \(small.nodes) beside the exclusive group \(attempt.nodes)")
        }
    }

    /// mpirun starts its daemons through the agents' channels (cohort-rsh), not an ssh
    /// connection each: no ssh process carries an orted while the ranks run.
    func testMPIRunsDaemonsStartThroughTheAgentsNotSSH() throws {
        let task = TaskSpec.shell("rsh", "sleep 2; hostname", multi: MultiInstance(instances: 3, processesPerNode: 1, transport: .tcp))
        final class Seen: @unchecked Sendable { var orteds = 0, sshOrteds = 0; var stop = false }
        let seen = Seen()
        let watcher = Thread {
            while !seen.stop {
                for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(entry) != nil {
                    let line = String(decoding: FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") ?? Data(), as: UTF8.self)
                        .replacingOccurrences(of: "\0", with: " ")
                    guard line.contains("orted") && line.contains("ess_base_jobid") else { continue }
                    seen.orteds += 1
                    if line.hasPrefix("ssh ") || line.hasPrefix("/usr/bin/ssh ") { seen.sshOrteds += 1 }
                }
                usleep(100_000)
            }
        }
        watcher.start()
        let run = try Harness.run(JobSpec(id: "vc-rsh", pool: "vc", tasks: [task]), pool: pool)
        seen.stop = true
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
        XCTAssertEqual(Set(output(attempt)), Set(attempt.nodes))
        XCTAssertTrue(attempt.launchedCommand.contains { $0.hasSuffix("/cohort-rsh") }, "\(attempt.launchedCommand)")
        // Each agent said it runs under its own hostname: mpirun need not look the names up.
        XCTAssertTrue(attempt.launchedCommand.containsSequence(["--mca", "if_base_do_not_resolve", "1"]), "\(attempt.launchedCommand)")
        XCTAssertGreaterThan(seen.orteds, 0, "the daemons were seen running")
        XCTAssertEqual(seen.sshOrteds, 0, "no daemon came through its own ssh connection")
    }

    /// A raw task runs its own mpirun on its first node: its daemons start through the
    /// agents as well (that node's agent relays cohort-rsh to the controller), no ssh keys
    /// between nodes needed and no ssh process carrying an orted.
    func testARawTasksOwnMPIRunStartsItsDaemonsThroughTheAgents() throws {
        let root = getuid() == 0 ? "--allow-run-as-root " : ""
        let task = TaskSpec.shell("raw", "mpirun \(root)--hostfile $COHORT_HOSTFILE -np 3 --map-by ppr:1:node --mca oob_tcp_if_include 10.77.0.0/24 hostname; echo resolve=$OMPI_MCA_if_base_do_not_resolve",
                                  multi: MultiInstance(instances: 3, processesPerNode: 1, launch: .raw))
        let run = try Harness.run(JobSpec(id: "vc-raw", pool: "vc", tasks: [task]), pool: pool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
        XCTAssertEqual(output(attempt).dropLast().sorted(), attempt.nodes.sorted(), "one daemon and rank on each node of the group")
        XCTAssertEqual(output(attempt).last, "resolve=1", "its mpirun skips the name lookups too")
        XCTAssertFalse(Harness.read("\(attempt.directory)/stderr.txt").contains("ssh"), Harness.read("\(attempt.directory)/stderr.txt"))
    }

    /// Azure's documented multi-instance MPI task, in Azure's JSON, runs unchanged: the
    /// commandLine once, on the primary, starting its own mpirun over $AZ_BATCH_HOST_LIST
    /// (through the agents); the coordination command on every node; the application from
    /// commonResourceFiles in a bucket; stdout uploaded after.
    func testAzuresMultiInstanceSampleRunsUnchanged() throws {
        let bucket = try TestObjectStore.bucket("azure-mpi")
        try TestObjectStore.put(bucket, "app/where.sh", "#!/bin/sh\necho \"rank $OMPI_COMM_WORLD_RANK on $(hostname)\"\n")
        let job = try JobFile.parse("""
        {"id": "azure-mpi", "poolInfo": {"poolId": "vc"}, "tasks": [{"id": "mpi", "displayName": "MPI across three nodes",
          "commandLine": "/bin/bash -c \\"mpirun -np 3 -host $AZ_BATCH_HOST_LIST $AZ_BATCH_TASK_SHARED_DIR/app/where.sh\\"",
          "multiInstanceSettings": {"numberOfInstances": 3,
            "coordinationCommandLine": "/bin/bash -c \\"test -x $AZ_BATCH_TASK_SHARED_DIR/app/where.sh && hostname\\"",
            "commonResourceFiles": [{"autoStorageContainerName": "\(bucket)", "blobPrefix": "app/", "fileMode": "0755"}]},
          "outputFiles": [{"filePattern": "../stdout.txt", "destination": {"container": {"containerUrl": "s3://\(bucket)/logs"}},
                           "uploadOptions": {"uploadCondition": "TaskSuccess"}}]}]}
        """, file: "azure-mpi.json")
        var settings = Harness.settings(Harness.temporaryDirectory())
        settings.storage = try TestObjectStore.configuration()
        let run = try JobRunner(job: job, pool: pool, settings: settings).run()
        Harness.checkNoOrphans(run)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(Harness.read("\(attempt.directory)/stderr.txt"))")
        let lines = output(attempt).sorted()
        XCTAssertEqual(lines.count, 3, "the commandLine ran once: \(lines)")
        XCTAssertEqual(Set(lines.map { String($0.split(separator: " ").last!) }), Set(attempt.nodes), "a rank on each node of the group")
        for (index, node) in attempt.nodes.enumerated() {
            XCTAssertEqual(Harness.read("\(attempt.directory)/node-\(node)/coordination-stdout.txt"), "\(node)\n", "coordination on node \(index)")
        }
        XCTAssertEqual(TestObjectStore.contents(bucket, "logs/stdout.txt")?.split(separator: "\n").sorted().map(String.init), lines)
    }

    /// A node whose agent cannot start is unusable, with the reason, and takes no work.
    func testANodeWhoseAgentCannotStartIsUnusableWithTheReason() throws {
        var settings = Harness.settings(Harness.temporaryDirectory())
        settings.cohortExecutable = "/nonexistent/cohort"
        let runner = try JobRunner(job: JobSpec(id: "vc-noagent", pool: "vc", tasks: [TaskSpec.shell("t", "hostname")]), pool: pool, settings: settings)
        let run = runner.run()
        XCTAssertFalse(run.succeeded)
        for node in runner.pool.nodes {
            XCTAssertEqual(node.state, .unusable, node.id)
            XCTAssertTrue(node.stateReason?.contains("cohort agent could not start (exit code 127)") == true, node.stateReason ?? "")
            XCTAssertTrue(node.stateReason?.contains("/nonexistent/cohort") == true, node.stateReason ?? "")
        }
    }

    /// The same argv on a remote node as on this machine: a remote shell once read `&&` as an
    /// operator and `FOO=bar` as an assignment.
    func testRemoteTasksGetExactlyTheLocalArgv() throws {
        let words = ["printf", "<%s>", "&&", "FOO=bar", "$(id)", "a b", "it's", "*", "-oX", "\\", ";"]
        let task = TaskSpec(id: "argv", commandLine: words)
        let local = try Harness.run(JobSpec(id: "argv-local", tasks: [task]))
        let remote = try Harness.run(JobSpec(id: "argv-remote", pool: "vc", tasks: [task]), pool: pool)
        let expected = words.dropFirst(2).map { "<\($0)>" }.joined()
        for run in [local, remote] {
            let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
            XCTAssertTrue(attempt.succeeded, "\(run.jobId): \(String(describing: attempt.failure))")
            XCTAssertEqual(Harness.read("\(attempt.directory)/stdout.txt"), expected, run.jobId)
        }
    }

    /// Successful remote tasks that leave daemons behind: their sweeps are gathered per node
    /// and sent in one ssh, and the run does not return before they are done.
    func testWhatSuccessfulRemoteTasksLeftBehindIsSwept() throws {
        let tasks = (0..<4).map { index in
            TaskSpec.shell("d\(index)", "setsid sh -c 'echo detached > ready; exec sleep 300' </dev/null >/dev/null 2>&1 & "
                           + "while [ ! -s ready ]; do sleep 0.01; done; echo started")
        }
        let run = try Harness.run(JobSpec(id: "vc-daemons", pool: "vc", tasks: tasks), pool: pool)  // checks no process is left
        XCTAssertTrue(run.tasks.allSatisfy(\.succeeded))
        XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "vc-daemons"), [], "no daemon survived on any node")
    }

    func testCoordinationRunsOnEveryRemoteNode() throws {
        let multi = MultiInstance(instances: 2, processesPerNode: 1,
                                  coordinationCommandLine: ["/bin/sh", "-c", "hostname > $AZ_BATCH_TASK_SHARED_DIR/ready-$(hostname)"], transport: .tcp)
        let run = try Harness.run(JobSpec(id: "vc-coord", pool: "vc", tasks: [.shell("app", "ls -1 $AZ_BATCH_TASK_SHARED_DIR", multi: multi)]), pool: pool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure))")
        XCTAssertEqual(Set(output(attempt)), Set(attempt.nodes.map { "ready-\($0)" }))
    }

    func testReplicasRunAtOnceOnDisjointGroups() throws {
        let multi = MultiInstance(instances: 2, processesPerNode: 2, transport: .tcp, replicas: 2)
        let task = TaskSpec.shell("twin", "hostname; sleep 1", multi: multi)
        let run = try Harness.run(JobSpec(id: "vc-replicas", pool: "vc", tasks: [task]), pool: pool)
        let a = try XCTUnwrap(run.tasks[0].attempts.first), b = try XCTUnwrap(run.tasks[1].attempts.first)
        XCTAssertTrue(a.succeeded && b.succeeded, "\(String(describing: a.failure)) \(String(describing: b.failure))")
        XCTAssertTrue(Set(a.nodes).isDisjoint(with: b.nodes))
        XCTAssertEqual(Set(output(a)), Set(a.nodes), "replica 0 ran on its own group")
        XCTAssertEqual(Set(output(b)), Set(b.nodes), "replica 1 ran on its own group")
        XCTAssertTrue(a.start < b.end! && b.start < a.end!, "the replicas overlapped in time")
    }

    func testIndependentTasksSpreadOverTheHostsOverSSH() throws {
        let tasks = (0..<8).map { TaskSpec.shell("t\($0)", "echo $(hostname) $AZ_BATCH_NODE_ID; pwd") }
        let runner = try JobRunner(job: JobSpec(id: "vc-spread", pool: "vc", tasks: tasks), pool: pool,
                                   settings: Harness.settings(Harness.temporaryDirectory()), policy: .spread)
        let run = runner.run()
        Harness.checkNoOrphans(run)
        XCTAssertTrue(run.succeeded)
        var hosts = Set<String>()
        for task in run.tasks {
            let attempt = task.attempts[0]
            let lines = output(attempt)
            XCTAssertEqual(lines.first, "\(attempt.nodes[0]) \(attempt.nodes[0])", "ran on the node it was given")
            XCTAssertEqual(lines.last, attempt.directory, "in its own directory")
            hosts.insert(attempt.nodes[0])
        }
        XCTAssertEqual(hosts, ["node1", "node2", "node3", "node4"])
    }

    /// An array's elements (`pi[3]`: brackets in their ids, attempt ids and markers) and a
    /// sweep of MPI runs, on nodes reached through their agents; nothing left behind.
    func testAnArrayAndASweepOfMPIRunsOnRemoteNodes() throws {
        let job = try JobFile.parse("""
            id: vc-array
            tasks:
              - { id: pi, commandLine: [/bin/sh, -c, 'echo $COHORT_ARRAY_INDEX {index} $(hostname)'], array: 1-8%4 }
              - id: ens
                commandLine: [/bin/sh, -c, 'echo $OMPI_COMM_WORLD_RANK {size} $size $(hostname)']
                sweep: { size: [small, large] }
                multiInstance: { instances: 2, processesPerNode: 1, transport: tcp }
            """, file: "vc-array.yaml")
        let runner = try JobRunner(job: job, pool: pool, settings: Harness.settings(Harness.temporaryDirectory()), policy: .spread)
        let run = runner.run()
        Harness.checkNoOrphans(run)
        XCTAssertTrue(run.succeeded, "\(run.tasks.map { "\($0.taskId) \(String(describing: $0.failure))" })")
        for index in 1...8 {
            let attempt = try XCTUnwrap(run.tasks.first { $0.taskId == "pi[\(index)]" }?.attempts.first)
            XCTAssertEqual(output(attempt), ["\(index) \(index) \(attempt.nodes[0])"])
        }
        for (index, size) in ["small", "large"].enumerated() {
            let attempt = try XCTUnwrap(run.tasks.first { $0.taskId == "ens[\(index)]" }?.attempts.first)
            XCTAssertEqual(output(attempt).sorted(), attempt.nodes.enumerated().map { "\($0.offset) \(size) \(size) \($0.element)" }.sorted())
        }
    }

    func testHeat2DAcrossNodesMatchesTheSerialRun() throws {
        let task = TaskSpec(id: "heat", commandLine: [Harness.executable("heat2d"), "--n", "48", "--iterations", "40", "--check"],
                            multiInstance: MultiInstance(instances: 2, processesPerNode: 2, transport: .auto))
        let run = try Harness.run(JobSpec(id: "vc-heat", pool: "vc", tasks: [task]), pool: pool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure))")
        XCTAssertEqual(attempt.transport, .tcp, "no RDMA on the namespaces, two hosts: tcp")
        XCTAssertTrue(Harness.read("\(attempt.directory)/stdout.txt").contains("(ok, tolerance 1e-12)"))
    }

    /// The binding's node-local communicators, neighbourhood collectives and one-sided
    /// windows across hosts: 4 hosts × 2 ranks, each host's two ranks sharing a window.
    func testNeighborhoodsAndWindowsAcrossHosts() throws {
        let tasks = ["neighbors", "windows"].map { group in
            TaskSpec(id: group, commandLine: [Harness.executable("mpi-checks"), group],
                     multiInstance: MultiInstance(instances: 4, processesPerNode: 2, transport: .tcp))
        }
        let run = try Harness.run(JobSpec(id: "vc-rma", pool: "vc", tasks: tasks), pool: pool)
        for task in run.tasks {
            let attempt = try XCTUnwrap(task.attempts.first)
            let lines = output(attempt)
            XCTAssertTrue(attempt.succeeded, "\(task.taskId): \(String(describing: attempt.failure)) \(lines) \(Harness.read("\(attempt.directory)/stderr.txt").suffix(2000))")
            let passed = lines.filter { $0.range(of: "^rank [0-9]+: \(task.taskId) ok \\([0-9]+ checks\\)$", options: .regularExpression) != nil }
            XCTAssertEqual(passed.count, 8, "\(task.taskId): every rank on every host passed: \(lines)")
        }
    }

    func testTimeoutLeavesNoProcessOnAnyNode() throws {
        let multi = MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp)
        let task = TaskSpec.shell("hang", "sleep 300", multi: multi, constraints: Constraints(maxWallClockTime: 2, maxTaskRetryCount: 0, killGracePeriod: 1))
        let run = try Harness.run(JobSpec(id: "vc-hang", pool: "vc", tasks: [task]), pool: pool)
        XCTAssertEqual(run.tasks[0].failure?.category, .timeout)
        // Harness.run checked this machine's /proc, which holds every namespace's processes.
        let id = Harness.attemptId(job: "vc-hang", task: run.tasks[0], attempt: run.tasks[0].attempts[0])
        XCTAssertEqual(ProcessSweeper.localProcesses(attemptId: id), [])
    }

    func testAFailingRankIsNamedWithItsRemoteNode() throws {
        let multi = MultiInstance(instances: 2, processesPerNode: 2, transport: .tcp)
        let task = TaskSpec.shell("app", "if [ $OMPI_COMM_WORLD_RANK = 2 ]; then exit 9; fi; sleep 30", multi: multi)
        let run = try Harness.run(JobSpec(id: "vc-rankfail", pool: "vc", tasks: [task]), pool: pool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        let failure = try XCTUnwrap(attempt.failure)
        XCTAssertEqual(failure.category, .exitCode)
        XCTAssertEqual(failure.node, attempt.nodes[1], "rank 2 of 2 × 2 runs on the second node")
        XCTAssertEqual(failure.message, "rank 2 on node \(attempt.nodes[1]) exited with code 9")
        XCTAssertTrue(failure.details.contains { $0.contains("Exit code:") }, "\(failure.details)")
        XCTAssertLessThan(attempt.seconds, 25, "the other ranks were not left to sleep")
    }

    func testAHangingRemoteRankIsEndedByItsWallClockLimit() throws {
        let multi = MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp)
        let task = TaskSpec.shell("hang", "if [ $OMPI_COMM_WORLD_RANK = 1 ]; then sleep 300; fi", multi: multi,
                                  constraints: Constraints(maxWallClockTime: 3, maxTaskRetryCount: 0, killGracePeriod: 1))
        let run = try Harness.run(JobSpec(id: "vc-hang2", pool: "vc", tasks: [task]), pool: pool)
        XCTAssertEqual(run.tasks[0].failure?.category, .timeout)
    }

    /// idleTimeout on remote nodes: each node's agent runs `cohort node-probe` (CPU time of
    /// the attempt's processes there; then their stacks), every node at once.
    func testAHungRemoteRunIsEndedWithEachNodesStacks() throws {
        var task = TaskSpec.shell("stuck", "exec sleep 300", multi: MultiInstance(instances: 2, processesPerNode: 1, transport: .tcp))
        task.constraints.idleTimeout = 3
        task.constraints.killGracePeriod = 1
        let run = try Harness.run(JobSpec(id: "vc-idle", pool: "vc", tasks: [task]), pool: pool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertEqual(attempt.failure?.category, .hung, "\(String(describing: attempt.failure))")
        let stacks = ((try? FileManager.default.contentsOfDirectory(atPath: "\(attempt.directory)/stacks")) ?? []).sorted()
        XCTAssertEqual(stacks.map { String($0.prefix { $0 != "-" }) }, attempt.nodes.sorted(), "\(attempt.failure?.message ?? ""): one rank's stacks from each node: \(stacks)")
        XCTAssertLessThan(attempt.seconds, 30)
    }

    /// signalBeforeTimeLimit reaches a remote task through its node's agent.
    func testARemoteTaskIsWarnedBeforeItsTimeLimit() throws {
        let task = TaskSpec.shell("warned", "trap 'echo warned on $COHORT_NODE_ID; exit 0' USR1; while :; do sleep 0.1; done",
                                  constraints: Constraints(maxWallClockTime: 30, killGracePeriod: 1, signalBeforeTimeLimit: WarningSignal(signal: SIGUSR1, seconds: 27)))
        let run = try Harness.run(JobSpec(id: "vc-warn", pool: "vc", tasks: [task]), pool: pool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure))")
        XCTAssertEqual(output(attempt), ["warned on \(attempt.nodes[0])"])
    }

    func testAFailingRemoteCoordinationCommandNamesTheNode() throws {
        let multi = MultiInstance(instances: 3, processesPerNode: 1,
                                  coordinationCommandLine: ["/bin/sh", "-c", "if [ $(hostname) = $COHORT_BAD_NODE ]; then echo no GPU >&2; exit 3; fi"],
                                  transport: .tcp)
        var job = JobSpec(id: "vc-coordfail", pool: "vc", tasks: [.shell("app", "echo app ran", multi: multi)])
        job.environment = ["COHORT_BAD_NODE": "node2"]
        let run = try Harness.run(job, pool: pool)
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertEqual(attempt.failure?.category, .coordinationFailed)
        XCTAssertEqual(attempt.failure?.node, "node2")
        XCTAssertEqual(attempt.failure?.details, ["no GPU"])
        XCTAssertEqual(attempt.nodeExitCodes["node2"], 3)
        XCTAssertEqual(Harness.read("\(attempt.directory)/stdout.txt"), "", "the application never started")
    }

    /// kill -9 of `cohort serve` while an MPI task runs across two remote nodes: the next
    /// server ends what is left of it on every node and runs it again; nothing is lost.
    /// Submits the job `yaml(home)` to a real `cohort serve` on the virtual cluster, kills the
    /// server (-9) once `running()` holds, runs `whileDown`, starts a new server and waits for
    /// the job to complete; the store and the second server's log.
    func runThroughAServerCrash(_ id: String, yaml: (String) -> String, killOnce running: () -> Bool, what: String,
                                whileDown: () -> Void = {}) throws -> (store: JobStore, log: String) {
        let home = Harness.temporaryDirectory()
        try PoolStore(stateDirectory: home).save(pool)
        let file = "\(home)/job.yaml"
        try yaml(home).write(toFile: file, atomically: true, encoding: .utf8)
        var server = try ServerProcess(home: home)
        try server.waitUntilListening()
        XCTAssertEqual(try Harness.cohort(["submit", file], home: home).stdout, "\(id)\n")
        let deadline = Date() + 60
        var ready = running()
        while !ready, Date() < deadline { usleep(50_000); ready = running() }
        XCTAssertTrue(ready, "\(what) before the kill; \(server.log)")
        server.killHard()
        whileDown()
        server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let store = try JobStore(stateDirectory: home)
        while try store.job(id)?.state != .completed, Date() < deadline + 60 { usleep(100_000) }
        XCTAssertEqual(server.stop(), 0, server.log)
        return (store, server.log)
    }

    /// Processes of job `id` that are `sleep`s (a task's body, on whichever node).
    func sleeping(_ id: String) -> Int {
        ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: id).filter { VirtualCluster.commandLine(of: $0).hasPrefix("sleep") }.count
    }

    func testAServerKilledDuringAMultiNodeRunIsReconciled() throws {
        let (store, log) = try runThroughAServerCrash("vc-crash", yaml: { _ in """
            id: vc-crash
            pool: vc
            tasks:
              - id: quick
                commandLine: hostname
              - id: mpi
                commandLine: sh -c 'sleep 3; hostname'
                multiInstance: { instances: 2, transport: tcp }
            """ }, killOnce: {
            // Once ranks run on the remote nodes.
            let ranks = ProcessSweeper.localProcesses(variable: "COHORT_TASK_ID", value: "mpi").compactMap {
                VirtualCluster.environment(of: $0, "OMPI_COMM_WORLD_RANK") != nil ? VirtualCluster.environment(of: $0, "AZ_BATCH_NODE_ID") : nil
            }
            return Set(ranks).count == 2
        }, what: "ranks on two nodes")
        let tasks = try store.tasks(jobId: "vc-crash")
        let mpi = try XCTUnwrap(tasks.first { $0.taskId == "mpi" })
        XCTAssertEqual(mpi.result, .success, "\(mpi.attempts.map(\.failure)) \(log)")
        XCTAssertEqual(mpi.attempts.first?.failure?.category, .interrupted, "the attempt the crash cut off")
        XCTAssertEqual(mpi.attempts.first?.nodes.count, 2, "its group is known from the attempt directory")
        XCTAssertEqual(mpi.attempts.filter(\.succeeded).count, 1)
        XCTAssertEqual(tasks.first { $0.taskId == "quick" }?.attempts.filter(\.succeeded).count, 1, "what finished is not run again")
        XCTAssertTrue(log.contains("job vc-crash recovered"), log)
        XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "vc-crash"), [], "nothing of the job is left on any node")
    }

    /// kill -9 of the server while remote tasks run: their agents keep them running (a
    /// served controller's tasks outlive its channels) and write each end to `exit-status`;
    /// the restarted server records each of them once and runs none again.
    func testRemoteTasksOutliveAKilledServerAndAreRecordedOnce() throws {
        var runs = ""
        let (store, log) = try runThroughAServerCrash("vc-outlive", yaml: { home in
            runs = "\(home)/runs"
            try? FileManager.default.createDirectory(atPath: runs, withIntermediateDirectories: true)
            return "id: vc-outlive\npool: vc\ntasks:\n" + (1...4).map {
                "  - { id: t\($0), commandLine: \"sh -c 'sleep 2; hostname >> \(runs)/t\($0)'\" }\n"
            }.joined()
        }, killOnce: { sleeping("vc-outlive") == 4 }, what: "4 tasks running", whileDown: {
            sleep(4)  // every task ends while no server runs
            for task in 1...4 { XCTAssertEqual(Harness.read("\(runs)/t\(task)").split(separator: "\n").count, 1, "t\(task) finished on its node") }
        })
        for record in try store.tasks(jobId: "vc-outlive") {
            XCTAssertEqual(record.result, .success, "\(record.taskId): \(record.attempts.map(\.failure))")
            XCTAssertEqual(record.attempts.count, 1, "\(record.taskId) recorded once: \(record.attempts.map(\.failure))")
            XCTAssertEqual(Harness.read("\(runs)/\(record.taskId)").split(separator: "\n").count, 1, "\(record.taskId) did not run again")
        }
        XCTAssertTrue(log.contains("4 attempt(s) that ended unrecorded were recorded"), log)
    }

    /// Remote tasks still running when the restarted server starts: their agents keep them
    /// running, and the new server adopts them (a new agent on each node watches their
    /// processes) — each is recorded once with its own end, never run again; and an adopted
    /// task can still be cancelled through its node's agent, nothing of it left anywhere.
    func testRemoteTasksStillRunningAtARestartAreAdoptedAndCanBeCancelled() throws {
        let home = Harness.temporaryDirectory()
        try PoolStore(stateDirectory: home).save(pool)
        let runs = "\(home)/runs"
        try FileManager.default.createDirectory(atPath: runs, withIntermediateDirectories: true)
        var server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let kept = "id: vc-adopt\npool: vc\ntasks:\n" + (1...3).map {
            "  - { id: t\($0), commandLine: \"sh -c 'sleep 4; hostname >> \(runs)/t\($0)'\", constraints: { maxTaskRetryCount: 0 } }\n"
        }.joined()
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: kept).status, 201)
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: vc-long\npool: vc\ntasks:\n  - { id: long, commandLine: 'sleep 600' }\n").status, 201)
        let deadline = Date() + 60
        while sleeping("vc-adopt") + sleeping("vc-long") < 4, Date() < deadline { usleep(50_000) }
        XCTAssertEqual(sleeping("vc-adopt") + sleeping("vc-long"), 4, "every task running before the kill; \(server.log)")
        server.killHard()

        server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let store = try JobStore(stateDirectory: home)
        while try store.job("vc-adopt")?.state != .completed, Date() < deadline + 30 { usleep(100_000) }
        for record in try store.tasks(jobId: "vc-adopt") {
            XCTAssertEqual(record.result, .success, "\(record.taskId): \(record.attempts.map(\.failure)) \(server.log)")
            XCTAssertEqual(record.attempts.map(\.number), [1], "\(record.taskId) adopted, recorded once")
            XCTAssertEqual(record.attempts.first?.phases?.map(\.name).contains(.adopted), true, "\(record.taskId)")
            XCTAssertEqual(Harness.read("\(runs)/\(record.taskId)").split(separator: "\n").count, 1, "\(record.taskId) ran once")
        }
        XCTAssertTrue(server.log.contains("3 still running were adopted"), server.log)

        XCTAssertEqual(try store.tasks(jobId: "vc-long").first?.attempts.first?.end, nil, "still running, adopted")
        XCTAssertEqual(sleeping("vc-long"), 1)
        // The metrics see it: its slot in use, its node running, every agent heard from within the silence limit.
        let metrics = server.request("GET", "/metrics").text
        XCTAssertTrue(metrics.contains(#"cohort_slots_used{pool="vc"} 1.0"#), metrics)
        XCTAssertTrue(metrics.contains(#"cohort_nodes{pool="vc",state="running"} 1.0"#), metrics)
        let ages = metrics.split(separator: "\n").filter { $0.hasPrefix(#"cohort_agent_heartbeat_age_seconds{pool="vc","#) }
        XCTAssertFalse(ages.isEmpty, metrics)
        for age in ages { XCTAssertLessThan(Double(age.split(separator: " ").last ?? "") ?? 99, AgentProtocol.silenceLimit, String(age)) }
        XCTAssertEqual(server.request("POST", "/v1/jobs/vc-long/cancel").status, 202, server.log)
        while try store.job("vc-long")?.state != .completed, Date() < deadline + 60 { usleep(100_000) }
        let long = try XCTUnwrap(store.tasks(jobId: "vc-long").first)
        XCTAssertEqual(long.attempts.map(\.number), [1])
        XCTAssertEqual(long.attempts.first?.failure?.category, .cancelled, "\(long.attempts.map(\.failure))")
        XCTAssertEqual(server.stop(), 0, server.log)
        for job in ["vc-adopt", "vc-long"] {
            XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: job), [], "nothing of \(job) is left on any node")
        }
    }

    func testADrainDuringARunLetsRunningWorkFinishAndTakesNoMore() throws {
        let home = Harness.temporaryDirectory()
        let store = PoolStore(stateDirectory: home)
        var stored = pool
        stored.name = "vc"
        try store.save(stored)
        let tasks = [TaskSpec.shell("first", "sleep 3; hostname")] + (0..<6).map { TaskSpec.shell("t\($0)", "hostname", dependsOn: ["first"]) }
        let runner = try JobRunner(job: JobSpec(id: "vc-drain", pool: "vc", tasks: tasks), pool: stored,
                                   settings: Harness.settings(Harness.temporaryDirectory()), policy: .spread)
        runner.refreshNodes = { try? store.load("vc").nodes }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: JobRun?
        Thread { result = runner.run(); done.signal() }.start()
        // Drain the node that runs "first" while it runs.
        var busy: String?
        let deadline = Date() + 20
        while busy == nil, Date() < deadline {
            // Remote processes share this machine's process table on the virtual cluster.
            let pids = ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "vc-drain")
            busy = pids.lazy.compactMap { VirtualCluster.environment(of: $0, "AZ_BATCH_NODE_ID") }.first
            usleep(50_000)
        }
        let drained = try XCTUnwrap(busy)
        try store.update("vc") { pool in
            if let i = pool.nodes.firstIndex(where: { $0.id == drained }) { pool.nodes[i].state = .offline }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        let run = try XCTUnwrap(result)
        Harness.checkNoOrphans(run)
        XCTAssertTrue(run.succeeded, "the running task finished on the drained node")
        XCTAssertEqual(run.tasks[0].attempts[0].nodes, [drained])
        XCTAssertFalse(run.tasks.dropFirst().contains { $0.attempts[0].nodes.contains(drained) }, "no new work on the drained node")
    }
}
