import XCTest
@testable import Launcher

/// The scheduling core through `Simulation`: a fake launcher and a simulated clock, so that
/// hundreds of scenarios run in a second. The simulation counts slots from launches and
/// ends, replica groups and dependency order itself, and reports what breaks them.
final class SchedulingTests: XCTestCase {
    typealias Random = SeededRandom  // a scenario is its seed

    static func pool(_ nodes: Int, slots: Int, remote: Bool = false) -> Pool {
        Pool(name: "sim", kind: remote ? .static : .local,
             nodes: (0..<nodes).map { Node(id: "n\($0)", address: remote ? "10.0.0.\($0 + 1)" : "localhost", slots: slots) })
    }

    /// A random scenario: pool, jobs of every kind, and cancellations, holds, drains and node
    /// losses at random moments. Returns the simulation, run to its end, and what it was given.
    func scenario(seed: UInt64) -> (Simulation, units: Int, jobs: Int) {
        var random = Random(seed: seed)
        let nodeCount = 1 + random.next(24), slots = 1 + random.next(8)
        var pool = Self.pool(nodeCount, slots: slots, remote: random.chance(50))
        // GPUs and memory on some pools (some nodes with more than others): tasks ask for them below.
        let gpus = random.chance(40) ? 1 + random.next(4) : 0, memory = random.chance(40) ? 1024 * (1 + random.next(4)) : 0
        for index in pool.nodes.indices {
            let extraGPUs = random.chance(30) ? random.next(3) : 0
            if gpus > 0 { pool.nodes[index].gpus = Array(0..<(gpus + extraGPUs)) }
            if memory > 0 { pool.nodes[index].memoryMiB = memory + 1024 * extraGPUs }
        }
        let simulation = Simulation(pool: pool, policy: random.chance(50) ? .pack : .spread)
        simulation.preparationSeconds = Double(random.next(3))
        var units = 0, jobs = 0
        for jobIndex in 0..<(1 + random.next(5)) {
            var tasks: [TaskSpec] = []
            for index in 0..<(1 + random.next(40)) {
                var task = TaskSpec(id: "t\(index)", commandLine: ["x"], constraints: Constraints(maxTaskRetryCount: random.next(3)))
                if random.chance(25) {
                    let instances = 1 + random.next(nodeCount)
                    let replicas = random.chance(30) ? 1 + random.next(3) : 1
                    let ranksPerNode = 1 + random.next(slots)
                    task.multiInstance = MultiInstance(instances: instances, processesPerNode: ranksPerNode, replicas: replicas)
                    // Hybrid ranks (a slot per core) and whole nodes.
                    if random.chance(20) { task.multiInstance?.cpusPerRank = 1 + random.next(slots / ranksPerNode) }
                    if random.chance(20) { task.multiInstance?.exclusive = true }
                }
                let ranksHere = task.multiInstance?.processesPerNode ?? 1
                if gpus > 0 && random.chance(40) {
                    if ranksHere <= gpus && random.chance(50) { task.gpusPerRank = 1 + random.next(gpus / ranksHere) } else { task.gpusPerNode = 1 + random.next(gpus) }
                }
                if memory > 0 && random.chance(40) { task.memoryPerNode = 256 * (1 + random.next(memory / 256)) }
                if index > 0 && random.chance(30) {
                    let dependency = "t\(random.next(index))"
                    task.dependsOn = [dependency]
                    // Slurm's kinds too: afterany, afternotok.
                    if random.chance(30) { task.dependencyConditions = [dependency: random.chance(50) ? .afterany : .afternotok] }
                }
                tasks.append(task)
                units += task.multiInstance.map { max(1, $0.replicas) } ?? 1
            }
            var job = JobSpec(id: "job\(jobIndex)", pool: "sim", priority: random.next(3), tasks: tasks)
            if random.chance(20) { job.preparation = NodeTaskSpec(commandLine: ["prep"]) }
            if random.chance(20) { job.release = NodeTaskSpec(commandLine: ["release"]) }
            if random.chance(10) { job.maxWallClockTime = Double(5 + random.next(60)) }
            let at = Double(random.next(30))
            simulation.submit(job, at: at)
            jobs += 1
            if random.chance(15) { simulation.cancel(jobId: job.id, at: at + Double(random.next(40))) }
            if random.chance(15) {
                let from = at + Double(random.next(20))
                simulation.hold(jobId: job.id, true, at: from)
                simulation.hold(jobId: job.id, false, at: from + Double(1 + random.next(30)))
            }
        }
        if random.chance(30) {
            let node = random.next(nodeCount), from = Double(random.next(40))
            simulation.drain(node, at: from)
            simulation.drain(node, at: from + Double(1 + random.next(60)), false)
        }
        if random.chance(20) && nodeCount > 1 { simulation.loseNode(random.next(nodeCount), at: Double(random.next(60))) }
        let failing = random.next(30)
        simulation.behaviour = { unit, attempt in
            let hash = unit.task.id.utf8.reduce(UInt64(seed)) { $0 &* 31 &+ UInt64($1) } &+ UInt64(unit.replica ?? 0) &+ UInt64(attempt)
            return (Double(1 + hash % 20), hash % 100 < UInt64(failing) ? 1 : 0)
        }
        simulation.run()
        return (simulation, units, jobs)
    }

