import Foundation
import XCTest
@testable import Launcher

/// Issue 9's bugs that the controller's design must rule out, each reproduced end to end.
extension ServiceTests {
    /// Waits until an attempt of `job` has started and printed `marker`; returns its directory.
    func waitRunning(_ job: String, printing marker: String, home: String, timeout: Double = 30) throws -> String {
        let store = try JobStore(stateDirectory: home)
        let deadline = Date() + timeout
        while Date() < deadline {
            let running = try store.tasks(jobId: job).flatMap(\.attempts).filter { $0.end == nil }
            if let attempt = running.first(where: { Harness.read("\($0.directory)/stdout.txt").contains(marker) }) { return attempt.directory }
            usleep(50_000)
        }
        XCTFail("job \(job) did not start printing \(marker)")
        throw CocoaError(.fileReadNoSuchFile)
    }

    /// Bug 1: a job deleted, submitted again under the same id, and the server killed -9
    /// while it ran: the restart read the deleted job's `exit-status` and recorded the new
    /// task as succeeded without it having run, its output appended to the old one's.
    func testAJobSubmittedAgainUnderADeletedJobsIdNeverTakesItsFiles() throws {
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: again\ntasks:\n  - id: t\n    commandLine: [sh, -c, 'echo old']\n").status, 201)
        _ = try waitCompleted("again", home: home)
        XCTAssertEqual(server.request("DELETE", "/v1/jobs/again").status, 204)
        let body = "id: again\ntasks:\n  - id: t\n    commandLine: [sh, -c, 'echo started; sleep 1.5; echo new']\n"
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: body).status, 201)
        let firstDirectory = try waitRunning("again", printing: "started", home: home)
        server.killHard()

        let restarted = try ServerProcess(home: home)
        try restarted.waitUntilListening()
        let summary = try waitCompleted("again", home: home)
        XCTAssertEqual(summary.succeeded, 1, restarted.log)
        let attempts = try XCTUnwrap(JobStore(stateDirectory: home).tasks(jobId: "again").first?.attempts)
        // Still running at the restart: adopted and watched to its own end, never the deleted job's.
        XCTAssertEqual(attempts.map(\.number), [1], "\(attempts.map(\.failure))")
        XCTAssertEqual(attempts.first?.directory, firstDirectory)
        XCTAssertEqual(attempts.first?.phases?.contains { $0.name == .adopted }, true)
        let output = Harness.read("\(try XCTUnwrap(attempts.last).directory)/stdout.txt")
        XCTAssertEqual(output, "started\nnew\n", "its own output only")
        XCTAssertEqual(restarted.stop(), 0, restarted.log)
    }

    /// An adopted task's wall-clock limit still counts from its start: it is ended when the
    /// limit runs out, whichever server watches it then.
    func testAnAdoptedTasksWallClockLimitCountsFromItsStart() throws {
        let home = Harness.temporaryDirectory()
        var server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let body = "id: limited\ntasks:\n  - id: t\n    commandLine: [sh, -c, 'echo started; sleep 600']\n    constraints: { maxWallClockTime: PT4S, maxTaskRetryCount: 0 }\n"
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: body).status, 201)
        _ = try waitRunning("limited", printing: "started", home: home)
        server.killHard()
        server = try ServerProcess(home: home)
        try server.waitUntilListening()
        XCTAssertEqual(try waitCompleted("limited", home: home, timeout: 30).failed, 1)
        let attempt = try XCTUnwrap(JobStore(stateDirectory: home).tasks(jobId: "limited").first?.attempts.first)
        XCTAssertEqual(attempt.failure?.category, .timeout, "\(String(describing: attempt.failure))")
        XCTAssertEqual(attempt.phases?.map(\.name).contains(.adopted), true)
        XCTAssertEqual(try XCTUnwrap(attempt.end).timeIntervalSince(attempt.start), 4, accuracy: 2, "ended 4 s after its start, not after the restart")
        XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "limited"), [])
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    /// kill -9 of the server while tasks run on the local pool: they run on under the dead
    /// server's cohort-spawner, and the restarted server adopts them — it records each end
    /// once (nothing runs twice), keeps their slots until they end (a job submitted after the
    /// restart waits for them), and can still cancel what it adopted.
    func testARestartedServerAdoptsTheTasksStillRunningAndCanCancelThem() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "1"], home: home).exitCode, 0)
        var server = try ServerProcess(home: home)
        try server.waitUntilListening()
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: kept\ntasks:\n  - id: t\n    commandLine: [sh, -c, 'echo started; sleep 3; echo done']\n").status, 201)
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: long\ntasks:\n  - id: t\n    commandLine: [sh, -c, 'echo started; sleep 600']\n").status, 201)
        let keptDirectory = try waitRunning("kept", printing: "started", home: home)
        _ = try waitRunning("long", printing: "started", home: home)
        server.killHard()

        server = try ServerProcess(home: home)
        try server.waitUntilListening()
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: after\ntasks:\n  - id: t\n    commandLine: [sh, -c, 'sleep 0.2']\n").status, 201)
        XCTAssertEqual(try waitCompleted("kept", home: home).succeeded, 1, server.log)
        let store = try JobStore(stateDirectory: home)
        let kept = try XCTUnwrap(store.tasks(jobId: "kept").first)
        XCTAssertEqual(kept.attempts.map(\.number), [1], "adopted, not run again: \(kept.attempts.map(\.failure))")
        XCTAssertEqual(kept.attempts.first?.directory, keptDirectory)
        XCTAssertEqual(kept.attempts.first?.phases?.map(\.name).contains(.adopted), true)
        XCTAssertEqual(Harness.read("\(keptDirectory)/stdout.txt"), "started\ndone\n")
        XCTAssertEqual(try waitCompleted("after", home: home).succeeded, 1, "it ran on the slot kept's end freed")

        // The adopted long task holds its slot until it is cancelled; the cancel reaches it.
        XCTAssertEqual(try store.tasks(jobId: "long").first?.attempts.first?.end, nil, "still running, adopted")
        XCTAssertEqual(server.request("POST", "/v1/jobs/long/cancel").status, 202, server.log)
        let long = try waitCompleted("long", home: home, timeout: 30)
        XCTAssertEqual(long.failed, 1)
        let cancelled = try XCTUnwrap(store.tasks(jobId: "long").first?.attempts)
        XCTAssertEqual(cancelled.map(\.number), [1])
        XCTAssertEqual(cancelled.first?.failure?.category, .cancelled, "\(cancelled.map(\.failure))")
        XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "long"), [], "nothing of it is left")
        XCTAssertEqual(doubleBookings(try slotTimeline(home: home)), [], "no slot used twice across the restart")
        XCTAssertTrue(server.log.contains("2 still running were adopted") || server.log.contains("1 still running were adopted"), server.log)
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    /// Every attempt stored in `home`, of every job, as (node, start, end) intervals.
    func slotTimeline(home: String) throws -> [(node: String, start: Date, end: Date, job: String)] {
        let store = try JobStore(stateDirectory: home)
        return try store.jobs().flatMap { job in
            try store.tasks(jobId: job.id).flatMap(\.attempts).flatMap { attempt in
                attempt.nodes.map { (node: $0, start: attempt.start, end: attempt.end ?? Date(), job: job.id) }
            }
        }
    }

    /// The intervals that overlap on a one-slot node: slots used twice.
    func doubleBookings(_ timeline: [(node: String, start: Date, end: Date, job: String)]) -> [String] {
        var found: [String] = []
        for (index, a) in timeline.enumerated() {
            for b in timeline[(index + 1)...] where a.node == b.node && a.start < b.end && b.start < a.end {
                found.append("\(a.node): \(a.job) \(a.start.timeIntervalSince1970)-\(a.end.timeIntervalSince1970) and \(b.job) \(b.start.timeIntervalSince1970)-\(b.end.timeIntervalSince1970)")
            }
        }
        return found
    }

    /// Bug 2: `cohort run` and `cohort serve` booked the same nodes: a served job held every
    /// slot and a `cohort run` on the same pool ran at the same moment anyway.
    func testACohortRunBesideAServerNeverTakesTheServersSlots() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "1"], home: home).exitCode, 0)
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let tasks = (0..<2).map { "  - id: t\($0)\n    commandLine: [sh, -c, 'echo go; sleep 1.5']\n" }.joined()
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: served\ntasks:\n\(tasks)").status, 201)
        _ = try waitRunning("served", printing: "go", home: home)
        let run = try Harness.cohort(["run", "--", "sleep", "0.3"], home: home)
        XCTAssertEqual(run.exitCode, 0, run.stderr + server.log)
        XCTAssertTrue(run.stderr.contains("a server runs for this state directory"), run.stderr)
        XCTAssertTrue(run.stdout.contains("succeeded"), run.stdout)
        _ = try waitCompleted("served", home: home)
        let timeline = try slotTimeline(home: home)
        XCTAssertEqual(Set(timeline.map(\.job)).count, 2)
        XCTAssertEqual(doubleBookings(timeline), [], "no slot used twice")
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    /// The other way round: a `cohort run` holds the pool; a second one and the server's jobs
    /// on that pool wait for it, and then run.
    func testAServerAndASecondRunWaitForTheRunHoldingThePool() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "1", "--slots", "1"], home: home).exitCode, 0)
        let first = try AdversarialServiceTests.startCohort(["run", "--", "sleep", "1.5"], home: home)
        let store = try JobStore(stateDirectory: home)
        let deadline = Date() + 20
        while try store.jobs().isEmpty, Date() < deadline { usleep(20_000) }
        let second = try Harness.cohort(["run", "--", "sleep", "0.2"], home: home)
        XCTAssertEqual(second.exitCode, 0, second.stderr)
        XCTAssertTrue(second.stderr.contains("is in use by another cohort run"), second.stderr)
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 0)

        let third = try AdversarialServiceTests.startCohort(["run", "--", "sleep", "1.5"], home: home)
        while try store.jobs().count < 3, Date() < deadline + 20 { usleep(20_000) }
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: queued\ntasks:\n  - id: t\n    commandLine: [sleep, '0.2']\n").status, 201)
        _ = try waitCompleted("queued", home: home)
        third.waitUntilExit()
        XCTAssertEqual(third.terminationStatus, 0)
        XCTAssertTrue(server.log.contains("is in use by cohort run"), server.log)
        let timeline = try slotTimeline(home: home)
        XCTAssertEqual(timeline.count, 4, "\(timeline)")
        XCTAssertEqual(doubleBookings(timeline), [], "no slot used twice")
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    /// Bug 5: the disk full while an attempt was recorded: the error was dropped, the job
    /// stayed running for ever, and after a restart completed tasks ran again. Now: nothing
    /// new starts and the API says why (503) while the state directory cannot be written,
    /// nothing is dropped, and once there is space the job goes on, no task run twice.
    func testADiskFullWhileRecordingIsSurfacedAndNothingIsLost() throws {
        XCTAssertEqual(getuid(), 0, "this test mounts a small tmpfs: run it as root (CI does)")
        let home = Harness.temporaryDirectory()
        func run(_ words: [String]) -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = words
            process.standardError = FileHandle.nullDevice
            try? process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        XCTAssertEqual(run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", home]), 0, "mount a 24 MB tmpfs")
        defer { _ = run(["umount", "-l", home]) }
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "1", "--slots", "1"], home: home).exitCode, 0)
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let tasks = "  - { id: a, commandLine: [sh, -c, 'echo started; sleep 1.5'] }\n"
            // A task that starts while the disk is full may fail writing its output: it retries.
            + "  - { id: b, commandLine: [sh, -c, 'echo b'], dependsOn: [a], constraints: { maxTaskRetryCount: 3 } }\n"
            + "  - { id: c, commandLine: [sh, -c, 'echo c'], dependsOn: [b], constraints: { maxTaskRetryCount: 3 } }\n"
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: full\ntasks:\n\(tasks)").status, 201)
        _ = try waitRunning("full", printing: "started", home: home)
        // Fill the disk while task a runs: its end cannot be written.
        _ = run(["dd", "if=/dev/zero", "of=\(home)/filler", "bs=64k"])
        var health = server.request("GET", "/v1/health")
        let deadline = Date() + 20
        while health.status == 200, Date() < deadline { usleep(100_000); health = server.request("GET", "/v1/health") }
        XCTAssertEqual(health.status, 503, "the server says it cannot write: \(health.text)")
        XCTAssertTrue(health.errorMessage?.contains("cannot be written") == true, health.text)
        let refused = server.request("POST", "/v1/jobs", body: "id: later\ntasks:\n  - { id: x, commandLine: 'true' }\n")
        XCTAssertEqual(refused.status, 503, refused.text)
        usleep(1_500_000)
        XCTAssertNotEqual(try JobStore(stateDirectory: home).job("full")?.state, .completed, "nothing ends unrecorded")

        try FileManager.default.removeItem(atPath: "\(home)/filler")
        let summary = try waitCompleted("full", home: home, timeout: 60)
        XCTAssertEqual(summary.succeeded, 3, server.log)
        let records = try JobStore(stateDirectory: home).tasks(jobId: "full")
        let context = "\(records.map { ($0.taskId, $0.attempts.map { $0.failure?.message ?? "ok" }) })"
        XCTAssertEqual(records.first { $0.taskId == "a" }?.attempts.count, 1, "the task that ended while the disk was full is not run again: \(context)")
        XCTAssertEqual(records.map { $0.attempts.filter(\.succeeded).count }, [1, 1, 1], "each task succeeded once: \(context)")
        XCTAssertEqual(server.request("GET", "/v1/health").status, 200)
        XCTAssertTrue(server.log.contains("can be written again"), server.log)
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    /// Bug 6, end to end: a job that needs a node drained right now was refused as "can
    /// never run". Now it is queued, says why it waits (API and `cohort task list`), and runs
    /// once the node is undrained.
    func testAJobNeedingADrainedNodeWaitsAndSaysWhy() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "1"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["node", "drain", "--pool", "local", "local-1"], home: home).exitCode, 0)
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let body = "id: wide\ntasks:\n  - id: w\n    commandLine: 'true'\n    multiInstance: { instances: 2, launch: raw }\n"
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: body).status, 201, "accepted, not refused")
        var waiting: String?
        let deadline = Date() + 20
        while waiting == nil, Date() < deadline {
            let tasks = server.request("GET", "/v1/jobs/wide/tasks").json as? [[String: Any]]
            waiting = tasks?.first?["waiting"] as? String
            if waiting == nil { usleep(100_000) }
        }
        XCTAssertEqual(waiting, "waiting: 1 of 2 nodes usable")
        let list = try Harness.cohort(["task", "list", "wide"], home: home)
        XCTAssertTrue(list.stdout.contains("waiting: 1 of 2 nodes usable"), list.stdout + list.stderr)
        XCTAssertEqual(try Harness.cohort(["node", "undrain", "--pool", "local", "local-1"], home: home).exitCode, 0)
        XCTAssertEqual(try waitCompleted("wide", home: home, timeout: 30).succeeded, 1, server.log)
        XCTAssertEqual(server.stop(), 0, server.log)
    }
}
