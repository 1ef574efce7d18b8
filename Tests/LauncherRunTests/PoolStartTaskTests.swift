import Foundation
import XCTest
@testable import Launcher

/// The pool start task (`cohort pool add … --start-task`): once on each node before it
/// first takes work, with its resource files; not again while the node stays; a failing one
/// keeps the node out, with the reason.
final class PoolStartTaskTests: XCTestCase {
    func testTheStartTaskRunsOnceOnEachNodeBeforeItsWork() throws {
        let home = Harness.temporaryDirectory()
        let http = try TestHTTPServer()
        try "tools v1\n".write(toFile: "\(http.directory)/tools.txt", atomically: true, encoding: .utf8)
        let added = try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "1",
                                        "--start-task", "/bin/sh -c 'echo $AZ_BATCH_NODE_ID $(cat tools.txt) >> \(home)/starts'",
                                        "--start-task-resource-file", "\(http.url("tools.txt"))=tools.txt"], home: home)
        XCTAssertEqual(added.exitCode, 0, added.stderr)
        let job = "\(home)/job.yaml"
        try "id: work\ntasks:\n" .appending((1...4).map { "  - { id: t\($0), commandLine: /bin/sh -c 'cat \(home)/starts > seen.txt' }\n" }.joined())
            .write(toFile: job, atomically: true, encoding: .utf8)
        let first = try Harness.cohort(["run", "--output", "json", job], home: home)
        XCTAssertEqual(first.exitCode, 0, first.stderr + first.stdout)
        XCTAssertEqual(Harness.read("\(home)/starts").split(separator: "\n").sorted(), ["local-0 tools v1", "local-1 tools v1"])
        // Every task saw its node's start task done (it ran before the node took work).
        let object = try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any]
        for task in try XCTUnwrap(object?["tasks"] as? [[String: Any]]) {
            let attempt = try XCTUnwrap((task["attempts"] as? [[String: Any]])?.last)
            let node = try XCTUnwrap((attempt["nodes"] as? [String])?.first)
            XCTAssertTrue(Harness.read("\(attempt["directory"] as! String)/seen.txt").contains("\(node) tools v1"), "\(task["taskId"]!) on \(node)")
        }
        // A second run: the nodes stayed, the start task is not run again.
        XCTAssertEqual(try Harness.cohort(["run", job], home: home).exitCode, 0)
        XCTAssertEqual(Harness.read("\(home)/starts").split(separator: "\n").count, 2)
        let listed = try Harness.cohort(["node", "list", "--output", "json"], home: home)
        XCTAssertTrue(listed.stdout.contains("\"startTask\""), listed.stdout)
        XCTAssertTrue(try Harness.cohort(["node", "show", "local-0"], home: home).stdout.contains("start task: succeeded"))
    }

    func testAFailingStartTaskKeepsTheNodeOutWithTheReason() throws {
        let home = Harness.temporaryDirectory()
        let added = try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "1",
                                        "--start-task", "/bin/sh -c '[ $AZ_BATCH_NODE_ID = local-0 ] || { echo no tools >&2; exit 3; }'"], home: home)
        XCTAssertEqual(added.exitCode, 0, added.stderr)
        let job = "\(home)/job.yaml"
        try "id: work\ntasks:\n  - { id: a, commandLine: hostname }\n  - { id: b, commandLine: 'true', multiInstance: { instances: 1 } }\n"
            .write(toFile: job, atomically: true, encoding: .utf8)
        let run = try Harness.cohort(["run", "--output", "json", "--policy", "spread", job], home: home)
        XCTAssertEqual(run.exitCode, 0, run.stderr + run.stdout)
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        for task in try XCTUnwrap(object?["tasks"] as? [[String: Any]]) {
            XCTAssertEqual(((task["attempts"] as? [[String: Any]])?.last?["nodes"] as? [String]), ["local-0"], "work only where the start task succeeded")
        }
        let pool = try PoolStore(stateDirectory: home).load("local")
        let failed = try XCTUnwrap(pool.nodes.first { $0.id == "local-1" })
        XCTAssertEqual(failed.state, .unusable)
        XCTAssertTrue(failed.stateReason?.contains("its start task failed") == true && failed.stateReason?.contains("code 3") == true, failed.stateReason ?? "")
        XCTAssertEqual(failed.startTask?.exitCode, 3)
        XCTAssertEqual(Harness.read("\(failed.startTask?.directory ?? "")/stderr.txt"), "no tools\n")
        let shown = try Harness.cohort(["node", "show", "local-1"], home: home)
        XCTAssertTrue(shown.stdout.contains("unusable (its start task failed") && shown.stdout.contains("  stderr: no tools"), shown.stdout)
    }
}
