import Foundation

/// A job that cannot run on its pool, said before anything starts (exit code 2 in the CLI).
public struct JobRejected: Error, CustomStringConvertible, Sendable {
    public var reasons: [String]
    public var description: String { reasons.joined(separator: "\n") }
}

/// Runs jobs on one pool in this process: allocates node groups and slots from one
/// allocator for all of them, starts attempts on threads of their own, follows
/// dependencies, retries failures on new allocations, and backfills idle slots with work
/// that fits. Higher-priority jobs' tasks are tried first; `cohort run` gives it one job,
/// `cohort serve` adds jobs while it runs.
public final class JobRunner: @unchecked Sendable {
    public struct Progress: Sendable {
        public var succeeded: Int
        public var failed: Int
        public var running: Int
        public var waiting: Int
        public var elapsed: Double
    }

    /// The first job given (the one `cohort run` runs).
    public var job: JobSpec { jobs.first!.spec }
    public private(set) var pool: Pool
    let executor: AttemptExecutor
    var allocator: Allocator
    let onProgress: @Sendable (Progress) -> Void
    /// Told of every finished attempt (to persist it): job id, task, replica, the attempt,
    /// and the task's state after it.
    public var onAttemptFinished: (@Sendable (String, TaskSpec, Int?, Attempt, TaskState) -> Void)?
    /// Told of every attempt as it starts (its nodes, number and directory; no end yet), so
    /// running work is visible: called under the runner's lock, so it must only hand the
    /// record on (the store's Recorder writes off this thread).
    public var onAttemptStarted: (@Sendable (String, TaskSpec, Int?, Attempt) -> Void)?
    /// Told when every task of a job has ended.
    public var onJobFinished: (@Sendable (JobRun) -> Void)?
    /// The units (task, replica) of the first job, in order.
    public var unitList: [(task: String, replica: Int?)] { jobs.first!.units.map { ($0.task.id, $0.replica) } }
    /// What the runner learned about a node, to persist field by field (`PoolStore.apply`):
    /// never a whole node value, which would undo an admin's drain made meanwhile.
    public enum NodeChange: Sendable, Equatable {
        /// Lost or failed its health check.
        case unusable(reason: String)
        /// An attempt's processes may still run there (the node was cut off).
        case sweepPending(String)
        /// These attempts' leftovers were killed.
        case swept([String])
    }
    /// Told whenever the runner learns something of a node (node id, what), to persist it.
    public var onNodeChange: (@Sendable (String, NodeChange) -> Void)?
    /// Reads the pool's stored node states (drains from `cohort node drain`), if stored.
    public var refreshNodes: (@Sendable () -> [Node]?)?
    /// Set by `cohort serve`: finished jobs are forgotten at once, so memory stays flat
    /// however many jobs it has run.
    public var isService = false
    /// Seconds a passed health check stays good before a node joins another group.
    public var healthCheckInterval: Double = 30
    var lastHealthy: [Int: Date] = [:]
    var lastRefresh = Date.distantPast
    var sweepInProgress = false

    /// A job being run: its units and how many are still to end.
    final class JobState: @unchecked Sendable {  // touched only under `condition`
        let spec: JobSpec
        var units: [Unit] = []
        var remaining = 0
        var start = Date()
        /// Ends this job's attempts only.
        let cancellation = Cancellation()
        /// Disabled: its waiting tasks do not start (running ones go on).
        var held = false
        /// When the job's maxWallClockTime runs out, and whether it has.
        var deadline: Date?
        var timedOut = false
        /// Its preparation task per node index: running, or done with its failure if any.
        var preparation: [Int: Preparation] = [:]
        /// Nodes where preparation failed: its tasks go elsewhere.
        var preparationFailed: Set<Int> = []
        /// Nodes any of its attempts ran on: where its release task runs.
        var usedNodes: Set<Int> = []
        var nodeTasks: [NodeTaskRun] = []
        init(spec: JobSpec) { self.spec = spec }
        enum Preparation { case running, done(Failure?) }
    }

