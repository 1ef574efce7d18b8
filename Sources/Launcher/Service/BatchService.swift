import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The batch service's engine (`cohort serve`): takes queued jobs from the store and runs
/// them, one runner (one allocator) per pool, so jobs share a pool's slots, higher
/// priorities first. One per state directory (a lock file says so). On start it first
/// reconciles what a killed predecessor left running (`Recovery`). Tasks start through
/// `cohort-spawner`, so their results outlive this process.
public final class BatchService: @unchecked Sendable {
    public let stateDirectory: String
    public let store: JobStore
    let pools: PoolStore
    var settings: ExecutionSettings
    /// Seconds between looks at the queue when nothing wakes it sooner.
    let poll: Double
    let log: @Sendable (String) -> Void

    private let lock = NSCondition()
    private var stopping = false
    private var wakeRequested = false
    private var recorders: [String: JobStore.Recorder] = [:]
    private var runners: [String: JobRunner] = [:]
    /// What happened, for `GET /v1/events` (job, attempt and node changes as they are decided).
    public let events = EventHub()
    /// Runners made in this pass of the queue, whose loops start once the pass has given them its jobs (touched by `run` only).
    private var idleRunners: [JobRunner] = []
    /// The locks of the pools this server places work on (`PoolLock`), held until it exits.
    private var poolLocks: [String: PoolLock] = [:]
    /// Pools a `cohort run` holds now, and its pid: their jobs stay queued until it is done.
    private var busyPools: [String: Int32?] = [:]
    /// Why the state directory cannot be written now (disk full, read-only), if it cannot:
    /// nothing new starts, submissions are refused (503), and what could not be written is
    /// kept and written once it can.
    private var storageFailure: String?
    /// Jobs that ended but whose end (or last attempts) could not be written yet.
    private var unrecorded: [(run: JobRun, recorder: JobStore.Recorder?)] = []
    private var failingRecorders: Set<String> = []
    /// Jobs disabled through this service, so that one claimed at that very moment is
    /// added held.
    private var heldJobs: Set<String> = []
    private let finished = DispatchGroup()
    private var lockDescriptor: Int32 = -1

    public struct AlreadyServing: Error, CustomStringConvertible {
        public var description: String
    }

    public init(stateDirectory: String, cohortExecutable: String, poll: Double = 0.2, log: @escaping @Sendable (String) -> Void) throws {
        self.stateDirectory = stateDirectory
        self.store = try JobStore(stateDirectory: stateDirectory)
        try store.checkWholeFile()  // the owner of the state from now on: every page, once
        self.pools = PoolStore(stateDirectory: stateDirectory)
        self.settings = ExecutionSettings(workDirectory: "\(stateDirectory)/work", cohortExecutable: cohortExecutable, log: log)
        self.poll = poll
        self.log = log
    }

    /// Whether a server holds the state directory's service lock now.
    public static func isServing(stateDirectory: String) -> Bool {
        let descriptor = open("\(stateDirectory)/serve.lock", O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_SH | LOCK_NB) == 0 else { return true }
        flock(descriptor, LOCK_UN)
        return false
    }

