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

    /// One task, or one replica of it.
    final class Unit: @unchecked Sendable {  // touched only under `condition`
        let task: TaskSpec
        let replica: Int?
        var run: TaskRun
        var running = false
        var finished = false
        /// The node group of the running attempt.
        var group: [Int] = []
        init(task: TaskSpec, replica: Int?) {
            self.task = task
            self.replica = replica
            run = TaskRun(taskId: task.id, replica: replica, state: .active, attempts: [], skippedBecause: nil)
        }
    }

    var units: [Unit] = []
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
        }
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
            skipBlocked()
            startReadyUnits()
            report()
            if units.allSatisfy(\.finished) { break }
            while completions.isEmpty { condition.wait() }
            let done = completions
            completions.removeAll()
            for (unit, group, attempt) in done { finish(unit, group: group, attempt: attempt) }
        }
        condition.unlock()
        return JobRun(jobId: job.id, pool: pool.name, start: start, end: Date(), tasks: units.map(\.run))
    }

    func taskSucceeded(_ id: String) -> Bool? {
        let mine = units.filter { $0.task.id == id }
        if mine.contains(where: { $0.finished && !$0.run.succeeded }) { return false }
        return mine.allSatisfy { $0.finished && $0.run.succeeded } ? true : nil
    }

    /// Units whose dependency failed will never run: say so.
    func skipBlocked() {
        var changed = true
        while changed {
            changed = false
            for unit in units where !unit.finished && !unit.running {
                if let failed = unit.task.dependsOn.first(where: { taskSucceeded($0) == false }) {
                    unit.run.skippedBecause = Failure(category: .dependencyFailed, message: "task \(failed), which it depends on, did not succeed")
                    unit.run.state = .completed
                    unit.finished = true
                    changed = true
                }
            }
        }
    }

    func startReadyUnits() {
        for unit in units where !unit.finished && !unit.running {
            guard unit.task.dependsOn.allSatisfy({ taskSucceeded($0) == true }) else { continue }
            let multi = unit.task.multiInstance
            let perNode = multi?.processesPerNode ?? 1
            // Replicas of one task run on disjoint node groups.
            let siblings = unit.replica == nil ? [] : Set(units.filter { $0.running && $0.task.id == unit.task.id }.flatMap(\.group))
            guard let allocated = allocator.allocateGroup(instances: multi?.instances ?? 1, processesPerNode: perNode, excluding: siblings) else {
                continue  // not free now: later units may still fit (backfill)
            }
            let group = allocated.sorted()  // in pool order: the first node is the master
            unit.running = true
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
        unit.group = []
        unit.run.attempts.append(attempt)
        if let failure = attempt.failure, failure.category == .nodeLost, let nodeId = failure.node,
           let index = pool.nodes.firstIndex(where: { $0.id == nodeId }) {
            // A lost node takes no more work in this run; the retry goes elsewhere.
            pool.nodes[index].state = .unusable
            pool.nodes[index].stateReason = failure.message
            allocator.setUsable(index, false)
        }
        let retriesLeft = attempt.failure != nil && attempt.failure?.category != .transportUnavailable
            && unit.run.attempts.count <= unit.task.constraints.maxTaskRetryCount
        if retriesLeft, allocator.impossibility(instances: unit.task.multiInstance?.instances ?? 1,
                                                processesPerNode: unit.task.multiInstance?.processesPerNode ?? 1) == nil {
            unit.run.state = .active
        } else {
            unit.run.state = .completed
            unit.finished = true
        }
    }

    func report() {
        var progress = Progress(succeeded: 0, failed: 0, running: 0, waiting: 0, elapsed: Date().timeIntervalSince(start))
        for unit in units {
            if unit.running { progress.running += 1 }
            else if unit.finished { if unit.run.succeeded { progress.succeeded += 1 } else { progress.failed += 1 } }
            else { progress.waiting += 1 }
        }
        onProgress(progress)
    }
}
