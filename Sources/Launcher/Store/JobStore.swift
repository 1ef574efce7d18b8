import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// Jobs, tasks and every attempt of every task, kept in SQLite (WAL mode, versioned
/// migrations) in the state directory: `cohort.sqlite`. What `cohort job`, `cohort task`,
/// `cohort logs` and `cohort usage` read, and what outlives the process that ran the job.
public final class JobStore: @unchecked Sendable {
    let database: DatabasePool
    public let path: String
    private let submissionsLock = NSLock()
    private var submissionQueue: SubmissionQueue?

    public struct StoreError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Opens (creating and migrating if needed) the store at `<stateDirectory>/cohort.sqlite`.
    public init(stateDirectory: String) throws {
        (database, path) = try StateDatabase.open(stateDirectory: stateDirectory)
    }

    /// A write transaction, timed (`cohort_store_write_seconds`: the wait for SQLite's one
    /// writer included, which is what slows the controller).
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { EngineMetrics.storeWriteTook(seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        return try StateDatabase.namingDamage(path) { try database.write(body) }
    }

    /// Reads every page of the store through SQLite's integrity check (`cohort serve`, at its
    /// start); a damaged file is named.
    public func checkWholeFile() throws { try StateDatabase.checkWholeFile(database, path: path) }

    /// A read, naming a damaged file (see `StateDatabase.namingDamage`).
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try StateDatabase.namingDamage(path) { try database.read(body) }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }()