    /// One task, or one replica of it.
    final class Unit: @unchecked Sendable {  // touched only under `condition`
        unowned let job: JobState
        let task: TaskSpec
        let replica: Int?
        var run: TaskRun
        var running = false
        var finished = false
        /// Cached at the end, so progress never copies the attempts.
        var succeeded = false
        /// The node group of the running attempt.
        var group: [Int] = []
        init(job: JobState, task: TaskSpec, replica: Int?) {
            self.job = job
            self.task = task
            self.replica = replica
            run = TaskRun(taskId: task.id, replica: replica, state: .active, attempts: [], skippedBecause: nil)
        }
    }

    /// Jobs with units still to end, in the order given.
    var jobs: [JobState] = []
    /// Finished jobs' outcomes, in the order they ended.
    var finishedRuns: [JobRun] = []
    /// Units neither running nor finished, by job priority then order: what scheduling looks at.
    var waiting: [Unit] = []
    /// Per job and task id: its units, and how many ended in success or failure.
    var outcomes: [String: (total: Int, succeeded: Int, failed: Int)] = [:]
    var runningCount = 0, succeededCount = 0, failedCount = 0
    /// Jobs whose release tasks are running (they end after them).
    var releasesRunning = 0
    let condition = NSCondition()
    var completions: [(Unit, [Int], Attempt)] = []
    /// Nodes held back for the first multi-instance unit that could not start: no other
    /// work starts on them, so they drain and it starts, however much small work keeps
    /// backfilling the other nodes (without it, a stream of small tasks starves it).
    var reservation: (unit: Unit, nodes: Set<Int>)?
    var start = Date()
    /// The work tree's id, which every sweep marker starts with.
    lazy var stateId = executor.settings.stateId

    /// A runner for `pool` with no job yet (`add` gives it jobs).
    public init(pool: Pool, settings: ExecutionSettings, policy: PlacementPolicy = .pack,
                onProgress: @escaping @Sendable (Progress) -> Void = { _ in }) {
        self.pool = pool
        self.executor = AttemptExecutor(settings: settings, pool: pool)
        self.allocator = Allocator(pool: pool, policy: policy)
        self.onProgress = onProgress
    }

    /// A runner for one job (`cohort run`).
    public convenience init(job: JobSpec, pool: Pool, settings: ExecutionSettings, policy: PlacementPolicy = .pack,
                            onProgress: @escaping @Sendable (Progress) -> Void = { _ in }) throws(JobRejected) {
        self.init(pool: pool, settings: settings, policy: policy, onProgress: onProgress)
        try add(job)
    }

    static func key(_ job: String, _ task: String) -> String { "\(job)\u{0}\(task)" }

    /// Gives the runner a job; its tasks go after waiting tasks of jobs of equal or higher
    /// priority. Rejected at once if a task could never fit the pool.
    /// `prior`: what a server that crashed left stored of this job (its tasks' attempts and
    /// states): completed tasks stay done, the others go on with their attempts counted.
    /// `startedAt`: when the job first started (its maxWallClockTime counts from then).
    public func add(_ spec: JobSpec, prior: [JobStore.TaskRecord] = [], startedAt: Date? = nil, held: Bool = false) throws(JobRejected) {
        condition.lock()
        defer { condition.unlock() }
        try checkFeasible(spec)
        let job = JobState(spec: spec)
        job.held = held
        job.deadline = spec.maxWallClockTime.map { (startedAt ?? Date()).addingTimeInterval($0) }
        for task in spec.tasks {
            if let multi = task.multiInstance, multi.replicas > 1 {
                for replica in 0..<multi.replicas { job.units.append(Unit(job: job, task: task, replica: replica)) }
            } else {
                job.units.append(Unit(job: job, task: task, replica: nil))
            }
            outcomes[Self.key(spec.id, task.id)] = (task.multiInstance.map { max(1, $0.replicas) } ?? 1, 0, 0)
        }
        job.remaining = job.units.count
        jobs.append(job)
        var fresh = job.units
        if !prior.isEmpty {
            let records = Dictionary(prior.map { ("\($0.taskId)#\($0.replica ?? -1)", $0) }) { first, _ in first }
            for unit in job.units {
                guard let record = records["\(unit.task.id)#\(unit.replica ?? -1)"] else { continue }
                unit.run.attempts = record.attempts
                if record.state == TaskState.completed.rawValue {
                    if record.attempts.isEmpty { unit.run.skippedBecause = record.failure }
                    complete(unit)
                }
            }
            fresh.removeAll { $0.finished }
        }
        let position = waiting.firstIndex { $0.job.spec.priority < spec.priority } ?? waiting.count
        waiting.insert(contentsOf: fresh, at: position)
        condition.signal()
    }