    /// Takes the state directory's service lock, or says which process holds it.
    public func acquire() throws {
        let path = "\(stateDirectory)/serve.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw AlreadyServing(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(descriptor)
            throw AlreadyServing(description: "another cohort serve (pid \(holder)) is serving \(stateDirectory)")
        }
        ftruncate(descriptor, 0)
        let text = "\(getpid())\n"
        _ = text.withCString { write(descriptor, $0, strlen($0)) }
        lockDescriptor = descriptor
    }

    /// Starts the spawner that will be the parent of this server's tasks; called after
    /// `recover()` (which ends a dead server's spawner first).
    public func startSpawner() throws {
        guard let path = settings.siblingSpawner else {
            throw AlreadyServing(description: "cohort-spawner was not found next to \(settings.cohortExecutable); build it (swift build --product cohort-spawner)")
        }
        let spawner = try Spawner(executable: path, owner: stateDirectory)
        spawner.log = log
        settings.spawner = spawner
    }

    /// Reconciles jobs a killed server left running (see `Recovery`).
    public func recover() throws {
        let pools = self.pools
        // A dead server's spawner runs on while it has tasks: the ones adopted now are its
        // children, and it writes their ends. Those the recovery kills it writes down as
        // killed after the sweep began, which the recovery reads as cut off, not as their own end.
        var recovery = Recovery(store: store, workDirectory: settings.workDirectory, cohortExecutable: settings.cohortExecutable, pool: { try? pools.load($0) }, log: log)
        recovery.storage = settings.storage
        let ids = try recovery.reconcile()
        if !ids.isEmpty { log("reconciled \(ids.count) job(s) left running by a stopped server: \(ids.joined(separator: ", "))") }
    }

    /// Asks the loop to look at the queue now (a job was just submitted).
    public func wake() {
        lock.lock(); wakeRequested = true; lock.signal(); lock.unlock()
    }

    /// Takes no more jobs; `run()` returns once the jobs it took have finished.
    public func stop() {
        lock.lock(); stopping = true; lock.signal(); lock.unlock()
    }

    public var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    /// Why the state directory cannot be written now, or nil.
    public var storageProblem: String? { lock.lock(); defer { lock.unlock() }; return storageFailure }

    private func storage(failed error: Error?, by source: String) {
        lock.lock()
        if error != nil { failingRecorders.insert(source) } else { failingRecorders.remove(source) }
        let was = storageFailure
        if let error { storageFailure = "the state directory \(stateDirectory) cannot be written: \(error)" }
        else if failingRecorders.isEmpty && unrecorded.isEmpty { storageFailure = nil }
        let now = storageFailure
        let all = Array(runners.values)
        lock.unlock()
        guard (was == nil) != (now == nil) else { return }
        if let now { log("\(now); nothing new starts until it can (what is not written is kept)") } else { log("the state directory can be written again; work goes on") }
        for runner in all { runner.setPaused(now != nil) }
    }

    /// Writes the ends of jobs that could not be written when they ended.
    private func retryUnrecorded() {
        lock.lock(); let waiting = unrecorded; lock.unlock()
        guard !waiting.isEmpty else { return }
        var left: [(run: JobRun, recorder: JobStore.Recorder?)] = []
        var lastError: Error?
        for entry in waiting {
            entry.recorder?.drain()
            if entry.recorder?.isBehind == true { left.append(entry); continue }
            do { try store.finish(entry.run); log("job \(entry.run.jobId): its end is recorded now") } catch { lastError = error; left.append(entry) }
        }
        lock.lock(); unrecorded = left; lock.unlock()
        storage(failed: lastError, by: "job ends")
    }

    /// The pools this server runs work on, as their runners see them now, and the others as
    /// stored (nothing of theirs in use by this server), for `/metrics`.
    public func occupancy() -> [JobRunner.Occupancy] {
        lock.lock()
        let running = runners
        lock.unlock()
        var all = running.values.map(\.occupancy)
        for pool in (try? pools.list()) ?? [] where running[pool.name] == nil {
            let usable = pool.nodes.filter { $0.state.acceptsWork }.reduce(0) { $0 + $1.slots }
            all.append(JobRunner.Occupancy(pool: pool, usedSlots: 0, totalSlots: usable, usedSlotsByNode: pool.nodes.map { _ in 0 },
                                           waiting: 0, running: 0, agentSilence: []))
        }
        return all.sorted { $0.pool.name < $1.pool.name }
    }

    /// Cancels a job this service runs; false if it does not run it.
    public func cancel(jobId: String) -> Bool {
        guard let runner = runner(of: jobId) else { return false }
        runner.cancel(jobId: jobId)
        return true
    }

    /// Why each task of `jobId` that has not started waits (empty if this service does not run it).
    public func waitingReasons(jobId: String) -> [String: String] {
        runner(of: jobId)?.waitingReasons(jobId: jobId) ?? [:]
    }

    /// Adds what the runner knows of waiting tasks to stored records.
    public func withWaitingReasons(_ records: [JobStore.TaskRecord], jobId: String) -> [JobStore.TaskRecord] {
        let reasons = waitingReasons(jobId: jobId)
        guard !reasons.isEmpty else { return records }
        return records.map { record in
            var record = record
            if record.state != .completed { record.waiting = reasons[record.displayId] }
            return record
        }
    }

    /// Disables or enables a job this service runs; false if it does not run it.
    public func setHeld(jobId: String, _ held: Bool) -> Bool {
        lock.lock()
        if held { heldJobs.insert(jobId) } else { heldJobs.remove(jobId) }
        lock.unlock()
        guard let runner = runner(of: jobId) else { return false }
        runner.setHeld(jobId: jobId, held)
        return true
    }

    /// The runner that runs `jobId`. Runners are asked outside this service's lock: a
    /// runner calls back into the service (attempt and job ends) while holding its own
    /// lock, so holding ours while taking its would deadlock.
    private func runner(of jobId: String) -> JobRunner? {
        lock.lock()
        let all = Array(runners.values)
        lock.unlock()
        return all.first { $0.runs(jobId: jobId) }
    }

    /// A job that ended without running (cancelled while queued, its dependencies ended
    /// otherwise than it asks, rejected): its end on the stream, and its webhook told, as
    /// for a job that ran.
    public func endedUnrun(_ jobId: String, result: String, why: String) {
        guard let summary = try? store.job(jobId) else { return }
        events.publish(ServiceEvent(kind: "job.completed", job: jobId, result: result, state: JobState.completed.rawValue, message: why))
        guard let url = (try? store.spec(jobId: jobId))?.notify else { return }
        let shown = HTTPTransfer.redacted(url), log = self.log, events = self.events
        JobNotifier.post(JobNotifier.outcome(ofUnrun: summary), to: url) { answer in
            log("job \(jobId): notified \(shown): \(answer)")
            events.publish(ServiceEvent(kind: "job.notified", job: jobId, result: answer, message: shown))
        }
    }

    /// Serves the queue until `stop()`, then waits for the jobs it took.
    public func run() {
        log("serving the queue in \(store.path) (pid \(getpid()))")
        while !isStopping {
            retryUnrecorded()
            if storageProblem != nil { pause(); continue }  // claiming is a write too
            retakeBusyPools()
            let claimed: [JobStore.Claimed]
            do {
                let claims = try store.claimActive(skipping: Set(busyPools.keys))
                claimed = claims.claimed
                for job in claims.endedUnrun { endedUnrun(job, result: "dependencyFailed", why: "the jobs it waits for ended otherwise than it asks; it never ran") }
            } catch {
                log("cannot read the queue: \(error)")
                pause()
                continue
            }
            // Jobs a killed server was running first, and no runner places anything before
            // every job of this pass is given to it: the attempts the recovery adopted take
            // back their nodes before other work could be put there.
            for job in claimed.filter(\.resumed) + claimed.filter({ !$0.resumed }) { start(job) }
            startLoops()
            pause()
        }
        finished.wait()  // every runner has finished what it took
        retryUnrecorded()
        if !unrecorded.isEmpty { log("\(unrecorded.count) job end(s) could not be recorded; the next server reconciles them") }
        settings.spawner?.close()
        log("stopped")
    }

    private func pause() {
        lock.lock()
        if !wakeRequested && !stopping { _ = lock.wait(until: Date() + poll) }
        wakeRequested = false
        lock.unlock()
    }

    /// Pools whose `cohort run` has ended are this server's again.
    private func retakeBusyPools() {
        for pool in busyPools.keys {
            guard let lock = try? PoolLock.take(stateDirectory: stateDirectory, pool: pool).lock else { continue }
            poolLocks[pool] = lock
            busyPools[pool] = nil
            log("pool \(pool) is free again: its queued jobs start")
        }
    }

    /// Whether this server may place work on `pool`: it holds its lock, or takes it now.
    private func holdsPool(_ pool: String) -> Bool {
        if poolLocks[pool] != nil { return true }
        guard let taken = try? PoolLock.take(stateDirectory: stateDirectory, pool: pool) else { return false }
        if let lock = taken.lock { poolLocks[pool] = lock; return true }
        busyPools[pool] = .some(taken.holder)
        log("pool \(pool) is in use by cohort run\(taken.holder.map { " (pid \($0))" } ?? ""): its jobs wait until it is done")
        return false
    }

    private func start(_ claimed: JobStore.Claimed) {
        let job = claimed.spec
        guard holdsPool(job.pool) else {
            do { try store.unclaim(jobId: job.id) } catch { log("job \(job.id): cannot put it back in the queue: \(error)") }
            return
        }
        do {
            let prior = claimed.resumed ? try store.tasks(jobId: job.id) : []
            lock.lock()
            let existing = runners[job.pool]
            lock.unlock()
            let runner = try existing ?? makeRunner(job.pool)
            let recorder = JobStore.Recorder(store: store, jobId: job.id)
            let source = "job \(job.id)"
            recorder.onFailure = { [unowned self] error in storage(failed: error, by: source) }
            lock.lock()
            recorders[job.id] = recorder
            lock.unlock()
            lock.lock()
            let held = heldJobs.contains(job.id)
            lock.unlock()
            try runner.add(job, prior: prior, startedAt: claimed.started, held: held)
            log("job \(job.id) \(claimed.resumed ? "resumed" : "started") on pool \(job.pool)")
            events.publish(ServiceEvent(kind: claimed.resumed ? "job.resumed" : "job.started", job: job.id, state: JobState.running.rawValue, message: "pool \(job.pool)"))
        } catch {
            log("job \(job.id) rejected: \(error)")
            if (try? store.reject(jobId: job.id, reason: "\(error)")) != nil { endedUnrun(job.id, result: "rejected", why: "rejected: \(error)") }
        }
    }

    private func makeRunner(_ name: String) throws -> JobRunner {
        let pool = try pools.load(name).withLiveState()
        let runner = JobRunner(pool: pool, settings: settings)
        runner.isService = true
        let store = self.store, pools = self.pools, log = self.log
        let events = self.events
        @Sendable func display(_ task: TaskSpec, _ replica: Int?) -> String { replica.map { "\(task.id)[\($0)]" } ?? task.id }
        runner.onAttemptStarted = { [unowned self] jobId, task, replica, attempt in
            lock.lock(); let recorder = recorders[jobId]; lock.unlock()
            recorder?.add(task, replica, attempt, .running)
            events.publish(ServiceEvent(kind: "attempt.started", job: jobId, task: display(task, replica), attempt: attempt.number, nodes: attempt.nodes))
        }
        runner.onAttemptFinished = { [unowned self] jobId, task, replica, attempt, taskState in
            lock.lock(); let recorder = recorders[jobId]; lock.unlock()
            recorder?.add(task, replica, attempt, taskState)
            events.publish(ServiceEvent(kind: "attempt.ended", job: jobId, task: display(task, replica), attempt: attempt.number, nodes: attempt.nodes,
                                        result: attempt.failure?.category.rawValue ?? "success", state: taskState.rawValue, message: attempt.failure?.message))
        }
        runner.onJobDisabled = { [unowned self] jobId, reason in
            events.publish(ServiceEvent(kind: "job.disabled", job: jobId, message: reason))
            lock.lock(); heldJobs.insert(jobId); lock.unlock()
            do { _ = try store.setHeld(jobId: jobId, true) } catch { log("job \(jobId): disabled by \(reason), but not recorded: \(error)") }
        }
        runner.onJobFinished = { [unowned self] run in
            lock.lock(); let recorder = recorders.removeValue(forKey: run.jobId); lock.unlock()
            recorder?.drain()
            do {
                guard recorder?.isBehind != true else { throw JobStore.StoreError(description: "its attempts are not all written yet") }
                try store.finish(run)
            } catch {
                log("job \(run.jobId): cannot record its end yet: \(error); it is kept and written once it can be")
                lock.lock(); unrecorded.append((run, recorder)); lock.unlock()
                storage(failed: error, by: "job ends")
                return
            }
            let (ok, failed) = run.counts
            log("job \(run.jobId) finished: \(ok) succeeded, \(failed) failed")
            events.publish(ServiceEvent(kind: "job.completed", job: run.jobId, result: failed == 0 ? "success" : "failure",
                                        state: JobState.completed.rawValue, message: "\(ok) succeeded, \(failed) failed"))
            // Its webhook, once its end is recorded (the receiver may read the job at once).
            if let url = (try? store.spec(jobId: run.jobId))?.notify {
                let shown = HTTPTransfer.redacted(url)
                JobNotifier.post(JobNotifier.outcome(of: run), to: url) { result in
                    log("job \(run.jobId): notified \(shown): \(result)")
                    events.publish(ServiceEvent(kind: "job.notified", job: run.jobId, result: result, message: shown))
                }
            }
        }
        // Field by field, and whether or not the pool was stored when this runner was made: a
        // built-in local pool drained later is stored then, and the drain must still apply.
        runner.onNodeChange = { id, change in
            try? pools.apply(change, node: id, pool: name)
            switch change {
            case .unusable(let reason): events.publish(ServiceEvent(kind: "node.changed", nodes: [id], state: NodeState.unusable.rawValue, message: "\(name): \(reason)"))
            case .startTaskRan(let run): events.publish(ServiceEvent(kind: "node.changed", nodes: [id], result: run.failure == nil ? "success" : "failure",
                                                                     message: "\(name): start task ran"))
            case .sweepPending, .swept: break
            }
        }
        runner.refreshNodes = { try? pools.load(name).withLiveState().nodes }
        lock.lock(); runners[name] = runner; lock.unlock()
        idleRunners.append(runner)
        return runner
    }

    /// Starts the loops of the runners made since the last call (see `run`).
    private func startLoops() {
        for runner in idleRunners {
            finished.enter()
            let thread = Thread { [unowned self] in
                runner.serve(until: { self.isStopping }, leavingWaiting: true)
                finished.leave()
            }
            thread.start()
        }
        idleRunners.removeAll()
    }
}
