import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a restarted `cohort serve` does first about jobs its dead predecessor was running:
/// attempts still running under a parent that outlived the server (cohort-spawner here, a
/// node's agent there) are adopted — left running, their records kept open, watched to
/// their ends by the new server (`AttemptExecutor.adopt`); whatever else is left of the jobs'
/// attempts is ended on every node; the attempts that finished unrecorded (their parent
/// left their `exit-status`) are recorded, the others marked interrupted; and the jobs are
/// queued again. Tasks that succeeded never run again; tasks cut off mid-run run again.
/// An MPI task across remote nodes cannot be adopted (its mpirun reached the other nodes
/// through the dead server's channels), nor anything on Slurm (its sruns died with the server).
public struct Recovery {
    public let store: JobStore
    public let workDirectory: String
    /// The pool a job ran on, to reach its remote nodes; nil if it is gone.
    public let pool: (String) -> Pool?
    public var log: (String) -> Void = { _ in }
    /// The `cohort` executable, whose agents reach the remote nodes.
    public let cohortExecutable: String
    /// Where output files go: an attempt that ended while the server was down may not have
    /// uploaded them (or only some); they are uploaded before it is recorded.
    public var storage = StorageConfiguration.fromEnvironment()

    public init(store: JobStore, workDirectory: String, cohortExecutable: String = ExecutionSettings.currentExecutable,
                pool: @escaping (String) -> Pool?, log: @escaping (String) -> Void = { _ in }) {
        self.store = store
        self.workDirectory = workDirectory
        self.cohortExecutable = cohortExecutable
        self.pool = pool
        self.log = log
    }

    /// Reconciles every orphaned service job; returns their ids.
    @discardableResult
    public func reconcile() throws -> [String] {
        var ids: [String] = []
        for (job, terminating) in try store.orphanedServiceJobs() {
            try reconcile(job)
            // A cancel that was under way is carried out: the job does not run again.
            if terminating { _ = try store.cancelQueued(jobId: job.id) }
            ids.append(job.id)
        }
        return ids
    }

    func reconcile(_ job: JobSpec) throws {
        // 1. Nothing of the job may run on while its attempts are read: kill first, then
        // read, so no attempt can finish between the two.
        // By the job's key in this work tree: another state directory's job of the same id is
        // not this one.
        let settings = ExecutionSettings(workDirectory: workDirectory, cohortExecutable: cohortExecutable)
        // A remote task outlives a dead server on its agent, which writes its end down when
        // this sweep kills it: an end by SIGKILL from now on is this sweep's, not the task's.
        let sweptAt = Date()
        let key = AttemptExecutor.Work.jobKey(stateId: settings.stateId, jobId: job.workKey)
        let records = try store.tasks(jobId: job.id)
        let tasks = Dictionary(uniqueKeysWithValues: job.tasks.map { ($0.id, $0) })
        let adopted = pool(job.pool).map { Self.adoptable(records, tasks: tasks, pool: $0) } ?? [:]
        let spared = adopted.values.compactMap(\.markerId)
        ProcessSweeper.killLocal(variable: ProcessSweeper.jobMarker, values: [key], sparing: spared)
        if let pool = pool(job.pool), pool.kind == .slurm {
            // Its sruns died with the server; Slurm kept their allocations and ranks.
            do {
                let ended = try SlurmClient(options: pool.slurm ?? SlurmOptions()).cancel(jobsNamedWithPrefix: AttemptExecutor.slurmJobName(key) + ".")
                if ended > 0 { log("job \(job.id): cancelled \(ended) Slurm job(s) its attempts left") }
            } catch {
                log("job \(job.id): what it left in Slurm was not cancelled: \(error)")
            }
        } else if let pool = pool(job.pool) {
            let executor = AttemptExecutor(settings: settings, pool: pool)
            defer { executor.agents.close() }
            // Every remote node at once, through agents started for it.
            let remote = pool.nodes.filter { !$0.isLocal && pool.kind != .local }
            let answered = concurrentMap(remote) { executor.sweepRemote(variable: ProcessSweeper.jobMarker, value: key, sparing: spared, node: $0) }
            for (node, ok) in zip(remote, answered) where !ok {
                log("job \(job.id): node \(node.id) did not answer; what the job left there was not ended")
            }
        }
        // 2. Attempts with a directory but no record.
        var recovered: [(task: TaskSpec, replica: Int?, attempt: Attempt, taskState: TaskState)] = []
        var finished = 0, interrupted = 0
        for record in records where record.state != .completed {
            guard let task = tasks[record.taskId] else { continue }
            // Attempts recorded as started but never as ended are unfinished, like directories
            // with no record at all: their end is read from what they left on disk.
            let ended = record.attempts.filter { $0.end != nil }
            let started = Dictionary(record.attempts.filter { $0.end == nil }.map { ($0.number, $0) }) { first, _ in first }
            let known = Set(ended.map(\.number))
            var counted = ended.filter { $0.failure?.category != .interrupted }.count
            // This incarnation's directory only: a deleted job of the same id left its own.
            let unitDirectory = [workDirectory, job.workKey, task.id, record.replica.map { "r\($0)" }].compactMap { $0 }.joined(separator: "/")
            for number in Set(Self.attemptNumbers(in: unitDirectory)).union(started.keys).sorted() where !known.contains(number) {
                // Still running, adopted: its record stays open; the runner watches it.
                if adopted["\(record.taskId)#\(record.replica ?? -1)#\(number)"] != nil { continue }
                let directory = started[number]?.directory ?? "\(unitDirectory)/attempt-\(number)"
                var attempt = Self.attempt(number: number, directory: directory, sweptAt: sweptAt)
                if let begun = started[number] {
                    if attempt.nodes.isEmpty { attempt.nodes = begun.nodes }
                    attempt.markerId = begun.markerId
                    if attempt.failure?.category == .interrupted { attempt.start = begun.start }
                }
                if attempt.failure?.category != .interrupted {
                    counted += 1
                    finished += 1
                    AttemptExecutor.uploadOutputFiles(of: task, nodes: attempt.nodes, directory: directory, attempt: &attempt,
                                                      transfers: TaskFileTransfers(storage: storage, cacheDirectory: "\(workDirectory)/.cache/objects"))
                } else {
                    interrupted += 1
                }
                let done = attempt.succeeded || counted > task.constraints.maxTaskRetryCount
                recovered.append((task, record.replica, attempt, done ? .completed : .active))
                if done { break }
            }
        }
        var message = "server restarted: \(finished) attempt(s) that ended unrecorded were recorded, \(interrupted) cut off by the crash run again"
        if !adopted.isEmpty { message += ", \(adopted.count) still running were adopted" }
        try store.requeue(jobId: job.id, recovered: recovered, message: message)
        log("job \(job.id) recovered: \(message)")
    }