    func testNoSlotIsDoubleBookedAndEveryTaskEndsOnceInRandomScenarios() {
        // COHORT_SCENARIOS and COHORT_SEED_BASE replay or widen the search.
        let environment = ProcessInfo.processInfo.environment
        let base = environment["COHORT_SEED_BASE"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970) &* 1000
        let count = environment["COHORT_SCENARIOS"].flatMap(Int.init) ?? 400
        print("scheduling scenarios: base seed \(base) (a failure names its seed)")
        let start = Date()
        var placements = 0
        for offset in 0..<count {
            let seed = base &+ UInt64(offset)
            let (simulation, units, jobs) = scenario(seed: seed)
            placements += simulation.core.placements
            XCTAssertEqual(simulation.violations, [], "seed \(seed)")
            // A job submitted after a node was lost may no longer fit: refused, as it should be.
            for (job, rejection) in simulation.rejected {
                XCTAssertTrue(simulation.core.pool.nodes.contains { $0.state == .unusable }, "seed \(seed): \(job.id) refused: \(rejection)")
            }
            let refusedUnits = simulation.rejected.reduce(0) { sum, entry in sum + entry.0.tasks.reduce(0) { $0 + ($1.multiInstance.map { max(1, $0.replicas) } ?? 1) } }
            XCTAssertEqual(simulation.endedJobs.count + simulation.rejected.count, jobs, "seed \(seed): every job ends, once")
            XCTAssertEqual(simulation.unitsEnded + refusedUnits, units, "seed \(seed): every task and replica ends, once")
            XCTAssertTrue(simulation.core.isIdle, "seed \(seed)")
            XCTAssertEqual(simulation.slotsInUse, 0, "seed \(seed): every slot is given back")
            XCTAssertEqual(simulation.gpusInUse + simulation.memoryInUse, 0, "seed \(seed): every GPU and MiB is given back")
            let allocator = simulation.core.allocator
            XCTAssertEqual(allocator.freeGPUs.map(\.nonzeroBitCount), allocator.gpuCount, "seed \(seed): the allocator gives back every GPU")
            XCTAssertEqual(allocator.freeMemory, allocator.memory, "seed \(seed): the allocator gives back all memory")
            XCTAssertEqual(simulation.core.allocator.freeSlots + simulation.core.pool.nodes.indices.filter { !simulation.core.allocator.usable[$0] }
                            .reduce(0) { $0 + simulation.core.allocator.free[$1] },
                           simulation.core.pool.totalSlots, "seed \(seed): the allocator gives back every slot")
            for run in simulation.endedJobs {
                for task in run.tasks where task.succeeded { XCTAssertEqual(task.attempts.filter(\.succeeded).count, 1, "seed \(seed): \(run.jobId)/\(task.displayId) succeeded once") }
            }
            if testRun?.failureCount ?? 0 > 0 { break }
        }
        let seconds = Date().timeIntervalSince(start)
        print("scheduling scenarios: \(count) in \(String(format: "%.2f", seconds)) s (\(Int(Double(count) / seconds))/s), \(placements) placements")
    }