    /// Rejects tasks that could never be placed, instead of letting them wait forever.
    func checkFeasible(_ job: JobSpec) throws(JobRejected) {
        var reasons: [String] = []
        if pool.nodes.allSatisfy({ !$0.state.acceptsWork }) {
            reasons.append("pool \(pool.name) has no usable node")
        }
        for task in job.tasks {
            let multi = task.multiInstance ?? MultiInstance(instances: 1, processesPerNode: 1)
            if let why = allocator.impossibility(instances: multi.instances, processesPerNode: multi.processesPerNode, replicas: multi.replicas) {
                reasons.append("task \(task.id) can never run on pool \(pool.name): it \(why)")
            }
        }
        if !reasons.isEmpty { throw JobRejected(reasons: reasons) }
    }

    /// Runs every job given to its end and returns the first job's outcome (`cohort run`).
    public func run() -> JobRun {
        serve(until: { true })
        condition.lock()
        defer { condition.unlock() }
        return finishedRuns.first { $0.jobId == jobs.first?.spec.id } ?? finishedRuns[0]
    }

    /// Runs jobs as they are added until `stop()` says so and nothing is left running or
    /// waiting (`cohort serve`; `run()` stops as soon as the work given is done).
    public func serve(until stop: @escaping () -> Bool) {
        start = Date()
        condition.lock()
        while true {
            refreshNodeStates()
            expireJobs()
            sweepPending()
            skipBlocked()
            startReadyUnits()
            report()
            if waiting.isEmpty && runningCount == 0 && completions.isEmpty && releasesRunning == 0 && stop() { break }
            // Wake for completions and new jobs, and once a second for drains and pending sweeps.
            if completions.isEmpty { _ = condition.wait(until: nextWake()) }
            let done = completions
            completions.removeAll()
            for (unit, group, attempt) in done { finish(unit, group: group, attempt: attempt) }
        }
        // A last try at nodes that were cut off; what stays pending is kept with the node.
        while sweepInProgress { _ = condition.wait(until: Date() + 0.1) }
        condition.unlock()
        sweepPendingNow()
        executor.flushRemoteSweeps()
    }

    /// Cancels the run: running attempts are ended (SIGTERM, then SIGKILL), nothing new
    /// starts, and `run()` returns once every attempt has been cleaned up.
    public func cancel() {
        executor.cancellation.cancel()
        condition.lock()
        for job in jobs { job.cancellation.cancel() }
        condition.signal()
        condition.unlock()
    }

    /// Cancels one job: its running attempts end, its waiting tasks never start.
    public func cancel(jobId: String) {
        condition.lock()
        for job in jobs where job.spec.id == jobId && job.remaining > 0 { job.cancellation.cancel() }
        condition.signal()
        condition.unlock()
    }

    /// Disables (holds) or enables a job: a held job's waiting tasks do not start.
    public func setHeld(jobId: String, _ held: Bool) {
        condition.lock()
        for job in jobs where job.spec.id == jobId { job.held = held }
        condition.signal()
        condition.unlock()
    }

    /// Ends jobs whose maxWallClockTime ran out: their attempts are ended, the rest skipped.
    func expireJobs() {
        let now = Date()
        for job in jobs where !job.timedOut && job.remaining > 0 {
            guard let deadline = job.deadline, now >= deadline else { continue }
            job.timedOut = true
            executor.settings.log("job \(job.spec.id): its maxWallClockTime ran out; ending its tasks")
            job.cancellation.cancel(grace: min(5, job.spec.tasks.map(\.constraints.killGracePeriod).max() ?? 5))
        }
    }

    /// The next moment the loop must look, at the latest: a job's deadline, or in a second.
    func nextWake() -> Date {
        var wake = Date() + 1
        for job in jobs where !job.timedOut && job.remaining > 0 {
            if let deadline = job.deadline, deadline < wake { wake = deadline }
        }
        return wake
    }

    static func jobTimeout(_ job: JobState, started: Bool) -> Failure {
        let limit = AttemptExecutor.format(job.spec.maxWallClockTime ?? 0)
        return Failure(category: .timeout, message: started ? "the job's maxWallClockTime of \(limit) ran out; the task's processes were ended"
                                                            : "the job's maxWallClockTime of \(limit) ran out before this task started")
    }

