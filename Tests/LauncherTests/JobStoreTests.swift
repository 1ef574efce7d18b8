import Foundation
import XCTest
import GRDB
@testable import Launcher

/// The job store on a real SQLite file.
final class JobStoreTests: XCTestCase {
    func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("cohort-store-\(UUID().uuidString)").path
    }

    func attempt(_ number: Int, nodes: [String], seconds: Double, exit: Int32, failure: Failure? = nil) -> Attempt {
        let start = Date(timeIntervalSince1970: 1_800_000_000 + Double(number) * 100)
        return Attempt(number: number, nodes: nodes, nodeExitCodes: Dictionary(uniqueKeysWithValues: nodes.map { ($0, exit) }), exitCode: exit,
                       start: start, end: start.addingTimeInterval(seconds), transport: nil, launchedCommand: ["x"], directory: "/w/\(number)", failure: failure)
    }

    func testAJobItsTasksAndEveryAttemptSurviveReopening() throws {
        let dir = directory()
        let mpi = TaskSpec(id: "solve", commandLine: ["./solve"], multiInstance: MultiInstance(instances: 2, processesPerNode: 4, replicas: 2))
        let single = TaskSpec(id: "mesh", commandLine: ["./mesh"])
        let job = JobSpec(id: "wing", pool: "cluster", tasks: [single, mpi])
        do {
            let store = try JobStore(stateDirectory: dir)
            XCTAssertEqual(try store.availableId("wing"), "wing")
            try store.begin(job, units: [("mesh", nil), ("solve", 0), ("solve", 1)])
            XCTAssertEqual(try store.availableId("wing"), "wing-2", "a second run gets its own id")
            XCTAssertThrowsError(try store.begin(job, units: []), "nothing stored is replaced")
            let lost = Failure(category: .nodeLost, node: "n2", message: "node n2 was lost")
            try store.record(jobId: "wing", task: single, replica: nil, attempt: attempt(1, nodes: ["n1"], seconds: 36, exit: 0), taskState: .completed)
            try store.record(jobId: "wing", task: mpi, replica: 0, attempt: attempt(1, nodes: ["n1", "n2"], seconds: 360, exit: 1, failure: lost), taskState: .active)
            try store.record(jobId: "wing", task: mpi, replica: 0, attempt: attempt(2, nodes: ["n1", "n3"], seconds: 720, exit: 0), taskState: .completed)
        }
        let reopened = try JobStore(stateDirectory: dir)  // migrations run once; data stays
        let tasks = try reopened.tasks(jobId: "wing")
        XCTAssertEqual(tasks.map(\.displayId), ["mesh", "solve[0]", "solve[1]"])
        XCTAssertEqual(tasks[1].attempts.map(\.number), [1, 2])
        XCTAssertEqual(tasks[1].attempts[0].failure?.node, "n2")
        XCTAssertEqual(tasks[1].attempts[1].nodes, ["n1", "n3"])
        XCTAssertEqual(tasks[1].result, .success)
        XCTAssertEqual(tasks[2].attempts.count, 0)
        var stored = try reopened.spec(jobId: "wing")
        XCTAssertEqual(stored.incarnation?.count, 8, "the store gives the job an incarnation")
        stored.incarnation = nil
        XCTAssertEqual(stored, job)
        XCTAssertEqual(try reopened.jobs().map(\.id), ["wing"])
        XCTAssertEqual(try reopened.jobs().first?.state, .running)

        // Usage: mesh 1 node × 36 s; solve 2 nodes × (360 + 720) s with 8 ranks.
        let byJob = try reopened.usage(by: .job, prices: ["cluster": 2.0])
        XCTAssertEqual(byJob.count, 1)
        XCTAssertEqual(byJob[0].attempts, 3)
        XCTAssertEqual(byJob[0].nodeSeconds, 36 + 2 * 1080, accuracy: 1e-6)
        XCTAssertEqual(byJob[0].coreSeconds, 36 + 8 * 1080, accuracy: 1e-6)
        XCTAssertEqual(byJob[0].cost!, (36 + 2 * 1080) / 3600 * 2.0, accuracy: 1e-9)
        XCTAssertNil(try reopened.usage(by: .pool, prices: [:])[0].cost, "no price, no cost")
        let recent = try reopened.usage(since: Date(timeIntervalSince1970: 1_800_000_150), by: .task, prices: [:])
        XCTAssertEqual(recent.map(\.key), ["wing/solve"], "only the attempt that started after --since")
        let byDay = try reopened.usage(by: .day, prices: ["cluster": 2.0])
        XCTAssertEqual(byDay.map(\.key), ["2027-01-15/cluster"], "1,800,000,100 s after 1970 is 15 January 2027, UTC")
        XCTAssertEqual(byDay[0].nodeSeconds, byJob[0].nodeSeconds, accuracy: 1e-6)

        XCTAssertThrowsError(try reopened.delete(jobId: "wing"), "a running job is cancelled before it is deleted")
        try reopened.finish(JobRun(jobId: "wing", pool: "cluster", start: Date(), end: Date(), tasks: []))
        try reopened.delete(jobId: "wing")
        XCTAssertEqual(try reopened.jobs(), [])
        XCTAssertThrowsError(try reopened.tasks(jobId: "wing"))
    }

    /// States, results and a job's history come back as typed values; a value that no
    /// version of Cohort writes (a damaged or hand-edited store) is named, never guessed at.
    func testStatesResultsAndEventsAreTypedAndAForeignValueIsNamed() throws {
        let dir = directory()
        let store = try JobStore(stateDirectory: dir)
        let task = TaskSpec(id: "a", commandLine: ["./a"])
        let id = try store.submit(JobSpec(id: "typed", pool: "local", tasks: [task]), units: [("a", nil)])
        _ = try store.setHeld(jobId: id, true)
        _ = try store.setHeld(jobId: id, false)
        try store.record(jobId: id, task: task, replica: nil, attempt: attempt(1, nodes: ["n1"], seconds: 1, exit: 3), taskState: .completed)
        XCTAssertEqual(try store.events(jobId: id).map(\.kind), [.submitted, .disabled, .enabled])
        let record = try XCTUnwrap(store.tasks(jobId: id).first)
        XCTAssertEqual(record.state, .completed)
        XCTAssertEqual(record.result, .failure)

        let database = try DatabaseQueue(path: store.path)
        try database.write { try $0.execute(sql: "INSERT INTO event (time, job_id, kind, message) VALUES (0, ?, 'exploded', 'x')", arguments: [id]) }
        XCTAssertThrowsError(try store.events(jobId: id)) { error in
            XCTAssertTrue("\(error)".contains("'exploded' in event.kind"), "\(error)")
        }
        try database.write { try $0.execute(sql: "UPDATE task SET state = 'halfway' WHERE job_id = ?", arguments: [id]) }
        XCTAssertThrowsError(try store.tasks(jobId: id)) { error in
            XCTAssertTrue("\(error)".contains("'halfway' in task.state"), "\(error)")
        }
    }

    /// Each job's counts are kept by triggers through every write (started, recorded,
    /// cancelled, ended unrun, deleted), and a store of the previous version is counted
    /// once when it is opened.
    func testJobCountsFollowEveryWriteAndAnOlderStoreIsCountedOnOpening() throws {
        let dir = directory()
        // A version-5 store with a job of three tasks, one succeeded, as an older cohort left it.
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let pool = try DatabasePool(path: "\(dir)/cohort.sqlite")
            try StateDatabase.migrator.migrate(pool, upTo: "v5: disabled jobs")
            try pool.write { db in
                try db.execute(sql: "INSERT INTO job (id, pool, state, spec, submitted) VALUES ('old', 'local', 'running', '{}', 1)")
                for (task, result) in [("a", "'success'"), ("b", "NULL"), ("c", "'failure'")] {
                    try db.execute(sql: "INSERT INTO task (job_id, task_id, state, result) VALUES ('old', '\(task)', 'active', \(result))")
                }
            }
        }
        let store = try JobStore(stateDirectory: dir)
        let old = try XCTUnwrap(store.job("old"))
        XCTAssertEqual([old.tasks, old.succeeded, old.failed], [3, 1, 1], "counted when the store was opened")

        let single = TaskSpec(id: "one", commandLine: ["x"]), other = TaskSpec(id: "two", commandLine: ["x"])
        let job = JobSpec(id: "counted", pool: "cluster", tasks: [single, other])
        try store.begin(job, units: [("one", nil), ("two", nil)])
        XCTAssertEqual(try store.job("counted").map { [$0.tasks, $0.succeeded, $0.failed] }, [2, 0, 0])
        try store.record(jobId: "counted", task: single, replica: nil, attempt: attempt(1, nodes: ["n1"], seconds: 1, exit: 1,
                         failure: Failure(category: .exitCode, message: "1")), taskState: .active)
        try store.record(jobId: "counted", task: single, replica: nil, attempt: attempt(2, nodes: ["n1"], seconds: 1, exit: 0), taskState: .completed)
        XCTAssertEqual(try store.job("counted").map { [$0.tasks, $0.succeeded, $0.failed] }, [2, 1, 0], "a retried success counts once")
        _ = try store.cancelQueued(jobId: "counted")
        let queued = JobSpec(id: "queued", pool: "local", tasks: [single, other])
        _ = try Submission.submit(queued, store: store, pools: PoolStore(stateDirectory: dir), held: false)
        XCTAssertTrue(try store.cancelQueued(jobId: "queued"))
        XCTAssertEqual(try store.job("queued").map { [$0.tasks, $0.succeeded, $0.failed] }, [2, 0, 2], "cancelled while queued: both failed")
        try store.delete(jobId: "queued")
        XCTAssertNil(try store.job("queued"))
        // Submitted again under its id: counted afresh, nothing of the first one's.
        _ = try Submission.submit(queued, store: store, pools: PoolStore(stateDirectory: dir), held: false)
        XCTAssertEqual(try store.job("queued").map { [$0.tasks, $0.succeeded, $0.failed] }, [2, 0, 0])
        // The counts agree with the tasks themselves, job by job.
        for summary in try store.jobs() {
            let tasks = try store.tasks(jobId: summary.id)
            XCTAssertEqual([summary.tasks, summary.succeeded, summary.failed],
                           [tasks.count, tasks.filter { $0.result == .success }.count, tasks.filter { $0.result == .failure }.count], summary.id)
        }
    }

    func testTheDatabaseIsInWALModeWithItsSchemaVersioned() throws {
        let dir = directory()
        _ = try JobStore(stateDirectory: dir)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/cohort.sqlite"))
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sqlite.arguments = ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('pragma journal_mode').fetchone()[0]); print([r[0] for r in c.execute('select identifier from grdb_migrations')])", "\(dir)/cohort.sqlite"]
        let pipe = Pipe()
        sqlite.standardOutput = pipe
        try sqlite.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sqlite.waitUntilExit()
        XCTAssertEqual(output, "wal\n['v1: jobs, tasks, attempts, events', 'v2: the process that runs a job', 'v3: pools', 'v4: which jobs the service owns', 'v5: disabled jobs', \"v6: each job's task counts\"]\n")
    }
}