    /// Attempts the server can take over rather than end, keyed `task#replica#number`: started
    /// and not ended, not written down as ended yet, of a task whose processes all hang from
    /// a parent that outlived the server — an independent task (cohort-spawner, or its node's
    /// agent), or any task of a local pool (mpirun and its ranks under cohort-spawner).
    static func adoptable(_ records: [JobStore.TaskRecord], tasks: [String: TaskSpec], pool: Pool) -> [String: Attempt] {
        guard pool.kind != .slurm else { return [:] }
        var adoptable: [String: Attempt] = [:]
        for record in records where record.state != .completed {
            guard let task = tasks[record.taskId], task.multiInstance == nil || pool.kind == .local else { continue }
            for attempt in record.attempts where attempt.end == nil && attempt.markerId != nil && !attempt.nodes.isEmpty
                && ExitStatus(contentsOf: "\(attempt.directory)/\(AttemptExecutor.exitStatusFile)") == nil {
                adoptable["\(record.taskId)#\(record.replica ?? -1)#\(attempt.number)"] = attempt
            }
        }
        return adoptable
    }

    /// The numbers of `attempt-N` directories under a unit's directory, in order.
    static func attemptNumbers(in directory: String) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { $0.hasPrefix("attempt-") ? Int($0.dropFirst("attempt-".count)) : nil }.sorted()
    }

    /// An attempt rebuilt from what it left on disk: its nodes, and how it ended if the task
    /// spawner or the node's agent wrote it down (else it was cut off). A SIGKILL that came
    /// after `sweptAt` (less a second for the nodes' clocks) was the restart's own sweep: cut off too.
    static func attempt(number: Int, directory: String, sweptAt: Date = .distantFuture) -> Attempt {
        let nodes = ((try? String(contentsOfFile: "\(directory)/\(AttemptExecutor.nodesFile)", encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
        let created = (try? FileManager.default.attributesOfItem(atPath: directory)[.modificationDate] as? Date) ?? Date()
        var attempt = Attempt(number: number, nodes: nodes, nodeExitCodes: [:], exitCode: nil, start: created, end: Date(),
                              transport: nil, launchedCommand: [], directory: directory, failure: nil)
        guard let status = ExitStatus(contentsOf: "\(directory)/\(AttemptExecutor.exitStatusFile)"),
              !(status.termination == .signaled(SIGKILL) && status.end >= sweptAt - 1) else {
            attempt.failure = Failure(category: .interrupted, node: nodes.first,
                                      message: "the server stopped while this attempt ran; a restarted server ended its processes and runs it again")
            return attempt
        }
        attempt.start = status.start
        attempt.end = status.end
        attempt.exitCode = status.termination.code
        for node in nodes { attempt.nodeExitCodes[node] = status.termination.code }
        if status.termination != .exited(0) {
            let details = MPIRunReport.lastLines(of: "\(directory)/stderr.txt")
            switch status.termination {
            case .exited(let code):
                attempt.failure = Failure(category: .exitCode, node: nodes.first, message: "the task exited with code \(code) (recorded after a server restart)", details: details)
            case .signaled(let signal):
                attempt.failure = Failure(category: .signal, node: nodes.first, message: "the task was killed by \(signalName(signal)) (recorded after a server restart)", details: details)
            }
        }
        return attempt
    }
}

/// The line `cohort-spawner` writes: `exited CODE START END` or `signaled SIGNAL START END`.
public struct ExitStatus: Equatable, Sendable {
    public var termination: Termination
    public var start: Date
    public var end: Date

    public init?(contentsOf path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        self.init(line: text)
    }

    public init?(line: String) {
        let words = line.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard words.count == 4, let value = Int32(words[1]), let start = Double(words[2]), let end = Double(words[3]) else { return nil }
        switch words[0] {
        case "exited": termination = .exited(value)
        case "signaled": termination = .signaled(value)
        default: return nil
        }
        self.start = Date(timeIntervalSince1970: start)
        self.end = Date(timeIntervalSince1970: end)
    }

    /// The line as the spawner writes it.
    public var line: String {
        let (how, value) = switch termination { case .exited(let code): ("exited", code); case .signaled(let signal): ("signaled", signal) }
        return String(format: "%@ %d %.6f %.6f\n", how, value, start.timeIntervalSince1970, end.timeIntervalSince1970)
    }
}