    /// Whether a job with this id is running here and not finished.
    public func runs(jobId: String) -> Bool {
        condition.lock(); defer { condition.unlock() }
        return jobs.contains { $0.spec.id == jobId && $0.remaining > 0 }
    }

    /// The first job's task runs so far (for watching a job from another thread).
    public func snapshot() -> [TaskRun] {
        condition.lock(); defer { condition.unlock() }
        return jobs.first?.units.map(\.run) ?? []
    }

    /// Applies drains and undrains an admin made while the job runs.
    func refreshNodeStates() {
        guard let refreshNodes, Date().timeIntervalSince(lastRefresh) >= 1 else { return }
        lastRefresh = Date()
        guard let stored = refreshNodes() else { return }
        for node in stored {
            guard let index = pool.nodes.firstIndex(where: { $0.id == node.id }) else { continue }
            let mine = pool.nodes[index].state
            if node.state == .offline, mine != .offline, mine != .unusable {
                pool.nodes[index].state = .offline
                pool.nodes[index].stateReason = node.stateReason
                allocator.setUsable(index, false)
            } else if node.state.acceptsWork, mine == .offline {
                pool.nodes[index].state = .idle
                pool.nodes[index].stateReason = nil
                allocator.setUsable(index, true)
            }
        }
    }

    /// Tries, off the scheduling thread, to kill what lost attempts left on nodes that were
    /// cut off (a partition): the moment a node answers again, its stale processes go.
    func sweepPending() {
        guard !sweepInProgress, pool.nodes.contains(where: { !($0.pendingSweeps ?? []).isEmpty }) else { return }
        sweepInProgress = true
        let nodes = pool.nodes, executor = self.executor
        Thread { [self] in
            let swept = JobRunner.sweep(nodes, executor)
            condition.lock()
            for (index, ids) in swept { pool.nodes[index].pendingSweeps?.removeAll { ids.contains($0) }; onNodeChange?(pool.nodes[index].id, .swept(ids)) }
            sweepInProgress = false
            condition.signal()
            condition.unlock()
        }.start()
    }

    func sweepPendingNow() {
        for (index, ids) in JobRunner.sweep(pool.nodes, executor) {
            pool.nodes[index].pendingSweeps?.removeAll { ids.contains($0) }
            onNodeChange?(pool.nodes[index].id, .swept(ids))
        }
    }

    /// The attempt ids swept per node index.
    static func sweep(_ nodes: [Node], _ executor: AttemptExecutor) -> [(Int, [String])] {
        var done: [(Int, [String])] = []
        for (index, node) in nodes.enumerated() {
            let ids = (node.pendingSweeps ?? []).filter { executor.sweepRemote(attemptId: $0, node: node) }
            if !ids.isEmpty { done.append((index, ids)) }
        }
        return done
    }

    /// Checks the remote nodes of a group before they take work; a failing node becomes
    /// unusable with the reason. Returns false if any failed.
    func groupIsHealthy(_ group: [Int]) -> Bool {
        let health = NodeHealth(pool: pool, timeout: 5)
        var healthy = true
        for index in group where !pool.nodes[index].isLocal || pool.healthCheckCommandLine != nil {
            if let last = lastHealthy[index], Date().timeIntervalSince(last) < healthCheckInterval { continue }
            let report = health.check(pool.nodes[index])
            if report.healthy {
                lastHealthy[index] = Date()
            } else {
                healthy = false
                markUnusable(index, reason: report.reason ?? "health check failed")
            }
        }
        return healthy
    }

    func markUnusable(_ index: Int, reason: String) {
        pool.nodes[index].state = .unusable
        pool.nodes[index].stateReason = reason
        allocator.setUsable(index, false)
        lastHealthy[index] = nil
        executor.settings.log("node \(pool.nodes[index].id) is unusable: \(reason)")
        onNodeChange?(pool.nodes[index].id, .unusable(reason: reason))
    }

    /// Whether every unit of task `id` of `job` succeeded (true), one failed (false), or neither yet.
    func taskSucceeded(_ job: JobState, _ id: String) -> Bool? {
        guard let outcome = outcomes[Self.key(job.spec.id, id)] else { return nil }
        if outcome.failed > 0 { return false }
        return outcome.succeeded == outcome.total ? true : nil
    }

