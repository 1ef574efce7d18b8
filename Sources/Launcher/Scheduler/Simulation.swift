import Foundation

/// The scheduling core driven by a fake launcher and a simulated clock: attempts "run" for
/// the seconds `behaviour` says and end with its exit code, health checks, preparation,
/// release and sweeps answer at once, and time jumps from one event to the next. Backfill,
/// reservations, retries, dependencies, drains and node loss run through the very core the
/// real `JobRunner` drives, thousands of times faster than real processes would.
///
/// It also watches the core from outside: slots in use per node are counted from launches
/// and ends (not read from the allocator) and any excess is a violation, as is a unit that
/// ends twice or a job that ends twice.
public final class Simulation {
    public struct Start: Sendable, Equatable {
        public var time: Double
        public var job: String
        public var task: String
        public var replica: Int?
        public var nodes: [String]
    }

    /// What happens at a moment of simulated time.
    enum Happening {
        case core(SchedulingEvent)
        case attemptEnds(SchedulingCore.Unit, number: Int, exitCode: Int32, failure: Failure?)
        case nodeLost(Int)
        case drain(Int, Bool)
        case submit(JobSpec)
    }

    /// When a happening happens; ties in the order they were planned.
    struct Moment: Comparable {
        var time: Double
        var order: Int
        static func < (a: Self, b: Self) -> Bool { a.time != b.time ? a.time < b.time : a.order < b.order }
    }

    public let core: SchedulingCore
    /// Seconds since the simulation began.
    public private(set) var time: Double = 0
    let origin = Date(timeIntervalSince1970: 1_000_000_000)
    /// How long attempt `number` of a unit runs, and its exit code.
    public var behaviour: (SchedulingCore.Unit, Int) -> (seconds: Double, exitCode: Int32) = { _, _ in (1, 0) }
    /// Nodes whose health check fails, with the reason.
    public var unhealthy: [Int: String] = [:]
    /// Seconds a job preparation task takes.
    public var preparationSeconds: Double = 1
    /// Keep every start (for comparing with a real run); off for scale.
    public var recordsStarts = false
    public private(set) var starts: [Start] = []
    /// Keep every finished job's run (for checking outcomes); off for scale.
    public var recordsRuns = true
    public private(set) var endedJobs: [JobRun] = []
    /// Units of ended jobs: each job ends once, so each unit is counted once.
    public private(set) var unitsEnded = 0
    public private(set) var violations: [String] = []
    /// Jobs submitted that could never fit the pool when they came.
    public private(set) var rejected: [(JobSpec, JobRejected)] = []
    /// Events handled, attempts launched.
    public private(set) var eventsHandled = 0, launches = 0
    /// Running attempts, for cancellations and node loss (an end may come twice: a
    /// cancellation races the attempt's own end, as with real processes; the second is dropped).
    var running: [SchedulingCore.Unit] {
        core.jobs.flatMap { $0.units.filter { $0.state == .running } }
    }
    var used: [Int]
    /// GPUs (device numbers) and memory held on each node, and what each running unit holds,
    /// counted from launches and ends.
    var gpusHeld: [Set<Int>]
    var memoryHeld: [Int]
    var heldBy: [ObjectIdentifier: [[Int]]] = [:]
    /// The nodes of each running replica, per task.
    var replicaGroups: [SchedulingCore.TaskKey: [ObjectIdentifier: Set<Int>]] = [:]
    /// Task index by id, per job incarnation (for the dependency check).
    var taskIndexes: [Int: [String: Int]] = [:]
    var jobsEnded: Set<Int> = []
    /// Boxed: the timeline's heap moves pointers, not whole events.
    final class Planned { let happening: Happening; init(_ happening: Happening) { self.happening = happening } }
    var timeline = Heap<Moment, Planned>()
    var order = 0

    public init(pool: Pool, policy: PlacementPolicy = .pack) {
        core = SchedulingCore(pool: pool, policy: policy)
        core.forgetsFinishedJobs = true
        core.now = origin
        used = Array(repeating: 0, count: pool.nodes.count)
        gpusHeld = Array(repeating: [], count: pool.nodes.count)
        memoryHeld = Array(repeating: 0, count: pool.nodes.count)
    }

    /// Counts what `unit` takes on its group besides slots, and says what breaks the rules:
    /// a GPU given twice, the wrong number of GPUs, more memory than a node has.
    func hold(_ unit: SchedulingCore.Unit, group: [Int], gpus: [[Int]]?) {
        let extras = unit.extras
        guard !extras.isEmpty || gpus != nil else { return }  // most units: nothing to count
        let devices = gpus ?? []
        if extras.gpus > 0 && devices.count != group.count { violations.append("t=\(time): \(unit.run.displayId) started without its GPUs") }
        for (position, node) in group.enumerated() {
            let mine = position < devices.count ? devices[position] : []
            let name = core.pool.nodes[node].id
            if mine.count != extras.gpus { violations.append("t=\(time): \(unit.run.displayId) got \(mine.count) GPUs on \(name), asked \(extras.gpus)") }
            if !gpusHeld[node].isDisjoint(with: mine) { violations.append("t=\(time): GPUs \(mine) of \(name) given twice") }
            if !Set(mine).isSubset(of: core.pool.nodes[node].gpus ?? []) { violations.append("t=\(time): \(name) has no GPUs \(mine)") }
            gpusHeld[node].formUnion(mine)
            memoryHeld[node] += extras.memory
            if memoryHeld[node] > core.pool.nodes[node].memoryMiB ?? 0 && extras.memory > 0 {
                violations.append("t=\(time): \(name) has \(memoryHeld[node]) MiB held of \(core.pool.nodes[node].memoryMiB ?? 0)")
            }
        }
        heldBy[ObjectIdentifier(unit)] = devices
    }

