import XCTest
@testable import Launcher

/// Task arrays and sweeps: Slurm's --array syntax, expansion into `ID[i]` tasks with their
/// words substituted, dependencies on a whole array, precise errors, and the throttle kept
/// by the scheduling core.
final class TaskArrayTests: XCTestCase {
    func indices(_ text: String) -> [Int]? { try? TaskArrays.indices(text).get().values }
    func problem(_ text: String) -> String? {
        if case .failure(let error) = TaskArrays.indices(text) { return error.message }
        return nil
    }

    func testSlurmsArraySyntax() throws {
        XCTAssertEqual(indices("1-5"), [1, 2, 3, 4, 5])
        XCTAssertEqual(indices("0,6,16-18"), [0, 6, 16, 17, 18])
        XCTAssertEqual(indices("0-15:4"), [0, 4, 8, 12])
        XCTAssertEqual(indices("7"), [7])
        XCTAssertEqual(try TaskArrays.indices("1-100%8").get(), TaskArrays.Indices(values: Array(1...100), throttle: 8))
        XCTAssertEqual(problem("5-1"), "the range '5-1' ends before it starts")
        XCTAssertEqual(problem("1-3:0"), "the step in '1-3:0' must be a whole number ≥ 1")
        XCTAssertEqual(problem("3:2"), "a step needs a range: '3:2'")
        XCTAssertEqual(problem("1,2,1"), "index 1 is given twice")
        XCTAssertEqual(problem("1-3%0"), "the throttle after % must be a whole number ≥ 1, found '0'")
        XCTAssertEqual(problem("%4"), "no indices given (e.g. 1-100, 0,6,16-32 or 0-15:4)")
        XCTAssertEqual(problem("a-b"), "'a-b' is not an index or a range A-B of whole numbers ≥ 0")
        XCTAssertEqual(problem("-3"), "'-3' is not an index or a range A-B of whole numbers ≥ 0")
        XCTAssertEqual(problem("0-200000"), "more than 100000 elements")
        XCTAssertEqual(problem("99999999"), "index 99999999 is above the largest allowed, 10000000")
    }

    func testOnlyKnownNamesAreSubstituted() {
        let values = ["index": "7", "mesh": "fine"]
        XCTAssertEqual(TaskArrays.substitute("--seed {index} --mesh {mesh}", values), "--seed 7 --mesh fine")
        XCTAssertEqual(TaskArrays.substitute("awk '{print $1}' ${HOME} {} {other}", values), "awk '{print $1}' ${HOME} {} {other}")
        XCTAssertEqual(TaskArrays.substitute("{{index}}", values), "{7}")
        XCTAssertEqual(TaskArrays.substitute("out-{index}-{index}.dat", values), "out-7-7.dat")
    }

