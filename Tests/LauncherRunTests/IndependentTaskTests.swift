import Foundation
import XCTest
@testable import Launcher

final class IndependentTaskTests: XCTestCase {
    /// idleTimeout: a task that prints nothing and uses no CPU is ended as hung, with the
    /// stacks of its processes saved; one that burns CPU silently, or prints while it waits,
    /// is left alone.
    func testAnIdleTaskIsEndedAsHungWithItsStacksAndABusyOneIsNot() throws {
        func limited(_ task: TaskSpec, _ idle: Double) -> TaskSpec {
            var task = task
            task.constraints.idleTimeout = idle
            task.constraints.killGracePeriod = 1
            return task
        }
        let ticking = "mkfifo \"$COHORT_ATTEMPT_DIR/f\"; exec 3<>\"$COHORT_ATTEMPT_DIR/f\"; for i in 1 2 3 4 5 6 7 8; do read -t 0.5 -u 3 x; echo tick $i; done"
        let job = JobSpec(id: "idle", tasks: [
            limited(.shell("stuck", "echo started; exec sleep 1000"), 2),
            limited(.shell("busy", "timeout 4 sh -c 'while :; do :; done'"), 1.5),
            limited(TaskSpec(id: "talking", commandLine: ["bash", "-c", ticking]), 1.5),
        ])
        let started = Date()
        let run = try Harness.run(job)
        let byId = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.taskId, $0) })
        let stuck = try XCTUnwrap(byId["stuck"]?.attempts.last)
        XCTAssertEqual(stuck.failure?.category, .hung, "\(String(describing: stuck.failure))")
        XCTAssertTrue(stuck.failure?.message.contains("no output and no CPU time for") == true, stuck.failure?.message ?? "")
        XCTAssertLessThan(Date().timeIntervalSince(started), 30, "ended soon after its 2 s of idleness, not after its sleep")
        let stacks = (try? FileManager.default.contentsOfDirectory(atPath: "\(stuck.directory)/stacks")) ?? []
        XCTAssertEqual(stacks.filter { $0.hasSuffix("-sleep.txt") }.count, 1, "\(stacks)")
        if let file = stacks.first(where: { $0.hasSuffix("-sleep.txt") }) {
            let trace = Harness.read("\(stuck.directory)/stacks/\(file)")
            XCTAssertTrue(trace.contains("#0 ") && trace.contains("nanosleep"), trace)
        }
        XCTAssertEqual(byId["busy"]?.attempts.last?.exitCode, 124, "\(String(describing: byId["busy"]?.failure)): busy, not hung")
        XCTAssertTrue(byId["talking"]?.attempts.last?.succeeded == true, "\(String(describing: byId["talking"]?.failure)): it printed while it waited")
        XCTAssertEqual(Harness.read("\(byId["talking"]!.attempts[0].directory)/stdout.txt").split(separator: "\n").count, 8)
    }

    /// signalBeforeTimeLimit: the program is warned before its time runs out, saves a
    /// checkpoint in COHORT_TASK_PERSIST_DIR, is ended by the limit, and its retry resumes
    /// from what it saved there (Slurm's --signal with a requeue).
    func testAWarningBeforeTheTimeLimitLetsTheRetryResumeFromItsCheckpoint() throws {
        let yaml = """
        id: ckpt
        tasks:
          - id: solve
            commandLine:
              - sh
              - -c
              - |
                if [ -f "$COHORT_TASK_PERSIST_DIR/step" ]; then echo "resumed at $(cat "$COHORT_TASK_PERSIST_DIR/step") in attempt $COHORT_ATTEMPT"; exit 0; fi
                trap 'echo 42 > "$COHORT_TASK_PERSIST_DIR/step"; echo warned' USR1
                while :; do sleep 0.1; done
            constraints: { maxWallClockTime: 3s, maxTaskRetryCount: 1, killGracePeriod: 1s, signalBeforeTimeLimit: { signal: USR1, seconds: 2s } }
        """
        let job = try JobFile.parse(yaml, file: "ckpt.yaml")
        XCTAssertEqual(job.tasks[0].constraints.signalBeforeTimeLimit, WarningSignal(signal: SIGUSR1, seconds: 2))
        let run = try Harness.run(job)
        let attempts = try XCTUnwrap(run.tasks.first?.attempts)
        XCTAssertEqual(attempts.count, 2)
        guard attempts.count == 2 else { return }
        XCTAssertEqual(attempts[0].failure?.category, .timeout, "the first ran until its limit")
        XCTAssertEqual(Harness.read("\(attempts[0].directory)/stdout.txt"), "warned\n", "warned once, a second into its three")
        XCTAssertTrue(attempts[1].succeeded, "\(String(describing: attempts[1].failure))")
        XCTAssertEqual(Harness.read("\(attempts[1].directory)/stdout.txt"), "resumed at 42 in attempt 2\n")
    }

    func testTasksRunInTheirOwnDirectoriesWithOutputAndExitCodes() throws {
        let job = JobSpec(id: "basic", tasks: [
            .shell("ok", "echo out; echo err >&2; pwd"),
            .shell("three", "exit 3"),
            TaskSpec(id: "missing", commandLine: ["/no/such/program"]),
            .shell("killed", "kill -SEGV $$"),
        ])
        let run = try Harness.run(job)
        let byId = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.taskId, $0) })
        let ok = try XCTUnwrap(byId["ok"]?.attempts.last)
        XCTAssertTrue(ok.succeeded)
        XCTAssertEqual(Harness.read("\(ok.directory)/stdout.txt"), "out\n\(ok.directory)\n")
        XCTAssertEqual(Harness.read("\(ok.directory)/stderr.txt"), "err\n")
        XCTAssertEqual(ok.nodes.count, 1)
        XCTAssertEqual(byId["three"]?.attempts.last?.exitCode, 3)
        XCTAssertEqual(byId["three"]?.failure?.category, .exitCode)
        XCTAssertTrue(byId["three"]?.failure?.message.contains("exited with code 3") == true)
        XCTAssertEqual(byId["missing"]?.failure?.category, .launchFailed)
        XCTAssertTrue(byId["missing"]?.failure?.message.contains("No such file") == true, byId["missing"]?.failure?.message ?? "")
        XCTAssertEqual(byId["killed"]?.failure?.category, .signal)
        XCTAssertTrue(byId["killed"]?.failure?.message.contains("SIGSEGV") == true)
        XCTAssertFalse(run.succeeded)
    }

    /// Tasks started through the spawner (as `cohort serve` starts them) end as they would
    /// without it, and their ends are written down.
    func testTheSpawnerKeepsExitCodesSignalsAndLaunchFailures() throws {
        let job = JobSpec(id: "wrapped", tasks: [
            .shell("ok", "echo out"),
            .shell("three", "exit 3"),
            TaskSpec(id: "missing", commandLine: ["/no/such/program"]),
            .shell("killed", "kill -SEGV $$"),
            TaskSpec(id: "limited", commandLine: ["sleep", "30"], constraints: Constraints(maxWallClockTime: 0.5, killGracePeriod: 1)),
        ])
        var settings = Harness.settings(Harness.temporaryDirectory())
        let spawner = try Spawner(executable: try XCTUnwrap(settings.siblingSpawner, "cohort-spawner is built next to cohort"), owner: "test")
        defer { spawner.close() }
        settings.spawner = spawner
        let run = try JobRunner(job: job, pool: .local(nodeCount: 2, slotsPerNode: 3), settings: settings).run()
        Harness.checkNoOrphans(run)
        let byId = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.taskId, $0) })
        let ok = try XCTUnwrap(byId["ok"]?.attempts.last)
        XCTAssertTrue(ok.succeeded)
        XCTAssertEqual(Harness.read("\(ok.directory)/stdout.txt"), "out\n")
        XCTAssertEqual(ExitStatus(contentsOf: "\(ok.directory)/exit-status")?.termination, .exited(0))
        XCTAssertEqual(Harness.read("\(ok.directory)/nodes"), "\(ok.nodes[0])\n")
        let three = try XCTUnwrap(byId["three"]?.attempts.last)
        XCTAssertEqual(three.exitCode, 3)
        XCTAssertEqual(ExitStatus(contentsOf: "\(three.directory)/exit-status")?.termination, .exited(3))
        XCTAssertEqual(byId["missing"]?.failure?.category, .launchFailed)
        XCTAssertTrue(byId["missing"]?.failure?.message.contains("No such file") == true, byId["missing"]?.failure?.message ?? "")
        XCTAssertEqual(byId["killed"]?.failure?.category, .signal)
        XCTAssertTrue(byId["killed"]?.failure?.message.contains("SIGSEGV") == true, byId["killed"]?.failure?.message ?? "")
        XCTAssertEqual(ExitStatus(contentsOf: "\(byId["killed"]!.attempts[0].directory)/exit-status")?.termination, .signaled(SIGSEGV))
        XCTAssertEqual(byId["limited"]?.failure?.category, .timeout)
        XCTAssertLessThan(byId["limited"]!.attempts[0].seconds, 10)
    }

    /// Small tasks backfill idle slots while a multi-instance task waits, but not forever:
    /// the nodes it needs are held back until they drain, so it starts long before the
    /// stream of small tasks behind it has run.
    func testBackfillDoesNotStarveAWaitingMultiInstanceTask() throws {
        var tasks = (0..<6).map { TaskSpec.shell("first\($0)", "sleep 0.3") }
        tasks.append(TaskSpec(id: "wide", commandLine: ["true"], multiInstance: MultiInstance(instances: 2, processesPerNode: 2, launch: .raw)))
        tasks += (0..<30).map { TaskSpec.shell("small\($0)", "sleep 0.3") }
        let run = try Harness.run(JobSpec(id: "starve", tasks: tasks), pool: .local(nodeCount: 3, slotsPerNode: 2))
        XCTAssertTrue(run.succeeded)
        let starts = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.taskId, $0.attempts[0].start) })
        let small = (0..<30).map { starts["small\($0)"]! }.sorted()
        XCTAssertLessThan(starts["wide"]!, small[15], "the wide task waited for the small tasks behind it")
        // The small tasks never ran on more than the one node left to them while it waited.
        let wideStart = starts["wide"]!
        let overlapping = run.tasks.filter { $0.taskId.hasPrefix("small") && $0.attempts[0].start < wideStart }
        XCTAssertLessThanOrEqual(Set(overlapping.flatMap { $0.attempts[0].nodes }).count, 1)
    }

    /// Preparation runs once on each node before the job's first task there (however many
    /// tasks land there at once); release runs on each node used, after the last task.
    func testJobPreparationAndReleaseRunOncePerNode() throws {
        let log = Harness.temporaryDirectory() + "/log"
        var job = JobSpec(id: "prepared", tasks: (0..<8).map { TaskSpec.shell("t\($0)", "test -e \"$AZ_BATCH_JOB_PREP_DIR/ready\" && sleep 0.1") })
        job.preparation = NodeTaskSpec(commandLine: ["/bin/sh", "-c", "sleep 0.2; echo prep $COHORT_NODE_ID >> \(log); touch ready"])
        job.release = NodeTaskSpec(commandLine: ["/bin/sh", "-c", "test -e \"$COHORT_JOB_PREP_DIR/ready\" && echo release $COHORT_NODE_ID >> \(log)"])
        let run = try Harness.run(job, pool: .local(nodeCount: 2, slotsPerNode: 3))
        XCTAssertTrue(run.succeeded, "\(run.tasks.compactMap(\.failure))")
        let used = Set(run.tasks.flatMap { $0.attempts.flatMap(\.nodes) })
        let lines = Harness.read(log).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0.hasPrefix("prep") }.sorted(), used.sorted().map { "prep \($0)" }, "once per node")
        XCTAssertEqual(lines.filter { $0.hasPrefix("release") }.sorted(), used.sorted().map { "release \($0)" })
        XCTAssertEqual(run.nodeTasks.filter { $0.kind == .preparation }.count, used.count)
        let releases = run.nodeTasks.filter { $0.kind == .release }
        XCTAssertEqual(releases.count, used.count)
        XCTAssertTrue(releases.allSatisfy(\.succeeded))
        let lastEnd = run.tasks.flatMap(\.attempts).compactMap(\.end).max()!
        XCTAssertTrue(releases.allSatisfy { $0.start >= lastEnd }, "release runs after the last task")
    }

    /// A node where preparation fails takes none of the job's tasks: they run elsewhere.
    func testTasksAvoidANodeWhosePreparationFailed() throws {
        var job = JobSpec(id: "badprep", tasks: (0..<6).map { TaskSpec.shell("t\($0)", "sleep 0.05") })
        job.preparation = NodeTaskSpec(commandLine: ["/bin/sh", "-c", "test \"$COHORT_NODE_ID\" != local-0 || { echo no scratch space >&2; exit 4; }"])
        let run = try Harness.run(job, pool: .local(nodeCount: 2, slotsPerNode: 2))
        XCTAssertTrue(run.succeeded, "\(run.tasks.compactMap(\.failure))")
        for task in run.tasks {
            XCTAssertEqual(task.attempts.last?.nodes, ["local-1"])
            for attempt in task.attempts.dropLast() { XCTAssertEqual(attempt.failure?.category, .preparationFailed) }
        }
        let failed = try XCTUnwrap(run.nodeTasks.first { $0.node == "local-0" })
        XCTAssertEqual(failed.exitCode, 4)
        XCTAssertEqual(failed.failure?.category, .preparationFailed)
        XCTAssertTrue(failed.failure?.details.contains("no scratch space") == true, "\(failed)")

        // Failing everywhere: the tasks end, saying why, instead of waiting forever.
        job.preparation = NodeTaskSpec(commandLine: ["false"])
        let hopeless = try Harness.run(job, pool: .local(nodeCount: 2, slotsPerNode: 2))
        XCTAssertFalse(hopeless.succeeded)
        XCTAssertTrue(hopeless.tasks.allSatisfy { $0.failure?.category == .preparationFailed }, "\(hopeless.tasks.map(\.failure))")
    }

    /// If the spawner dies, the tasks it watched are ended and run again (not counted as
    /// retries), and a new spawner starts the rest.
    func testASpawnerThatDiesIsReplacedAndItsTasksRunAgain() throws {
        var settings = Harness.settings(Harness.temporaryDirectory())
        let spawner = try Spawner(executable: try XCTUnwrap(settings.siblingSpawner), owner: "test-\(UUID().uuidString)")
        defer { spawner.close() }
        settings.spawner = spawner
        let job = JobSpec(id: "orphaned", tasks: [.shell("long", "sleep 1; echo done")] + (0..<4).map { TaskSpec.shell("after\($0)", "true", dependsOn: ["long"]) })
        let runner = try JobRunner(job: job, pool: .local(nodeCount: 1, slotsPerNode: 2), settings: settings)
        let first = spawner.helperPid
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.4) { kill(first, SIGKILL) }
        let run = runner.run()
        Harness.checkNoOrphans(run)
        XCTAssertTrue(run.succeeded, "\(run.tasks.compactMap(\.failure))")
        let long = run.tasks[0]
        XCTAssertEqual(long.attempts.count, 2)
        XCTAssertEqual(long.attempts[0].failure?.category, .interrupted, "\(String(describing: long.attempts[0].failure))")
        XCTAssertEqual(Harness.read("\(long.attempts[1].directory)/stdout.txt"), "done\n")
        XCTAssertNotEqual(spawner.helperPid, first, "a new spawner took over")
    }

    func testJobMaxWallClockTimeEndsRunningTasksAndSkipsTheRest() throws {
        var job = JobSpec(id: "bounded", tasks: [
            .shell("quick", "true"),
            .shell("long", "sleep 30"),
            TaskSpec(id: "after", commandLine: ["true"], dependsOn: ["long"]),
        ])
        job.maxWallClockTime = 1
        let started = Date()
        let run = try Harness.run(job, pool: .local(nodeCount: 1, slotsPerNode: 2))
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "the job ended at its limit, not after sleep 30")
        let byId = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.taskId, $0) })
        XCTAssertTrue(byId["quick"]!.succeeded)
        XCTAssertEqual(byId["long"]?.failure?.category, .timeout)
        XCTAssertTrue(byId["long"]?.failure?.message.contains("job's maxWallClockTime of 1 s") == true, byId["long"]?.failure?.message ?? "")
        XCTAssertNotNil(byId["after"]?.failure, "it never ran")
        XCTAssertTrue(byId["after"]!.attempts.isEmpty)
    }

    func testWallClockLimitEndsTheWholeProcessTree() throws {
        // Children in the background, and one that ignores SIGTERM: all must be gone.
        let limit = Constraints(maxWallClockTime: 1, maxTaskRetryCount: 0, killGracePeriod: 1)
        let job = JobSpec(id: "timeout", tasks: [
            .shell("tree", "sleep 300 & sleep 300 & wait", constraints: limit),
            .shell("stubborn", "trap '' TERM; sleep 300 & sleep 300; wait", constraints: limit),
        ])
        let start = Date()
        let run = try Harness.run(job)  // checks that no process of any attempt is left
        XCTAssertLessThan(Date().timeIntervalSince(start), 20)
        for task in run.tasks {
            XCTAssertEqual(task.failure?.category, .timeout, task.taskId)
            XCTAssertTrue(task.failure?.message.contains("maxWallClockTime of 1 s") == true)
        }
    }

    func testFailedAttemptsAreRetriedAndEveryAttemptIsKept() throws {
        let marker = Harness.temporaryDirectory() + "/marker"
        var job = JobSpec(id: "retry", tasks: [
            .shell("flaky", "if [ -e \"$MARKER\" ]; then echo second; else touch \"$MARKER\"; exit 1; fi", constraints: Constraints(maxTaskRetryCount: 2)),
            .shell("hopeless", "exit 9", constraints: Constraints(maxTaskRetryCount: 2)),
        ])
        job.environment = ["MARKER": marker]
        let run = try Harness.run(job)
        let flaky = run.tasks[0], hopeless = run.tasks[1]
        XCTAssertTrue(flaky.succeeded)
        XCTAssertEqual(flaky.attempts.map(\.exitCode), [1, 0])
        XCTAssertNotEqual(flaky.attempts[0].directory, flaky.attempts[1].directory)
        XCTAssertEqual(Harness.read("\(flaky.attempts[1].directory)/stdout.txt"), "second\n")
        XCTAssertEqual(hopeless.attempts.count, 3, "one run and two retries")
        XCTAssertFalse(hopeless.succeeded)
    }

    func testDependenciesOrderTasksAndFailuresBlockDependents() throws {
        let shared = Harness.temporaryDirectory()
        let job = JobSpec(id: "deps", tasks: [
            .shell("second", "cat \(shared)/first.txt", dependsOn: ["first"]),
            .shell("first", "sleep 0.3; echo made > \(shared)/first.txt"),
            .shell("broken", "exit 1"),
            .shell("blocked", "echo should not run", dependsOn: ["broken"]),
            .shell("blocked-too", "echo nor this", dependsOn: ["blocked"]),
        ])
        let run = try Harness.run(job)
        let byId = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.taskId, $0) })
        XCTAssertTrue(byId["second"]!.succeeded)
        XCTAssertEqual(Harness.read("\(byId["second"]!.attempts[0].directory)/stdout.txt"), "made\n")
        XCTAssertGreaterThanOrEqual(byId["second"]!.attempts[0].start, byId["first"]!.attempts[0].end!)
        XCTAssertEqual(byId["blocked"]?.attempts.count, 0)
        XCTAssertEqual(byId["blocked"]?.failure?.category, .dependencyFailed)
        XCTAssertEqual(byId["blocked-too"]?.failure?.category, .dependencyFailed)
    }

    func testManyIndependentTasksSpreadOverTheNodesWithoutOverbooking() throws {
        let job = JobSpec(id: "many", tasks: (0..<40).map { .shell("t\($0)", "echo $AZ_BATCH_NODE_ID") })
        let run = try Harness.run(job, pool: .local(nodeCount: 4, slotsPerNode: 2))
        XCTAssertTrue(run.succeeded)
        XCTAssertEqual(Set(run.tasks.flatMap { $0.attempts.flatMap(\.nodes) }), ["local-0", "local-1", "local-2", "local-3"])
        // At no moment more than 8 (4 nodes × 2 slots) tasks at once, nor more than 2 on one node.
        let attempts = run.tasks.compactMap(\.attempts.first)
        for moment in attempts.map(\.start) {
            let running = attempts.filter { $0.start <= moment && moment < $0.end! }
            XCTAssertLessThanOrEqual(running.count, 8)
            for node in Set(running.flatMap(\.nodes)) {
                XCTAssertLessThanOrEqual(running.filter { $0.nodes == [node] }.count, 2, "\(node) at \(moment)")
            }
        }
    }

    func testImpossibleTasksAreRejectedBeforeAnythingRuns() {
        let job = JobSpec(id: "nope", tasks: [
            .shell("wide", "true", multi: MultiInstance(instances: 5, processesPerNode: 1)),
            .shell("deep", "true", multi: MultiInstance(instances: 1, processesPerNode: 3)),
        ])
        XCTAssertThrowsError(try JobRunner(job: job, pool: .local(nodeCount: 4, slotsPerNode: 2), settings: Harness.settings(Harness.temporaryDirectory()))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("task wide can never run"), text)
            XCTAssertTrue(text.contains("needs 5 nodes"), text)
            XCTAssertTrue(text.contains("task deep can never run"), text)
        }
    }
}