    func letGo(_ unit: SchedulingCore.Unit) {
        guard !unit.extras.isEmpty else { return }
        let devices = heldBy.removeValue(forKey: ObjectIdentifier(unit)) ?? []
        for (position, node) in unit.group.enumerated() {
            if position < devices.count { gpusHeld[node].subtract(devices[position]) }
            memoryHeld[node] -= unit.extras.memory
        }
    }

    /// Gives the core a job now.
    @discardableResult
    public func add(_ spec: JobSpec) throws(JobRejected) -> SchedulingCore.Job {
        try core.add(spec)
    }

    /// Submits a job at simulated second `time` (if it can never fit the pool then, it is in
    /// `rejected`).
    public func submit(_ spec: JobSpec, at time: Double) { at(time, .submit(spec)) }
    /// Cuts node `index` off at `time`: its attempts end as lost.
    public func loseNode(_ index: Int, at time: Double) { at(time, .nodeLost(index)) }
    /// Drains (or undrains) node `index` at `time`, as `cohort node drain` would.
    public func drain(_ index: Int, at time: Double, _ drained: Bool = true) { at(time, .drain(index, drained)) }
    public func cancel(jobId: String, at time: Double) { at(time, .core(.cancel(jobId: jobId))) }
    public func hold(jobId: String, _ held: Bool, at time: Double) { at(time, .core(.hold(jobId: jobId, held))) }

    func at(_ time: Double, _ happening: Happening) {
        order += 1
        timeline.push(Planned(happening), key: Moment(time: time, order: order))
    }

    /// Runs until nothing is left to happen (or simulated time passes `limit`); every
    /// moment's events are handled as one batch, then the core schedules once.
    public func run(until limit: Double = .infinity) {
        core.now = origin + time
        core.schedule()
        perform(core.takeEffects())
        while let next = timeline.firstKey, next.time <= limit {
            time = next.time
            core.now = origin + time
            while let same = timeline.firstKey, same.time == time {
                happen(timeline.pop()!.happening)
                perform(core.takeEffects())
            }
            core.schedule()
            perform(core.takeEffects())
        }
    }

    func happen(_ happening: Happening) {
        eventsHandled += 1
        switch happening {
        case .core(let event):
            core.handle(event)
        case .attemptEnds(let unit, let number, let exitCode, let failure):
            guard unit.state == .running, unit.attemptNumber == number else { return }  // ended already
            for node in unit.group { used[node] -= taken(unit, node) }
            letGo(unit)
            if unit.replica != nil { replicaGroups[SchedulingCore.TaskKey(unit)]?[ObjectIdentifier(unit)] = nil }
            let start = unit.launchedAt
            let attempt = Attempt(number: number, nodes: unit.group.map { core.pool.nodes[$0].id }, nodeExitCodes: [:], exitCode: exitCode,
                                  start: start, end: core.now, transport: nil, launchedCommand: [], directory: "", failure: failure)
            core.handle(.attemptEnded(unit, attempt))
        case .nodeLost(let index):
            let id = core.pool.nodes[index].id
            for unit in running where unit.group.contains(index) {
                at(time, .attemptEnds(unit, number: unit.attemptNumber, exitCode: 255,
                                      failure: Failure(category: .nodeLost, node: id, message: "node \(id) stopped answering")))
            }
            unhealthy[index] = "unreachable"
        case .drain(let index, let drained):
            var nodes = core.pool.nodes
            nodes[index].state = drained ? .offline : .idle
            core.handle(.nodesStored(nodes))
        case .submit(let spec):
            do { try core.add(spec) } catch { rejected.append((spec, error)) }
        }
    }

    /// Slots a unit holds on a node of its group: all of them if it is exclusive.
    func taken(_ unit: SchedulingCore.Unit, _ node: Int) -> Int {
        unit.exclusive ? core.pool.nodes[node].slots : unit.processesPerNode
    }