    func testAnArrayBecomesOneTaskPerIndexWithItsWordsFilled() throws {
        let job = try JobFile.parse("""
            id: mc
            tasks:
              - id: pi
                commandLine: ./pi --seed {index} --out 'run {index}.txt'
                array: 1-3%2
                environment: { SEED: "{index}", LITERAL: "{nothing}" }
                outputFiles:
                  - filePattern: "run {index}.txt"
                    destination: { container: { containerUrl: "s3://results/mc", path: "pi-{index}" } }
              - { id: reduce, commandLine: ./reduce, dependsOn: [pi] }
              - { id: one, commandLine: ./check, dependsOn: ["pi[2]"] }
            """, file: "mc.yaml")
        XCTAssertEqual(job.tasks.map(\.id), ["pi[1]", "pi[2]", "pi[3]", "reduce", "one"])
        XCTAssertEqual(job.tasks[1].commandLine, ["./pi", "--seed", "2", "--out", "run 2.txt"])
        XCTAssertEqual(job.tasks[2].environment, ["SEED": "3", "LITERAL": "{nothing}"])
        XCTAssertEqual(job.tasks[0].outputFiles?.first?.filePattern, "run 1.txt")
        XCTAssertEqual(job.tasks[0].outputFiles?.first?.path, "pi-1")
        XCTAssertEqual(job.tasks[1].array, ArrayElement(task: "pi", index: 2, count: 3, throttle: 2, parameters: nil))
        XCTAssertEqual(job.tasks[1].array?.variables, ["COHORT_ARRAY_INDEX": "2", "COHORT_ARRAY_COUNT": "3", "COHORT_ARRAY_TASK_ID": "pi"])
        XCTAssertEqual(job.tasks[3].dependsOn, ["pi[1]", "pi[2]", "pi[3]"], "a dependency on an array is on each of its elements")
        XCTAssertEqual(job.tasks[4].dependsOn, ["pi[2]"], "or on one of them")
        XCTAssertNil(job.tasks[3].array)
        // A list of indices, and a throttle given apart.
        let listed = try JobFile.parse("id: l\ntasks:\n  - { id: t, commandLine: 'echo {index}', array: [4, 2, 9], throttle: 1 }\n", file: "l.yaml")
        XCTAssertEqual(listed.tasks.map(\.id), ["t[4]", "t[2]", "t[9]"])
        XCTAssertEqual(listed.tasks.map(\.array?.throttle), [1, 1, 1])
    }

    func testASweepRunsEveryCombinationWithItsParameters() throws {
        let job = try JobFile.parse("""
            id: study
            tasks:
              - id: cfd
                commandLine: ./solver --mesh {mesh} --re {re} --case {index}
                sweep: { mesh: [coarse, fine], re: [100, 1000, 10000] }
                multiInstance: { instances: 2, processesPerNode: 1, coordinationCommandLine: "mkdir -p {mesh}" }
            """, file: "study.yaml")
        XCTAssertEqual(job.tasks.map(\.id), (0..<6).map { "cfd[\($0)]" })
        XCTAssertEqual(job.tasks.map { $0.commandLine[2] + "/" + $0.commandLine[4] },
                       ["coarse/100", "coarse/1000", "coarse/10000", "fine/100", "fine/1000", "fine/10000"], "the first parameter varies slowest")
        XCTAssertEqual(job.tasks[4].commandLine.last, "4")
        XCTAssertEqual(job.tasks[4].multiInstance?.coordinationCommandLine, ["mkdir", "-p", "fine"])
        XCTAssertEqual(job.tasks[4].multiInstance?.instances, 2, "an ensemble of MPI runs with different inputs")
        XCTAssertEqual(job.tasks[4].array?.variables["mesh"], "fine")
        XCTAssertEqual(job.tasks[4].array?.variables["re"], "1000")
        XCTAssertEqual(job.tasks[4].array?.variables["COHORT_ARRAY_INDEX"], "4")
    }

