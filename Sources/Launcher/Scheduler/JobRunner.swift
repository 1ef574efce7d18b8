import Foundation

/// A job that cannot run on its pool, said before anything starts (exit code 2 in the CLI).
public struct JobRejected: Error, CustomStringConvertible, Sendable {
    public var reasons: [String]
    public var description: String { reasons.joined(separator: "\n") }
}

/// The controller of one pool in this process: the only owner of its scheduling state (a
/// `SchedulingCore`), driven by one loop. Commands (add, cancel, hold) and the events its
/// workers post (attempt ended, health checked, preparation done, nodes swept, drains read
/// from the store) go through an inbox; the loop applies a batch of them to the core, lets
/// it decide, and hands the effects to workers: threads that run attempts, ssh health
/// checks, preparation and release tasks and sweeps, and one serial queue that records.
/// The core's lock is held only while the core computes, never across ssh, a process
/// spawn or SQLite. `cohort run` gives it one job; `cohort serve` adds jobs while it runs.
public final class JobRunner: @unchecked Sendable {
    public struct Progress: Sendable {
        public var succeeded: Int
        public var failed: Int
        public var running: Int
        public var waiting: Int
        public var elapsed: Double
    }

    /// What the runner learned about a node, to persist field by field (`PoolStore.apply`):
    /// never a whole node value, which would undo an admin's drain made meanwhile.
    public enum NodeChange: Sendable, Equatable {
        /// Lost or failed its health check.
        case unusable(reason: String)
        /// An attempt's processes may still run there (the node was cut off).
        case sweepPending(String)
        /// These attempts' leftovers were killed.
        case swept([String])
        /// The pool's start task ran there.
        case startTaskRan(NodeTaskRun)
    }

    let core: SchedulingCore
    private let coreLock = NSLock()
    private let startTasks = StartTasks()
    let executor: AttemptExecutor
    let onProgress: @Sendable (Progress) -> Void

    // Told, in the order things happened and on one serial queue off the scheduling loop:
    /// every attempt as it starts (its nodes, number and directory; no end yet), so running
    /// work is visible;
    public var onAttemptStarted: (@Sendable (String, TaskSpec, Int?, Attempt) -> Void)?
    /// every finished attempt: job id, task, replica, the attempt, and the task's state after it;
    public var onAttemptFinished: (@Sendable (String, TaskSpec, Int?, Attempt, TaskState) -> Void)?
    /// every job whose tasks have all ended;
    public var onJobFinished: (@Sendable (JobRun) -> Void)?
    /// whatever the runner learns of a node (node id, what);
    public var onNodeChange: (@Sendable (String, NodeChange) -> Void)?
    /// a job a task's exit conditions disabled (job id, why).
    public var onJobDisabled: (@Sendable (String, String) -> Void)?
    /// Reads the pool's stored node states (drains from `cohort node drain`), off the loop.
    public var refreshNodes: (@Sendable () -> [Node]?)?
    private let recording = DispatchQueue(label: "cohort.runner.recording")

    /// Set by `cohort serve`: finished jobs are forgotten at once, so memory stays flat
    /// however many jobs it has run.
    public var isService: Bool {
        get { withCore { $0.forgetsFinishedJobs } }
        set { withCore { $0.forgetsFinishedJobs = newValue } }
    }
    /// Seconds a passed health check stays good before a node joins another group.
    public var healthCheckInterval: Double {
        get { withCore { $0.healthCheckInterval } }
        set { withCore { $0.healthCheckInterval = newValue } }
    }

    private let inbox = NSCondition()
    private var events: [SchedulingEvent] = []
    private var woken = false
    private var refreshing = false
    private var paused = false
    private var lastRefresh = Date.distantPast
    var start = Date()
    /// The work tree's id, which every sweep marker starts with.
    let stateId: String

