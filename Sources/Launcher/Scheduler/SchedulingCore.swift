import Foundation

/// The scheduling decisions of one pool, and nothing else: jobs, their units (a task, or
/// one replica of it), node states and the allocator, as typed states changed only by the
/// calls below. It does no I/O and takes no lock: whoever drives it (the real `JobRunner`,
/// or `Simulation` with a fake launcher and clock) calls it from one thread at a time, sets
/// `now`, and carries out the effects it returns (`takeEffects`), answering with events.
///
/// Its hottest properties are `@exclusivity(unchecked)`: one thread at a time touches the
/// core (its driver's lock says so), so Swift's run-time exclusivity checks there only cost
/// (about 10 % of a pass at 10,000 nodes).
///
/// Costs follow what happens, not what waits: dependencies are counted (a unit enters a
/// waiting queue when its last dependency succeeds), waiting units sit in one queue per
/// shape, and a pass stops trying a shape at its first unit that does not fit.
public final class SchedulingCore {
    /// Where a unit is in its life.
    public enum UnitState: Sendable, Equatable {
        /// Its dependencies have not all succeeded yet.
        case blocked
        /// Ready, in a waiting queue (or set aside while its job is disabled).
        case waiting
        /// Its group is taken; its remote nodes are being checked.
        case checkingHealth
        /// Its group is taken; the job preparation task runs on some of its nodes.
        case preparing
        case running
        case finished
    }

    /// One task, or one replica of it.
    public final class Unit: @unchecked Sendable {  // touched only by the core's caller
        public unowned let job: Job
        /// Its task, read in place from the job's spec: a copy per unit cost ~400 bytes each,
        /// 400 MB at a million tasks.
        public var task: TaskSpec { _read { yield job.spec.tasks[taskIndex] } }
        public let replica: Int?
        /// Its task's index in the job's spec.
        let taskIndex: Int
        /// Its place in submission order, across jobs.
        let sequence: Int
        let shape: WaitingQueues.Shape
        @exclusivity(unchecked) public internal(set) var state: UnitState = .blocked
        @exclusivity(unchecked) public internal(set) var run: TaskRun
        /// The node group of the current attempt, and its number.
        @exclusivity(unchecked) public internal(set) var group: [Int] = []
        /// The GPUs it holds on each node of `group`, by position in the node's list (empty
        /// when it asked for none).
        public internal(set) var gpuPositions: [[Int]] = []
        public internal(set) var attemptNumber = 0
        /// Dependencies (task ids) that have not succeeded yet.
        var unmetDependencies = 0
        /// In a waiting queue now (a unit is never in two).
        @exclusivity(unchecked) var queued = false
        /// Its wait for drained nodes was logged.
        var toldWhyItWaits = false
        /// When its current attempt was launched.
        public internal(set) var launchedAt = Date.distantPast
        /// Counted among its throttled array's elements in flight (queued, placed or running).
        var throttled = false
        /// When it last became ready to run, and when its current group was taken.
        public internal(set) var queuedAt = Date.distantPast
        public internal(set) var allocatedAt = Date.distantPast

        init(job: Job, task: TaskSpec, taskIndex: Int, replica: Int?, sequence: Int) {
            self.job = job
            self.taskIndex = taskIndex
            self.replica = replica
            self.sequence = sequence
            let multi = task.multiInstance
            shape = WaitingQueues.Shape(priority: job.spec.priority, instances: multi?.instances ?? 1,
                                        processesPerNode: multi?.slotsPerNode ?? task.requiredSlots ?? 1, exclusive: multi?.exclusive ?? false,
                                        extras: task.nodeExtras)
            run = TaskRun(taskId: task.id, replica: replica, state: .active, attempts: [], skippedBecause: nil)
        }

        var instances: Int { shape.instances }
        var processesPerNode: Int { shape.processesPerNode }
        var exclusive: Bool { shape.exclusive }
        var extras: Allocator.Extras { shape.extras }
        var isActive: Bool { state == .checkingHealth || state == .preparing || state == .running }
    }

    /// A job being run.
    public final class Job: @unchecked Sendable {
        public enum State: Sendable, Equatable {
            /// Tasks are waiting or running.
            case active
            /// Every task ended; its release tasks run.
            case releasing
            case completed
        }
        public let spec: JobSpec
        /// Unique per job given to this core: a job deleted and submitted again under the
        /// same id is another incarnation, and nothing of one is taken for the other.
        public let incarnation: Int
        public internal(set) var state = State.active
        public internal(set) var units: [Unit] = []
        @exclusivity(unchecked) var remaining = 0
        public internal(set) var start: Date
        var started = false
        /// Ends this job's attempts only; the core hands it to launches, the workers cancel it.
        public let cancellation = Cancellation()
        public internal(set) var cancelled = false
        public internal(set) var held = false
        /// Units set aside while the job is disabled.
        var heldUnits: [Unit] = []
        var deadline: Date?
        public internal(set) var timedOut = false
        /// Per task (index in the spec): how many units it has, and how many ended in success or failure.
        @exclusivity(unchecked) var outcomes: [(total: Int, succeeded: Int, failed: Int)] = []
        /// Per task: how many of its units' ends let its dependents run, and how many block
        /// them (a success satisfies and a failure blocks, unless its exitConditions say otherwise).
        @exclusivity(unchecked) var dependencyOutcomes: [(satisfied: Int, blocked: Int)] = []
        /// Why the job was ended by a task's exit conditions (jobAction terminate).
        public internal(set) var terminatedBecause: String?
        /// Per task (index in the spec): the units waiting for it, and how (afterok, afterany, afternotok).
        var dependents: [[(unit: Unit, condition: JobDependency.Condition)]] = []
        /// Its preparation task per node index: running, or done with its failure if any.
        var preparation: [Int: Preparation] = [:]
        var awaitingPreparation: [ObjectIdentifier: Unit] = [:]
        /// Nodes where preparation failed: its tasks go elsewhere.
        var preparationFailed: Set<Int> = []
        /// Nodes any of its attempts ran on: where its release task runs (if it has one).
        var usedNodes: Set<Int> = []
        /// Nodes of the running replicas, per replicated task id: its other replicas go elsewhere.
        var replicaNodes: [String: Set<Int>] = [:]
        public internal(set) var nodeTasks: [NodeTaskRun] = []
        enum Preparation { case running, done(Failure?) }
        /// Per throttled array (`array: 1-100%8`): its elements in flight, and those held
        /// back until one of them ends, in order.
        var throttles: [String: Throttle] = [:]
        final class Throttle {
            let limit: Int
            var inFlight = 0
            var held: [Unit] = []
            var next = 0
            init(limit: Int) { self.limit = limit }
        }