    func testTheOldestWideTaskIsNotStarvedByAStreamOfSmallTasks() throws {
        // 4 nodes of 4 slots; one small task arrives every second for 10 minutes, each runs
        // 3 s; a task that needs every slot arrives at second 5. Backfilling the small tasks
        // onto whatever is free would keep it waiting until the stream ends.
        let simulation = Simulation(pool: Self.pool(4, slots: 4))
        simulation.recordsStarts = true
        simulation.behaviour = { unit, _ in (unit.task.multiInstance == nil ? 3 : 10, 0) }
        for second in 0..<600 {
            simulation.submit(JobSpec(id: "small\(second)", pool: "sim", tasks: [TaskSpec(id: "s", commandLine: ["x"])]), at: Double(second))
        }
        simulation.submit(JobSpec(id: "wide", pool: "sim", tasks: [TaskSpec(id: "w", commandLine: ["x"], multiInstance: MultiInstance(instances: 4, processesPerNode: 4))]), at: 5)
        simulation.run()
        XCTAssertEqual(simulation.violations, [])
        let wide = try XCTUnwrap(simulation.starts.first { $0.job == "wide" })
        XCTAssertLessThanOrEqual(wide.time, 5 + 3, "the wide task starts once the small tasks running when it came have ended")
        XCTAssertEqual(simulation.endedJobs.count, 601)
    }

