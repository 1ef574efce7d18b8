import Foundation

/// A job that cannot run on its pool, said before anything starts (exit code 2 in the CLI).
public struct JobRejected: Error, CustomStringConvertible, Sendable {
    public var reasons: [String]
    public var description: String { reasons.joined(separator: "\n") }
}

/// Runs a job to completion on a pool in this process: allocates node groups and slots,
/// starts attempts on threads of their own, follows dependencies, retries failures on new
/// allocations, and backfills idle slots with work that fits.
public final class JobRunner: @unchecked Sendable {
    public struct Progress: Sendable {
        public var succeeded: Int
        public var failed: Int
        public var running: Int
        public var waiting: Int
        public var elapsed: Double
    }

    public let job: JobSpec
    public private(set) var pool: Pool
    let executor: AttemptExecutor
    var allocator: Allocator
    let onProgress: @Sendable (Progress) -> Void
    /// Told of every finished attempt (to persist it) with the task's state after it.
    public var onAttemptFinished: (@Sendable (TaskSpec, Int?, Attempt, TaskState) -> Void)?
    /// The units (task, replica) the job runs, in order.
    public var unitList: [(task: String, replica: Int?)] { units.map { ($0.task.id, $0.replica) } }
    /// Told whenever a node's state changes here (lost, unhealthy, swept), to persist it.
    public var onNodeChange: (@Sendable (Node) -> Void)?
    /// Reads the pool's stored node states (drains from `cohort node drain`), if stored.
    public var refreshNodes: (@Sendable () -> [Node]?)?
    /// Seconds a passed health check stays good before a node joins another group.
    public var healthCheckInterval: Double = 30
    var lastHealthy: [Int: Date] = [:]
    var lastRefresh = Date.distantPast
    var sweepInProgress = false

    /// One task, or one replica of it.
    final class Unit: @unchecked Sendable {  // touched only under `condition`
        let task: TaskSpec
        let replica: Int?
        var run: TaskRun
        var running = false
        var finished = false
        /// Cached at the end, so progress never copies the attempts.
        var succeeded = false
        /// The node group of the running attempt.
        var group: [Int] = []
        init(task: TaskSpec, replica: Int?) {
            self.task = task
            self.replica = replica
            run = TaskRun(taskId: task.id, replica: replica, state: .active, attempts: [], skippedBecause: nil)
        }
    }

    var units: [Unit] = []
    /// Units neither running nor finished, in submission order: what scheduling looks at.
    var waiting: [Unit] = []
    /// Per task id: its units, and how many ended in success or failure.
    var outcomes: [String: (total: Int, succeeded: Int, failed: Int)] = [:]
    var runningCount = 0, succeededCount = 0, failedCount = 0
    let condition = NSCondition()
    var completions: [(Unit, [Int], Attempt)] = []
    var start = Date()

    public init(job: JobSpec, pool: Pool, settings: ExecutionSettings, policy: PlacementPolicy = .pack,
                onProgress: @escaping @Sendable (Progress) -> Void = { _ in }) throws(JobRejected) {
        self.job = job
        self.pool = pool
        self.executor = AttemptExecutor(settings: settings, pool: pool)
        self.allocator = Allocator(pool: pool, policy: policy)
        self.onProgress = onProgress
        try checkFeasible()
        for task in job.tasks {
            if let multi = task.multiInstance, multi.replicas > 1 {
                for replica in 0..<multi.replicas { units.append(Unit(task: task, replica: replica)) }
            } else {
                units.append(Unit(task: task, replica: nil))
            }
            outcomes[task.id] = (task.multiInstance.map { max(1, $0.replicas) } ?? 1, 0, 0)
        }
        waiting = units
    }