        init(spec: JobSpec, incarnation: Int, now: Date) {
            self.spec = spec
            self.incarnation = incarnation
            self.start = now
        }
    }

    public private(set) var pool: Pool
    @exclusivity(unchecked) var allocator: Allocator
    /// The time of the call being made; set by the driver before each batch of calls.
    public var now = Date()
    /// Seconds a passed health check stays good before a node joins another group.
    public var healthCheckInterval: Double = 30
    /// Whether a node must be checked before it takes work (remote nodes, or a pool with a
    /// health script); the driver may say otherwise (a simulation).
    public var needsHealthCheck: (Node, Pool) -> Bool = { node, pool in
        // Slurm checks its own nodes (slurmd's pings, HealthCheckProgram); their states come in with the pool's.
        pool.kind != .slurm && (!node.isLocal || pool.healthCheckCommandLine != nil || pool.startTask != nil)
    }
    /// Forget finished jobs at once (a service), instead of keeping them for `finishedRuns`.
    public var forgetsFinishedJobs = false

    public private(set) var jobs: [Job] = []
    public private(set) var finishedRuns: [JobRun] = []
    public private(set) var runningCount = 0, succeededCount = 0, failedCount = 0, waitingCount = 0
    /// Placement decisions made: attempts given a group.
    public private(set) var placements = 0
    var releasesRunning = 0
    @exclusivity(unchecked) var queues = WaitingQueues()
    var sequence = 0
    var incarnations = 0
    /// When each node last passed a health check.
    @exclusivity(unchecked) var lastHealthy: [Date]
    var sweepInProgress = false
    /// Nodes with pending sweeps (so that a pass need not look at every node).
    var nodesToSweep = 0
    public private(set) var cancelledAll = false
    /// Nodes held back for the first multi-instance unit that could not start: no other
    /// work starts on them, so they drain and it starts, however much small work keeps
    /// backfilling the other nodes (without it, a stream of small tasks starves it).
    var reservation: (unit: Unit, nodes: Set<Int>)?
    /// Why a shape can never fit, cached until a node's usability changes.
    var impossible: [WaitingQueues.Shape: String?] = [:]
    @exclusivity(unchecked) var usableFitting: [Int] = []
    @exclusivity(unchecked) private var effects: [SchedulingEffect] = []

    public init(pool: Pool, policy: PlacementPolicy = .pack) {
        self.pool = pool
        self.allocator = Allocator(pool: pool, policy: policy)
        lastHealthy = Array(repeating: .distantPast, count: pool.nodes.count)
        nodesToSweep = pool.nodes.filter { !($0.pendingSweeps ?? []).isEmpty }.count
    }

    /// The effects decided since the last call, in the order they were decided.
    public func takeEffects() -> [SchedulingEffect] {
        defer { effects.removeAll(keepingCapacity: true) }
        return effects
    }

    /// Nothing runs or is being released (units may wait).
    public var isQuiescent: Bool { runningCount == 0 && releasesRunning == 0 }

    /// Nothing waits, runs, or is being released.
    public var isIdle: Bool { jobs.allSatisfy { $0.state == .completed || $0.remaining == 0 } && releasesRunning == 0 && runningCount == 0 }

    /// Nodes a unit's allocation must avoid (replicas of its task, nodes where its job's
    /// preparation failed), beyond the reservation.
    func ownExclusions(_ unit: Unit) -> Set<Int> {
        var excluded = unit.job.preparationFailed
        if unit.replica != nil, let taken = unit.job.replicaNodes[unit.task.id] { excluded.formUnion(taken) }
        return excluded
    }

    // MARK: - Commands

    /// Gives the core a job; its units wait behind those of equal or higher priority.
    /// Rejected at once if a task could never fit the pool. `prior`: what a server that
    /// stopped left stored of it (completed tasks stay done; attempts are counted).
    @discardableResult
    public func add(_ spec: JobSpec, prior: [JobStore.TaskRecord] = [], startedAt: Date? = nil, held: Bool = false) throws(JobRejected) -> Job {
        try checkFeasible(spec)
        incarnations += 1
        let job = Job(spec: spec, incarnation: incarnations, now: now)
        job.held = held
        job.deadline = spec.maxWallClockTime.map { (startedAt ?? now).addingTimeInterval($0) }
        job.units.reserveCapacity(spec.tasks.count)
        job.outcomes.reserveCapacity(spec.tasks.count)
        for (taskIndex, task) in spec.tasks.enumerated() {
            let replicas = task.multiInstance.map { max(1, $0.replicas) } ?? 1
            for replica in 0..<replicas {
                sequence += 1
                job.units.append(Unit(job: job, task: task, taskIndex: taskIndex, replica: replicas > 1 ? replica : nil, sequence: sequence))
            }
            job.outcomes.append((replicas, 0, 0))
            job.dependencyOutcomes.append((0, 0))
        }
        job.dependents = Array(repeating: [], count: spec.tasks.count)
        job.remaining = job.units.count
        jobs.append(job)
        if !prior.isEmpty {
            let records = Dictionary(prior.map { ("\($0.taskId)#\($0.replica ?? -1)", $0) }) { first, _ in first }
            for unit in job.units {
                guard let record = records["\(unit.task.id)#\(unit.replica ?? -1)"] else { continue }
                unit.run.attempts = record.attempts
                unit.attemptNumber = record.attempts.map(\.number).max() ?? 0
                job.started = job.started || !record.attempts.isEmpty
            }
        }
        let priorStates = Dictionary(prior.map { ("\($0.taskId)#\($0.replica ?? -1)", $0) }) { first, _ in first }
        // Count dependencies first, then end what was ended before: its dependents follow.
        // (The spec's checks make every dependency a task of the job.)
        var taskIndex: [String: Int] = [:]
        if spec.tasks.contains(where: { !$0.dependsOn.isEmpty }) {
            for (index, task) in spec.tasks.enumerated() { taskIndex[task.id] = index }
        }
        for unit in job.units {
            waitingCount += 1
            guard !unit.task.dependsOn.isEmpty else { continue }
            var dependencies: [Int: JobDependency.Condition] = [:]
            for id in unit.task.dependsOn { if let index = taskIndex[id] { dependencies[index] = unit.task.condition(on: id) } }
            unit.unmetDependencies = dependencies.count
            for (dependency, condition) in dependencies { job.dependents[dependency].append((unit, condition)) }
        }
        for unit in job.units {
            guard let record = priorStates["\(unit.task.id)#\(unit.replica ?? -1)"], record.state == .completed, unit.state != .finished else { continue }
            if record.attempts.isEmpty { unit.run.skippedBecause = record.failure }
            complete(unit)
        }
        // What a killed server left running and the recovery adopted (an open attempt in
        // its record) holds its group again before anything else is placed.
        for unit in job.units where unit.state != .finished {
            guard let record = priorStates["\(unit.task.id)#\(unit.replica ?? -1)"],
                  let open = record.attempts.last(where: { $0.end == nil }) else { continue }
            adopt(unit, open)
        }
        for unit in job.units where unit.state == .blocked && unit.unmetDependencies == 0 { enqueue(unit) }
        return job
    }