    /// A runner for `pool` with no job yet (`add` gives it jobs).
    public init(pool: Pool, settings: ExecutionSettings, policy: PlacementPolicy = .pack,
                onProgress: @escaping @Sendable (Progress) -> Void = { _ in }) {
        self.core = SchedulingCore(pool: pool, policy: policy)
        self.executor = AttemptExecutor(settings: settings, pool: pool)
        self.onProgress = onProgress
        self.stateId = executor.settings.stateId
    }

    /// A runner for one job (`cohort run`).
    public convenience init(job: JobSpec, pool: Pool, settings: ExecutionSettings, policy: PlacementPolicy = .pack,
                            onProgress: @escaping @Sendable (Progress) -> Void = { _ in }) throws(JobRejected) {
        self.init(pool: pool, settings: settings, policy: policy, onProgress: onProgress)
        try add(job)
    }

    private func withCore<T>(_ body: (SchedulingCore) throws -> T) rethrows -> T {
        coreLock.lock()
        defer { coreLock.unlock() }
        return try body(core)
    }

    /// The pool as the runner sees it (node states it learned, pending sweeps).
    public var pool: Pool { withCore { $0.pool } }
    /// The first job given (the one `cohort run` runs).
    public var job: JobSpec { withCore { $0.jobs.first!.spec } }
    /// The units (task, replica) of the first job, in order.
    public var unitList: [(task: String, replica: Int?)] { withCore { $0.jobs.first!.units.map { ($0.task.id, $0.replica) } } }

    /// Gives the runner a job; its tasks go after waiting tasks of jobs of equal or higher
    /// priority. Rejected at once if a task could never fit the pool.
    /// `prior`: what a server that crashed left stored of this job (its tasks' attempts and
    /// states): completed tasks stay done, the others go on with their attempts counted.
    /// `startedAt`: when the job first started (its maxWallClockTime counts from then).
    public func add(_ spec: JobSpec, prior: [JobStore.TaskRecord] = [], startedAt: Date? = nil, held: Bool = false) throws(JobRejected) {
        coreLock.lock()
        core.now = Date()
        do {
            try core.add(spec, prior: prior, startedAt: startedAt, held: held)
        } catch {
            coreLock.unlock()
            throw error
        }
        let effects = takeEffects()
        coreLock.unlock()
        perform(effects)
        wake()
    }

    /// Cancels the run: running attempts are ended (SIGTERM, then SIGKILL), nothing new
    /// starts, and `run()` returns once every attempt has been cleaned up.
    public func cancel() {
        executor.cancellation.cancel()
        post(.cancelAll)
    }

    /// Cancels one job: its running attempts end, its waiting tasks never start.
    public func cancel(jobId: String) { post(.cancel(jobId: jobId)) }

    /// Disables (holds) or enables a job: a held job's waiting tasks do not start.
    public func setHeld(jobId: String, _ held: Bool) { post(.hold(jobId: jobId, held)) }

    /// Paused: nothing new starts (running attempts go on); the service pauses its runners
    /// while the state directory cannot be written.
    public func setPaused(_ isPaused: Bool) {
        inbox.lock(); paused = isPaused; woken = true; inbox.signal(); inbox.unlock()
    }

    /// What the pool holds now, for metrics: its nodes (with states as the runner sees
    /// them), slots taken and in all on usable nodes, units waiting and running, and how long
    /// each node's agent has been silent (nodes with an agent only).
    public struct Occupancy: Sendable {
        public var pool: Pool
        public var usedSlots: Int
        public var totalSlots: Int
        /// Per node, in pool order.
        public var usedSlotsByNode: [Int]
        public var waiting: Int
        public var running: Int
        public var agentSilence: [(node: String, seconds: Double)]
    }

