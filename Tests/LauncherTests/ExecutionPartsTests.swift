import Foundation
import XCTest
@testable import Launcher
#if canImport(Glibc)
import Glibc
#endif

final class ExecutionPartsTests: XCTestCase {
    let nodes = [Node(id: "n1", address: "10.9.0.11", slots: 4), Node(id: "n2", address: "10.9.0.12", user: "hpc", slots: 4)]

    func command(_ transport: Transport, local: Bool = false) -> MPIRunCommand {
        MPIRunCommand(mpirun: "mpirun", hostfile: "/w/hostfile", nodes: nodes, processesPerNode: 2, transport: transport, isLocalPool: local,
                      localCores: 2, runningAsRoot: true, sshConfig: "/etc/cohort/ssh_config", network: "10.9.0.0/24",
                      exportedNames: ["COHORT_TASK_ID", "AZ_BATCH_HOST_LIST"], extraOptions: ["--report-bindings"],
                      rankWrapper: ["/usr/bin/cohort", "rank-env", "--"], application: ["./solver", "a b"])
    }

    /// A task gets stdin, stdout and stderr, nothing else of the controller's: a pipe another
    /// thread had open for a moment (Foundation's Process reading `sinfo` to its end) stayed
    /// open in every srun started meanwhile, and that read waited for the srun to end.
    func testASpawnedTaskInheritsNoDescriptorButItsThree() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)  // no O_CLOEXEC, as a Process's pipe before it starts
        defer { close(fds[0]); close(fds[1]) }
        let child = try ChildProcess(["sleep", "5"], environment: ProcessInfo.processInfo.environment, directory: nil, stdout: "/dev/null", stderr: "/dev/null")
        defer { child.signalGroup(SIGKILL); _ = child.wait() }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(child.pid)/fd").sorted(), ["0", "1", "2"])
    }

    func testMPIRunArgumentsForAStaticPool() {
        let a = command(.tcp).arguments
        XCTAssertEqual(Array(a.prefix(5)), ["mpirun", "--hostfile", "/w/hostfile", "-np", "4"])
        XCTAssertTrue(a.containsSequence(["--map-by", "ppr:2:node"]))
        XCTAssertTrue(a.contains("--allow-run-as-root"))
        XCTAssertTrue(a.containsSequence(["--mca", "btl", "self,vader,tcp"]))
        XCTAssertTrue(a.containsSequence(["--mca", "osc", "sm,pt2pt"]), "windows across hosts over tcp")
        XCTAssertTrue(a.containsSequence(["--mca", "plm_rsh_agent", "ssh -F /etc/cohort/ssh_config"]))
        XCTAssertTrue(a.containsSequence(["--mca", "btl_tcp_if_include", "10.9.0.0/24", "--mca", "oob_tcp_if_include", "10.9.0.0/24"]))
        XCTAssertTrue(a.containsSequence(["-x", "COHORT_TASK_ID", "-x", "AZ_BATCH_HOST_LIST"]))
        XCTAssertEqual(Array(a.suffix(6)), ["--report-bindings", "/usr/bin/cohort", "rank-env", "--", "./solver", "a b"])
    }

    func testTransportFlags() {
        XCTAssertTrue(command(.shm).arguments.containsSequence(["--mca", "pml", "ob1", "--mca", "btl", "self,vader"]))
        XCTAssertTrue(command(.rdma).arguments.containsSequence(["--mca", "pml", "ucx"]))
        XCTAssertFalse(command(.rdma).arguments.contains("pml_ucx_devices"), "real RDMA needs no override")
        XCTAssertTrue(command(.ucx).arguments.containsSequence(["--mca", "pml_ucx_devices", "any", "--mca", "pml_ucx_tls", "any"]))
    }

    func testLocalPoolIsOneHostHoldingEveryRank() {
        let a = command(.shm, local: true).arguments
        XCTAssertFalse(a.contains("--map-by"))
        XCTAssertTrue(a.containsSequence(["--bind-to", "none"]), "4 ranks on 2 cores are not pinned")
        XCTAssertFalse(a.contains("plm_rsh_agent"))
        XCTAssertEqual(MPIRunCommand.hostfileText(nodes: nodes, processesPerNode: 2, isLocalPool: true), "localhost slots=4\n")
        XCTAssertEqual(MPIRunCommand.hostfileText(nodes: nodes, processesPerNode: 2, isLocalPool: false), "10.9.0.11 slots=2\nhpc@10.9.0.12 slots=2\n")
    }

    func testTaskEnvironmentHasCohortAndAzureNames() {
        let environment = TaskEnvironment(jobId: "j", taskId: "solve", attemptId: "j.solve.r1.a2", attempt: 2, replica: 1, pool: "p", nodes: nodes,
                                          processesPerNode: 2, attemptDirectory: "/w/a", sharedDirectory: "/w/a/shared", hostfile: "/w/a/hostfile",
                                          userVariables: ["CASE": "wing"])
        let master = environment.variables(forNode: 0), other = environment.variables(forNode: 1)
        XCTAssertEqual(master["AZ_BATCH_HOST_LIST"], "10.9.0.11,10.9.0.12")
        XCTAssertEqual(master["AZ_BATCH_NODE_LIST"], "10.9.0.11;10.9.0.12")
        XCTAssertEqual(master["AZ_BATCH_MASTER_NODE"], "10.9.0.11:6000")
        XCTAssertEqual(master["AZ_BATCH_IS_CURRENT_NODE_MASTER"], "true")
        XCTAssertEqual(other["AZ_BATCH_IS_CURRENT_NODE_MASTER"], "false")
        XCTAssertEqual(other["AZ_BATCH_NODE_ID"], "n2")
        XCTAssertEqual(other["AZ_BATCH_TASK_WORKING_DIR"], "/w/a/node-n2")
        XCTAssertEqual(master["AZ_BATCH_TASK_SHARED_DIR"], "/w/a/shared")
        XCTAssertEqual(master["CCP_NODES"], "2 10.9.0.11 2 10.9.0.12 2")
        XCTAssertEqual(master["COHORT_HOSTFILE"], "/w/a/hostfile")
        XCTAssertEqual(master["COHORT_REPLICA_INDEX"], "1")
        XCTAssertEqual(master["COHORT_ATTEMPT_ID"], "j.solve.r1.a2")
        XCTAssertEqual(master["CASE"], "wing")
        // A rank recomputes the per-node names from its number.
        var rank3 = master
        TaskEnvironment.applyRank(3, to: &rank3)
        for name in TaskEnvironment.perNodeNames { XCTAssertEqual(rank3[name], other[name], name) }
    }

    func testTheAgentsSSHLineQuotesItsPathAndEndsSSHsOptions() throws {
        var pool = Pool.fromHosts(name: "p", entries: [HostEntry(host: "10.9.0.12", user: "hpc", slots: 1)])
        pool.sshConfig = "/c"
        let fleet = AgentFleet(pool: pool, settings: ExecutionSettings(workDirectory: NSTemporaryDirectory(), cohortExecutable: "/opt/my cohort;x/cohort"))
        let arguments = fleet.agentLine(pool.nodes[0])
        XCTAssertEqual(Array(arguments.prefix(3)), ["ssh", "-F", "/c"])
        XCTAssertEqual(Array(arguments.suffix(3).prefix(2)), ["--", "hpc@10.9.0.12"], "ssh's options end before the destination")
        // What the remote shell will see, split back: the path arrives whole.
        XCTAssertEqual(try CommandLineWords.split(arguments.last!), ["/opt/my cohort;x/cohort", "agent", "--stdio"])
    }

    func testFailingRankIsReadFromMpirunsReport() {
        let report = ["--------------------------------------------------------------------------",
                      "mpirun detected that one or more processes exited with non-zero status, thus causing",
                      "the job to be terminated. The first process to do so was:",
                      "  Process name: [[40873,1],3]", "  Exit code:    7",
                      "--------------------------------------------------------------------------"]
        XCTAssertEqual(MPIRunReport.failingRank(in: report)?.rank, 3)
        XCTAssertEqual(MPIRunReport.failingRank(in: report)?.code, 7)
        XCTAssertNil(MPIRunReport.failingRank(in: ["nothing here"]))
    }

    func testNoRDMAHereIsAnAnswerNotACrash() {
        // This machine has no verbs device: the probe must say so and not crash.
        XCTAssertEqual(RDMAProbe.localDevices().filter { !$0.activePorts.isEmpty }, [])
        XCTAssertFalse(RDMAProbe.localHasActivePort)
    }
}