final class PoolStoreTests: XCTestCase {
    func testPoolsRoundTripAndLocalIsBuiltInUntilChanged() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-pools-\(UUID().uuidString)").path
        let store = PoolStore(stateDirectory: dir)
        XCTAssertFalse(store.isStored("local"))
        XCTAssertEqual(try store.load("local").nodes.count, 4, "built in")
        XCTAssertThrowsError(try store.load("cluster")) { XCTAssertTrue("\($0)".contains("unknown pool 'cluster' (known: local)")) }
        var cluster = Pool.fromHosts(name: "cluster", entries: [HostEntry(host: "n1", slots: 4), HostEntry(host: "n2", user: "hpc", slots: 8)])
        cluster.pricePerNodeHour = 1.25
        try store.save(cluster)
        XCTAssertEqual(try store.load("cluster"), cluster)
        try store.update("local") { $0.nodes[1].state = .offline }
        XCTAssertTrue(store.isStored("local"), "a drain stores the local pool")
        XCTAssertEqual(try store.list().map(\.name), ["cluster", "local"])
        try store.remove("cluster")
        XCTAssertThrowsError(try store.remove("cluster"))
        XCTAssertThrowsError(try store.load("bad name"))
    }

    func testConcurrentUpdatesFromTwoStoresLoseNothing() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-pools-\(UUID().uuidString)").path
        try PoolStore(stateDirectory: dir).save(Pool.fromHosts(name: "p", entries: [HostEntry(host: "a", slots: 1), HostEntry(host: "b", slots: 1)]))
        let group = DispatchGroup()
        for (index, key) in ["a", "b"].enumerated() {
            group.enter()
            Thread {
                let store = PoolStore(stateDirectory: dir)  // as two cohort processes would
                for round in 0..<40 {
                    try? store.update("p") { pool in pool.nodes[index].attributes[key] = String(round) }
                }
                group.leave()
            }.start()
        }
        group.wait()
        let pool = try PoolStore(stateDirectory: dir).load("p")
        XCTAssertEqual(pool.nodes[0].attributes["a"], "39")
        XCTAssertEqual(pool.nodes[1].attributes["b"], "39")
    }
}