    static func json<T: Encodable>(_ value: T) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }

    /// A typed value read back from a column; a value no version of Cohort writes is named, not guessed.
    static func stored<T: RawRepresentable>(_ type: T.Type, _ raw: String, column: String) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: raw) else { throw StoreError(description: "the store holds '\(raw)' in \(column), which is not a \(T.self)") }
        return value
    }

    // MARK: - Writing

    /// Records a job about to run in this process (take its id from `availableId`). Nothing
    /// stored is ever replaced: an id already there is an error.
    @discardableResult
    /// The job should carry its incarnation already (the runner names its directories by it).
    public func begin(_ job: JobSpec, units: [(task: String, replica: Int?)]) throws -> String {
        var job = job
        if job.incarnation == nil { job.incarnation = JobSpec.newIncarnation() }
        return try write { db in
            if try Self.exists(db, job.id) {
                throw StoreError(description: "a job with the id '\(job.id)' is already stored")
            }
            try Self.insert(db, job, units: units, runner: getpid())
            return job.id
        }
    }

    /// Queues a job for `cohort serve` (state active) under its id, or id-2, id-3… if taken;
    /// returns the id it got.
    /// `held`: disabled until `setHeld(false)` (Azure's disabled job).
    public func submit(_ spec: JobSpec, units: [(task: String, replica: Int?)], held: Bool = false) throws -> String {
        try write { db in try Self.submit(db, spec, units: units, held: held) }
    }

    static func submit(_ db: Database, _ spec: JobSpec, units: [(task: String, replica: Int?)], held: Bool) throws -> String {
        var job = spec
        job.id = try freeId(db, spec.id)
        job.incarnation = JobSpec.newIncarnation()
        try insert(db, job, units: units, runner: nil)
        if held { try db.execute(sql: "UPDATE job SET held = 1 WHERE id = ?", arguments: [job.id]) }
        if let after = job.afterJobs, !after.isEmpty {
            let what = after.map { "\($0.job) (\($0.condition.rawValue))" }.joined(separator: ", ")
            try note(db, job.id, .waiting, "waits for job \(what) to end")
        }
        return job.id
    }

    /// The store's group-commit queue for submissions (made on first use).
    public var submissions: SubmissionQueue {
        submissionsLock.lock()
        defer { submissionsLock.unlock() }
        if let queue = submissionQueue { return queue }
        let queue = SubmissionQueue(store: self)
        submissionQueue = queue
        return queue
    }

    /// Disables (holds) or enables a job that has not completed; returns its state after.
    public func setHeld(jobId: String, _ held: Bool) throws -> JobState {
        try write { db in
            guard let stored = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [jobId]) else {
                throw StoreError(description: "no job '\(jobId)' is stored")
            }
            let state = JobState(rawValue: stored) ?? .active
            guard state.canBeHeld else { throw StoreError(description: "job \(jobId) is \(state.rawValue)") }
            try db.execute(sql: "UPDATE job SET held = ? WHERE id = ?", arguments: [held ? 1 : 0, jobId])
            try Self.note(db, jobId, held ? .disabled : .enabled, "job \(jobId) \(held ? "disabled" : "enabled")")
            return held ? .disabled : state
        }
    }

    /// Adds to a job's history (the `event` table), the one place its rows are written.
    static func note(_ db: Database, _ jobId: String, _ kind: JobEventKind, _ message: String, at time: Double = Date().timeIntervalSince1970) throws {
        try db.execute(sql: "INSERT INTO event (time, job_id, kind, message) VALUES (?, ?, ?, ?)", arguments: [time, jobId, kind.rawValue, message])
    }

    static func exists(_ db: Database, _ id: String) throws -> Bool {
        try Int.fetchOne(db, sql: "SELECT 1 FROM job WHERE id = ?", arguments: [id]) != nil
    }

    /// A job row, its task rows and an event: running under `runner`, or queued without one.
    static func insert(_ db: Database, _ job: JobSpec, units: [(task: String, replica: Int?)], runner: Int32?) throws {
        let now = Date().timeIntervalSince1970
        try db.execute(sql: "INSERT INTO job (id, pool, priority, state, spec, submitted, started, runner_pid, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       arguments: [job.id, job.pool, job.priority, runner == nil ? "active" : "running", try json(job), now,
                                   runner == nil ? nil : now, runner.map { Int($0) }, runner == nil ? "submit" : "run"])
        for unit in units {
            try db.execute(sql: "INSERT INTO task (job_id, task_id, replica, state) VALUES (?, ?, ?, 'active')",
                           arguments: [job.id, unit.task, unit.replica ?? -1])
        }
        // Its counts in one row (triggers keep them as results come; see migration v6).
        try db.execute(sql: "INSERT OR REPLACE INTO job_counts (job_id, tasks) VALUES (?, ?)", arguments: [job.id, units.count])
        let message = runner == nil ? "job \(job.id) submitted to pool \(job.pool)" : "job \(job.id) started on pool \(job.pool)"
        try note(db, job.id, runner == nil ? .submitted : .started, message, at: now)
    }

    /// A queued job taken by the service; `resumed` if a server ran it before (it crashed):
    /// then its stored tasks say what is already done.
    public struct Claimed: Sendable {
        public var spec: JobSpec
        public var resumed: Bool
        /// When it first started (now, unless resumed).
        public var started: Date
    }

    /// Takes every queued job for this process, highest priority first, then oldest: they
    /// become running, with this process as their runner.
    /// `skipping`: pools another process holds now (their jobs stay queued). Jobs whose
    /// dependencies ended otherwise than they ask end unrun here: `endedUnrun` names them.
    public func claimActive(skipping pools: Set<String> = []) throws -> (claimed: [Claimed], endedUnrun: [String]) {
        let now = Date().timeIntervalSince1970
        let skipped = pools.sorted()
        let notSkipped = skipped.isEmpty ? "" : " AND pool NOT IN (\(skipped.map { _ in "?" }.joined(separator: ", ")))"
        return try write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, spec, started FROM job WHERE state = 'active' AND held = 0\(notSkipped) ORDER BY priority DESC, submitted, rowid",
                                        arguments: StatementArguments(skipped))
            var claimed: [Claimed] = [], endedUnrun: [String] = []
            for row in rows {
                let spec = try Self.decoder.decode(JobSpec.self, from: Data((row["spec"] as String).utf8))
                // A job that waits for others stays queued until they have ended, and
                // ends unrun if they ended otherwise than it asks.
                switch try Self.dependencies(db, spec.afterJobs ?? []) {
                case .waiting: continue
                case .unsatisfied(let reason):
                    try Self.endUnrun(db, jobId: row["id"], failure: Failure(category: .dependencyFailed, message: reason), kind: .dependency)
                    endedUnrun.append(row["id"])
                    continue
                case .satisfied: break
                }
                try db.execute(sql: "UPDATE job SET state = 'running', started = COALESCE(started, ?), runner_pid = ? WHERE id = ?",
                               arguments: [now, Int(getpid()), row["id"] as String])
                let started = row["started"] as Double?
                claimed.append(Claimed(spec: spec, resumed: started != nil, started: Date(timeIntervalSince1970: started ?? now)))
            }
            return (claimed, endedUnrun)
        }
    }

    enum DependencyState: Equatable { case satisfied, waiting, unsatisfied(String) }

    /// Whether the jobs waited for have all ended as asked.
    static func dependencies(_ db: Database, _ after: [JobDependency]) throws -> DependencyState {
        var waiting = false
        for dependency in after {
            guard let row = try Row.fetchOne(db, sql: """
                SELECT job.state, SUM(task.result IS NOT 'success') AS unsuccessful
                FROM job LEFT JOIN task ON task.job_id = job.id WHERE job.id = ? GROUP BY job.id
                """, arguments: [dependency.job])
            else { return .unsatisfied("job \(dependency.job), which it waits for (\(dependency.condition.rawValue)), is no longer stored") }
            guard (row["state"] as String) == JobState.completed.rawValue else { waiting = true; continue }
            let succeeded = (row["unsuccessful"] as Int? ?? 0) == 0
            if !dependency.isSatisfied(succeeded: succeeded) {
                return .unsatisfied("job \(dependency.job) \(succeeded ? "succeeded" : "did not succeed"); this job waited for it with \(dependency.condition.rawValue)")
            }
        }
        return waiting ? .waiting : .satisfied
    }

    /// Why a job that waits for `after` cannot start now (one has not ended, or ended
    /// otherwise than asked), or nil: `cohort run`, which does not wait, asks.
    public func unmetDependency(_ after: [JobDependency]) throws -> String? {
        try read { db in
            for dependency in after {
                switch try Self.dependencies(db, [dependency]) {
                case .satisfied: continue
                case .waiting: return "job \(dependency.job) has not ended yet"
                case .unsatisfied(let reason): return reason
                }
            }
            return nil
        }
    }

    /// Whether `after`'s jobs are stored (a job may wait only for one that exists).
    public func missingJobs(_ after: [JobDependency]) throws -> [String] {
        try read { db in try after.map(\.job).filter { try !Self.exists(db, $0) } }
    }

    /// Puts a job this server claimed but cannot start now back in the queue, as if never
    /// claimed (its pool is in use by a `cohort run`).
    public func unclaim(jobId: String) throws {
        try write { db in
            try db.execute(sql: """
                UPDATE job SET state = 'active', runner_pid = NULL,
                       started = CASE WHEN EXISTS (SELECT 1 FROM attempt WHERE job_id = job.id) THEN started ELSE NULL END
                WHERE id = ? AND state = 'running'
                """, arguments: [jobId])
        }
    }

    /// Service jobs marked running by a server other than this process: what a restarted
    /// server must reconcile before it takes new work. Only the holder of the service lock
    /// may ask (then no other server lives; its pid may still show as a zombie for a moment).
    public func orphanedServiceJobs() throws -> [(spec: JobSpec, terminating: Bool)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT spec, state, runner_pid FROM job WHERE state IN ('running', 'terminating') AND origin = 'submit'").compactMap { row in
                if let pid = row["runner_pid"] as Int?, Int32(pid) == getpid() { return nil }
                return (try Self.decoder.decode(JobSpec.self, from: Data((row["spec"] as String).utf8)), (row["state"] as String) == "terminating")
            }
        }
    }

    /// Puts an orphaned job back in the queue with the attempts its dead server left
    /// unrecorded (their results read from disk, or marked interrupted).
    public func requeue(jobId: String, recovered: [(task: TaskSpec, replica: Int?, attempt: Attempt, taskState: TaskState)], message: String) throws {
        try write { db in
            for (task, replica, attempt, taskState) in recovered {
                try Self.insert(db, jobId: jobId, task: task, replica: replica, attempt: attempt, taskState: taskState)
            }
            try db.execute(sql: "UPDATE job SET state = 'active', runner_pid = NULL WHERE id = ?", arguments: [jobId])
            try Self.note(db, jobId, .recovered, message)
        }
    }

    /// Ends a queued job that can never run, with the reason on each task.
    public func reject(jobId: String, reason: String) throws {
        try write { db in try Self.endUnrun(db, jobId: jobId, failure: Failure(category: .rejected, message: reason), kind: .rejected) }
    }

    /// Ends a queued job without running it: every task fails with `failure`; an event says why.
    static func endUnrun(_ db: Database, jobId: String, failure: Failure, kind: JobEventKind) throws {
        let now = Date().timeIntervalSince1970
        try db.execute(sql: "UPDATE task SET state = 'completed', result = 'failure', failure = ? WHERE job_id = ?", arguments: [try json(failure), jobId])
        try db.execute(sql: "UPDATE job SET state = 'completed', finished = ? WHERE id = ?", arguments: [now, jobId])
        try note(db, jobId, kind, failure.message, at: now)
    }

    /// `base`, or `base-2`, `base-3`… whichever is not stored yet.
    public func availableId(_ base: String) throws -> String {
        try read { db in try Self.freeId(db, base) }
    }

    /// `base`, or `base-2`, `base-3`… the first not stored; at most 64 characters, as every id
    /// (the base gives way to the suffix).
    static func freeId(_ db: Database, _ base: String) throws -> String {
        var id = base, suffix = 1
        while try exists(db, id) {
            suffix += 1
            let tail = "-\(suffix)"
            id = String(base.prefix(64 - tail.count)) + tail
        }
        return id
    }

    /// Records one finished attempt and its task's state.
    public func record(jobId: String, task: TaskSpec, replica: Int?, attempt: Attempt, taskState: TaskState) throws {
        try record(jobId: jobId, [(task, replica, attempt, taskState)])
    }

    /// Records finished attempts in one transaction.
    public func record(jobId: String, _ batch: [(task: TaskSpec, replica: Int?, attempt: Attempt, taskState: TaskState)]) throws {
        try write { db in
            for (task, replica, attempt, taskState) in batch {
                try Self.insert(db, jobId: jobId, task: task, replica: replica, attempt: attempt, taskState: taskState)
            }
        }
    }

    static func insert(_ db: Database, jobId: String, task: TaskSpec, replica: Int?, attempt: Attempt, taskState: TaskState) throws {
        let cores = task.multiInstance?.ranks ?? 1
            try db.execute(sql: """
                INSERT OR REPLACE INTO attempt (job_id, task_id, replica, number, nodes, node_count, cores, exit_code, start, end, directory, record)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [jobId, task.id, replica ?? -1, attempt.number, try Self.json(attempt.nodes), attempt.nodes.count, cores,
                                 attempt.exitCode.map { Int($0) }, attempt.start.timeIntervalSince1970, attempt.end?.timeIntervalSince1970,
                                 attempt.directory, try Self.json(attempt)])
            try db.execute(sql: "UPDATE task SET state = ?, result = ?, failure = ? WHERE job_id = ? AND task_id = ? AND replica = ?",
                           arguments: [taskState.rawValue, taskState == .completed ? TaskResult(succeeded: attempt.succeeded).rawValue : nil,
                                       try attempt.failure.map(Self.json), jobId, task.id, replica ?? -1])
    }

    /// Records attempts as they finish, off the caller's thread, a batch per transaction:
    /// the scheduler never waits for the disk.
    public final class Recorder: @unchecked Sendable {
        let store: JobStore
        let jobId: String
        let queue = DispatchQueue(label: "cohort.store.recorder")
        let lock = NSLock()
        var pending: [(task: TaskSpec, replica: Int?, attempt: Attempt, taskState: TaskState)] = []
        var scheduled = false
        var failure: Error?
        public private(set) var lastError: Error?
        /// Told when writing starts failing (the error) and when it works again (nil).
        public var onFailure: (@Sendable (Error?) -> Void)?

        public init(store: JobStore, jobId: String) {
            self.store = store
            self.jobId = jobId
        }

        public func add(_ task: TaskSpec, _ replica: Int?, _ attempt: Attempt, _ state: TaskState) {
            lock.lock()
            pending.append((task, replica, attempt, state))
            let start = !scheduled
            scheduled = true
            lock.unlock()
            if start { queue.async { self.flush() } }
        }

        /// Writes what waits, in one transaction; if that fails (disk full, read-only), keeps
        /// it, in order, and tries again every second until it is written: nothing is dropped.
        func flush() {
            lock.lock()
            let batch = pending
            pending.removeAll()
            scheduled = false
            lock.unlock()
            guard !batch.isEmpty else { return }
            do {
                try store.record(jobId: jobId, batch)
                lock.lock(); let recovered = failure != nil; failure = nil; lock.unlock()
                if recovered { onFailure?(nil) }
            } catch {
                lastError = error
                lock.lock()
                pending.insert(contentsOf: batch, at: 0)
                let first = failure == nil
                failure = error
                let retry = !scheduled
                scheduled = true
                lock.unlock()
                if first { onFailure?(error) }
                if retry { queue.asyncAfter(deadline: .now() + 1) { self.flush() } }
            }
        }

        /// Tries to write everything added so far, and waits for that try.
        public func drain() { queue.sync { flush() } }

        /// Whether something added is not written yet (a write failed).
        public var isBehind: Bool { lock.lock(); defer { lock.unlock() }; return !pending.isEmpty }
    }

    /// Records the end of a job with every task's final state (including tasks that never ran).
    public func finish(_ run: JobRun) throws {
        try write { db in
            for task in run.tasks {
                try db.execute(sql: "UPDATE task SET state = 'completed', result = ?, failure = ? WHERE job_id = ? AND task_id = ? AND replica = ?",
                               arguments: [TaskResult(succeeded: task.succeeded).rawValue, try task.failure.map(Self.json), run.jobId, task.taskId, task.replica ?? -1])
            }
            try db.execute(sql: "UPDATE job SET state = 'completed', finished = ? WHERE id = ?", arguments: [run.end.timeIntervalSince1970, run.jobId])
            for nodeTask in run.nodeTasks {
                let outcome = nodeTask.failure?.message ?? "succeeded in \(String(format: "%.2f", nodeTask.end.timeIntervalSince(nodeTask.start))) s"
                try Self.note(db, run.jobId, JobEventKind(nodeTask.kind), "job \(nodeTask.kind.rawValue) task on node \(nodeTask.node): \(outcome) (output in \(nodeTask.directory))",
                              at: nodeTask.end.timeIntervalSince1970)
            }
            let (ok, failed) = run.counts
            try Self.note(db, run.jobId, .completed, "job \(run.jobId): \(ok) succeeded, \(failed) failed", at: run.end.timeIntervalSince1970)
        }
    }

    /// Ends a job no server has taken yet: its tasks never run. False if a server took it.
    public func cancelQueued(jobId: String) throws -> Bool {
        let failure = try Self.json(Failure(category: .cancelled, message: "the job was cancelled before this task started"))
        let now = Date().timeIntervalSince1970
        return try write { db in
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [jobId]) else {
                throw StoreError(description: "no job '\(jobId)' is stored")
            }
            guard state == "active" else { return false }
            try db.execute(sql: "UPDATE task SET state = 'completed', result = 'failure', failure = ? WHERE job_id = ? AND state != 'completed'",
                           arguments: [failure, jobId])
            try db.execute(sql: "UPDATE job SET state = 'completed', finished = ? WHERE id = ?", arguments: [now, jobId])
            try Self.note(db, jobId, .cancelled, "job \(jobId) cancelled before it started", at: now)
            return true
        }
    }

    /// A running job being cancelled: `terminating` until its server records the end.
    public func markTerminating(jobId: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE job SET state = 'terminating' WHERE id = ? AND state = 'running'", arguments: [jobId])
            try Self.note(db, jobId, .terminating, "job \(jobId) is being cancelled")
        }
    }

    public func delete(jobId: String) throws {
        try write { db in
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [jobId]) else {
                throw StoreError(description: "no job '\(jobId)' is stored")
            }
            // A running job's runner still records into it: it must end first.
            guard state != "running" && state != "terminating" else {
                throw StoreError(description: "job \(jobId) is \(state): cancel it first (cohort job cancel \(jobId))")
            }
            try db.execute(sql: "DELETE FROM attempt WHERE job_id = ?", arguments: [jobId])
            try db.execute(sql: "DELETE FROM task WHERE job_id = ?", arguments: [jobId])
            try db.execute(sql: "DELETE FROM job_counts WHERE job_id = ?", arguments: [jobId])
            try db.execute(sql: "DELETE FROM event WHERE job_id = ?", arguments: [jobId])
            try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [jobId])
        }
    }

    // MARK: - Reading

    public struct JobSummary: Codable, Sendable, Equatable {
        public var id: String
        public var pool: String
        public var state: JobState
        public var submitted: Date
        public var finished: Date?
        public var tasks: Int
        public var succeeded: Int
        public var failed: Int
    }

    /// One job's summary, or nil if none has the id.
    public func job(_ id: String) throws -> JobSummary? {
        try jobs(id: id).first
    }

    /// Every job's summary (or just `id`'s), oldest first.
    /// How many jobs are in each state (one indexed-free pass over the job table, not the tasks).
    public func jobCounts() throws -> [JobState: Int] {
        try read { db in
            var counts: [JobState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM job GROUP BY state") {
                if let state = JobState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    public func jobs(id: String? = nil) throws -> [JobSummary] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT job.id, job.pool, CASE WHEN job.held = 1 AND job.state IN ('active', 'running') THEN 'disabled' ELSE job.state END AS state,
                       job.submitted, job.finished,
                       COALESCE(job_counts.tasks, 0) AS tasks, job_counts.succeeded AS succeeded, job_counts.failed AS failed
                FROM job LEFT JOIN job_counts ON job_counts.job_id = job.id
                \(id == nil ? "" : "WHERE job.id = ?")
                ORDER BY job.submitted, job.rowid
                """, arguments: StatementArguments(id.map { [$0] } ?? [])).map { row in
                JobSummary(id: row["id"], pool: row["pool"], state: JobState(rawValue: row["state"]) ?? .active, submitted: Date(timeIntervalSince1970: row["submitted"]),
                           finished: (row["finished"] as Double?).map(Date.init(timeIntervalSince1970:)),
                           tasks: row["tasks"], succeeded: row["succeeded"] ?? 0, failed: row["failed"] ?? 0)
            }
        }
    }

    /// An attempt running now: recorded as started, not yet as ended, in a job that runs.
    public struct RunningAttempt: Codable, Sendable {
        public var jobId: String
        public var pool: String
        public var taskId: String
        public var replica: Int?
        public var attempt: Int
        public var nodes: [String]
        /// Slots it holds on each of its nodes (ranks per node; 1 for an independent task).
        public var slotsPerNode: Int
        public var start: Date
        /// The process that runs its job (`cohort run` or `cohort serve`), and whether it lives.
        public var runnerPid: Int32?
        public var runnerAlive: Bool
        public var displayTaskId: String { replica.map { "\(taskId)[\($0)]" } ?? taskId }
    }

    /// What runs now, oldest first (`cohort ps`, `cohort node list`); `pool` narrows it.
    public func runningAttempts(pool: String? = nil) throws -> [RunningAttempt] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT attempt.job_id, job.pool, job.runner_pid, attempt.task_id, attempt.replica, attempt.number, attempt.nodes,
                       attempt.node_count, attempt.cores, attempt.start
                FROM attempt JOIN job ON job.id = attempt.job_id
                WHERE attempt.end IS NULL AND job.state IN ('running', 'terminating') AND (? IS NULL OR job.pool = ?)
                ORDER BY attempt.start
                """, arguments: [pool, pool])
            return try rows.map { row in
                let pid: Int? = row["runner_pid"]
                let nodes = try JSONDecoder().decode([String].self, from: Data((row["nodes"] as String).utf8))
                let replica: Int = row["replica"]
                return RunningAttempt(jobId: row["job_id"], pool: row["pool"], taskId: row["task_id"], replica: replica < 0 ? nil : replica,
                                      attempt: row["number"], nodes: nodes, slotsPerNode: max(1, (row["cores"] as Int) / max(1, row["node_count"] as Int)),
                                      start: Date(timeIntervalSince1970: row["start"]), runnerPid: pid.map(Int32.init),
                                      runnerAlive: pid.map { kill(Int32($0), 0) == 0 || errno == EPERM } ?? false)
            }
        }
    }

    public struct TaskRecord: Codable, Sendable {
        public var taskId: String
        public var replica: Int?
        public var state: TaskState
        public var result: TaskResult?
        public var failure: Failure?
        public var attempts: [Attempt]
        /// Why it has not started, if it waits (told by the running server; not stored).
        public var waiting: String?
        public var displayId: String { replica.map { "\(taskId)[\($0)]" } ?? taskId }
    }

    /// The tasks of `jobId` with every attempt, in submission order.
    public func tasks(jobId: String) throws -> [TaskRecord] {
        try read { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM job WHERE id = ?", arguments: [jobId]) != nil else {
                throw StoreError(description: "no job '\(jobId)' is stored")
            }
            let attempts = try Row.fetchAll(db, sql: "SELECT task_id, replica, record FROM attempt WHERE job_id = ? ORDER BY number", arguments: [jobId])
            var byUnit: [String: [Attempt]] = [:]
            for row in attempts {
                let key = "\(row["task_id"] as String)#\(row["replica"] as Int)"
                byUnit[key, default: []].append(try Self.decoder.decode(Attempt.self, from: Data((row["record"] as String).utf8)))
            }
            return try Row.fetchAll(db, sql: "SELECT task_id, replica, state, result, failure FROM task WHERE job_id = ? ORDER BY rowid", arguments: [jobId]).map { row in
                let replica: Int = row["replica"]
                let failure = try (row["failure"] as String?).map { try Self.decoder.decode(Failure.self, from: Data($0.utf8)) }
                let state = try Self.stored(TaskState.self, row["state"], column: "task.state")
                let result = try (row["result"] as String?).map { try Self.stored(TaskResult.self, $0, column: "task.result") }
                return TaskRecord(taskId: row["task_id"], replica: replica < 0 ? nil : replica, state: state, result: result,
                                  failure: failure, attempts: byUnit["\(row["task_id"] as String)#\(replica)"] ?? [])
            }
        }
    }

    /// The pid of the process running `jobId`, while it runs.
    public func runnerPid(jobId: String) throws -> Int32? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT state, runner_pid FROM job WHERE id = ?", arguments: [jobId]) else {
                throw StoreError(description: "no job '\(jobId)' is stored")
            }
            guard (row["state"] as String) == "running", let pid = row["runner_pid"] as Int? else { return nil }
            return Int32(pid)
        }
    }

    public struct Event: Codable, Sendable {
        public var time: Date
        public var kind: JobEventKind
        public var message: String
    }

    /// What happened to a job, oldest first: submitted, started, recovered, cancelled, completed.
    public func events(jobId: String) throws -> [Event] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT time, kind, message FROM event WHERE job_id = ? ORDER BY id", arguments: [jobId]).map { row in
                Event(time: Date(timeIntervalSince1970: row["time"]), kind: try Self.stored(JobEventKind.self, row["kind"], column: "event.kind"), message: row["message"])
            }
        }
    }

    /// `submit` for a job of the service, `run` for one a `cohort run` process runs.
    public func origin(jobId: String) throws -> String {
        try read { db in
            guard let origin = try String.fetchOne(db, sql: "SELECT origin FROM job WHERE id = ?", arguments: [jobId]) else {
                throw StoreError(description: "no job '\(jobId)' is stored")
            }
            return origin
        }
    }

    /// A job's state and its tasks' counts.
    public func progress(jobId: String) throws -> (state: JobState, done: Int, failed: Int, total: Int) {
        try read { db in
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [jobId]).map({ JobState(rawValue: $0) ?? .active }) else {
                throw StoreError(description: "no job '\(jobId)' is stored")
            }
            let row = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS total, SUM(state = 'completed') AS done, SUM(result = 'failure') AS failed FROM task WHERE job_id = ?",
                                       arguments: [jobId])!
            return (state, row["done"] ?? 0, row["failed"] ?? 0, row["total"])
        }
    }

    public func spec(jobId: String) throws -> JobSpec {
        try read { db in
            guard let text = try String.fetchOne(db, sql: "SELECT spec FROM job WHERE id = ?", arguments: [jobId]) else {
                throw StoreError(description: "no job '\(jobId)' is stored")
            }
            return try Self.decoder.decode(JobSpec.self, from: Data(text.utf8))
        }
    }

    // MARK: - Usage

    /// `day`: per UTC day and pool, keyed `2026-11-26/local` (the dashboard's chart).
    public enum Grouping: String, CaseIterable, Sendable { case job, pool, task, day }

    public struct UsageRow: Codable, Sendable, Equatable {
        public var key: String
        public var attempts: Int
        /// Nodes × seconds held, and cores (ranks or slots) × seconds.
        public var nodeSeconds: Double
        public var coreSeconds: Double
        /// From the pool's price per node-hour, where it has one.
        public var cost: Double?
    }

    /// Node- and core-seconds of attempts that started since `since`, grouped, with cost from
    /// `prices` (pool name → price per node-hour), in the spirit of Slurm's sacct.
    public func usage(since: Date = .distantPast, by grouping: Grouping, prices: [String: Double]) throws -> [UsageRow] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT attempt.job_id, attempt.task_id, job.pool, attempt.node_count, attempt.cores, attempt.start,
                       COALESCE(attempt.end, attempt.start) - attempt.start AS seconds
                FROM attempt JOIN job ON job.id = attempt.job_id
                WHERE attempt.start >= ?
                """, arguments: [since.timeIntervalSince1970])
            var totals: [String: UsageRow] = [:]
            var order: [String] = []
            for row in rows {
                let pool: String = row["pool"]
                let key: String
                switch grouping {
                case .job: key = row["job_id"]
                case .pool: key = pool
                case .task: key = "\(row["job_id"] as String)/\(row["task_id"] as String)"
                case .day: key = "\(Self.utcDay(Date(timeIntervalSince1970: row["start"])))/\(pool)"
                }
                let seconds: Double = row["seconds"]
                let nodes = Double(row["node_count"] as Int), cores = Double(row["cores"] as Int)
                if totals[key] == nil { order.append(key); totals[key] = UsageRow(key: key, attempts: 0, nodeSeconds: 0, coreSeconds: 0, cost: 0) }
                totals[key]!.attempts += 1
                totals[key]!.nodeSeconds += nodes * seconds
                totals[key]!.coreSeconds += cores * seconds
                if let price = prices[pool], let cost = totals[key]!.cost {
                    totals[key]!.cost = cost + nodes * seconds / 3600 * price
                } else {
                    totals[key]!.cost = nil  // some of it ran where no price is set
                }
            }
            return order.map { totals[$0]! }
        }
    }

    /// `2026-11-26`: the day (UTC) `date` falls on; an attempt's usage counts on the day it started.
    public static func utcDay(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }
}