    /// Gives `unit` back the group its open attempt runs on and has it watched to its end;
    /// if the group cannot be had (a node left the pool, its slots went to other work),
    /// the attempt is cut off: swept from its nodes and run again.
    func adopt(_ unit: Unit, _ open: Attempt) {
        unit.run.attempts.removeAll { $0.number == open.number }
        let indices = open.nodes.compactMap { id in pool.nodes.firstIndex { $0.id == id } }
        // Its GPUs by position in each node's list, as the allocator counts them.
        let positions = indices.count == open.nodes.count ? zip(indices, open.gpus ?? []).map { index, devices in
            devices.map { pool.nodes[index].gpus?.firstIndex(of: $0) ?? -1 }
        } : []
        guard indices.count == open.nodes.count, (open.gpus ?? []).isEmpty || open.gpus?.count == indices.count,
              allocator.occupy(group: indices, processesPerNode: unit.processesPerNode, exclusive: unit.exclusive,
                               gpus: positions, memory: unit.extras.memory) else {
            var attempt = open
            attempt.end = now
            attempt.failure = Failure(category: .interrupted, node: open.nodes.first,
                                      message: "the server stopped while this attempt ran and its nodes could not be taken back; it was ended and runs again")
            attempt.unsweptNodes = open.nodes
            unit.run.attempts.append(attempt)
            for index in indices {
                if (pool.nodes[index].pendingSweeps ?? []).isEmpty { nodesToSweep += 1 }
                pool.nodes[index].pendingSweeps = (pool.nodes[index].pendingSweeps ?? []) + [open.markerId ?? ""]
                effects.append(.nodeChanged(pool.nodes[index].id, .sweepPending(open.markerId ?? "")))
            }
            effects.append(.attemptFinished(jobId: unit.job.spec.id, task: unit.task, replica: unit.replica, attempt: attempt, state: .active))
            return
        }
        let job = unit.job
        job.started = true
        if job.spec.release != nil { job.usedNodes.formUnion(indices) }
        if unit.replica != nil { job.replicaNodes[unit.task.id, default: []].formUnion(indices) }
        if let array = unit.task.array, let limit = array.throttle {
            let throttle = job.throttles[array.task] ?? Job.Throttle(limit: limit)
            job.throttles[array.task] = throttle
            throttle.inFlight += 1
            unit.throttled = true
        }
        unit.group = indices
        unit.gpuPositions = positions
        unit.attemptNumber = open.number
        unit.state = .running
        unit.run.state = .running
        unit.launchedAt = open.start
        waitingCount -= 1
        runningCount += 1
        effects.append(.adopt(unit, group: indices, attempt: open))
    }

    /// Rejects tasks that could never be placed, instead of letting them wait forever.
    func checkFeasible(_ job: JobSpec) throws(JobRejected) {
        var reasons: [String] = []
        // Drained nodes count: a task that needs them waits for them. Unusable ones (lost,
        // failed their health check) do not: they come back only by an admin's hand.
        if pool.nodes.allSatisfy({ $0.state == .unusable }) {
            reasons.append("pool \(pool.name) has no usable node")
        }
        for task in job.tasks {
            let multi = task.multiInstance ?? MultiInstance(instances: 1, processesPerNode: task.requiredSlots ?? 1)
            let why = impossibility(WaitingQueues.Shape(priority: 0, instances: multi.instances, processesPerNode: multi.slotsPerNode,
                                                        extras: task.nodeExtras))
            if let why { reasons.append("task \(task.id) can never run on pool \(pool.name): it \(why)") }
        }
        if !reasons.isEmpty { throw JobRejected(reasons: reasons) }
    }

    public func handle(_ event: SchedulingEvent) {
        switch event {
        case .healthChecked(let unit, let failed): healthChecked(unit, failed: failed)
        case .prepared(let job, let node, let run): prepared(job, node: node, run)
        case .attemptEnded(let unit, let attempt): attemptEnded(unit, attempt)
        case .released(let job, let runs): released(job, runs)
        case .swept(let swept): self.swept(swept)
        case .nodesStored(let nodes): nodesStored(nodes)
        case .cancel(let id): for job in jobs where job.spec.id == id && job.state == .active { cancel(job, grace: nil) }
        case .cancelAll: cancelAll()
        case .hold(let id, let held): for job in jobs where job.spec.id == id { setHeld(job, held) }
        }
    }

    func cancelAll() {
        guard !cancelledAll else { return }
        cancelledAll = true
        effects.append(.endAllAttempts)
        for job in jobs where job.state == .active { cancel(job, grace: nil) }
    }

    /// Ends the job's attempts and skips what has not started.
    func cancel(_ job: Job, grace: Double?) {
        job.cancelled = true
        effects.append(.endAttempts(job, grace: grace ?? 3))
        for unit in job.units where unit.state == .blocked || unit.state == .waiting {
            skip(unit, because: job.timedOut ? Self.jobTimeout(job, started: false)
                 : job.terminatedBecause.map { Failure(category: .cancelled, message: "the job was terminated before this task started: \($0)") }
                 ?? Failure(category: .cancelled, message: "the job was cancelled before this task started"))
        }
    }

    func setHeld(_ job: Job, _ held: Bool) {
        job.held = held
        if !held {
            for unit in job.heldUnits where unit.state == .waiting { unit.queued = true; queues.push(unit) }
            job.heldUnits.removeAll()
        }
    }