    func testBadArraysAndSweepsNameTheirFileLineAndField() {
        func error(_ task: String, extra: String = "") -> SpecError? {
            do { _ = try JobFile.parse("id: j\ntasks:\n  - \(task)\n\(extra)", file: "j.yaml"); return nil } catch { return error }
        }
        let backwards = error("{ id: t, commandLine: 'true', array: 5-1 }")
        XCTAssertEqual(backwards?.field, "tasks[0].array")
        XCTAssertEqual(backwards?.line, 3)
        XCTAssertEqual(backwards?.message, "the range '5-1' ends before it starts")
        XCTAssertEqual(error("{ id: t, commandLine: 'true', array: 1-3, sweep: { a: [1] } }")?.message,
                       "a task takes an array or a sweep, not both (a sweep's combinations are numbered: use {index})")
        XCTAssertEqual(error("{ id: t, commandLine: 'true', throttle: 2 }")?.message, "throttle limits the elements of an array or a sweep; this task has neither")
        XCTAssertEqual(error("{ id: t, commandLine: 'true', array: 1-3%2, throttle: 2 }")?.message, "the throttle is given twice: by % here and by throttle")
        XCTAssertEqual(error("{ id: t, commandLine: 'true', array: [1, 1] }")?.field, "tasks[0].array[1]")
        XCTAssertEqual(error("{ id: t, commandLine: 'true', sweep: { index: [1, 2] } }")?.message, "'index' is the element's number ({index}); name the parameter otherwise")
        XCTAssertEqual(error("{ id: t, commandLine: 'true', sweep: { 'my-mesh': [a] } }")?.field, "tasks[0].sweep.my-mesh")
        XCTAssertEqual(error("{ id: t, commandLine: 'true', sweep: { mesh: [] } }")?.message, "a parameter needs at least one value")
        XCTAssertEqual(error("{ id: t, commandLine: 'true', sweep: { mesh: [a], re: [1] }, environment: { re: x } }")?.message,
                       "parameter re is also in the task's environment; each element gets the parameter's value under that name")
        let clash = error("{ id: t, commandLine: 'true', array: 1-2 }", extra: "  - { id: t, commandLine: 'true' }\n")
        XCTAssertEqual(clash?.field, "tasks[1].id")
        XCTAssertEqual(clash?.message, "task id 't' is already used by tasks[0]")
        let own = error("{ id: t, commandLine: 'true', array: 1-2, dependsOn: [t] }")
        XCTAssertEqual(own?.field, "tasks[0].dependsOn")
        XCTAssertEqual(own?.message, "an element of array t cannot depend on its own array")
        let after = error("{ id: a, commandLine: 'true', array: 1-2 }", extra: "  - { id: b, commandLine: 'true', dependsOn: [c] }\n")
        XCTAssertEqual(after?.field, "tasks[1].dependsOn", "indices in errors are the file's, not the expanded list's")
        XCTAssertEqual(error("{ id: t, commandLine: 'true', array: 0-60000 }", extra: "  - { id: u, commandLine: 'true', array: 0-60000 }\n")?.message,
                       "the job has more than 100000 tasks once its arrays and sweeps are expanded")
    }

    /// The throttle: at most N elements of the array in flight, the rest in order as they end;
    /// retries keep their place; a cancel ends the held-back ones too.
    func testAThrottledArrayNeverRunsMoreThanItsLimitAtOnce() throws {
        let simulation = Simulation(pool: SchedulingTests.pool(4, slots: 4))
        simulation.behaviour = { unit, attempt in (2, unit.task.id == "pi[5]" && attempt == 1 ? 1 : 0) }
        var array = TaskSpec(id: "pi", commandLine: ["x"], constraints: Constraints(maxTaskRetryCount: 1))
        array.id = "pi"
        let elements = TaskArrays.expand(array, elements: (1...30).map { ($0, []) }, throttle: 3)
        let other = TaskSpec(id: "other", commandLine: ["x"])
        try simulation.add(JobSpec(id: "j", pool: "sim", tasks: elements + [other]))
        simulation.run()
        XCTAssertEqual(simulation.violations, [])
        let run = try XCTUnwrap(simulation.endedJobs.first)
        XCTAssertTrue(run.succeeded, "\(run.tasks.filter { !$0.succeeded }.map(\.taskId))")
        let attempts = run.tasks.filter { $0.taskId.hasPrefix("pi[") }.flatMap(\.attempts)
        XCTAssertEqual(attempts.count, 31, "30 elements, one retried")
        var most = 0
        for attempt in attempts {
            let at = attempt.start
            most = max(most, attempts.filter { $0.start <= at && ($0.end ?? .distantFuture) > at }.count)
        }
        XCTAssertEqual(most, 3, "16 slots free, the array ran 3 at a time")
        let otherStart = try XCTUnwrap(run.tasks.first { $0.taskId == "other" }?.attempts.first?.start)
        XCTAssertLessThan(otherStart.timeIntervalSince(run.start), 1, "a task beside the array is not held back by its throttle")
        let firstStarts = elements.prefix(3).map(\.id)
        XCTAssertEqual(Set(run.tasks.filter { $0.attempts.first?.start == attempts.map(\.start).min() && $0.taskId.hasPrefix("pi[") }.map(\.taskId)), Set(firstStarts))

        // Cancelled while most of the array is held back: every element ends.
        let cancelled = Simulation(pool: SchedulingTests.pool(2, slots: 2))
        cancelled.behaviour = { _, _ in (5, 0) }
        try cancelled.add(JobSpec(id: "c", pool: "sim", tasks: TaskArrays.expand(array, elements: (1...10).map { ($0, []) }, throttle: 2)))
        cancelled.cancel(jobId: "c", at: 1)
        cancelled.run()
        XCTAssertEqual(cancelled.violations, [])
        let ended = try XCTUnwrap(cancelled.endedJobs.first)
        XCTAssertEqual(ended.tasks.count, 10)
        XCTAssertEqual(ended.tasks.filter { $0.attempts.isEmpty }.count, 8, "the held-back elements never started")
        XCTAssertTrue(ended.tasks.allSatisfy { $0.failure?.category == .cancelled }, "\(ended.tasks.map { $0.failure?.category })")
    }
}

