import Foundation
import XCTest
@testable import Launcher

/// What every rank of a managed MPI task starts through: `cohort-rank-env` (C, static) and its
/// fallback `cohort rank-env` run the same rule as `TaskEnvironment.applyRank`, move into the
/// node's directory, start the program with no signal blocked, and fail clearly without one.
final class RankEnvTests: XCTestCase {
    /// Three nodes, 7 ranks (3, 2, 2), two GPUs a rank, a job preparation root.
    let group = ["COHORT_GROUP_NODES": "a,b,c", "COHORT_PROCESSES_PER_NODE": "3", "COHORT_RANKS": "7",
                 "COHORT_ATTEMPT_DIR": "/w/attempt-1", "COHORT_JOB_PREP_ROOT": "/w/prep",
                 "COHORT_GROUP_GPUS": "0,1,2,3,4,5;6,7,8,9;10,11,12,13", "COHORT_GPUS_PER_RANK": "2"]

    func variables(_ output: String) -> [String: String] {
        Dictionary(output.split(separator: "\n").compactMap { line -> (String, String)? in
            guard let equals = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<equals]), String(line[line.index(after: equals)...]))
        }) { $1 }
    }

    func testBothWrappersGiveEachRankItsNodesVariablesAsTheControllerComputesThem() throws {
        let wrappers = [[Harness.executable("cohort-rank-env")], [Harness.executable("cohort"), "rank-env", "--"]]
        for wrapper in wrappers {
            for rank in 0..<7 {
                var expected = group
                TaskEnvironment.applyRank(rank, to: &expected)
                let run = Harness.shell(wrapper + ["/usr/bin/env"], environment: group.merging(["OMPI_COMM_WORLD_RANK": String(rank)]) { $1 }, mergeErrors: false)
                XCTAssertEqual(run.status, 0, "\(wrapper) rank \(rank): \(run.output)")
                let seen = variables(run.output)
                for name in TaskEnvironment.perNodeNames { XCTAssertEqual(seen[name], expected[name], "\(wrapper) rank \(rank): \(name)") }
            }
            // The rule itself, spelled out for two ranks: rank 4 is b's second; rank 5 is c's first.
            let four = variables(Harness.shell(wrapper + ["/usr/bin/env"], environment: group.merging(["OMPI_COMM_WORLD_RANK": "4"]) { $1 }).output)
            XCTAssertEqual([four["COHORT_NODE_ID"], four["COHORT_NODE_INDEX"], four["CUDA_VISIBLE_DEVICES"], four["AZ_BATCH_IS_CURRENT_NODE_MASTER"]],
                           ["b", "1", "8,9", "false"], "\(wrapper)")
            XCTAssertEqual(four["COHORT_WORKING_DIR"], "/w/attempt-1/node-b")
            XCTAssertEqual(four["AZ_BATCH_JOB_PREP_DIR"], "/w/prep/b")
            let five = variables(Harness.shell(wrapper + ["/usr/bin/env"], environment: group.merging(["OMPI_COMM_WORLD_RANK": "5"]) { $1 }).output)
            XCTAssertEqual([five["COHORT_NODE_ID"], five["CUDA_VISIBLE_DEVICES"]], ["c", "10,11"], "\(wrapper)")
            // Started by srun: the node is named.
            let slurm = variables(Harness.shell(wrapper + ["/usr/bin/env"], environment: group.merging(["SLURMD_NODENAME": "c", "COHORT_GPUS_PER_RANK": ""]) { $1 }).output)
            XCTAssertEqual([slurm["COHORT_NODE_ID"], slurm["CUDA_VISIBLE_DEVICES"]], ["c", "10,11,12,13"], "\(wrapper)")
        }
    }

    func testTheRankStartsInItsNodesDirectoryWithNoSignalBlockedAndAMissingProgramIsNamed() throws {
        let attempt = Harness.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: "\(attempt)/node-b", withIntermediateDirectories: true)
        let environment = ["COHORT_GROUP_NODES": "a,b", "COHORT_PROCESSES_PER_NODE": "1", "COHORT_ATTEMPT_DIR": attempt, "OMPI_COMM_WORLD_RANK": "1"]
        for wrapper in [[Harness.executable("cohort-rank-env")], [Harness.executable("cohort"), "rank-env", "--"]] {
            let run = Harness.shell(wrapper + ["/bin/sh", "-c", "pwd; grep SigBlk /proc/self/status"], environment: environment)
            XCTAssertEqual(run.output, "\(attempt)/node-b\nSigBlk:\t0000000000000000\n", "\(wrapper)")
            let missing = Harness.shell(wrapper + ["/no/such/solver"], environment: environment)
            XCTAssertEqual(missing.status, 127, "\(wrapper): \(missing.output)")
            XCTAssertTrue(missing.output.contains("cannot start /no/such/solver: No such file or directory"), "\(wrapper): \(missing.output)")
        }
        let none = Harness.shell([Harness.executable("cohort-rank-env")])
        XCTAssertEqual(none.status, 64, none.output)
        XCTAssertTrue(none.output.contains("no program given"), none.output)
    }
}