    /// Ends jobs whose maxWallClockTime ran out: their attempts are ended, the rest skipped.
    func expireJobs() {
        for job in jobs where !job.timedOut && job.state == .active {
            guard let deadline = job.deadline, now >= deadline else { continue }
            job.timedOut = true
            effects.append(.log("job \(job.spec.id): its maxWallClockTime ran out; ending its tasks"))
            cancel(job, grace: min(5, job.spec.tasks.map(\.constraints.killGracePeriod).max() ?? 5))
        }
    }

    /// The next moment the driver must call `schedule()` at the latest (a job's deadline).
    public var nextDeadline: Date? {
        jobs.lazy.filter { !$0.timedOut && $0.state == .active }.compactMap(\.deadline).min()
    }

    static func jobTimeout(_ job: Job, started: Bool) -> Failure {
        let limit = Durations.format(job.spec.maxWallClockTime ?? 0)
        return Failure(category: .timeout, message: started ? "the job's maxWallClockTime of \(limit) ran out; the task's processes were ended"
                                                            : "the job's maxWallClockTime of \(limit) ran out before this task started")
    }

    /// Applies drains and undrains an admin made.
    func nodesStored(_ stored: [Node]) {
        for node in stored {
            guard let index = pool.nodes.firstIndex(where: { $0.id == node.id }) else { continue }
            let mine = pool.nodes[index].state
            // A Slurm pool's states are Slurm's: down or drained there, back when Slurm says so.
            let slurmOwned = pool.kind == .slurm
            if slurmOwned, node.state == .unusable, mine != .unusable, mine != .offline {
                pool.nodes[index].state = .unusable
                pool.nodes[index].stateReason = node.stateReason
                setUsable(index, false)
            } else if slurmOwned, node.state.acceptsWork, mine == .unusable {
                pool.nodes[index].state = .idle
                pool.nodes[index].stateReason = nil
                setUsable(index, true)
            } else if node.state == .offline, mine != .offline, mine != .unusable {
                pool.nodes[index].state = .offline
                pool.nodes[index].stateReason = node.stateReason
                setUsable(index, false)
            } else if node.state.acceptsWork, mine == .offline {
                pool.nodes[index].state = .idle
                pool.nodes[index].stateReason = nil
                setUsable(index, true)
            }
        }
    }

    func setUsable(_ index: Int, _ usable: Bool) {
        guard allocator.usable[index] != usable else { return }
        allocator.setUsable(index, usable)
        impossible.removeAll()
        usableFitting.removeAll()
    }

    func markUnusable(_ index: Int, reason: String) {
        pool.nodes[index].state = .unusable
        pool.nodes[index].stateReason = reason
        setUsable(index, false)
        impossible.removeAll()  // also when it was drained before (and so not usable already)
        lastHealthy[index] = .distantPast
        effects.append(.log("node \(pool.nodes[index].id) is unusable: \(reason)"))
        effects.append(.nodeChanged(pool.nodes[index].id, .unusable(reason: reason)))
        // What can no longer fit the nodes left ends now instead of waiting forever.
        for job in jobs where job.state == .active {
            for unit in job.units where (unit.state == .waiting || unit.state == .blocked) && impossibility(unit.shape) != nil {
                skip(unit, because: Failure(category: .nodeLost, message: "too few healthy nodes are left in pool \(pool.name): it \(impossibility(unit.shape)!)"))
            }
        }
    }

    /// Why a group of this shape can never fit the pool (whatever its priority), cached
    /// until a node's usability changes.
    func impossibility(_ shape: WaitingQueues.Shape) -> String? {
        var shape = shape
        shape.priority = 0
        if let known = impossible[shape] { return known }
        let candidates = pool.nodes.filter { $0.state != .unusable }
        let largest = candidates.map(\.slots).max() ?? 0
        let extras = shape.extras
        let fitting = candidates.filter { $0.slots >= shape.processesPerNode && ($0.gpus?.count ?? 0) >= extras.gpus && ($0.memoryMiB ?? 0) >= extras.memory }.count
        var why: String?
        let mostGPUs = candidates.map { $0.gpus?.count ?? 0 }.max() ?? 0
        let mostMemory = candidates.map { $0.memoryMiB ?? 0 }.max() ?? 0
        if shape.processesPerNode > largest {
            why = "needs \(shape.processesPerNode) slots per node (a slot per rank, or per core of a rank with cpusPerRank) but the largest node has \(largest) slots"
        } else if extras.gpus > mostGPUs {
            why = "needs \(extras.gpus) GPUs per node but " + (mostGPUs == 0 ? "the pool's nodes have none (cohort pool add … --gpus-per-node N)"
                                                                              : "the most a node has is \(mostGPUs)")
        } else if extras.memory > mostMemory {
            why = "needs \(Self.mebibytes(extras.memory)) of memory per node but " + (mostMemory == 0 ? "the pool states none for its nodes (cohort pool add … --memory-per-node SIZE)"
                                                                                                   : "the most a node has is \(Self.mebibytes(mostMemory))")
        } else if shape.instances > fitting {
            let what = extras.isEmpty ? "\(shape.processesPerNode) slots" : "\(shape.processesPerNode) slots, \(extras.gpus) GPUs and \(Self.mebibytes(extras.memory))"
            why = "needs \(shape.instances) nodes with \(what) each but the pool has \(fitting) such nodes"
                + (candidates.count < pool.nodes.count ? " (\(pool.nodes.count - candidates.count) more are unusable)" : "")
        }
        impossible[shape] = why
        return why
    }

    /// `4096 MiB` as `4 GiB`, else in MiB.
    static func mebibytes(_ value: Int) -> String {
        value >= 1024 && value % 1024 == 0 ? "\(value / 1024) GiB" : "\(value) MiB"
    }

    /// Why a unit has not started yet, or nil if it has: its dependencies, its job being
    /// disabled, too few usable nodes right now (drained), or slots that are busy.
    public func waitingReason(_ unit: Unit) -> String? {
        switch unit.state {
        case .blocked:
            let pending = unit.task.dependsOn.filter { id in
                guard let index = unit.job.spec.tasks.firstIndex(where: { $0.id == id }) else { return true }
                let outcome = unit.job.outcomes[index]
                switch unit.task.condition(on: id) {
                case .afterok, .aftercorr: return outcome.succeeded != outcome.total
                case .afterany, .afternotok: return outcome.succeeded + outcome.failed != outcome.total
                }
            }
            return "waiting for \(pending.map { id in unit.task.condition(on: id) == .afterok ? id : "\(id) (\(unit.task.condition(on: id).rawValue))" }.joined(separator: ", "))"
        case .waiting:
            if unit.job.held { return "waiting: the job is disabled" }
            if !unit.queued, let array = unit.task.array, let limit = array.throttle {
                return "waiting: array \(array.task) runs at most \(limit) element\(limit == 1 ? "" : "s") at once"
            }
            let configured = pool.nodes.filter { $0.slots >= unit.processesPerNode }.count
            let usable = usableNodes(atLeast: unit.processesPerNode)
            if usable < unit.instances { return "waiting: \(usable) of \(configured) nodes usable" }
            if let reservation, reservation.unit !== unit {
                return "waiting for free slots (nodes are held for \(reservation.unit.job.spec.id)/\(reservation.unit.run.displayId))"
            }
            return unit.extras.isEmpty ? "waiting for free slots" : "waiting for free slots, GPUs or memory"
        default:
            return nil
        }
    }