extension Array where Element: Equatable {
    func containsSequence(_ sequence: [Element]) -> Bool {
        guard sequence.count <= count else { return false }
        return (0...(count - sequence.count)).contains { Array(self[$0..<$0 + sequence.count]) == sequence }
    }
}

extension ExecutionPartsTests {
    static func residentKilobytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// The local sweep kept its /proc read buffer in a thread-local that was never freed, and
    /// every attempt runs on a thread of its own: a server grew by ~50 MB per 5,000 tasks.
    func testTheLocalSweepKeepsNoMemoryWhenItsThreadEnds() {
        func sweepOnThreads(_ count: Int) {
            for index in 0..<count {
                let done = DispatchSemaphore(value: 0)
                let thread = Thread {
                    _ = ProcessSweeper.killLocal(attemptId: "no-such-attempt-\(index)")
                    done.signal()
                }
                thread.stackSize = 1 << 20
                thread.start()
                done.wait()
            }
        }
        sweepOnThreads(200)  // warm-up: thread stacks, malloc arenas
        let before = Self.residentKilobytes()
        sweepOnThreads(3_000)
        let grown = Self.residentKilobytes() - before
        print("local sweep on 3,000 threads: resident memory grew by \(grown) KB")
        XCTAssertLessThan(grown, 12_000, "memory kept per ended thread")
    }

