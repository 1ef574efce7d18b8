import Foundation
import XCTest
@testable import Launcher

/// Azure's exitConditions, onTaskFailure and requiredSlots on real runs: what a task's end
/// does to its dependents and its job.
final class ExitConditionTests: XCTestCase {
    func job(_ text: String) throws -> JobSpec { try JobFile.parse(text, file: "job.json") }

    func testExitCodesDecideWhetherDependentsRun() throws {
        let spec = try job("""
        {"id": "deps", "usesTaskDependencies": true, "tasks": [
          {"id": "tolerated", "commandLine": "/bin/sh -c 'exit 3'",
           "exitConditions": {"exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}]}},
          {"id": "after-tolerated", "commandLine": "echo ran", "dependsOn": ["tolerated"]},
          {"id": "fatal", "commandLine": "/bin/sh -c 'exit 4'",
           "exitConditions": {"exitCodeRanges": [{"start": 10, "end": 20, "exitOptions": {"dependencyAction": "satisfy"}}]}},
          {"id": "after-fatal", "commandLine": "echo ran", "dependsOn": ["fatal"]},
          {"id": "vetoed", "commandLine": "true", "exitConditions": {"exitCodes": [{"code": 0, "exitOptions": {"dependencyAction": "block"}}]}},
          {"id": "after-vetoed", "commandLine": "echo ran", "dependsOn": ["vetoed"]}]}
        """)
        let run = try Harness.run(spec)
        let byId = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.taskId, $0) })
        XCTAssertEqual(byId["tolerated"]?.failure?.category, .exitCode, "the task itself still failed")
        XCTAssertTrue(byId["after-tolerated"]?.succeeded == true, "exit code 3 satisfies: \(String(describing: byId["after-tolerated"]?.failure))")
        XCTAssertEqual(byId["after-fatal"]?.failure?.category, .dependencyFailed, "4 is not in 10-20: blocked")
        XCTAssertTrue(byId["vetoed"]?.succeeded == true)
        XCTAssertEqual(byId["after-vetoed"]?.failure?.category, .dependencyFailed)
        XCTAssertTrue(byId["after-vetoed"]?.failure?.message.contains("exitConditions block") == true, byId["after-vetoed"]?.failure?.message ?? "")
    }

    /// With onTaskFailure: performexitoptionsjobaction a failure terminates the job by
    /// default: running tasks end, waiting ones never start; a jobAction none lets it go on.
    func testAFailureTerminatesTheJobWhenTheJobAsks() throws {
        let spec = try job("""
        {"id": "terminating", "onTaskFailure": "performexitoptionsjobaction", "tasks": [
          {"id": "tolerated", "commandLine": "/bin/sh -c 'exit 2'",
           "exitConditions": {"exitCodeRanges": [{"start": 1, "end": 2, "exitOptions": {"jobAction": "none"}}]}},
          {"id": "long", "commandLine": "sleep 30"},
          {"id": "fails", "commandLine": "/bin/sh -c 'sleep 1; exit 7'",
           "exitConditions": {"exitCodeRanges": [{"start": 1, "end": 2, "exitOptions": {"jobAction": "none"}}]}},
          {"id": "never", "commandLine": "echo ran", "dependsOn": ["long"]}]}
        """)
        let started = Date()
        let run = try Harness.run(spec, pool: .local(nodeCount: 1, slotsPerNode: 3))
        XCTAssertLessThan(Date().timeIntervalSince(started), 20, "the job ended when `fails` failed, not when `long` would have")
        let byId = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.taskId, $0) })
        XCTAssertEqual(byId["tolerated"]?.failure?.category, .exitCode)
        XCTAssertEqual(byId["fails"]?.failure?.category, .exitCode)
        XCTAssertEqual(byId["long"]?.failure?.category, .cancelled, "running work ended")
        XCTAssertEqual(byId["never"]?.failure?.category, .cancelled)
        XCTAssertTrue(byId["never"]?.failure?.message.contains("terminated") == true && byId["never"]?.failure?.message.contains("fails") == true,
                      byId["never"]?.failure?.message ?? "")
    }

    /// A success can end the job too (a task whose success means the rest is moot).
    func testASuccessMappedToTerminateEndsTheJob() throws {
        let spec = try job("""
        {"id": "enough", "onTaskFailure": "performexitoptionsjobaction", "tasks": [
          {"id": "search", "commandLine": "true", "exitConditions": {"exitCodes": [{"code": 0, "exitOptions": {"jobAction": "terminate"}}]}},
          {"id": "other", "commandLine": "sleep 30"}]}
        """)
        let started = Date()
        let run = try Harness.run(spec, pool: .local(nodeCount: 1, slotsPerNode: 2))
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
        XCTAssertTrue(run.tasks.first { $0.taskId == "search" }?.succeeded == true)
        XCTAssertEqual(run.tasks.first { $0.taskId == "other" }?.failure?.category, .cancelled)
    }

    /// requiredSlots: a task takes that many slots of its node, so two such tasks on a
    /// 2-slot node run one after the other.
    func testRequiredSlotsTakeThatManySlots() throws {
        let spec = try job("""
        {"id": "wide", "tasks": [{"id": "a", "commandLine": "sleep 1", "requiredSlots": 2},
                                 {"id": "b", "commandLine": "sleep 1", "requiredSlots": 2}]}
        """)
        let run = try Harness.run(spec, pool: .local(nodeCount: 1, slotsPerNode: 2))
        XCTAssertTrue(run.succeeded)
        let a = try XCTUnwrap(run.tasks[0].attempts.first), b = try XCTUnwrap(run.tasks[1].attempts.first)
        let (first, second) = a.start < b.start ? (a, b) : (b, a)
        XCTAssertGreaterThanOrEqual(second.start, try XCTUnwrap(first.end), "they did not overlap")
        XCTAssertThrowsError(try job(#"{"id": "x", "tasks": [{"id": "a", "commandLine": "true", "requiredSlots": 3}]}"#).tasks
            .map { try JobRunner(job: JobSpec(id: "x", tasks: [$0]), pool: .local(nodeCount: 1, slotsPerNode: 2), settings: Harness.settings(Harness.temporaryDirectory())) }) {
            XCTAssertTrue("\($0)".contains("needs 3 slots per node"), "\($0)")
        }
    }

    func testAzureJobFieldsAreCheckedWithTheirReasons() {
        let cases: [(String, String, String)] = [
            (#"{"id": "j", "onAllTasksComplete": "noaction", "tasks": [{"id": "t", "commandLine": "true"}]}"#, "onAllTasksComplete", "end with them"),
            (#"{"id": "j", "onTaskFailure": "explode", "tasks": [{"id": "t", "commandLine": "true"}]}"#, "onTaskFailure", "unknown onTaskFailure"),
            (#"{"id": "j", "usesTaskDependencies": false, "tasks": [{"id": "a", "commandLine": "true"}, {"id": "t", "commandLine": "true", "dependsOn": ["a"]}]}"#,
             "tasks[1]", "usesTaskDependencies: false"),
            (#"{"id": "j", "tasks": [{"id": "t", "commandLine": "true", "exitConditions": {"default": {"jobAction": "terminate"}}}]}"#,
             "tasks[0]", "needs the job's onTaskFailure"),
            (#"{"id": "j", "tasks": [{"id": "t", "commandLine": "true", "exitConditions": {"default": {"dependencyAction": "maybe"}}}]}"#,
             "tasks[0].exitConditions.default.dependencyAction", "unknown dependencyAction"),
            (#"{"id": "j", "tasks": [{"id": "t", "commandLine": "true", "userIdentity": {"userName": "alice"}}]}"#,
             "tasks[0].userIdentity.userName", "cannot be honoured"),
            (#"{"id": "j", "tasks": [{"id": "t", "commandLine": "true", "requiredSlots": 2, "multiInstanceSettings": {"numberOfInstances": 2}}]}"#,
             "tasks[0].requiredSlots", "must be 1"),
        ]
        for (text, field, message) in cases {
            XCTAssertThrowsError(try job(text), text) {
                let error = $0 as! SpecError
                XCTAssertEqual(error.field, field, text)
                XCTAssertTrue(error.message.contains(message), "\(text): \(error.message)")
            }
        }
        XCTAssertNoThrow(try job(#"{"id": "j", "displayName": "J", "onAllTasksComplete": "terminatejob", "tasks": [{"id": "t", "displayName": "T", "commandLine": "true", "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}}]}"#))
    }

    /// Served, a jobAction disable disables the job (recorded: `job list` says so); what
    /// waits starts only once it is enabled again.
    func testAServedJobDisabledByItsTaskWaitsUntilEnabled() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "1", "--slots", "1"], home: home).exitCode, 0)
        let file = "\(home)/gate.json"
        try """
        {"id": "gate", "onTaskFailure": "performexitoptionsjobaction", "tasks": [
          {"id": "check", "commandLine": "/bin/sh -c 'exit 9'",
           "exitConditions": {"exitCodes": [{"code": 9, "exitOptions": {"jobAction": "disable", "dependencyAction": "satisfy"}}]}},
          {"id": "next", "commandLine": "true", "dependsOn": ["check"]}]}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let submitted = try Harness.cohort(["submit", file], home: home)
        XCTAssertEqual(submitted.stdout, "gate\n", submitted.stderr)
        let store = try JobStore(stateDirectory: home)
        let deadline = Date() + 30
        while try store.job("gate")?.state != .disabled && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(try store.job("gate")?.state, .disabled, server.log)
        usleep(1_500_000)
        XCTAssertEqual(try store.tasks(jobId: "gate").first { $0.taskId == "next" }?.attempts.count, 0, "nothing starts while disabled")
        XCTAssertEqual(try Harness.cohort(["job", "enable", "gate"], home: home).exitCode, 0)
        let until = Date() + 30
        while try store.job("gate")?.state != .completed && Date() < until { usleep(50_000) }
        let summary = try XCTUnwrap(try store.job("gate"))
        XCTAssertEqual(summary.state, .completed)
        XCTAssertEqual(summary.succeeded, 1, "next ran once enabled (code 9 satisfies it)")
        XCTAssertEqual(summary.failed, 1)
        XCTAssertTrue(server.log.contains("disabled by task check's exit conditions (exit code 9 → disable)"), server.log)
        XCTAssertEqual(server.stop(), 0, server.log)
    }
}
