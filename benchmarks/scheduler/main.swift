// The controller's scheduling core at scale: 10,000 simulated nodes and 1,000,000 tasks
// (90 % one-slot tasks, 10 % multi-instance tasks of 2-64 nodes, some in dependency
// chains, some with replicas, 1 % failing once and retried), driven by the fake launcher
// and simulated clock of `Simulation`: the same SchedulingCore `cohort run` and `cohort
// serve` drive with real processes. Reference in the same run: the bare allocator taking
// and giving back one-slot groups, the floor of any placement decision.
// Also: a 15,000-task chain listed in reverse, accepted (time and memory).
import Foundation
import Launcher
#if canImport(Glibc)
import Glibc
#endif

func peakRSSMegabytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss / 1024
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let nodeCount = arguments.first ?? 10_000
let taskCount = arguments.dropFirst().first ?? 1_000_000
let slotsPerNode = 16
let tasksPerJob = 10_000

// 1. A reversed chain of 15,000 tasks: accepted (validated and given to the core).
let chainLength = 15_000
var chainText = "id: chain\ntasks:\n"
for index in (0..<chainLength).reversed() {
    chainText += index == 0 ? "  - { id: t0, commandLine: 'true' }\n" : "  - { id: t\(index), commandLine: 'true', dependsOn: [t\(index - 1)] }\n"
}
let rssBeforeChain = peakRSSMegabytes()
var chainSeconds = 0.0
do {
    let core = SchedulingCore(pool: .local(nodeCount: 4, slotsPerNode: 2))
    chainSeconds = try seconds {
        // Parsed and checked as `cohort submit` does, then given to the core.
        let chain = try JobFile.parse(chainText, file: "chain.yaml")
        try core.add(chain)
        core.schedule()
    }
    precondition(core.runningCount == 1, "the chain's first task must start, and only it")
}
let chainRSS = peakRSSMegabytes()

// 2. Reference: the bare allocator, one-slot groups taken and given back.
var reference = Allocator(slots: Array(repeating: slotsPerNode, count: nodeCount))
var held: [Int] = []
var random = SeededRandom(seed: 11)
let referenceDecisions = 2_000_000
let referenceSeconds = seconds {
    // Half the pool busy, then every decision gives back a random slot and takes one.
    for _ in 0..<referenceDecisions {
        if held.count >= nodeCount * slotsPerNode / 2 {
            held.swapAt(random.next(held.count), held.count - 1)
            reference.release(slot: held.removeLast())
        }
        held.append(reference.allocateSlot()!)
    }
}

// 3. The scale run.
let pool = Pool(name: "sim", kind: .static, nodes: (0..<nodeCount).map { Node(id: "n\($0)", address: "10.\($0 / 65536).\($0 / 256 % 256).\($0 % 256)", slots: slotsPerNode) })
let simulation = Simulation(pool: pool)
simulation.recordsRuns = false
let nodeChoices = [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
let perNodeChoices = [1, 2, 4, 8, 16]
var jobs: [JobSpec] = []
var multiCount = 0, replicaCount = 0, chained = 0
for jobIndex in 0..<(taskCount + tasksPerJob - 1) / tasksPerJob {
    var tasks: [TaskSpec] = []
    let count = min(tasksPerJob, taskCount - jobIndex * tasksPerJob)
    tasks.reserveCapacity(count)
    for index in 0..<count {
        var task = TaskSpec(id: "t\(index)", commandLine: ["./work"], constraints: Constraints(maxTaskRetryCount: 1))
        if random.next(10) == 0 {
            let replicas = random.next(20) == 0 ? 2 + random.next(3) : 1
            task.multiInstance = MultiInstance(instances: nodeChoices[random.next(nodeChoices.count)],
                                               processesPerNode: perNodeChoices[random.next(perNodeChoices.count)], replicas: replicas)
            multiCount += 1
            replicaCount += replicas > 1 ? replicas : 0
        } else if index > 0 && random.next(20) == 0 && tasks[index - 1].multiInstance == nil {
            task.dependsOn = ["t\(index - 1)"]
            chained += 1
        }
        tasks.append(task)
    }
    jobs.append(JobSpec(id: "job\(jobIndex)", pool: "sim", priority: random.next(4), tasks: tasks))
}
// Whole seconds: ends that fall in the same second are one batch, as events that arrive
// while the real controller computes are.
simulation.behaviour = { unit, attempt in
    let hash = UInt64(unit.task.id.hashValue & 0x7fff_ffff) &+ UInt64(unit.job.spec.id.utf8.count)
    let seconds = unit.task.multiInstance == nil ? 30 + Double(hash % 570) : 60 + Double(hash % 1740)
    let fails = attempt == 1 && hash % 100 == 0
    return (seconds, fails ? 1 : 0)
}
let rssBeforeRun = peakRSSMegabytes()
var submitSeconds = 0.0
let runSeconds = seconds {
    submitSeconds = seconds { for job in jobs { try! simulation.add(job) } }
    jobs.removeAll()  // the core has them
    simulation.run()
}
let placements = simulation.core.placements
let units = simulation.unitsEnded
precondition(simulation.violations.isEmpty, "violations: \(simulation.violations.prefix(5))")
precondition(simulation.core.isIdle && simulation.slotsInUse == 0, "the simulation must end with every task ended and every slot free")

func row(_ name: String, _ value: String) { print(name.padding(toLength: 52, withPad: " ", startingAt: 0) + value) }
print("# scheduling core at scale: \(nodeCount) nodes x \(slotsPerNode) slots, \(taskCount) tasks (\(multiCount) multi-instance, \(replicaCount) replicas, \(chained) chained)")
row("reversed \(chainLength)-task chain accepted", String(format: "%.3f s, peak RSS %d MB (from %d MB)", chainSeconds, chainRSS, rssBeforeChain))
row("reference: bare allocator, one-slot decisions/s", String(format: "%.0f", Double(referenceDecisions) / referenceSeconds))
row("tasks submitted to the core", String(format: "%.2f s", submitSeconds))
row("units ended (tasks and replicas)", "\(units)")
row("placement decisions (attempts given a group)", "\(placements)")
row("events handled", "\(simulation.eventsHandled)")
row("simulated time", String(format: "%.1f h", simulation.time / 3600))
row("wall time (submit + simulate)", String(format: "%.2f s", runSeconds))
row("peak RSS before the run", "\(rssBeforeRun) MB")
print("decisions/s: \(Int(Double(placements) / runSeconds))")
print("peak RSS MB: \(peakRSSMegabytes())")