extension JobStore {
    /// Group commit for submissions arriving at once (the API under load): one writer
    /// thread takes every waiting submission into one transaction, so a thousand jobs cost a
    /// few commits, not a thousand. Each caller gets its own id or error back.
    public final class SubmissionQueue: @unchecked Sendable {
        struct Item {
            var spec: JobSpec
            var units: [(task: String, replica: Int?)]
            var held: Bool
            var done: @Sendable (Result<String, Error>) -> Void
        }

        let store: JobStore
        private let condition = NSCondition()
        private var pending: [Item] = []

        init(store: JobStore) {
            self.store = store
            let thread = Thread { [unowned self] in self.writeForever() }
            thread.stackSize = 1 << 20
            thread.start()
        }

        /// Stores the job (as `JobStore.submit`) and returns the id it got.
        public func submit(_ spec: JobSpec, units: [(task: String, replica: Int?)], held: Bool) async throws -> String {
            try await withCheckedThrowingContinuation { continuation in
                condition.lock()
                pending.append(Item(spec: spec, units: units, held: held) { continuation.resume(with: $0) })
                condition.signal()
                condition.unlock()
            }
        }

        private func writeForever() {
            while true {
                condition.lock()
                while pending.isEmpty { condition.wait() }
                let batch = pending
                pending.removeAll()
                condition.unlock()
                do {
                    let ids = try store.write { db in
                        try batch.map { item in try JobStore.submit(db, item.spec, units: item.units, held: item.held) }
                    }
                    for (item, id) in zip(batch, ids) { item.done(.success(id)) }
                } catch {
                    for item in batch { item.done(.failure(error)) }
                }
            }
        }
    }
}