/// Dependencies between jobs: the job file's `dependsOn`, `--after`'s words.
final class JobDependencyTests: XCTestCase {
    func testAJobFileNamesTheJobsItWaitsFor() throws {
        let job = try JobFile.parse("""
            id: solve
            dependsOn: [mesh, { job: check, condition: afternotok }, { job: any, condition: afterany }]
            tasks: [{ id: a, commandLine: 'true' }]
            """, file: "solve.yaml")
        XCTAssertEqual(job.afterJobs, [JobDependency(job: "mesh"), JobDependency(job: "check", condition: .afternotok), JobDependency(job: "any", condition: .afterany)])
        func error(_ dependsOn: String) -> SpecError? {
            do { _ = try JobFile.parse("id: solve\ndependsOn: \(dependsOn)\ntasks: [{ id: a, commandLine: 'true' }]\n", file: "s.yaml"); return nil } catch { return error }
        }
        XCTAssertEqual(error("[{ job: mesh, condition: afterwards }]")?.message,
                       "unknown condition 'afterwards' between jobs (expected afterok, afterany or afternotok; aftercorr pairs the elements of two arrays of one job)")
        XCTAssertEqual(error("[{ job: mesh, condition: afterwards }]")?.field, "dependsOn[0].condition")
        XCTAssertEqual(error("[solve]")?.message, "a job cannot depend on itself")
        XCTAssertEqual(error("[{ condition: afterok }]")?.message, "a job dependency needs the job's id: {job: mesh, condition: afterok}")
        XCTAssertEqual(error("['bad id']")?.field, "dependsOn[0]")
        // What a JobSpec is encoded as reads back the same (cohort submit --stage sends that).
        var spec = job
        spec.maxWallClockTime = nil
        let encoded = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        XCTAssertEqual(try JobFile.parse(encoded, file: "encoded").afterJobs, spec.afterJobs)
    }

    func testAfterWords() {
        XCTAssertEqual(JobDependency.parse("mesh"), JobDependency(job: "mesh"))
        XCTAssertEqual(JobDependency.parse("mesh:ok"), JobDependency(job: "mesh"))
        XCTAssertEqual(JobDependency.parse("mesh:any"), JobDependency(job: "mesh", condition: .afterany))
        XCTAssertEqual(JobDependency.parse("mesh:notok"), JobDependency(job: "mesh", condition: .afternotok))
        XCTAssertEqual(JobDependency.parse("mesh:afterany"), JobDependency(job: "mesh", condition: .afterany))
        XCTAssertNil(JobDependency.parse("mesh:sometimes"))
        XCTAssertNil(JobDependency.parse(":ok"))
        XCTAssertNil(JobDependency.parse("a:b:c"))
        XCTAssertTrue(JobDependency(job: "x").isSatisfied(succeeded: true))
        XCTAssertFalse(JobDependency(job: "x").isSatisfied(succeeded: false))
        XCTAssertTrue(JobDependency(job: "x", condition: .afternotok).isSatisfied(succeeded: false))
        XCTAssertTrue(JobDependency(job: "x", condition: .afterany).isSatisfied(succeeded: false))
    }
}