    /// Rejects tasks that could never be placed, instead of letting them wait forever.
    func checkFeasible() throws(JobRejected) {
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

    /// Runs every unit to its end and returns the outcome.
    public func run() -> JobRun {
        start = Date()
        condition.lock()
        while true {
            refreshNodeStates()
            sweepPending()
            skipBlocked()
            startReadyUnits()
            report()
            if waiting.isEmpty && runningCount == 0 { break }
            // Wake for completions, and once a second for drains and pending sweeps.
            while completions.isEmpty, condition.wait(until: Date() + 1) {}
            let done = completions
            completions.removeAll()
            for (unit, group, attempt) in done { finish(unit, group: group, attempt: attempt) }
        }
        // A last try at nodes that were cut off; what stays pending is kept with the node.
        while sweepInProgress { _ = condition.wait(until: Date() + 0.1) }
        condition.unlock()
        sweepPendingNow()
        return JobRun(jobId: job.id, pool: pool.name, start: start, end: Date(), tasks: units.map(\.run))
    }

    /// Cancels the run: running attempts are ended (SIGTERM, then SIGKILL), nothing new
    /// starts, and `run()` returns once every attempt has been cleaned up.
    public func cancel() {
        executor.cancellation.cancel()
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    /// The task runs so far (for watching a job from another thread).
    public func snapshot() -> [TaskRun] {
        condition.lock(); defer { condition.unlock() }
        return units.map(\.run)
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
            for (index, ids) in swept { pool.nodes[index].pendingSweeps?.removeAll { ids.contains($0) }; onNodeChange?(pool.nodes[index]) }
            sweepInProgress = false
            condition.signal()
            condition.unlock()
        }.start()
    }

    func sweepPendingNow() {
        for (index, ids) in JobRunner.sweep(pool.nodes, executor) {
            pool.nodes[index].pendingSweeps?.removeAll { ids.contains($0) }
            onNodeChange?(pool.nodes[index])
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
        onNodeChange?(pool.nodes[index])
    }

    /// Whether every unit of task `id` succeeded (true), one failed (false), or neither yet.
    func taskSucceeded(_ id: String) -> Bool? {
        guard let outcome = outcomes[id] else { return nil }
        if outcome.failed > 0 { return false }
        return outcome.succeeded == outcome.total ? true : nil
    }

    /// Marks `unit` finished and counts its outcome.
    func complete(_ unit: Unit) {
        unit.run.state = .completed
        unit.finished = true
        unit.succeeded = unit.run.succeeded
        if unit.succeeded {
            outcomes[unit.task.id]!.succeeded += 1
            succeededCount += 1
        } else {
            outcomes[unit.task.id]!.failed += 1
            failedCount += 1
        }
    }

    /// Units whose dependency failed will never run: say so.
    func skipBlocked() {
        var changed = true
        while changed {
            changed = false
            for unit in waiting where !unit.finished {
                if let failed = unit.task.dependsOn.first(where: { taskSucceeded($0) == false }) {
                    unit.run.skippedBecause = Failure(category: .dependencyFailed, message: "task \(failed), which it depends on, did not succeed")
                    complete(unit)
                    changed = true
                }
            }
        }
        waiting.removeAll { $0.finished }
    }

    func startReadyUnits() {
        if executor.cancellation.isCancelled {
            for unit in waiting {
                unit.run.skippedBecause = Failure(category: .cancelled, message: "the run was cancelled before it started")
                complete(unit)
            }
            waiting.removeAll()
            return
        }
        var stillWaiting: [Unit] = []
        var noSlotLeft = false
        defer { waiting = stillWaiting }
        for unit in waiting {
            // Once not even one slot is free, nothing else can start in this pass.
            guard !noSlotLeft, !unit.finished else { if !unit.finished { stillWaiting.append(unit) }; continue }
            guard unit.task.dependsOn.allSatisfy({ taskSucceeded($0) == true }) else { stillWaiting.append(unit); continue }
            let multi = unit.task.multiInstance
            let perNode = multi?.processesPerNode ?? 1
            // Replicas of one task run on disjoint node groups.
            let siblings = unit.replica == nil ? [] : Set(units.filter { $0.running && $0.task.id == unit.task.id }.flatMap(\.group))
            guard let allocated = allocator.allocateGroup(instances: multi?.instances ?? 1, processesPerNode: perNode, excluding: siblings) else {
                stillWaiting.append(unit)
                if multi == nil { noSlotLeft = true }
                continue  // not free now: later units may still fit (backfill)
            }
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
            unit.run.state = .running
            let work = AttemptExecutor.Work(jobId: job.id, task: unit.task, replica: unit.replica,
                                            attempt: unit.run.attempts.count + 1, jobEnvironment: job.environment)
            let nodes = group.map { pool.nodes[$0] }
            let executor = self.executor
            let thread = Thread { [self] in
                let attempt = executor.run(work, on: nodes)
                condition.lock()
                completions.append((unit, group, attempt))
                condition.signal()
                condition.unlock()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    func finish(_ unit: Unit, group: [Int], attempt: Attempt) {
        allocator.release(group: group, processesPerNode: unit.task.multiInstance?.processesPerNode ?? 1)
        unit.running = false
        runningCount -= 1
        unit.group = []
        unit.run.attempts.append(attempt)
        if let failure = attempt.failure, failure.category == .nodeLost, let nodeId = failure.node,
           let index = pool.nodes.firstIndex(where: { $0.id == nodeId }), pool.nodes[index].state != .unusable {
            // A lost node takes no more work; the retry goes elsewhere.
            markUnusable(index, reason: failure.message)
        }
        let attemptId = [job.id, unit.task.id, unit.replica.map { "r\($0)" }, "a\(attempt.number)"].compactMap { $0 }.joined(separator: ".")
        for nodeId in attempt.unsweptNodes ?? [] {
            guard let index = pool.nodes.firstIndex(where: { $0.id == nodeId }) else { continue }
            pool.nodes[index].pendingSweeps = (pool.nodes[index].pendingSweeps ?? []) + [attemptId]
            onNodeChange?(pool.nodes[index])
        }
        let retriesLeft = attempt.failure != nil && attempt.failure?.category != .transportUnavailable
            && attempt.failure?.category != .cancelled && !executor.cancellation.isCancelled
            && unit.run.attempts.count <= unit.task.constraints.maxTaskRetryCount
        if retriesLeft, allocator.impossibility(instances: unit.task.multiInstance?.instances ?? 1,
                                                processesPerNode: unit.task.multiInstance?.processesPerNode ?? 1) == nil {
            unit.run.state = .active
            waiting.append(unit)  // a retry waits for a new allocation
        } else {
            complete(unit)
        }
        onAttemptFinished?(unit.task, unit.replica, attempt, unit.run.state)
    }

    func report() {
        onProgress(Progress(succeeded: succeededCount, failed: failedCount, running: runningCount,
                            waiting: units.count - succeededCount - failedCount - runningCount, elapsed: Date().timeIntervalSince(start)))
    }
}