    /// Usable nodes with at least `slots` slots, counted for every size at once and kept
    /// until a node's usability changes.
    func usableNodes(atLeast slots: Int) -> Int {
        if usableFitting.isEmpty {
            usableFitting = Array(repeating: 0, count: allocator.largestNode + 2)
            for index in pool.nodes.indices where allocator.usable[index] { usableFitting[min(pool.nodes[index].slots, allocator.largestNode)] += 1 }
            for level in stride(from: usableFitting.count - 2, through: 0, by: -1) { usableFitting[level] += usableFitting[level + 1] }
        }
        return slots < usableFitting.count ? usableFitting[max(0, slots)] : 0
    }

    // MARK: - Scheduling pass

    /// Starts what fits now, in priority then submission order, backfilling idle slots with
    /// smaller work around what does not fit; asks for sweeps of nodes that were cut off.
    public func schedule() {
        expireJobs()
        requestSweeps()
        if let held = reservation, held.unit.state != .waiting || held.nodes.contains(where: { !allocator.usable[$0] }) {
            reservation = nil
        }
        // The reserved unit first: the nodes held back are for it.
        if let holder = reservation?.unit, holder.queued, !holder.job.held, !holder.job.cancelled, tryStart(holder, excluding: ownExclusions(holder)) {
            holder.queued = false  // its queue entry is passed over when popped
        }
        let reserved = reservation?.nodes ?? []
        // Reserved nodes by free slots: no other unit may use them in this pass.
        var reservedWithFree = Array(repeating: 0, count: allocator.largestNode + 2)
        for node in reserved where allocator.usable[node] { reservedWithFree[allocator.free[node]] += 1 }
        for level in stride(from: reservedWithFree.count - 2, through: 0, by: -1) { reservedWithFree[level] += reservedWithFree[level + 1] }
        // Nodes outside the reservation with at least k free slots, for every k: a shape
        // may fit only if enough of them exist (recounted after each start).
        var fitting = reservedWithFree
        func recount() {
            var count = 0
            for level in stride(from: fitting.count - 1, through: 0, by: -1) {
                if level < fitting.count - 1 { count += allocator.nodes(withFree: level) }
                fitting[level] = count - reservedWithFree[level]
            }
        }
        recount()
        func mayFit(_ shape: WaitingQueues.Shape) -> Bool {
            shape.processesPerNode < fitting.count && fitting[shape.processesPerNode] >= shape.instances
        }
        // Only queues whose shape may fit are walked; the others are counted in O(slots) each.
        // Higher priority first, then the older head.
        var order = Heap<QueueOrder, WaitingQueues.Queue>()
        func push(_ queue: WaitingQueues.Queue) {
            order.push(queue, key: QueueOrder(priority: -queue.shape.priority, head: queue.units.firstKey ?? .max))
        }
        var oldestMisfit: Unit?  // the first multi-instance unit in queue order that cannot start
        func misfit(_ unit: Unit) {
            if !unit.toldWhyItWaits, usableNodes(atLeast: unit.processesPerNode) < unit.instances, let why = waitingReason(unit) {
                unit.toldWhyItWaits = true
                effects.append(.log("job \(unit.job.spec.id): task \(unit.run.displayId) is \(why)"))
            }
            guard unit.instances > 1, reservation == nil else { return }
            if let other = oldestMisfit, other.shape.priority > unit.shape.priority
                || (other.shape.priority == unit.shape.priority && other.sequence < unit.sequence) { return }
            oldestMisfit = unit
        }
        for queue in queues.all where !queue.units.isEmpty {
            if mayFit(queue.shape) { push(queue) } else if let head = queue.headWaiting() { misfit(head) }
        }
        var setAside: [Unit] = []
        var blockedReplicas: Set<TaskKey> = []
        pass: while let queue = order.pop() {
            while let unit = queue.headWaiting() {
                // Not one slot free: nothing else can start.
                if fitting[1] + reservedWithFree[1] == 0 { break pass }
                if unit.job.held {
                    queue.units.pop()
                    unit.queued = false
                    unit.job.heldUnits.append(unit)
                    continue
                }
                if unit.replica != nil, !blockedReplicas.isEmpty, blockedReplicas.contains(TaskKey(unit)) {
                    queue.units.pop()
                    setAside.append(unit)
                    continue
                }
                let own = ownExclusions(unit)
                if !unit.job.preparationFailed.isEmpty, let failure = tooFewNodesLeft(unit) {
                    queue.units.pop()
                    skip(unit, because: failure)
                    continue
                }
                if mayFit(unit.shape), tryStart(unit, excluding: own.isEmpty ? reserved : reserved.isEmpty ? own : own.union(reserved)) {
                    queue.units.pop()
                    unit.queued = false
                    recount()
                    // Let a queue with an older head go first.
                    if !queue.units.isEmpty { push(queue) }
                    continue pass
                }
                // Its own exclusions (its sibling replicas' nodes, nodes where its job's
                // preparation failed) may be what blocks it, not the shape: set it aside,
                // and its task's other replicas with it (they exclude the same nodes).
                if !own.isEmpty, fits(unit.shape, excluding: reserved) {
                    queue.units.pop()
                    setAside.append(unit)
                    if unit.replica != nil { blockedReplicas.insert(TaskKey(unit)) }
                    continue
                }
                misfit(unit)
                continue pass  // this shape does not fit now; smaller ones may (backfill)
            }
        }
        for unit in setAside { queues.push(unit) }
        if let unit = oldestMisfit, reservation == nil { reserve(for: unit, excluding: ownExclusions(unit)) }
    }

    struct QueueOrder: Comparable {
        var priority: Int
        var head: Int
        static func < (a: Self, b: Self) -> Bool { a.priority != b.priority ? a.priority < b.priority : a.head < b.head }
    }