    public var occupancy: Occupancy {
        var occupancy = withCore { core in
            let allocator = core.allocator
            // Slots in all: those of nodes that may take work; in use: wherever work runs (a
            // node drained under a running task still has it).
            let total = allocator.capacity.indices.filter { allocator.usable[$0] }.reduce(0) { $0 + allocator.capacity[$1] }
            let used = allocator.capacity.indices.reduce(0) { $0 + allocator.capacity[$1] - allocator.free[$1] }
            return Occupancy(pool: core.pool, usedSlots: used, totalSlots: total,
                             usedSlotsByNode: allocator.capacity.indices.map { allocator.capacity[$0] - allocator.free[$0] }, waiting: core.waitingCount,
                             running: core.runningCount, agentSilence: [])
        }
        occupancy.agentSilence = executor.agents.silences()  // the fleet's own lock, not the core's
        return occupancy
    }

    /// Whether a job with this id is running here and not finished.
    public func runs(jobId: String) -> Bool {
        withCore { $0.jobs.contains { $0.spec.id == jobId && $0.state != .completed } }
    }

    /// Why each of the job's units that has not started waits, by display id (`solve[1]`).
    public func waitingReasons(jobId: String) -> [String: String] {
        withCore { core in
            guard let job = core.jobs.first(where: { $0.spec.id == jobId && $0.state != .completed }) else { return [:] }
            var reasons: [String: String] = [:]
            for unit in job.units { if let why = core.waitingReason(unit) { reasons[unit.run.displayId] = why } }
            return reasons
        }
    }

    /// The first job's task runs so far (for watching a job from another thread).
    public func snapshot() -> [TaskRun] {
        withCore { $0.jobs.first?.units.map(\.run) ?? [] }
    }

    private func post(_ event: SchedulingEvent) {
        inbox.lock()
        events.append(event)
        inbox.signal()
        inbox.unlock()
    }

    private func wake() {
        inbox.lock(); woken = true; inbox.signal(); inbox.unlock()
    }

    /// Runs every job given to its end and returns the first job's outcome (`cohort run`).
    public func run() -> JobRun {
        serve(until: { true })
        return withCore { core in core.finishedRuns.first { $0.jobId == core.jobs.first?.spec.id } ?? core.finishedRuns[0] }
    }

    /// Runs jobs as they are added until `stop()` says so and nothing is left running or
    /// waiting (`run()` stops as soon as the work given is done). `leavingWaiting` (`cohort
    /// serve`): once `stop()` says so, nothing new starts and it returns when what runs has
    /// ended; tasks that have not started stay queued for the next server.
    public func serve(until stop: @escaping () -> Bool, leavingWaiting: Bool = false) {
        start = Date()
        var batch: [SchedulingEvent] = []
        while true {
            coreLock.lock()
            core.now = Date()
            for event in batch { core.handle(event) }
            let stopping = leavingWaiting && stop()
            inbox.lock(); let isPaused = paused; inbox.unlock()
            if !stopping && !isPaused {
                let passStart = DispatchTime.now().uptimeNanoseconds
                core.schedule()
                EngineMetrics.schedulingPassTook(pool: core.pool.name, seconds: Double(DispatchTime.now().uptimeNanoseconds - passStart) / 1e9)
            }
            let effects = takeEffects()
            let progress = Progress(succeeded: core.succeededCount, failed: core.failedCount, running: core.runningCount,
                                    waiting: core.waitingCount, elapsed: Date().timeIntervalSince(start))
            let idle = stopping ? core.isQuiescent : core.isIdle
            // Wake for events and new jobs, and once a second for drains and pending sweeps.
            var wakeAt = Date() + 1
            if let deadline = core.nextDeadline, deadline < wakeAt { wakeAt = deadline }
            coreLock.unlock()
            perform(effects)
            onProgress(progress)
            if idle && stop() { break }
            refreshNodesIfDue()
            inbox.lock()
            if events.isEmpty && !woken { _ = inbox.wait(until: wakeAt) }
            batch = events
            events.removeAll()
            woken = false
            inbox.unlock()
        }
        // A last try at nodes that were cut off; what stays pending is kept with the node.
        while withCore({ $0.isSweeping }) {
            inbox.lock()
            if let index = events.firstIndex(where: { if case .swept = $0 { return true } else { return false } }) {
                let event = events.remove(at: index)
                inbox.unlock()
                withCore { $0.handle(event) }
                perform(takeEffectsLocked())
            } else {
                _ = inbox.wait(until: Date() + 0.1)
                inbox.unlock()
            }
        }
        let pending = withCore { $0.pendingSweeps }
        if !pending.isEmpty {
            let swept = sweep(pending)
            withCore { $0.handle(.swept(swept)) }
            perform(takeEffectsLocked())
        }
        executor.flushRemoteSweeps()
        executor.agents.close()  // agents end; a served controller's tasks would run on
        recording.sync {}  // everything told before the run returns
    }

