import XCTest
@testable import Launcher

/// The pieces of Slurm pools that need no cluster: srun's argument list, what srun and
/// slurmstepd say when an attempt ends badly, sinfo's lines, Slurm states in Cohort's words.
final class SlurmPartsTests: XCTestCase {
    func testSrunArgumentsCarryEveryValueAsOneArgument() {
        var options = SlurmOptions(partition: "gpu a", account: "proj-1", qos: "high", constraint: "ib&haswell", exclusive: true)
        let srun = SrunCommand(options: options, jobName: "cohort.s.job.task.a1", nodes: ["n2", "n1"], tasksPerNode: 4, mpi: true, timeLimit: 90.2,
                               workingDirectory: "/w/a b", program: ["./solver", "-x", "a b"])
        XCTAssertEqual(srun.arguments, ["srun", "--job-name=cohort.s.job.task.a1", "--nodes=2", "--ntasks=8", "--ntasks-per-node=4", "--nodelist=n2,n1",
                                        "--chdir=/w/a b", "--kill-on-bad-exit=1", "--mpi=pmix", "--time=1:31", "--partition=gpu a", "--account=proj-1",
                                        "--qos=high", "--constraint=ib&haswell", "--exclusive", "--", "./solver", "-x", "a b"])
        options.allocation = "42"
        let step = SrunCommand(options: options, jobName: "j", nodes: ["n1"], tasksPerNode: 1, mpi: false, timeLimit: nil, workingDirectory: "/w",
                               label: true, program: ["true"])
        XCTAssertEqual(Array(step.arguments.suffix(6)), ["--mpi=none", "--label", "--jobid=42", "--exact", "--", "true"],
                       "inside an allocation: a step of it, none of the allocation's own options")
        XCTAssertEqual(SrunCommand.slurmTime(0.2), "0:01")
        XCTAssertEqual(SrunCommand.slurmTime(3600), "60:00")
    }

    func testWhatSrunSaysBecomesTheReason() {
        let failed = SrunReport("""
            broken
            srun: error: node2: task 1: Exited with exit code 7
            slurmstepd-node1: error: *** STEP 106.0 ON node1 CANCELLED AT 2026-11-26T13:27:00 ***
            srun: error: node1: task 0: Terminated
            """)
        XCTAssertEqual(failed.jobId, "106")
        XCTAssertEqual(failed.failingTask?.node, "node2")
        XCTAssertEqual(failed.failingTask?.rank, 1)
        XCTAssertEqual(failed.failingTask?.code, 7)
        XCTAssertNil(failed.failedNode)

        let lost = SrunReport("""
            slurmstepd-node1: error: *** STEP 7.0 ON node1 CANCELLED AT 2026-11-26T13:27:00 DUE TO NODE FAILURE, SEE SLURMCTLD LOG FOR DETAILS ***
            srun: error: Node failure on node2
            srun: error: node1: task 0: Terminated
            """)
        XCTAssertEqual(lost.failedNode, "node2")
        XCTAssertEqual(lost.jobId, "7")

        XCTAssertTrue(SrunReport("slurmstepd-node1: error: *** JOB 9 ON node1 CANCELLED AT 2026-11-26T13:26:28 DUE TO TIME LIMIT ***").timeLimit)
        XCTAssertTrue(SrunReport("slurmstepd-node1: error: *** JOB 9 ON node1 CANCELLED AT 2026-11-26T13:26:28 DUE TO PREEMPTION ***").preempted)
        XCTAssertEqual(SrunReport("srun: error: Unable to allocate resources: Invalid partition name specified").allocationError,
                       "Invalid partition name specified")
        XCTAssertEqual(SrunReport("srun: job 35 queued and waiting for resources").jobId, "35")
        let missing = SrunReport("""
            slurmstepd-node1: error: execve(): /no/such: No such file or directory
            srun: error: node1: task 0: Exited with exit code 2
            """)
        XCTAssertEqual(missing.startError, "/no/such: No such file or directory")
        XCTAssertEqual(SrunReport("srun: error: node1: tasks 0-3: Killed").failingTask?.how, "Killed")
    }

    func testSinfoLinesMakeNodesWithSlurmsStatesInCohortsWords() {
        let nodes = SlurmClient.parseNodes("""
            node1|10.77.0.11|2|idle|debug*|1|(null)|none
            node1|10.77.0.11|2|idle|pair|1|(null)|none
            node2|10.77.0.12|2|down*|debug*|1|(null)|Not responding
            node3|10.77.0.13|4|drained|debug*|257000|gpu:a100:2(S:0-1),gpu:v100:1,mps:100|bad DIMM
            node4|10.77.0.14|2|mixed|debug*|64000|gpu:4|none | with a bar

            """)
        XCTAssertEqual(nodes.map(\.name), ["node1", "node2", "node3", "node4"])
        XCTAssertEqual(nodes[0].partitions, ["debug", "pair"])
        XCTAssertEqual(nodes[2].cpus, 4)
        XCTAssertEqual(nodes.map(\.gpus), [0, 0, 3, 4])
        XCTAssertEqual(nodes.map(\.memoryMiB), [1, 1, 257000, 64000])
        XCTAssertEqual(nodes[3].reason, "none | with a bar")
        XCTAssertEqual(nodes.map { SlurmClient.nodeState($0).state }, [.idle, .unusable, .offline, .idle])
        XCTAssertEqual(SlurmClient.nodeState(nodes[1]).reason, "Slurm: down, not responding: Not responding")
        XCTAssertEqual(SlurmClient.nodeState(nodes[2]).reason, "drained in Slurm: bad DIMM")
        XCTAssertEqual(SlurmClient.nodeState(.init(name: "n", address: "n", cpus: 1, state: "draining", reason: nil, partitions: [])).state, .offline)
        XCTAssertEqual(SlurmClient.nodeState(.init(name: "n", address: "n", cpus: 1, state: "idle~", reason: nil, partitions: [])).state, .unusable)
    }

    func testAnAllocationsCPUsPerNodeAreItsStepsSlots() {
        let text = """
            JobId=1 JobName=alloc
               NodeList=node[1-4]
                 Nodes=node[1-2] CPU_IDs=0-1 Mem=0 GRES=
                 Nodes=node3 CPU_IDs=0,2-3 Mem=0 GRES=
                 Nodes=node4 CPU_IDs=1 Mem=0 GRES=
            """
        XCTAssertEqual(SlurmClient.parseAllocationCPUs(text), ["node1": 2, "node2": 2, "node3": 3, "node4": 1])
    }

    func testRankEnvFindsItsNodeByTheNameSrunGives() {
        var environment = ["COHORT_GROUP_NODES": "n3,n1", "COHORT_PROCESSES_PER_NODE": "2", "COHORT_ATTEMPT_DIR": "/w/a1"]
        TaskEnvironment.applyNode("n1", to: &environment)
        XCTAssertEqual(environment["COHORT_NODE_INDEX"], "1")
        XCTAssertEqual(environment["AZ_BATCH_NODE_ID"], "n1")
        XCTAssertEqual(environment["AZ_BATCH_IS_CURRENT_NODE_MASTER"], "false")
        XCTAssertEqual(environment["COHORT_WORKING_DIR"], "/w/a1/node-n1")
    }
}