    /// Cancellation kept its children by pid: two tasks on two nodes with the same pid (or
    /// adopted ones, which have none here) were one entry, and a cancel missed the first.
    func testACancelReachesTasksThatShareAPid() {
        final class Signals: @unchecked Sendable { let lock = NSLock(); var got: [String] = [] }
        let signals = Signals()
        let cancellation = Cancellation()
        let children = ["n1", "n2"].map { node in
            ChildProcess(pid: 4242, arguments: ["solver"], waiter: { .exited(0) }, signaller: { signal in
                signals.lock.lock(); signals.got.append("\(node):\(signal)"); signals.lock.unlock()
            })
        }
        for child in children { XCTAssertTrue(cancellation.started(child)) }
        cancellation.cancel(grace: 60)
        signals.lock.lock(); defer { signals.lock.unlock() }
        XCTAssertEqual(signals.got.sorted(), ["n1:\(SIGTERM)", "n2:\(SIGTERM)"])
    }

    /// One scan of /proc counts the processes of many attempts, and a sweep of a job spares
    /// the attempts named (what a restarted controller adopts).
    func testTheScanCountsAttemptsAndASweepSparesTheAdoptedOnes() throws {
        let job = "scan-job-\(getpid())"
        func start(_ attempt: String) throws -> ChildProcess {
            try ChildProcess(["sleep", "30"], environment: ["PATH": "/usr/bin:/bin", ProcessSweeper.jobMarker: job, ProcessSweeper.marker: attempt],
                             directory: nil, stdout: nil, stderr: nil)
        }
        let kept = try start("\(job).kept"), ended = try start("\(job).ended")
        defer { kept.signalGroup(SIGKILL); ended.signalGroup(SIGKILL); _ = kept.wait(); _ = ended.wait() }
        usleep(100_000)  // the exec: until then the environment is this process's
        XCTAssertEqual(ProcessSweeper.countLocal(attemptIds: ["\(job).kept", "\(job).ended", "\(job).none"]), [1, 1, 0])
        XCTAssertEqual(ProcessSweeper.killLocal(variable: ProcessSweeper.jobMarker, values: [job], sparing: ["\(job).kept"]), 1)
        usleep(50_000)
        XCTAssertEqual(ProcessSweeper.countLocal(attemptIds: ["\(job).kept", "\(job).ended"]), [1, 0], "the spared one runs on; the ended one, a zombie until reaped, is not counted")
        XCTAssertEqual(ended.wait(), .signaled(SIGKILL))
        XCTAssertEqual(ProcessSweeper.signalLocal(attemptId: "\(job).kept", SIGTERM), 1)
        XCTAssertEqual(kept.wait(), .signaled(SIGTERM))
    }