    func perform(_ effects: [SchedulingEffect]) {
        for effect in effects {
            switch effect {
            case .checkHealth(let unit, let nodes):
                let failed = nodes.compactMap { index in unhealthy[index].map { (node: index, reason: $0) } }
                at(time, .core(.healthChecked(unit, failed: failed)))
            case .attemptStarted(let unit, let group, _):
                hold(unit, group: group, gpus: core.gpuDevices(unit))
                for node in group {
                    used[node] += taken(unit, node)
                    if used[node] > core.pool.nodes[node].slots {
                        violations.append("t=\(time): node \(core.pool.nodes[node].id) has \(used[node]) of \(core.pool.nodes[node].slots) slots in use")
                    }
                }
                if unit.replica != nil {
                    // Replicas of one task run on disjoint groups.
                    let key = SchedulingCore.TaskKey(unit)
                    let mine = Set(group)
                    for (other, nodes) in replicaGroups[key] ?? [:] where other != ObjectIdentifier(unit) && !mine.isDisjoint(with: nodes) {
                        violations.append("t=\(time): replicas of \(unit.job.spec.id)/\(unit.task.id) share nodes")
                    }
                    replicaGroups[key, default: [:]][ObjectIdentifier(unit)] = mine
                }
                // A unit starts only once every task it depends on has succeeded.
                for dependency in unit.task.dependsOn {
                    if taskIndexes[unit.job.incarnation] == nil {
                        taskIndexes[unit.job.incarnation] = Dictionary(unit.job.spec.tasks.enumerated().map { ($1.id, $0) }) { first, _ in first }
                    }
                    guard let index = taskIndexes[unit.job.incarnation]?[dependency] else { continue }
                    let outcome = unit.job.dependencyOutcomes[index], total = unit.job.outcomes[index].total
                    let met = switch unit.task.condition(on: dependency) {
                    case .afterok, .aftercorr: outcome.satisfied == total
                    case .afterany: outcome.satisfied + outcome.blocked == total
                    case .afternotok: outcome.satisfied + outcome.blocked == total && outcome.blocked > 0
                    }
                    if !met {
                        violations.append("t=\(time): \(unit.job.spec.id)/\(unit.run.displayId) started before \(dependency) ended as it waits for (\(unit.task.condition(on: dependency).rawValue))")
                    }
                }
                if recordsStarts {
                    starts.append(Start(time: time, job: unit.job.spec.id, task: unit.task.id, replica: unit.replica, nodes: group.map { core.pool.nodes[$0].id }))
                }
            case .prepare(let job, let node):
                let run = NodeTaskRun(kind: .preparation, node: core.pool.nodes[node].id, exitCode: 0, start: core.now,
                                      end: core.now + preparationSeconds, directory: "", failure: nil)
                at(time + preparationSeconds, .core(.prepared(job, node: node, run)))
            case .launch(let unit, _, let number):
                launches += 1
                let (seconds, exitCode) = behaviour(unit, number)
                at(time + seconds, .attemptEnds(unit, number: number, exitCode: exitCode,
                                                failure: exitCode == 0 ? nil : Failure(category: .exitCode, message: "exited with \(exitCode)")))
            case .adopt(let unit, let group, let attempt):
                // A restarted controller's adopted attempt holds its slots until it ends.
                hold(unit, group: group, gpus: attempt.gpus)
                for node in group {
                    used[node] += taken(unit, node)
                    if used[node] > core.pool.nodes[node].slots {
                        violations.append("t=\(time): node \(core.pool.nodes[node].id) has \(used[node]) of \(core.pool.nodes[node].slots) slots in use")
                    }
                }
                let (seconds, exitCode) = behaviour(unit, attempt.number)
                at(time + seconds, .attemptEnds(unit, number: attempt.number, exitCode: exitCode,
                                                failure: exitCode == 0 ? nil : Failure(category: .exitCode, message: "exited with \(exitCode)")))
            case .failBeforeLaunch(let unit, _, let number, let failure):
                at(time, .attemptEnds(unit, number: number, exitCode: 1, failure: failure))
            case .endAttempts(let job, _):
                for unit in job.units where unit.state == .running {
                    at(time, .attemptEnds(unit, number: unit.attemptNumber, exitCode: 143, failure: Failure(category: .cancelled, message: "cancelled")))
                }
            case .endAllAttempts:
                for unit in running {
                    at(time, .attemptEnds(unit, number: unit.attemptNumber, exitCode: 143, failure: Failure(category: .cancelled, message: "cancelled")))
                }
            case .release(let job, let nodes):
                let runs = nodes.map { NodeTaskRun(kind: .release, node: core.pool.nodes[$0].id, exitCode: 0, start: core.now, end: core.now, directory: "", failure: nil) }
                at(time, .core(.released(job, runs)))
            case .sweep(let pending):
                at(time, .core(.swept(pending)))
            case .jobEnded(let job, let run):
                if !jobsEnded.insert(job.incarnation).inserted { violations.append("job \(job.spec.id) ended twice") }
                for unit in job.units where unit.state != .finished {
                    violations.append("job \(job.spec.id) ended with \(unit.run.displayId) \(unit.state)")
                }
                unitsEnded += job.units.count
                taskIndexes[job.incarnation] = nil
                if recordsRuns { endedJobs.append(run) }
            case .attemptFinished, .nodeChanged, .log, .jobDisabled:
                break
            }
        }
    }

    /// Slots in use now, counted from launches and ends.
    public var slotsInUse: Int { used.reduce(0, +) }
    /// GPUs and MiB held now, counted from launches and ends.
    public var gpusInUse: Int { gpusHeld.reduce(0) { $0 + $1.count } }
    public var memoryInUse: Int { memoryHeld.reduce(0, +) }
}