    /// A task of a job incarnation.
    struct TaskKey: Hashable {
        var incarnation: Int
        var task: String
        init(_ unit: Unit) { incarnation = unit.job.incarnation; task = unit.task.id }
    }

    /// Whether a group of this shape fits now, taking nothing.
    func fits(_ shape: WaitingQueues.Shape, excluding excluded: Set<Int>) -> Bool {
        guard let placed = allocator.place(instances: shape.instances, processesPerNode: shape.processesPerNode, extras: shape.extras,
                                           excluding: excluded, exclusive: shape.exclusive) else { return false }
        allocator.release(group: placed.nodes, processesPerNode: shape.processesPerNode, exclusive: shape.exclusive,
                          gpus: placed.gpus, memory: shape.extras.memory)
        return true
    }

    func tooFewNodesLeft(_ unit: Unit) -> Failure? {
        let left = allocator.capacity.indices.filter {
            allocator.usable[$0] && allocator.capacity[$0] >= unit.processesPerNode && !unit.job.preparationFailed.contains($0)
        }
        guard left.count < unit.instances else { return nil }
        let failed = unit.job.preparationFailed.sorted().map { pool.nodes[$0].id }
        return Failure(category: .preparationFailed, message: "the job preparation task failed on \(Hostlist.compress(failed)); too few nodes are left for this task")
    }

    /// Takes a group for `unit` if one is free, and starts it on its way.
    func tryStart(_ unit: Unit, excluding excluded: Set<Int>) -> Bool {
        guard let placed = allocator.place(instances: unit.instances, processesPerNode: unit.processesPerNode, extras: unit.extras,
                                           excluding: excluded, exclusive: unit.exclusive) else { return false }
        if reservation?.unit === unit { reservation = nil }
        placements += 1
        // In pool order: the first node is the master (its GPUs sorted along with it).
        let group: [Int]
        if placed.gpus.isEmpty {
            group = placed.nodes.sorted()
        } else {
            let order = placed.nodes.indices.sorted { placed.nodes[$0] < placed.nodes[$1] }
            group = order.map { placed.nodes[$0] }
            unit.gpuPositions = order.map { placed.gpus[$0] }
        }
        unit.group = group
        unit.allocatedAt = now
        waitingCount -= 1
        runningCount += 1
        if unit.replica != nil { unit.job.replicaNodes[unit.task.id, default: []].formUnion(group) }
        let unchecked = group.filter { index in
            guard needsHealthCheck(pool.nodes[index], pool) else { return false }
            if now.timeIntervalSince(lastHealthy[index]) < healthCheckInterval { return false }
            return true
        }
        if unchecked.isEmpty {
            begin(unit)
        } else {
            unit.state = .checkingHealth
            effects.append(.checkHealth(unit, nodes: unchecked))
        }
        return true
    }

    /// Holds back the `instances` nodes that will be free soonest (the most free slots now)
    /// for `unit`; they take no other work until it starts.
    func reserve(for unit: Unit, excluding excluded: Set<Int>) {
        guard let chosen = allocator.mostFree(count: unit.instances, minimumCapacity: unit.processesPerNode, extras: unit.extras, excluding: excluded) else { return }
        reservation = (unit, Set(chosen))
    }

    /// The GPUs `unit` holds on each node of its group, as device numbers (nil if none).
    public func gpuDevices(_ unit: Unit) -> [[Int]]? {
        guard !unit.gpuPositions.isEmpty else { return nil }
        return zip(unit.group, unit.gpuPositions).map { index, positions in positions.map { pool.nodes[index].gpus?[$0] ?? $0 } }
    }

    // MARK: - An attempt's way: health, preparation, launch, end

    func healthChecked(_ unit: Unit, failed: [(node: Int, reason: String)]) {
        guard unit.state == .checkingHealth else { return }
        for index in unit.group where !failed.contains(where: { $0.node == index }) { lastHealthy[index] = now }
        if failed.isEmpty, !unit.job.cancelled {
            begin(unit)
            return
        }
        for (index, reason) in failed where pool.nodes[index].state != .unusable { markUnusable(index, reason: reason) }
        releaseGroup(unit)
        waitingCount += 1
        unit.state = .waiting
        if unit.job.cancelled {
            skip(unit, because: unit.job.timedOut ? Self.jobTimeout(unit.job, started: false)
                                                  : Failure(category: .cancelled, message: "the job was cancelled before this task started"))
        } else if impossibility(unit.shape) != nil {
            skip(unit, because: Failure(category: .nodeLost, message: "too few healthy nodes are left in pool \(pool.name)"))
        } else {
            unit.queued = true
            queues.push(unit)
        }
    }

    /// The group is good: record the attempt as started, then prepare the nodes or launch.
    func begin(_ unit: Unit) {
        let job = unit.job
        if !job.started { job.started = true; job.start = now }
        if job.spec.release != nil { job.usedNodes.formUnion(unit.group) }
        unit.attemptNumber = (unit.run.attempts.map(\.number).max() ?? 0) + 1
        unit.run.state = .running
        effects.append(.attemptStarted(unit, group: unit.group, number: unit.attemptNumber))
        proceed(unit)
    }

    /// Launches the unit once its job's preparation has run on every node of its group.
    func proceed(_ unit: Unit) {
        let job = unit.job
        if job.cancelled || cancelledAll {
            // Cancelled while its nodes were checked or prepared: it ends without starting.
            job.awaitingPreparation[ObjectIdentifier(unit)] = nil
            unit.state = .running
            effects.append(.failBeforeLaunch(unit, group: unit.group, number: unit.attemptNumber,
                                             failure: job.timedOut ? Self.jobTimeout(job, started: false)
                                                                   : Failure(category: .cancelled, message: "the job was cancelled before this task started")))
            return
        }
        guard let spec = job.spec.preparation else { return launch(unit) }
        var pending = false
        for index in unit.group {
            switch job.preparation[index] {
            case nil:
                job.preparation[index] = .running
                effects.append(.prepare(job, node: index))
                pending = true
            case .running?:
                pending = true
            case .done(let failure)?:
                if let failure, spec.waitForSuccess {
                    job.awaitingPreparation[ObjectIdentifier(unit)] = nil
                    unit.state = .running
                    effects.append(.failBeforeLaunch(unit, group: unit.group, number: unit.attemptNumber, failure: failure))
                    return
                }
            }
        }
        if pending {
            unit.state = .preparing
            job.awaitingPreparation[ObjectIdentifier(unit)] = unit
        } else {
            job.awaitingPreparation[ObjectIdentifier(unit)] = nil
            launch(unit)
        }
    }