    /// Marks `unit` finished and counts its outcome.
    func complete(_ unit: Unit) {
        unit.run.state = .completed
        unit.finished = true
        unit.succeeded = unit.run.succeeded
        let key = Self.key(unit.job.spec.id, unit.task.id)
        if unit.succeeded {
            outcomes[key]!.succeeded += 1
            succeededCount += 1
        } else {
            outcomes[key]!.failed += 1
            failedCount += 1
        }
        let job = unit.job
        job.remaining -= 1
        if job.remaining == 0 {
            let run = JobRun(jobId: job.spec.id, pool: pool.name, start: job.start, end: Date(), tasks: job.units.map(\.run), nodeTasks: job.nodeTasks)
            if let release = job.spec.release, !job.usedNodes.isEmpty {
                // The release task on every node the job used, off the scheduling thread;
                // the job ends after it.
                releasesRunning += 1
                let nodes = job.usedNodes.sorted().map { pool.nodes[$0] }
                let executor = self.executor
                Thread { [self] in
                    let releases = nodes.map { node in
                        executor.runNodeTask(release, kind: .release, jobId: job.spec.id, jobEnvironment: job.spec.environment, node: node, cancellation: Cancellation())
                    }
                    condition.lock()
                    var finished = run
                    finished.nodeTasks += releases
                    finished.end = Date()
                    releasesRunning -= 1
                    end(job, finished)
                    condition.signal()
                    condition.unlock()
                }.start()
            } else {
                end(job, run)
            }
        }
    }

    /// Records a job's end and tells of it.
    func end(_ job: JobState, _ run: JobRun) {
        // A service forgets every finished job (the store has it); `cohort run` keeps the
        // first: `job`, `unitList` and `run()` read it.
        if !isService { finishedRuns.append(run) }
        if isService || jobs.first !== job {
            jobs.removeAll { $0 === job }
            for task in job.spec.tasks { outcomes[Self.key(job.spec.id, task.id)] = nil }
        }
        onJobFinished?(run)
    }

    /// Runs the job's preparation task on each node of `group` where it has not run yet
    /// (once per node, however many tasks land there at once); the failure that keeps the
    /// task off a node, if any. Called on an attempt's thread.
    func prepare(_ job: JobState, _ group: [Int]) -> Failure? {
        guard let spec = job.spec.preparation else { return nil }
        for index in group {
            condition.lock()
            while case .running? = job.preparation[index] { condition.wait() }
            if case .done(let failure)? = job.preparation[index] {
                condition.unlock()
                if let failure, spec.waitForSuccess { return failure }
                continue
            }
            job.preparation[index] = .running
            let node = pool.nodes[index]
            condition.unlock()
            let run = executor.runNodeTask(spec, kind: .preparation, jobId: job.spec.id, jobEnvironment: job.spec.environment, node: node,
                                           cancellation: job.cancellation)
            condition.lock()
            job.nodeTasks.append(run)
            job.preparation[index] = .done(run.failure)
            condition.broadcast()
            condition.unlock()
            if let failure = run.failure, spec.waitForSuccess { return failure }
        }
        return nil
    }

    /// Units whose dependency failed will never run: say so.
    func skipBlocked() {
        var changed = true
        while changed {
            changed = false
            for unit in waiting where !unit.finished {
                if let failed = unit.task.dependsOn.first(where: { taskSucceeded(unit.job, $0) == false }) {
                    unit.run.skippedBecause = Failure(category: .dependencyFailed, message: "task \(failed), which it depends on, did not succeed")
                    complete(unit)
                    changed = true
                }
            }
        }
        waiting.removeAll { $0.finished }
    }