    /// mpirun resolves every hostfile name to learn whether it is this machine, one lookup
    /// after another (a lost DNS answer costs 5 s each: 32 names took 25 s instead of 5 s).
    /// Cohort tells it not to when every node's agent said it runs under another hostname;
    /// a node that may be this machine under an address keeps the lookups, or mpirun would
    /// take it for a remote host and start a second daemon here.
    func testMPIRunSkipsNameLookupsOnlyWhenEveryNodeIsAnotherMachine() {
        XCTAssertTrue(MPIRunCommand.nodesAreElsewhere(nodes, hostnames: ["node1", "node2"], thisHost: "head"))
        XCTAssertFalse(MPIRunCommand.nodesAreElsewhere(nodes, hostnames: ["node1", "head"], thisHost: "head"), "an agent under this machine's name")
        XCTAssertFalse(MPIRunCommand.nodesAreElsewhere(nodes, hostnames: ["node1", nil], thisHost: "head"), "an agent not heard from")
        XCTAssertFalse(MPIRunCommand.nodesAreElsewhere([Node(id: "l", address: "localhost", slots: 1)], hostnames: ["other"], thisHost: "head"))
        XCTAssertFalse(MPIRunCommand.nodesAreElsewhere([Node(id: "h", address: "head", slots: 1)], hostnames: ["other"], thisHost: "head"))
        XCTAssertFalse(MPIRunCommand.nodesAreElsewhere([], hostnames: [], thisHost: "head"))
        var remote = command(.tcp)
        XCTAssertFalse(remote.arguments.contains("if_base_do_not_resolve"))
        remote.skipsNameResolution = true
        XCTAssertTrue(remote.arguments.containsSequence(["--mca", "if_base_do_not_resolve", "1"]), "\(remote.arguments)")
        remote.mcaParameters = ["if_base_do_not_resolve": "0"]
        XCTAssertEqual(remote.arguments.filter { $0 == "if_base_do_not_resolve" }.count, 1, "the pool's own choice wins")
        var local = command(.tcp, local: true)
        local.skipsNameResolution = true
        XCTAssertFalse(local.arguments.contains("if_base_do_not_resolve"))
    }

    /// Uneven shares (-N 3 -n 4): each node's hostfile line holds its own share, mpirun maps
    /// by slot (ppr would put 2, 2, 0), and srun leaves the spreading to Slurm.
    func testUnevenSharesAreWrittenPerNodeAndMappedBySlot() {
        let three = [Node(id: "a", address: "10.0.0.1", slots: 4), Node(id: "b", address: "10.0.0.2", slots: 4), Node(id: "c", address: "10.0.0.3", slots: 4)]
        XCTAssertEqual(MPIRunCommand.hostfileText(nodes: three, processesPerNode: 2, isLocalPool: false, totalRanks: 4),
                       "10.0.0.1 slots=2\n10.0.0.2 slots=1\n10.0.0.3 slots=1\n")
        var command = MPIRunCommand(mpirun: "mpirun", hostfile: "/w/hostfile", nodes: three, processesPerNode: 2, transport: .tcp, isLocalPool: false,
                                    localCores: 2, runningAsRoot: false, sshConfig: nil, network: nil, exportedNames: [], extraOptions: [],
                                    rankWrapper: [], application: ["./solver"])
        command.totalRanks = 4
        XCTAssertEqual(Array(command.arguments.prefix(7)), ["mpirun", "--hostfile", "/w/hostfile", "-np", "4", "--map-by", "slot"])
        var srun = SrunCommand(options: SlurmOptions(), jobName: "j", nodes: ["a", "b", "c"], tasksPerNode: 2, mpi: true, timeLimit: nil,
                               workingDirectory: "/w", program: ["./solver"])
        srun.totalTasks = 4
        XCTAssertTrue(srun.arguments.contains("--ntasks=4"))
        XCTAssertFalse(srun.arguments.contains { $0.hasPrefix("--ntasks-per-node") }, "\(srun.arguments)")
        var environment = ["COHORT_GROUP_NODES": "a,b,c", "COHORT_PROCESSES_PER_NODE": "2", "COHORT_RANKS": "4", "COHORT_ATTEMPT_DIR": "/w"]
        TaskEnvironment.applyRank(2, to: &environment)
        XCTAssertEqual(environment["COHORT_NODE_ID"], "b", "rank 2 is on the second node (2, 1, 1)")
    }