    func launch(_ unit: Unit) {
        unit.state = .running
        unit.launchedAt = now
        effects.append(.launch(unit, group: unit.group, number: unit.attemptNumber))
    }

    func prepared(_ job: Job, node: Int, _ run: NodeTaskRun) {
        job.nodeTasks.append(run)
        job.preparation[node] = .done(run.failure)
        let waiting = job.awaitingPreparation.values.filter { $0.group.contains(node) }.sorted { $0.sequence < $1.sequence }
        for unit in waiting where unit.state == .preparing { proceed(unit) }
    }

    func releaseGroup(_ unit: Unit) {
        allocator.release(group: unit.group, processesPerNode: unit.processesPerNode, exclusive: unit.exclusive,
                          gpus: unit.gpuPositions, memory: unit.extras.memory)
        if unit.replica != nil { unit.job.replicaNodes[unit.task.id]?.subtract(unit.group) }
        runningCount -= 1
        unit.group = []
        unit.gpuPositions = []
    }

    func attemptEnded(_ unit: Unit, _ attempt: Attempt) {
        guard unit.state == .running else { return }
        let job = unit.job
        var attempt = attempt
        if job.timedOut, attempt.failure?.category == .cancelled {
            var failure = Self.jobTimeout(job, started: true)
            failure.node = attempt.failure?.node
            failure.details = attempt.failure?.details ?? []
            attempt.failure = failure
        }
        releaseGroup(unit)
        unit.run.attempts.append(attempt)
        if attempt.failure?.category == .preparationFailed, let nodeId = attempt.failure?.node,
           let index = pool.nodes.firstIndex(where: { $0.id == nodeId }) {
            job.preparationFailed.insert(index)  // its retry goes to another node
        }
        if let failure = attempt.failure, failure.category == .nodeLost, let nodeId = failure.node,
           let index = pool.nodes.firstIndex(where: { $0.id == nodeId }), pool.nodes[index].state != .unusable {
            // A lost node takes no more work; the retry goes elsewhere.
            markUnusable(index, reason: failure.message)
        }
        if !(attempt.unsweptNodes ?? []).isEmpty, let marker = attempt.markerId {
            for nodeId in attempt.unsweptNodes ?? [] {
                guard let index = pool.nodes.firstIndex(where: { $0.id == nodeId }) else { continue }
                if (pool.nodes[index].pendingSweeps ?? []).isEmpty { nodesToSweep += 1 }
                pool.nodes[index].pendingSweeps = (pool.nodes[index].pendingSweeps ?? []) + [marker]
                effects.append(.nodeChanged(nodeId, .sweepPending(marker)))
            }
        }
        let category = attempt.failure?.category
        // What no retry can change (a transport the group lacks, a request Slurm refuses as invalid) is not retried.
        let retriesLeft = attempt.failure != nil && category != .transportUnavailable && category != .rejected && category != .cancelled && !cancelledAll && !job.cancelled
            && (category == .preparationFailed
                || unit.run.attempts.filter({ $0.failure?.category != .interrupted && $0.failure?.category != .preparationFailed }).count
                    <= unit.task.constraints.maxTaskRetryCount)
        if retriesLeft, impossibility(unit.shape) == nil {
            unit.run.state = .active
            unit.state = .waiting
            waitingCount += 1
            effects.append(.attemptFinished(jobId: job.spec.id, task: unit.task, replica: unit.replica, attempt: attempt, state: .active))
            unit.queued = true
            unit.queuedAt = now
            queues.push(unit)  // a retry waits for a new allocation, at its place in the queue
        } else {
            // Told before the job can be reported finished, so its record is complete.
            effects.append(.attemptFinished(jobId: job.spec.id, task: unit.task, replica: unit.replica, attempt: attempt, state: .completed))
            waitingCount += 1  // `complete` counts it out
            complete(unit)
        }
    }

    // MARK: - Ends

    func enqueue(_ unit: Unit) {
        unit.state = .waiting
        unit.queuedAt = now
        if let array = unit.task.array, let limit = array.throttle, !unit.throttled {
            let throttle = unit.job.throttles[array.task] ?? {
                let made = Job.Throttle(limit: limit)
                unit.job.throttles[array.task] = made
                return made
            }()
            // Its array has as many elements in flight as it may: it waits its turn, out of the queues.
            guard throttle.inFlight < limit else { return throttle.held.append(unit) }
            throttle.inFlight += 1
            unit.throttled = true
        }
        unit.queued = true
        queues.push(unit)
    }

    /// A throttled array's element ended: the next one held back takes its place.
    func releaseThrottle(_ unit: Unit) {
        guard unit.throttled, let array = unit.task.array, let throttle = unit.job.throttles[array.task] else { return }
        unit.throttled = false
        throttle.inFlight -= 1
        while throttle.next < throttle.held.count {
            let next = throttle.held[throttle.next]
            throttle.next += 1
            if next.state == .waiting && !next.queued { return enqueue(next) }
        }
    }

    /// Ends a unit that will never run (or run again), with the reason.
    func skip(_ unit: Unit, because failure: Failure) {
        unit.run.skippedBecause = failure
        complete(unit)
    }