/// `cohort submit --stage` (and a submission to a server elsewhere) sends the job as its
/// JobSpec encoded in JSON, which the server reads as a job file: every field must read back.
final class EncodedJobTests: XCTestCase {
    func testAnEncodedJobReadsBackAsTheSameJob() throws {
        let job = try JobFile.parse("""
            id: rich
            pool: local
            priority: 5
            environment: { CASE: wing }
            constraints: { maxWallClockTime: 2h }
            onTaskFailure: performexitoptionsjobaction
            dependsOn: [mesh, { job: check, condition: afterany }]
            notify: https://hooks.example.com/cohort?token=x
            jobPreparationTask: { commandLine: 'echo prep', waitForSuccess: true, environment: { A: b } }
            jobReleaseTask: { commandLine: 'echo release' }
            tasks:
              - id: pi
                commandLine: ./pi --seed {index}
                array: 1-3%2
                constraints: { maxWallClockTime: 90s, maxTaskRetryCount: 2, killGracePeriod: 3s }
                requiredSlots: 2
                gpusPerNode: 1
                exitConditions: { exitCodes: [{ code: 3, exitOptions: { jobAction: terminate } }] }
              - id: cfd
                commandLine: [./solver, '{mesh}']
                sweep: { mesh: [coarse, fine] }
                multiInstance: { instances: 2, processesPerNode: 2, coordinationCommandLine: 'true', transport: tcp, replicas: 2, mpirunOptions: [--bind-to, core], cpusPerRank: 2, exclusive: true, ranks: 3 }
                outputFiles: [{ filePattern: 'out/*', destination: { container: { containerUrl: 's3://results/x', path: '{mesh}' } }, uploadOptions: { uploadCondition: taskSuccess } }]
                resourceFiles: [{ httpUrl: 'http://example.com/mesh.msh', filePath: 'mesh.msh', fileMode: '0644' }]
                workingDirectory: /tmp
                gpusPerRank: 1
                memoryPerNode: 4G
                dependsOn: [pi]
            """, file: "rich.yaml")
        let encoded = String(decoding: try JSONEncoder().encode(job), as: UTF8.self)
        let again = try JobFile.parse(encoded, file: "encoded")
        XCTAssertEqual(again, job, encoded)
        // An element as written by hand is held to the same rules.
        func error(_ task: String) -> SpecError? {
            do { _ = try JobFile.parse("id: j\ntasks:\n  - \(task)\n", file: "j.yaml"); return nil } catch { return error }
        }
        XCTAssertEqual(error("{ id: 'pi[2]', commandLine: x, array: { task: pi, index: 3, count: 4 } }")?.message,
                       "element 3 of array pi has the id pi[3], not pi[2]")
        XCTAssertEqual(error("{ id: 'pi[3]', commandLine: x, array: { task: pi, index: 3, count: 4, parameters: [[OMPI_X, x]] } }")?.field,
                       "tasks[0].array.parameters[0]")
        XCTAssertEqual(error("{ id: 'pi[3]', commandLine: x }")?.message, "ids are 1-64 letters, digits, '-' or '_', found 'pi[3]'")
        XCTAssertEqual(error("{ id: 'pi[3]', commandLine: x, array: { task: pi, index: 3, count: 4 }, throttle: 2 }")?.message,
                       "an array's element (array: {task, index, …}) takes no sweep or throttle of its own")
    }
}