final class StateDatabaseRaceTests: XCTestCase {
    /// Many processes' worth of opens racing to create one database: all must succeed.
    func testConcurrentFirstOpensAllSucceed() throws {
        for _ in 0..<5 {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-race-\(UUID().uuidString)").path
            let group = DispatchGroup()
            let failures = NSLock()
            nonisolated(unsafe) var errors: [String] = []
            for _ in 0..<6 {
                group.enter()
                Thread {
                    do { _ = try JobStore(stateDirectory: dir).jobs() } catch {
                        failures.lock(); errors.append("\(error)"); failures.unlock()
                    }
                    group.leave()
                }.start()
            }
            group.wait()
            XCTAssertEqual(errors, [])
        }
    }
}

/// Issue 9, bug 4: the runner persisted whole node values, so a drain made a moment earlier
/// was undone by the runner's stale copy.
final class NodeChangeTests: XCTestCase {
    func testRunnerChangesNeverUndoADrain() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-nodes-\(UUID().uuidString)").path
        let store = PoolStore(stateDirectory: directory)
        try store.save(Pool.fromHosts(name: "c", entries: [HostEntry(host: "n1"), HostEntry(host: "n2")]))
        try store.update("c") { pool in pool.nodes[0].state = .offline; pool.nodes[0].stateReason = "bad DIMM" }
        // The runner, which still saw n1 idle, finds it lost and leaves a sweep pending there.
        try store.apply(.unusable(reason: "node lost"), node: "n1", pool: "c")
        try store.apply(.sweepPending("s.j.t.a1"), node: "n1", pool: "c")
        try store.apply(.unusable(reason: "unreachable"), node: "n2", pool: "c")
        var nodes = try store.load("c").nodes
        XCTAssertEqual(nodes[0].state, .offline, "the admin's drain stands")
        XCTAssertEqual(nodes[0].stateReason, "bad DIMM")
        XCTAssertEqual(nodes[0].pendingSweeps, ["s.j.t.a1"])
        XCTAssertEqual(nodes[1].state, .unusable)
        XCTAssertEqual(nodes[1].stateReason, "unreachable")
        // Another runner's pending sweep is kept when one is done.
        try store.apply(.sweepPending("s.k.t.a1"), node: "n1", pool: "c")
        try store.apply(.swept(["s.j.t.a1"]), node: "n1", pool: "c")
        nodes = try store.load("c").nodes
        XCTAssertEqual(nodes[0].pendingSweeps, ["s.k.t.a1"])
        try store.apply(.swept(["s.k.t.a1"]), node: "n1", pool: "c")
        XCTAssertNil(try store.load("c").nodes[0].pendingSweeps)
    }
}