    func testAFailedTaskSkipsItsDependentsAndRetriesAreCounted() throws {
        let simulation = Simulation(pool: Self.pool(2, slots: 2))
        simulation.behaviour = { unit, attempt in (1, unit.task.id == "flaky" && attempt < 3 ? 1 : unit.task.id == "broken" ? 2 : 0) }
        try simulation.add(JobSpec(id: "j", pool: "sim", tasks: [
            TaskSpec(id: "flaky", commandLine: ["x"], constraints: Constraints(maxTaskRetryCount: 2)),
            TaskSpec(id: "broken", commandLine: ["x"], constraints: Constraints(maxTaskRetryCount: 1)),
            TaskSpec(id: "after-broken", commandLine: ["x"], dependsOn: ["broken"]),
            TaskSpec(id: "after-that", commandLine: ["x"], dependsOn: ["after-broken"]),
            TaskSpec(id: "after-flaky", commandLine: ["x"], dependsOn: ["flaky"]),
        ]))
        simulation.run()
        XCTAssertEqual(simulation.violations, [])
        let run = try XCTUnwrap(simulation.endedJobs.first)
        let tasks = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.taskId, $0) })
        XCTAssertEqual(tasks["flaky"]?.attempts.count, 3)
        XCTAssertEqual(tasks["flaky"]?.succeeded, true)
        XCTAssertEqual(tasks["broken"]?.attempts.count, 2, "one retry")
        XCTAssertEqual(tasks["after-broken"]?.failure?.category, .dependencyFailed)
        XCTAssertEqual(tasks["after-that"]?.failure?.category, .dependencyFailed)
        XCTAssertEqual(tasks["after-that"]?.attempts.count, 0)
        XCTAssertEqual(tasks["after-flaky"]?.succeeded, true)
    }

    /// Slurm's kinds between the tasks of one job: afterany runs once its dependency ended
    /// however, afternotok only if it did not succeed (else it is skipped, saying why), and
    /// a task that waits with afterany for a task skipped by its own failed dependency runs.
    /// Each waits until all of its dependency (every replica) has ended.
    func testTasksWaitForTasksAsAfterokAfteranyAndAfternotokSay() throws {
        let simulation = Simulation(pool: Self.pool(2, slots: 2))
        simulation.recordsStarts = true
        simulation.behaviour = { unit, _ in (unit.task.id == "solve" ? 5 : 1, unit.task.id == "solve" && unit.replica == 1 ? 1 : 0) }
        var solve = TaskSpec(id: "solve", commandLine: ["x"], multiInstance: MultiInstance(instances: 1, replicas: 2))
        solve.constraints.maxTaskRetryCount = 0
        func after(_ id: String, _ dependency: String, _ condition: JobDependency.Condition) -> TaskSpec {
            var task = TaskSpec(id: id, commandLine: ["x"], dependsOn: [dependency])
            if condition != .afterok { task.dependencyConditions = [dependency: condition] }
            return task
        }
        try simulation.add(JobSpec(id: "j", pool: "sim", tasks: [
            TaskSpec(id: "mesh", commandLine: ["x"]), solve,
            after("report", "solve", .afterok), after("cleanup", "solve", .afterany), after("debug", "solve", .afternotok),
            after("celebrate", "mesh", .afternotok), after("archive", "report", .afterany),
        ]))
        simulation.run()
        XCTAssertEqual(simulation.violations, [])
        let run = try XCTUnwrap(simulation.endedJobs.first)
        let tasks = Dictionary(run.tasks.map { ($0.displayId, $0) }) { first, _ in first }
        XCTAssertEqual(tasks["report"]?.failure?.category, .dependencyFailed)
        XCTAssertEqual(tasks["cleanup"]?.succeeded, true)
        XCTAssertEqual(tasks["debug"]?.succeeded, true)
        XCTAssertEqual(tasks["celebrate"]?.failure?.message, "task mesh, which it depends on, succeeded; this task waited for it with afternotok")
        XCTAssertEqual(tasks["archive"]?.succeeded, true, "afterany: its dependency was skipped, which is an end")
        let started = Dictionary(simulation.starts.map { ($0.task, $0.time) }) { first, _ in first }
        XCTAssertGreaterThanOrEqual(started["cleanup"] ?? 0, 5, "after both replicas of solve ended")
        XCTAssertGreaterThanOrEqual(started["debug"] ?? 0, 5)
    }

    func testAReversedChainOf15000TasksRunsInDependencyOrder() throws {
        let tasks = (0..<15_000).reversed().map { index in
            TaskSpec(id: "t\(index)", commandLine: ["x"], dependsOn: index == 0 ? [] : ["t\(index - 1)"])
        }
        let simulation = Simulation(pool: Self.pool(4, slots: 2))
        simulation.recordsStarts = true
        try simulation.add(JobSpec(id: "chain", pool: "sim", tasks: tasks))
        simulation.run()
        XCTAssertEqual(simulation.violations, [], "no task starts before the one it depends on succeeded")
        XCTAssertEqual(simulation.starts.map(\.task), (0..<15_000).map { "t\($0)" })
        XCTAssertTrue(simulation.endedJobs.first?.succeeded ?? false)
    }

    func testANodeLostMidRunBecomesUnusableAndItsTasksRetryElsewhere() throws {
        let simulation = Simulation(pool: Self.pool(3, slots: 1, remote: true))
        simulation.behaviour = { _, _ in (10, 0) }
        try simulation.add(JobSpec(id: "j", pool: "sim", tasks: (0..<3).map {
            TaskSpec(id: "t\($0)", commandLine: ["x"], constraints: Constraints(maxTaskRetryCount: 1))
        }))
        simulation.loseNode(1, at: 5)
        simulation.run()
        XCTAssertEqual(simulation.violations, [])
        XCTAssertEqual(simulation.core.pool.nodes[1].state, .unusable)
        let run = try XCTUnwrap(simulation.endedJobs.first)
        XCTAssertTrue(run.succeeded, "the lost node's task ran again on another node")
        let retried = try XCTUnwrap(run.tasks.first { $0.attempts.count == 2 })
        XCTAssertEqual(retried.attempts[0].failure?.category, .nodeLost)
        XCTAssertNotEqual(retried.attempts[1].nodes, ["n1"])
    }

    func testATaskWaitsForDrainedNodesInsteadOfBeingRefused() throws {
        // Bug: a job that needed a node drained right now was refused as "can never run".
        let simulation = Simulation(pool: Self.pool(4, slots: 1))
        simulation.recordsStarts = true
        simulation.drain(3, at: 0)
        simulation.run()
        simulation.submit(JobSpec(id: "wide", pool: "sim", tasks: [TaskSpec(id: "w", commandLine: ["x"], multiInstance: MultiInstance(instances: 4))]), at: 1)
        simulation.drain(3, at: 20, false)
        simulation.run()
        XCTAssertEqual(simulation.violations, [], "the job was accepted")
        XCTAssertEqual(simulation.starts.first?.time, 20, "it started when the node was undrained")
        XCTAssertTrue(simulation.endedJobs.first?.succeeded ?? false)
        // Too wide for the pool's configured size is still refused at once.
        XCTAssertThrowsError(try simulation.add(JobSpec(id: "too-wide", pool: "sim", tasks: [TaskSpec(id: "w", commandLine: ["x"], multiInstance: MultiInstance(instances: 5))])))
    }

    func testAWaitingTaskSaysWhyItWaits() throws {
        let simulation = Simulation(pool: Self.pool(4, slots: 1))
        simulation.behaviour = { _, _ in (100, 0) }
        simulation.drain(3, at: 0)
        simulation.run()
        let job = try simulation.add(JobSpec(id: "j", pool: "sim", tasks: [
            TaskSpec(id: "wide", commandLine: ["x"], multiInstance: MultiInstance(instances: 4)),
        ]))
        simulation.run(until: 1)
        XCTAssertEqual(simulation.core.waitingReason(job.units[0]), "waiting: 3 of 4 nodes usable")
    }

    /// Crash recovery through the core: a controller stops at a random moment; a new one is
    /// given what the store would hold then (attempts that ended; those cut off recorded as
    /// interrupted, as `Recovery` does; those still running left open, which it adopts on
    /// their nodes) and runs the job to its end, never using a slot twice. No task that succeeded
    /// runs again, none is lost, and retries are counted across the two.
    func testAControllerStoppedAtARandomMomentIsResumedWithoutRunningASuccessTwice() throws {
        let base = UInt64(Date().timeIntervalSince1970) &* 7
        var resumed = 0
        var adopted = 0
        defer { print("crash scenarios: base seed \(base), \(resumed) of 200 stopped mid-job and resumed, \(adopted) attempts adopted") }
        for offset in 0..<200 {
            let seed = base &+ UInt64(offset)
            var random = Random(seed: seed)
            var tasks: [TaskSpec] = []
            for index in 0..<(5 + random.next(30)) {
                var task = TaskSpec(id: "t\(index)", commandLine: ["x"], constraints: Constraints(maxTaskRetryCount: random.next(3)))
                if random.chance(20) { task.multiInstance = MultiInstance(instances: 1 + random.next(3), replicas: random.chance(30) ? 2 : 1) }
                // Every node has 3 GPUs and 3 GiB: an adopted attempt must take its own back.
                if random.chance(40) { task.gpusPerNode = 1 + random.next(3) }
                if random.chance(30) { task.memoryPerNode = 512 * (1 + random.next(6)) }
                if index > 0 && random.chance(30) { task.dependsOn = ["t\(random.next(index))"] }
                tasks.append(task)
            }
            let spec = JobSpec(id: "crashy", pool: "sim", tasks: tasks)
            let behaviour: (SchedulingCore.Unit, Int) -> (seconds: Double, exitCode: Int32) = { unit, attempt in
                let hash = unit.task.id.utf8.reduce(seed) { $0 &* 31 &+ UInt64($1) } &+ UInt64(unit.replica ?? 0) &* 7 &+ UInt64(attempt)
                return (Double(1 + hash % 9), hash % 4 == 0 ? 1 : 0)
            }
            var pool = Self.pool(4, slots: 2)
            for index in pool.nodes.indices {
                pool.nodes[index].gpus = [0, 1, 2]
                pool.nodes[index].memoryMiB = 3072
            }
            let first = Simulation(pool: pool)
            first.core.forgetsFinishedJobs = false
            first.behaviour = behaviour
            let job = try first.add(spec)
            first.run(until: Double(random.next(30)))
            guard job.state == .active else { continue }  // it ended before the crash
            resumed += 1
            // What the store holds after the crash.
            let prior = job.units.map { unit -> JobStore.TaskRecord in
                var attempts = unit.run.attempts
                if unit.state == .running && random.chance(50) {
                    // Still running under a parent that outlived the server: the recovery left
                    // its record open, and the next controller adopts it on its nodes.
                    var open = Attempt(number: unit.attemptNumber, nodes: unit.group.map { pool.nodes[$0].id }, nodeExitCodes: [:], exitCode: nil,
                                       start: Date(), end: nil, transport: nil, launchedCommand: [], directory: "", failure: nil)
                    open.markerId = "crashy.\(unit.run.displayId).a\(unit.attemptNumber)"
                    open.gpus = first.core.gpuDevices(unit)
                    attempts.append(open)
                    adopted += 1
                } else if unit.isActive {
                    attempts.append(Attempt(number: unit.attemptNumber, nodes: [], nodeExitCodes: [:], exitCode: nil, start: Date(), end: Date(),
                                            transport: nil, launchedCommand: [], directory: "",
                                            failure: Failure(category: .interrupted, message: "the server stopped while this attempt ran")))
                }
                let done = unit.state == .finished
                return JobStore.TaskRecord(taskId: unit.task.id, replica: unit.replica, state: done ? .completed : .active,
                                           result: done ? TaskResult(succeeded: unit.run.succeeded) : nil, failure: unit.run.failure, attempts: attempts)
            }
            let second = Simulation(pool: pool)
            second.behaviour = behaviour
            try second.core.add(spec, prior: prior)
            second.run()
            XCTAssertEqual(second.violations, [], "seed \(seed)")
            XCTAssertEqual(second.core.allocator.freeGPUs.map(\.nonzeroBitCount), [3, 3, 3, 3], "seed \(seed): every GPU is given back")
            let run = try XCTUnwrap(second.endedJobs.first, "seed \(seed): the job ends")
            XCTAssertEqual(run.tasks.count, job.units.count, "seed \(seed)")
            for task in run.tasks {
                let counted = task.attempts.filter { $0.failure?.category != .interrupted }
                XCTAssertLessThanOrEqual(counted.filter(\.succeeded).count, 1, "seed \(seed): \(task.displayId) succeeded twice")
                let limit = tasks.first { $0.id == task.taskId }!.constraints.maxTaskRetryCount + 1
                XCTAssertLessThanOrEqual(counted.count, limit, "seed \(seed): \(task.displayId) ran more often than its retries allow")
                XCTAssertEqual(Set(task.attempts.map(\.number)).count, task.attempts.count, "seed \(seed): \(task.displayId) has an attempt number twice")
                if task.succeeded { XCTAssertEqual(counted.last?.succeeded, true, "seed \(seed)") }
            }
            if testRun?.failureCount ?? 0 > 0 { break }
        }
    }

    /// An adopted attempt takes its own nodes back before anything is placed; one whose node
    /// left the pool is cut off instead — recorded interrupted, swept, and run again.
    func testAnOpenAttemptIsAdoptedOnItsNodesOrCutOffIfTheyAreGone() throws {
        let pool = Self.pool(2, slots: 1)
        func open(_ number: Int, on node: String) -> Attempt {
            var attempt = Attempt(number: number, nodes: [node], nodeExitCodes: [:], exitCode: nil, start: Date(), end: nil,
                                  transport: nil, launchedCommand: [], directory: "", failure: nil)
            attempt.markerId = "j.t.a\(number)"
            return attempt
        }
        let spec = JobSpec(id: "j", pool: "sim", tasks: ["kept", "gone", "new"].map { TaskSpec(id: $0, commandLine: ["x"]) })
        let prior = [JobStore.TaskRecord(taskId: "kept", replica: nil, state: .active, result: nil, failure: nil, attempts: [open(1, on: "n1")]),
                     JobStore.TaskRecord(taskId: "gone", replica: nil, state: .active, result: nil, failure: nil, attempts: [open(2, on: "n9")])]
        let simulation = Simulation(pool: pool)
        simulation.recordsStarts = true
        let job = try simulation.core.add(spec, prior: prior)
        let effects = simulation.core.takeEffects()
        XCTAssertTrue(effects.contains { if case .adopt(let unit, let group, let attempt) = $0 { unit.task.id == "kept" && group == [1] && attempt.number == 1 } else { false } })
        XCTAssertEqual(job.units[0].state, .running, "kept runs on n1 again")
        XCTAssertEqual(job.units[1].run.attempts.map { $0.failure?.category }, [.interrupted], "its node left the pool: cut off")
        XCTAssertEqual(job.units[1].state, .waiting)
        simulation.perform(effects)
        simulation.run()
        XCTAssertEqual(simulation.violations, [], "the adopted attempt's slot was not given away while it ran")
        XCTAssertEqual(job.units[1].run.attempts.map(\.number), [2, 3])
        XCTAssertEqual(job.units.map(\.state), [.finished, .finished, .finished])
    }

    /// An exclusive MPI task's nodes take no small task while it runs (their free slots went
    /// to the solver's competitors before), and a hybrid task takes a slot per core.
    func testAnExclusiveTasksNodesTakeNoOtherWorkAndHybridRanksTakeASlotPerCore() throws {
        let simulation = Simulation(pool: Self.pool(3, slots: 4))
        simulation.recordsStarts = true
        simulation.behaviour = { unit, _ in (unit.task.id == "solver" ? 10 : 1, 0) }
        var solver = TaskSpec(id: "solver", commandLine: ["x"])
        solver.multiInstance = MultiInstance(instances: 2, processesPerNode: 1)
        solver.multiInstance?.exclusive = true
        var hybrid = TaskSpec(id: "hybrid", commandLine: ["x"])
        hybrid.multiInstance = MultiInstance(instances: 1, processesPerNode: 2)
        hybrid.multiInstance?.cpusPerRank = 2
        let small = (0..<6).map { TaskSpec(id: "s\($0)", commandLine: ["x"]) }
        let job = try simulation.add(JobSpec(id: "j", pool: "sim", tasks: [solver, hybrid] + small))
        simulation.run()
        XCTAssertEqual(simulation.violations, [])
        let solverNodes = Set(try XCTUnwrap(simulation.starts.first { $0.task == "solver" }).nodes)
        XCTAssertEqual(solverNodes.count, 2)
        for start in simulation.starts where start.task != "solver" {
            XCTAssertTrue(start.time >= 10 || solverNodes.isDisjoint(with: start.nodes), "\(start.task) ran on the solver's node \(start.nodes) at \(start.time)")
        }
        let hybridStart = try XCTUnwrap(simulation.starts.first { $0.task == "hybrid" })
        XCTAssertEqual(hybridStart.time, 0, "4 slots on the third node: 2 ranks × 2 cores")
        XCTAssertEqual(simulation.starts.filter { $0.time == 0 }.count, 2, "and nothing else fits beside them")
        XCTAssertEqual(job.units.map(\.state).allSatisfy { $0 == .finished }, true)
    }
}
