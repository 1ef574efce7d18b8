import Foundation
import XCTest
@testable import Launcher

/// The simulation is only worth its speed if it decides as the real runner does: the same
/// job, once with real processes (sleeps) and once with the fake launcher told the same
/// durations, starts the same tasks on the same nodes in the same order.
final class SimulationAgreementTests: XCTestCase {
    struct Start: Equatable { var task: String; var nodes: [String] }

    func testTheRealRunnerAndTheSimulationStartTheSameTasksOnTheSameNodesInTheSameOrder() throws {
        // Durations far enough apart that the machine's noise cannot reorder two ends.
        let seconds = ["long": 1.2, "wide": 0.4, "short": 0.2, "after-short": 0.6, "tiny": 0.1, "late": 0.3]
        let job = JobSpec(id: "agree", tasks: [
            TaskSpec(id: "long", commandLine: ["sleep", "1.2"]),
            TaskSpec(id: "wide", commandLine: ["sleep", "0.4"], multiInstance: MultiInstance(instances: 2, processesPerNode: 2, launch: .raw)),
            TaskSpec(id: "short", commandLine: ["sleep", "0.2"]),
            TaskSpec(id: "after-short", commandLine: ["sleep", "0.6"], dependsOn: ["short"]),
            TaskSpec(id: "tiny", commandLine: ["sleep", "0.1"]),
            TaskSpec(id: "late", commandLine: ["sleep", "0.3"], dependsOn: ["wide"]),
        ])
        let pool = Pool.local(nodeCount: 2, slotsPerNode: 2)

        let runner = try JobRunner(job: job, pool: pool, settings: Harness.settings(Harness.temporaryDirectory()))
        let lock = NSLock()
        nonisolated(unsafe) var real: [Start] = []
        runner.onAttemptStarted = { _, task, _, attempt in lock.lock(); real.append(Start(task: task.id, nodes: attempt.nodes)); lock.unlock() }
        let run = runner.run()
        XCTAssertTrue(run.succeeded, "\(run.tasks.map { "\($0.taskId): \(String(describing: $0.failure))" })")

        let simulation = Simulation(pool: pool)
        simulation.recordsStarts = true
        simulation.behaviour = { unit, _ in (seconds[unit.task.id]!, 0) }
        try simulation.add(job)
        simulation.run()
        XCTAssertEqual(simulation.violations, [])
        let simulated = simulation.starts.map { Start(task: $0.task, nodes: $0.nodes) }

        XCTAssertEqual(real, simulated)
        // What the scenario is about: the wide task holds both nodes back and goes before
        // the dependent small task that became ready while it waited.
        XCTAssertEqual(simulated.map(\.task), ["long", "short", "tiny", "wide", "after-short", "late"])
    }
}