    func startReadyUnits() {
        let cancelledAll = executor.cancellation.isCancelled
        if cancelledAll || jobs.contains(where: { $0.remaining > 0 && $0.cancellation.isCancelled }) {
            for unit in waiting where !unit.finished && (cancelledAll || unit.job.cancellation.isCancelled) {
                unit.run.skippedBecause = unit.job.timedOut ? Self.jobTimeout(unit.job, started: false)
                    : Failure(category: .cancelled, message: "the job was cancelled before this task started")
                complete(unit)
            }
            waiting.removeAll { $0.finished }
        }
        var stillWaiting: [Unit] = []
        var noSlotLeft = false
        // No slot outside the reservation: independent units wait; multi-instance ones
        // (the reserved one among them) may still start.
        var noSlotOutsideReservation = false
        defer { waiting = stillWaiting }
        if let held = reservation, held.unit.finished || held.unit.running || held.nodes.contains(where: { !allocator.usable[$0] }) {
            reservation = nil
        }
        for unit in waiting {
            // Once not even one slot is free, nothing else can start in this pass.
            guard !noSlotLeft, !unit.finished else { if !unit.finished { stillWaiting.append(unit) }; continue }
            if noSlotOutsideReservation && unit.task.multiInstance == nil { stillWaiting.append(unit); continue }
            guard !unit.job.held, unit.task.dependsOn.allSatisfy({ taskSucceeded(unit.job, $0) == true }) else { stillWaiting.append(unit); continue }
            let multi = unit.task.multiInstance
            let perNode = multi?.processesPerNode ?? 1
            // Replicas of one task run on disjoint node groups.
            let siblings = unit.replica == nil ? [] : Set(unit.job.units.filter { $0.running && $0.task.id == unit.task.id }.flatMap(\.group))
            var reserved = reservation.map { $0.unit === unit ? [] : $0.nodes } ?? []
            if !unit.job.preparationFailed.isEmpty {
                let left = allocator.capacity.indices.filter {
                    allocator.usable[$0] && allocator.capacity[$0] >= perNode && !unit.job.preparationFailed.contains($0)
                }
                guard left.count >= (multi?.instances ?? 1) else {
                    let failed = unit.job.preparationFailed.sorted().map { pool.nodes[$0].id }
                    unit.run.skippedBecause = Failure(category: .preparationFailed,
                                                      message: "the job preparation task failed on \(Hostlist.compress(failed)); too few nodes are left for this task")
                    complete(unit)
                    continue
                }
                reserved.formUnion(unit.job.preparationFailed)
            }
            guard let allocated = allocator.allocateGroup(instances: multi?.instances ?? 1, processesPerNode: perNode,
                                                          excluding: reserved.isEmpty ? siblings : siblings.union(reserved)) else {
                stillWaiting.append(unit)
                if multi == nil { if reserved.isEmpty { noSlotLeft = true } else { noSlotOutsideReservation = true } }
                if let multi, reservation == nil { reserve(for: unit, multi, excluding: siblings) }
                continue  // not free now: later units may still fit (backfill)
            }
            if reservation?.unit === unit { reservation = nil }
            let group = allocated.sorted()  // in pool order: the first node is the master
            guard groupIsHealthy(group) else {
                allocator.release(group: group, processesPerNode: perNode)
                if allocator.impossibility(instances: multi?.instances ?? 1, processesPerNode: perNode) != nil {
                    unit.run.skippedBecause = Failure(category: .nodeLost, message: "too few healthy nodes are left in pool \(pool.name)")
                    complete(unit)
                } else {
                    stillWaiting.append(unit)
                }
                continue
            }
            unit.running = true
            runningCount += 1
            unit.group = group
            unit.job.usedNodes.formUnion(group)
            unit.run.state = .running
            if unit.job.units.allSatisfy({ !$0.running && $0.run.attempts.isEmpty }) { unit.job.start = Date() }
            let work = AttemptExecutor.Work(jobId: unit.job.spec.id, task: unit.task, replica: unit.replica,
                                            attempt: (unit.run.attempts.map(\.number).max() ?? 0) + 1, jobEnvironment: unit.job.spec.environment,
                                            cancellation: unit.job.cancellation, stateId: stateId)
            let nodes = group.map { pool.nodes[$0] }
            let executor = self.executor
            let job = unit.job
            if let onAttemptStarted {
                var started = Attempt(number: work.attempt, nodes: nodes.map(\.id), nodeExitCodes: [:], exitCode: nil, start: Date(), end: nil,
                                      transport: nil, launchedCommand: [], directory: work.directory(under: executor.settings.workDirectory), failure: nil)
                started.markerId = work.attemptId
                onAttemptStarted(job.spec.id, unit.task, unit.replica, started)
            }
            let thread = Thread { [self] in
                var attempt: Attempt
                if let failure = prepare(job, group) {
                    attempt = Attempt(number: work.attempt, nodes: nodes.map(\.id), nodeExitCodes: [:], exitCode: nil, start: Date(), end: Date(),
                                      transport: nil, launchedCommand: [], directory: work.directory(under: executor.settings.workDirectory), failure: failure)
                    attempt.markerId = work.attemptId
                } else {
                    attempt = executor.run(work, on: nodes)
                }
                condition.lock()
                completions.append((unit, group, attempt))
                condition.signal()
                condition.unlock()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Holds back the `instances` nodes that will be free soonest (the most free slots now)
    /// for `unit`; they take no other work until it starts.
    func reserve(for unit: Unit, _ multi: MultiInstance, excluding siblings: Set<Int>) {
        let candidates = allocator.capacity.indices.filter {
            allocator.usable[$0] && allocator.capacity[$0] >= multi.processesPerNode && !siblings.contains($0)
        }
        guard candidates.count >= multi.instances else { return }
        let chosen = candidates.sorted { allocator.free[$0] > allocator.free[$1] }.prefix(multi.instances)
        reservation = (unit, Set(chosen))
    }

    func finish(_ unit: Unit, group: [Int], attempt: Attempt) {
        var attempt = attempt
        if unit.job.timedOut, attempt.failure?.category == .cancelled {
            var failure = Self.jobTimeout(unit.job, started: true)
            failure.node = attempt.failure?.node
            failure.details = attempt.failure?.details ?? []
            attempt.failure = failure
        }
        allocator.release(group: group, processesPerNode: unit.task.multiInstance?.processesPerNode ?? 1)
        unit.running = false
        runningCount -= 1
        unit.group = []
        unit.run.attempts.append(attempt)
        if attempt.failure?.category == .preparationFailed, let nodeId = attempt.failure?.node,
           let index = pool.nodes.firstIndex(where: { $0.id == nodeId }) {
            unit.job.preparationFailed.insert(index)  // its retry goes to another node
        }
        if let failure = attempt.failure, failure.category == .nodeLost, let nodeId = failure.node,
           let index = pool.nodes.firstIndex(where: { $0.id == nodeId }), pool.nodes[index].state != .unusable {
            // A lost node takes no more work; the retry goes elsewhere.
            markUnusable(index, reason: failure.message)
        }
        let attemptId = AttemptExecutor.Work.attemptId(stateId: stateId, jobId: unit.job.spec.id, taskId: unit.task.id, replica: unit.replica, attempt: attempt.number)
        for nodeId in attempt.unsweptNodes ?? [] {
            guard let index = pool.nodes.firstIndex(where: { $0.id == nodeId }) else { continue }
            pool.nodes[index].pendingSweeps = (pool.nodes[index].pendingSweeps ?? []) + [attemptId]
            onNodeChange?(nodeId, .sweepPending(attemptId))
        }
        let retriesLeft = attempt.failure != nil && attempt.failure?.category != .transportUnavailable
            && attempt.failure?.category != .cancelled && !executor.cancellation.isCancelled && !unit.job.cancellation.isCancelled
            && (attempt.failure?.category == .preparationFailed
                || unit.run.attempts.filter({ $0.failure?.category != .interrupted && $0.failure?.category != .preparationFailed }).count
                    <= unit.task.constraints.maxTaskRetryCount)
        if retriesLeft, allocator.impossibility(instances: unit.task.multiInstance?.instances ?? 1,
                                                processesPerNode: unit.task.multiInstance?.processesPerNode ?? 1) == nil {
            unit.run.state = .active
            waiting.append(unit)  // a retry waits for a new allocation
            onAttemptFinished?(unit.job.spec.id, unit.task, unit.replica, attempt, .active)
        } else {
            // Told before the job can be reported finished, so its record is complete.
            onAttemptFinished?(unit.job.spec.id, unit.task, unit.replica, attempt, .completed)
            complete(unit)  // may end the job and forget it: nothing reads unit.job after this
        }
    }

    func report() {
        onProgress(Progress(succeeded: succeededCount, failed: failedCount, running: runningCount,
                            waiting: waiting.count, elapsed: Date().timeIntervalSince(start)))
    }
}