    /// Marks `unit` finished and counts its outcome; a task whose end blocks its dependents
    /// (a failure, unless its exitConditions satisfy them) takes them along (iteratively: a
    /// chain of 15,000 is no deeper than one). Then the job actions its exit conditions ask for.
    func complete(_ first: Unit) {
        var work = [first]
        var actions: [(Job, JobAction, String)] = []
        while let unit = work.popLast() {
            guard unit.state != .finished else { continue }
            unit.state = .finished
            unit.queued = false
            releaseThrottle(unit)
            unit.run.state = .completed
            waitingCount -= 1
            let job = unit.job
            let succeeded = unit.run.succeeded
            if succeeded { succeededCount += 1 } else { failedCount += 1 }
            job.outcomes[unit.taskIndex].succeeded += succeeded ? 1 : 0
            job.outcomes[unit.taskIndex].failed += succeeded ? 0 : 1
            let (satisfies, action) = exitActions(unit)
            if let action { actions.append((job, action.0, action.1)) }
            let before = job.dependencyOutcomes[unit.taskIndex]
            var after = before
            if satisfies { after.satisfied += 1 } else { after.blocked += 1 }
            job.dependencyOutcomes[unit.taskIndex] = after
            let ended = after.satisfied + after.blocked == job.outcomes[unit.taskIndex].total
            // Its dependents learn their fate at its first blocking end (afterok) or once all of
            // it has ended (afterany, afternotok; afterok when all satisfied).
            if (after.blocked == 1 && before.blocked == 0) || ended {
                for (dependent, condition) in job.dependents[unit.taskIndex] {
                    let runs: Bool?  // nil: not decided yet
                    switch condition {
                    case .afterok, .aftercorr: runs = after.blocked > 0 ? (before.blocked == 0 ? false : nil) : (ended ? true : nil)
                    case .afterany: runs = ended ? true : nil
                    case .afternotok: runs = ended ? after.blocked > 0 : nil
                    }
                    if runs == true, dependent.state == .blocked {
                        dependent.unmetDependencies -= 1
                        if dependent.unmetDependencies == 0 { enqueue(dependent) }
                    } else if runs == false, dependent.state == .blocked || dependent.state == .waiting {
                        // Whatever waits for it so never runs.
                        dependent.run.skippedBecause = job.timedOut ? Self.jobTimeout(job, started: false)
                            : job.cancelled ? Failure(category: .cancelled, message: "the job was cancelled before this task started")
                            : condition == .afternotok ? Failure(category: .dependencyFailed, message: "task \(unit.task.id), which it depends on, succeeded; this task waited for it with afternotok")
                            : succeeded ? Failure(category: .dependencyFailed, message: "task \(unit.task.id), which it depends on, succeeded but its exitConditions block its dependents")
                            : Failure(category: .dependencyFailed, message: "task \(unit.task.id), which it depends on, did not succeed")
                        work.append(dependent)
                    }
                }
            }
            job.remaining -= 1
            if job.remaining == 0 { jobTasksEnded(job) }
        }
        for (job, action, reason) in actions where job.state == .active && !job.cancelled {
            switch action {
            case .none:
                break
            case .disable where forgetsFinishedJobs:
                effects.append(.log("job \(job.spec.id): disabled by \(reason)"))
                effects.append(.jobDisabled(jobId: job.spec.id, reason: reason))
                setHeld(job, true)
            case .disable, .terminate:
                // `cohort run` has no one to enable a disabled job again: it ends it.
                let why = action == .disable ? "\(reason) (disable; a job of cohort run cannot be enabled again, so it ends)" : reason
                effects.append(.log("job \(job.spec.id): terminated by \(why)"))
                job.terminatedBecause = why
                cancel(job, grace: nil)
            }
        }
    }

    /// Whether the unit's end lets its dependents run, and the job action its end asks for
    /// (only with the job's onTaskFailure: performExitOptionsJobAction), by Azure's rules:
    /// unless its exitConditions say otherwise, a success satisfies and asks nothing, a
    /// failure blocks and (with that setting) terminates the job.
    func exitActions(_ unit: Unit) -> (satisfies: Bool, action: (JobAction, String)?) {
        let succeeded = unit.run.succeeded
        guard unit.run.skippedBecause == nil, let last = unit.run.attempts.last else { return (succeeded, nil) }
        let options = unit.task.exitConditions?.options(exitCode: last.exitCode, failure: last.failure?.category)
        let satisfies = options?.dependencyAction.map { $0 == .satisfy } ?? succeeded
        guard unit.job.spec.onTaskFailure == .performExitOptionsJobAction else { return (satisfies, nil) }
        let action = options?.jobAction ?? (succeeded ? JobAction.none : .terminate)
        let how = last.failure.map { $0.category == .exitCode ? "exit code \(last.exitCode.map(String.init) ?? "?")" : $0.category.rawValue } ?? "exit code 0"
        return (satisfies, action == .none ? nil : (action, "task \(unit.run.displayId)'s exit conditions (\(how) → \(action.rawValue))"))
    }

    func jobTasksEnded(_ job: Job) {
        if job.spec.release != nil, !job.usedNodes.isEmpty {
            // The release task on every node the job used; the job ends after it.
            job.state = .releasing
            releasesRunning += 1
            effects.append(.release(job, nodes: job.usedNodes.sorted()))
        } else {
            end(job, nodeTasks: [])
        }
    }

    func released(_ job: Job, _ runs: [NodeTaskRun]) {
        guard job.state == .releasing else { return }
        releasesRunning -= 1
        end(job, nodeTasks: runs)
    }

    func end(_ job: Job, nodeTasks: [NodeTaskRun]) {
        job.state = .completed
        job.nodeTasks += nodeTasks
        let run = JobRun(jobId: job.spec.id, pool: pool.name, start: job.start, end: now, tasks: job.units.map(\.run), nodeTasks: job.nodeTasks)
        // A service forgets every finished job (the store has it); `cohort run` keeps the
        // first: the runner's `job`, `unitList` and `run()` read it.
        if !forgetsFinishedJobs { finishedRuns.append(run) }
        if forgetsFinishedJobs || jobs.first !== job { jobs.removeAll { $0 === job } }
        effects.append(.jobEnded(job, run))
    }

    // MARK: - Sweeps of nodes that were cut off

    func requestSweeps() {
        guard !sweepInProgress, nodesToSweep > 0 else { return }
        let pending = pool.nodes.indices.compactMap { index in
            (pool.nodes[index].pendingSweeps ?? []).isEmpty ? nil : (node: index, attemptIds: pool.nodes[index].pendingSweeps ?? [])
        }
        guard !pending.isEmpty else { return }
        sweepInProgress = true
        effects.append(.sweep(pending))
    }

    /// The pending sweeps, for a last try when the driver stops.
    public var pendingSweeps: [(node: Int, attemptIds: [String])] {
        pool.nodes.indices.compactMap { index in
            (pool.nodes[index].pendingSweeps ?? []).isEmpty ? nil : (node: index, attemptIds: pool.nodes[index].pendingSweeps ?? [])
        }
    }

    public var isSweeping: Bool { sweepInProgress }

    func swept(_ done: [(node: Int, attemptIds: [String])]) {
        sweepInProgress = false
        for (index, ids) in done where !ids.isEmpty {
            pool.nodes[index].pendingSweeps?.removeAll { ids.contains($0) }
            if (pool.nodes[index].pendingSweeps ?? []).isEmpty { nodesToSweep -= 1 }
            effects.append(.nodeChanged(pool.nodes[index].id, .swept(ids)))
        }
    }
}