    /// The core's effects; the recording ones are queued here, under the core's lock, so
    /// that they are recorded in the order they were decided whoever takes them.
    private func takeEffects() -> [SchedulingEffect] {
        let effects = core.takeEffects()
        for effect in effects { record(effect) }
        return effects
    }

    private func takeEffectsLocked() -> [SchedulingEffect] { withCore { _ in takeEffects() } }

    private func record(_ effect: SchedulingEffect) {
        switch effect {
        case .attemptStarted(let unit, let group, let number):
            EngineMetrics.attemptStarted(pool: core.pool.name)
            guard let onAttemptStarted else { return }
            let work = self.work(unit, number)
            var started = Attempt(number: number, nodes: group.map { core.pool.nodes[$0].id }, nodeExitCodes: [:], exitCode: nil, start: core.now, end: nil,
                                  transport: nil, launchedCommand: [], directory: work.directory(under: executor.settings.workDirectory), failure: nil)
            started.markerId = work.attemptId
            started.gpus = core.gpuDevices(unit)
            let jobId = unit.job.spec.id, task = unit.task, replica = unit.replica, record = started
            recording.async { onAttemptStarted(jobId, task, replica, record) }
        case .attemptFinished(let jobId, let task, let replica, let attempt, let state):
            EngineMetrics.attemptEnded(pool: core.pool.name, attempt)
            guard let onAttemptFinished else { return }
            recording.async { onAttemptFinished(jobId, task, replica, attempt, state) }
        case .jobEnded(_, let run):
            guard let onJobFinished else { return }
            recording.async { onJobFinished(run) }
        case .nodeChanged(let node, let change):
            if case .unusable = change { startTasks.forget(node) }
            guard let onNodeChange else { return }
            recording.async { onNodeChange(node, change) }
        case .jobDisabled(let jobId, let reason):
            guard let onJobDisabled else { return }
            recording.async { onJobDisabled(jobId, reason) }
        default:
            break
        }
    }

    private func work(_ unit: SchedulingCore.Unit, _ number: Int) -> AttemptExecutor.Work {
        AttemptExecutor.Work(jobId: unit.job.spec.id, task: unit.task, replica: unit.replica, attempt: number,
                             jobEnvironment: unit.job.spec.environment, cancellation: unit.job.cancellation, stateId: stateId, workKey: unit.job.spec.workKey)
    }