    /// Each rank's own GPUs: its node's list from the group's, then its share by its place on
    /// that node, with uneven shares too (-N 2 -n 5: ranks 0-2 on a, 3-4 on b). A task's
    /// GPUs on Slurm are Slurm's to choose: srun and sbatch ask for them.
    func testEachRankGetsItsShareOfItsNodesGPUs() {
        var environment = TaskEnvironment(jobId: "j", taskId: "t", attemptId: "j.t.a1", attempt: 1, replica: nil, pool: "p",
                                          nodes: [Node(id: "a", address: "a", slots: 3), Node(id: "b", address: "b", slots: 3)], processesPerNode: 3,
                                          attemptDirectory: "/w", sharedDirectory: "/w", hostfile: "/w/hostfile", userVariables: [:])
        environment.totalRanks = 5
        environment.gpus = [[0, 1, 2, 3, 4, 5], [2, 3, 6, 7, 8, 9]]
        environment.gpusPerRank = 2
        let variables = environment.variables(forNode: 0)
        XCTAssertEqual(variables["COHORT_GROUP_GPUS"], "0,1,2,3,4,5;2,3,6,7,8,9")
        func devices(ofRank rank: Int) -> String? {
            var copy = variables
            TaskEnvironment.applyRank(rank, to: &copy)
            return copy["CUDA_VISIBLE_DEVICES"]
        }
        XCTAssertEqual((0..<5).map(devices(ofRank:)), ["0,1", "2,3", "4,5", "2,3", "6,7"])
        environment.gpusPerRank = nil
        var shared = environment.variables(forNode: 0)
        TaskEnvironment.applyRank(4, to: &shared)
        XCTAssertEqual(shared["CUDA_VISIBLE_DEVICES"], "2,3,6,7,8,9", "gpusPerNode: every rank of b sees b's")
        var task = TaskSpec(id: "t", commandLine: ["x"])
        task.gpusPerRank = 2
        task.memoryPerNode = 4096
        XCTAssertEqual(SlurmResources(task: task).arguments, ["--gpus-per-task=2", "--mem=4096M"])
    }
}

final class ProcessProbeTests: XCTestCase {
    /// A process may name itself anything, spaces and parentheses too: the fields after the
    /// last ')' are counted, not the words of the line.
    func testStatLinesAreReadPastTheNameAndProbeLinesRoundTrip() {
        let stat = "4242 (my (odd) solver) S 1 4242 4242 0 -1 4194304 120 0 0 0 731 69 0 0 20 0 1 0 12345 1000 100 18446744073709551615"
        XCTAssertEqual(ProcessProbe.parse(stat: stat)?.name, "my (odd) solver")
        XCTAssertEqual(ProcessProbe.parse(stat: stat)?.ticks, 800)
        XCTAssertNil(ProcessProbe.parse(stat: "4242 (cut short) S 1 2"))
        let samples = [ProcessProbe.Sample(pid: 7, ticks: 3, name: "sleep"), ProcessProbe.Sample(pid: 9, ticks: 0, name: "a b")]
        XCTAssertEqual(ProcessProbe.samples(fromLines: ProcessProbe.lines(samples)), samples)
    }
}