    /// Carries out the core's effects: what takes time goes to a thread of its own, which
    /// posts the outcome back as an event.
    private func perform(_ effects: [SchedulingEffect]) {
        guard !effects.isEmpty else { return }
        let nodes = withCore { $0.pool.nodes }
        for effect in effects {
            switch effect {
            case .launch(let unit, let group, let number):
                var prepared = self.work(unit, number)
                if unit.task.nodeExtras.gpus > 0 { prepared.gpus = withCore { $0.gpuDevices(unit) } }
                prepared.phases = [AttemptPhase(name: .queued, at: unit.queuedAt), AttemptPhase(name: .allocated, at: unit.allocatedAt),
                                   AttemptPhase(name: .nodesReady, at: Date())]
                let work = prepared
                let members = group.map { nodes[$0] }
                background { [self] in post(.attemptEnded(unit, executor.run(work, on: members))) }
            case .adopt(let unit, let group, let started):
                var adopted = self.work(unit, started.number)
                adopted.gpus = started.gpus
                let work = adopted
                let members = group.map { nodes[$0] }
                background { [self] in post(.attemptEnded(unit, executor.adopt(work, started: started, on: members))) }
            case .failBeforeLaunch(let unit, let group, let number, let failure):
                let work = self.work(unit, number)
                var attempt = Attempt(number: number, nodes: group.map { nodes[$0].id }, nodeExitCodes: [:], exitCode: nil, start: Date(), end: Date(),
                                      transport: nil, launchedCommand: [], directory: work.directory(under: executor.settings.workDirectory), failure: failure)
                attempt.markerId = work.attemptId
                post(.attemptEnded(unit, attempt))
            case .checkHealth(let unit, let indices):
                let pool = withCore { $0.pool }
                let health = NodeHealth(pool: pool, agents: executor.agents, timeout: 5)
                let executor = self.executor, startTasks = self.startTasks, onNodeChange = self.onNodeChange, recording = self.recording
                background { [self] in
                    // Every node of the group at once: a 32-node group costs one check's time.
                    // A healthy node then runs the pool's start task if it is due.
                    let reasons = concurrentMap(indices) { index -> String? in
                        let report = health.check(nodes[index])
                        guard report.healthy else { return report.reason ?? "health check failed" }
                        return startTasks.ensure(nodes[index], pool: pool, executor: executor) { run in
                            if let onNodeChange { recording.async { onNodeChange(run.node, .startTaskRan(run)) } }
                        }
                    }
                    let failed = zip(indices, reasons).compactMap { index, reason in reason.map { (node: index, reason: $0) } }
                    post(.healthChecked(unit, failed: failed))
                }
            case .prepare(let job, let index):
                guard let spec = job.spec.preparation else { continue }
                let executor = self.executor
                background { [self] in
                    let run = executor.runNodeTask(spec, kind: .preparation, jobId: job.spec.id, workKey: job.spec.workKey, jobEnvironment: job.spec.environment,
                                                   node: nodes[index], cancellation: job.cancellation)
                    post(.prepared(job, node: index, run))
                }
            case .release(let job, let indices):
                guard let spec = job.spec.release else { continue }
                let executor = self.executor
                background { [self] in
                    let runs = concurrentMap(indices) { index in
                        executor.runNodeTask(spec, kind: .release, jobId: job.spec.id, workKey: job.spec.workKey, jobEnvironment: job.spec.environment,
                                             node: nodes[index], cancellation: Cancellation())
                    }
                    post(.released(job, runs))
                }
            case .sweep(let pending):
                background { [self] in post(.swept(sweep(pending))) }
            case .endAttempts(let job, let grace):
                job.cancellation.cancel(grace: grace)
            case .endAllAttempts:
                executor.cancellation.cancel()
            case .log(let message):
                executor.settings.log(message)
            case .attemptStarted, .attemptFinished, .jobEnded, .nodeChanged, .jobDisabled:
                break  // recorded when taken
            }
        }
    }

    /// One ssh per node for all its pending attempt ids, every node at once; what was swept.
    private func sweep(_ pending: [(node: Int, attemptIds: [String])]) -> [(node: Int, attemptIds: [String])] {
        let nodes = withCore { $0.pool.nodes }
        let executor = self.executor
        let done = concurrentMap(pending) { entry in
            executor.sweepRemote(variable: ProcessSweeper.marker, values: entry.attemptIds, node: nodes[entry.node])
        }
        return zip(pending, done).map { entry, ok in (node: entry.node, attemptIds: ok ? entry.attemptIds : []) }
    }

    private func refreshNodesIfDue() {
        guard let refreshNodes, Date().timeIntervalSince(lastRefresh) >= 1, !refreshing else { return }
        lastRefresh = Date()
        refreshing = true
        background { [self] in
            let stored = refreshNodes()
            inbox.lock()
            refreshing = false
            if let stored { events.append(.nodesStored(stored)); inbox.signal() }
            inbox.unlock()
        }
    }

    private func background(_ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.stackSize = 1 << 20
        thread.start()
    }
}
