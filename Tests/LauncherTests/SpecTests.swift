import XCTest
@testable import Launcher

final class CommandLineWordsTests: XCTestCase {
    func testQuotingLikeAShellWithoutExpansion() throws {
        XCTAssertEqual(try CommandLineWords.split("./solver  mesh.dat --iters 5"), ["./solver", "mesh.dat", "--iters", "5"])
        XCTAssertEqual(try CommandLineWords.split(#"sh -c 'echo $HOME; ls' "a b" c\ d"#), ["sh", "-c", "echo $HOME; ls", "a b", "c d"])
        XCTAssertEqual(try CommandLineWords.split(#"echo "x\"y" '' z"#), ["echo", "x\"y", "", "z"])
        XCTAssertEqual(try CommandLineWords.split("echo $PATH `id` > out"), ["echo", "$PATH", "`id`", ">", "out"])
        XCTAssertThrowsError(try CommandLineWords.split("echo 'open")) { error in
            XCTAssertEqual((error as? CommandLineWords.SplitError)?.column, 6)
        }
    }

    func testShellQuotingSurvivesHostileWords() throws {
        for word in ["a;touch /tmp/pwned", "$(id)", "it's", "`reboot`", "a b", "", "\"", "\\", "x\ny"] {
            let quoted = CommandLineWords.shellQuote(word)
            XCTAssertEqual(try CommandLineWords.split("echo " + quoted), ["echo", word], quoted)
        }
        XCTAssertEqual(CommandLineWords.shellQuote("plain-word_1.txt"), "plain-word_1.txt")
    }

    func testDurations() {
        XCTAssertEqual(Durations.seconds("90"), 90)
        XCTAssertEqual(Durations.seconds("90s"), 90)
        XCTAssertEqual(Durations.seconds("30m"), 1800)
        XCTAssertEqual(Durations.seconds("1h30m"), 5400)
        XCTAssertEqual(Durations.seconds("PT30M"), 1800)
        XCTAssertEqual(Durations.seconds("P1DT2H"), 93600)
        XCTAssertEqual(Durations.seconds("0.5s"), 0.5)
        XCTAssertNil(Durations.seconds("soon"))
        XCTAssertNil(Durations.seconds("10x"))
        XCTAssertNil(Durations.seconds("-5"))
        XCTAssertNil(Durations.seconds("5m3"))
    }
}

final class JobFileTests: XCTestCase {
    let good = """
        id: wing-sweep
        pool: local
        environment: { CASE: wing }
        tasks:
          - id: mesh
            commandLine: ./mesh --out mesh.dat
          - id: solve
            dependsOn: [mesh]
            commandLine: ./solver mesh.dat
            multiInstance:
              instances: 4
              processesPerNode: 2
              coordinationCommandLine: ./warm-cache.sh
              transport: tcp
              replicas: 3
            constraints: { maxWallClockTime: 30m, maxTaskRetryCount: 2 }
        """

    func testTheDesignExampleParses() throws {
        let job = try JobFile.parse(good, file: "job.yaml")
        XCTAssertEqual(job.id, "wing-sweep")
        XCTAssertEqual(job.environment, ["CASE": "wing"])
        XCTAssertEqual(job.tasks.map(\.id), ["mesh", "solve"])
        XCTAssertEqual(job.tasks[0].commandLine, ["./mesh", "--out", "mesh.dat"])
        XCTAssertNil(job.tasks[0].multiInstance)
        let solve = job.tasks[1]
        XCTAssertEqual(solve.dependsOn, ["mesh"])
        XCTAssertEqual(solve.multiInstance, MultiInstance(instances: 4, processesPerNode: 2, coordinationCommandLine: ["./warm-cache.sh"], transport: .tcp, replicas: 3))
        XCTAssertEqual(solve.constraints, Constraints(maxWallClockTime: 1800, maxTaskRetryCount: 2))
    }

    func testJobConstraintsPreparationAndReleaseInAzuresShape() throws {
        let json = """
            {"id": "staged", "constraints": {"maxWallClockTime": "PT2H"},
             "jobPreparationTask": {"id": "prep", "commandLine": "/bin/sh -c 'cp input $AZ_BATCH_JOB_PREP_DIR'", "waitForSuccess": false,
                                    "environmentSettings": [{"name": "STAGE", "value": "1"}], "constraints": {"maxWallClockTime": "PT5M"}},
             "jobReleaseTask": {"commandLine": "rm -rf scratch", "maxWallClockTime": "PT1M"},
             "tasks": [{"id": "a", "commandLine": "true"}]}
            """
        let job = try JobFile.parse(json, file: "job.json")
        XCTAssertEqual(job.maxWallClockTime, 7200)
        XCTAssertEqual(job.preparation, NodeTaskSpec(commandLine: ["/bin/sh", "-c", "cp input $AZ_BATCH_JOB_PREP_DIR"], environment: ["STAGE": "1"],
                                                     maxWallClockTime: 300, waitForSuccess: false))
        XCTAssertEqual(job.release, NodeTaskSpec(commandLine: ["rm", "-rf", "scratch"], maxWallClockTime: 60))
        let bad = error("id: j\njobReleaseTask:\n  commandLine: x\n  waitForSuccess: true\ntasks: [{id: a, commandLine: x}]\n")
        XCTAssertEqual(bad?.field, "jobReleaseTask.waitForSuccess")
        XCTAssertEqual(bad?.line, 4)
        XCTAssertEqual(error("id: j\njobPreparationTask: {}\ntasks: [{id: a, commandLine: x}]\n")?.field, "jobPreparationTask")
    }

    func testDefaults() throws {
        let job = try JobFile.parse("id: j\ntasks:\n  - id: t\n    commandLine: true\n    multiInstance: {}\n", file: "j.yaml")
        XCTAssertEqual(job.pool, "local")
        XCTAssertEqual(job.priority, 0)
        XCTAssertEqual(job.tasks[0].multiInstance, MultiInstance(instances: 1, processesPerNode: 1, transport: .auto, replicas: 1, launch: .mpirun))
        XCTAssertEqual(job.tasks[0].constraints, Constraints())
    }

    func testAzureBatchJSONShape() throws {
        let json = """
            {"id": "az", "poolInfo": {"poolId": "cluster"},
             "commonEnvironmentSettings": [{"name": "MODE", "value": "fast"}],
             "tasks": [
               {"id": "1", "commandLine": "/bin/true"},
               {"id": "2", "commandLine": "/bin/true"},
               {"id": "mpi", "commandLine": "/bin/bash -c 'mpirun -host $AZ_BATCH_HOST_LIST ./app'",
                "dependsOn": {"taskIdRanges": [{"start": 1, "end": 2}]},
                "multiInstanceSettings": {"numberOfInstances": 3, "coordinationCommandLine": "/bin/true"},
                "environmentSettings": [{"name": "X", "value": "1"}],
                "constraints": {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 1}}
             ]}
            """
        let job = try JobFile.parse(json, file: "job.json")
        XCTAssertEqual(job.pool, "cluster")
        XCTAssertEqual(job.environment, ["MODE": "fast"])
        XCTAssertEqual(job.tasks[2].dependsOn, ["1", "2"])
        XCTAssertEqual(job.tasks[2].multiInstance?.instances, 3)
        XCTAssertEqual(job.tasks[2].commandLine, ["/bin/bash", "-c", "mpirun -host $AZ_BATCH_HOST_LIST ./app"])
        XCTAssertEqual(job.tasks[2].constraints.maxWallClockTime, 3600)
        XCTAssertEqual(job.tasks[2].environment, ["X": "1"])
    }

    func error(_ text: String) -> SpecError? {
        do { _ = try JobFile.parse(text, file: "bad.yaml"); return nil } catch { return error }
    }

    func testErrorsNameFileLineAndField() {
        let unknown = error(good.replacingOccurrences(of: "processesPerNode: 2", with: "procsPerNode: 2"))
        XCTAssertEqual(unknown?.file, "bad.yaml")
        XCTAssertEqual(unknown?.line, 12)
        XCTAssertEqual(unknown?.field, "tasks[1].multiInstance.procsPerNode")
        XCTAssertTrue(unknown?.message.contains("unknown field 'procsPerNode'") == true)
        XCTAssertTrue(unknown?.description.hasPrefix("bad.yaml:12:") == true)

        let wrongType = error(good.replacingOccurrences(of: "instances: 4", with: "instances: four"))
        XCTAssertEqual(wrongType?.line, 11)
        XCTAssertEqual(wrongType?.field, "tasks[1].multiInstance.instances")
        XCTAssertTrue(wrongType?.message.contains("whole number") == true)

        XCTAssertEqual(error(good.replacingOccurrences(of: "instances: 4", with: "instances: 0"))?.message, "must be ≥ 1, found 0")
        XCTAssertEqual(error(good.replacingOccurrences(of: "transport: tcp", with: "transport: carrier-pigeon"))?.field, "tasks[1].multiInstance.transport")
        XCTAssertEqual(error(good.replacingOccurrences(of: "30m", with: "soon"))?.field, "tasks[1].constraints.maxWallClockTime")
        XCTAssertEqual(error(good.replacingOccurrences(of: "dependsOn: [mesh]", with: "dependsOn: [meshh]"))?.message, "no task has the id 'meshh'")
        XCTAssertEqual(error(good.replacingOccurrences(of: "id: solve", with: "id: mesh"))?.field, "tasks[1].id")
        XCTAssertTrue(error(good.replacingOccurrences(of: "id: mesh\n", with: "id: mesh\n    dependsOn: [solve]\n"))?.message.contains("cycle") == true)
        let unterminated = error(good.replacingOccurrences(of: "./solver mesh.dat", with: "./solver \"mesh.dat"))
        XCTAssertEqual(unterminated?.field, "tasks[1].commandLine")
        XCTAssertEqual(unterminated?.line, 9)
        XCTAssertEqual(unterminated?.column, 27, "points at the quote")
        XCTAssertEqual(error(good.replacingOccurrences(of: "id: wing-sweep", with: "id: wing sweep"))?.field, "id")
        XCTAssertEqual(error("id: j\ntasks: []\n")?.message, "a job needs at least one task")
        XCTAssertEqual(error("id: j\n")?.message, "a job needs a list of tasks")
        XCTAssertEqual(error("tasks: [{id: a, commandLine: x}]\n")?.message, "a job needs an id")
        XCTAssertEqual(error("id: j\ntasks: [{id: a}]\n")?.message, "a task needs a commandLine")
        XCTAssertEqual(error("id: j\ntasks:\n  - id: a\n    commandLine: ''\n")?.message, "the command line is empty")
        XCTAssertNotNil(error("id: j\ntasks: [{id: a, commandLine: x}\n")?.line, "YAML syntax errors carry a line")
        XCTAssertEqual(error("id: j\nenvironment: {'1BAD': x}\ntasks: [{id: a, commandLine: x}]\n")?.field, "environment.1BAD")
    }

    func testAWarningBeforeTheTimeLimitIsCheckedAgainstIt() {
        func task(_ constraints: String) -> String { "id: j\ntasks:\n  - id: a\n    commandLine: x\n    constraints: \(constraints)\n" }
        let parsed = try? JobFile.parse(task("{ maxWallClockTime: 10m, signalBeforeTimeLimit: { signal: SIGUSR2, seconds: 2m } }"), file: "w.yaml")
        XCTAssertEqual(parsed?.tasks[0].constraints.signalBeforeTimeLimit, WarningSignal(signal: SIGUSR2, seconds: 120))
        XCTAssertEqual((try? JobFile.parse(task("{ maxWallClockTime: 10m, signalBeforeTimeLimit: { signal: 10 } }"), file: "w.yaml"))?
            .tasks[0].constraints.signalBeforeTimeLimit, WarningSignal(signal: 10, seconds: 60), "60 s early, as Slurm's default")
        let noLimit = error(task("{ signalBeforeTimeLimit: { signal: USR1, seconds: 60 } }"))
        XCTAssertEqual(noLimit?.field, "tasks[0].constraints.signalBeforeTimeLimit")
        XCTAssertTrue(noLimit?.message.contains("set maxWallClockTime too") == true, noLimit?.message ?? "")
        let late = error(task("{ maxWallClockTime: 60s, signalBeforeTimeLimit: { signal: USR1, seconds: 90s } }"))
        XCTAssertEqual(late?.field, "tasks[0].constraints.signalBeforeTimeLimit.seconds")
        XCTAssertEqual(late?.message, "must be more than 0 and less than maxWallClockTime (60 s), found 90 s")
        for uncatchable in ["KILL", "SIGSTOP", "9", "0", "65", "USR3"] {
            let refused = error(task("{ maxWallClockTime: 60s, signalBeforeTimeLimit: { signal: \(uncatchable), seconds: 5 } }"))
            XCTAssertEqual(refused?.field, "tasks[0].constraints.signalBeforeTimeLimit.signal", uncatchable)
        }
        XCTAssertEqual((try? JobFile.parse(task("{ idleTimeout: 10m }"), file: "w.yaml"))?.tasks[0].constraints.idleTimeout, 600)
        XCTAssertEqual(error(task("{ idleTimeout: 0.5s }"))?.field, "tasks[0].constraints.idleTimeout")
        XCTAssertEqual(error(task("{ idleTimeout: never }"))?.field, "tasks[0].constraints.idleTimeout")
        XCTAssertEqual(WarningSignal.parse(slurm: "USR1@300"), WarningSignal(signal: SIGUSR1, seconds: 300))
        XCTAssertEqual(WarningSignal.parse(slurm: "sigterm"), WarningSignal(signal: SIGTERM, seconds: 60))
        for bad in ["B:USR1@300", "USR1@", "USR1@-5", "KILL@10", "@10", ""] { XCTAssertNil(WarningSignal.parse(slurm: bad), bad) }
    }

    func testRandomMutationsNeverCrashAndAlwaysSayWhere() {
        // Delete, duplicate or garble characters of a valid file: each result parses or
        // fails with a SpecError that names the file.
        // Also depth, size and numeric extremes spliced in: each must fail as cleanly.
        var generator = SystemRandomNumberGenerator()
        let characters = Array(good)
        let extremes = [String(repeating: "[", count: 4000), String(repeating: "- ", count: 4000), String(repeating: "{a: ", count: 3000),
                        String(repeating: "9", count: 400), "1e308", ".inf", "-9223372036854775809", "P99999999999999D", String(repeating: "y", count: 100_000)]
        var parsed = 0, refused = 0
        for round in 0..<900 {
            var mutated = characters
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let index = Int.random(in: 0..<mutated.count, using: &generator)
                switch Int.random(in: 0..<(round < 600 ? 3 : 4), using: &generator) {
                case 0: mutated.remove(at: index)
                case 1: mutated.insert(mutated[index], at: index)
                case 2: mutated[index] = [":", "-", "[", "{", "'", "x", "9", " ", "\n"].randomElement(using: &generator)!
                default: mutated.insert(contentsOf: extremes.randomElement(using: &generator)!, at: index)
                }
            }
            do {
                _ = try JobFile.parse(String(mutated), file: "fuzz.yaml")
                parsed += 1
            } catch {
                refused += 1
                XCTAssertEqual(error.file, "fuzz.yaml")
                XCTAssertFalse(error.message.isEmpty)
            }
        }
        print("mutated job files: 900 tried (300 with extremes), \(parsed) parsed, \(refused) refused with a located error")
    }

    /// Hybrid ranks and whole nodes: `cpusPerRank` counts a slot per core, and a shape no node
    /// can hold is refused naming the field.
    func testCpusPerRankAndExclusiveAreReadAndChecked() throws {
        let job = try JobFile.parse("id: j\ntasks:\n  - id: cfd\n    commandLine: ./solver\n    multiInstance: { instances: 2, processesPerNode: 4, cpusPerRank: 8, exclusive: true }\n", file: "j.yaml")
        let multi = try XCTUnwrap(job.tasks[0].multiInstance)
        XCTAssertEqual(multi.threadsPerRank, 8)
        XCTAssertEqual(multi.slotsPerNode, 32)
        XCTAssertEqual(multi.exclusive, true)
        let tooMany = error("id: j\ntasks:\n  - id: cfd\n    commandLine: x\n    multiInstance: { instances: 1, processesPerNode: 4096, cpusPerRank: 64 }\n")
        XCTAssertEqual(tooMany?.field, "tasks[0].multiInstance.cpusPerRank")
        XCTAssertTrue(tooMany?.message.contains("262144 cores on a node") == true, tooMany?.message ?? "")
        XCTAssertEqual(error("id: j\ntasks:\n  - id: c\n    commandLine: x\n    multiInstance: { instances: 1, cpusPerRank: 0 }\n")?.field, "tasks[0].multiInstance.cpusPerRank")
        XCTAssertEqual(error("id: j\ntasks:\n  - id: c\n    commandLine: x\n    multiInstance: { instances: 1, exclusive: maybe }\n")?.field, "tasks[0].multiInstance.exclusive")
    }

    /// GPUs and memory per node: read from a task (independent or MPI), each mistake named at
    /// its field; sizes as Slurm's --mem writes them.
    func testGPUsAndMemoryAreReadAndChecked() throws {
        let job = try JobFile.parse("""
            id: j
            tasks:
              - id: train
                commandLine: ./train
                multiInstance: { instances: 2, processesPerNode: 4 }
                gpusPerRank: 2
                memoryPerNode: 64G
              - id: render
                commandLine: ./render
                gpusPerNode: 1
                memoryPerNode: 1536
            """, file: "j.yaml")
        XCTAssertEqual(job.tasks[0].gpusPerRank, 2)
        XCTAssertEqual(job.tasks[0].nodeExtras, Allocator.Extras(gpus: 8, memory: 65536))
        XCTAssertEqual(job.tasks[1].nodeExtras, Allocator.Extras(gpus: 1, memory: 1536))
        XCTAssertEqual(try JobFile.parse("id: j\ntasks:\n  - { id: t, commandLine: x, slots: 4 }\n", file: "j.yaml").tasks[0].requiredSlots, 4,
                       "slots: N is Azure's requiredSlots")
        XCTAssertEqual([MemorySizes.mebibytes("512M"), MemorySizes.mebibytes("4GB"), MemorySizes.mebibytes("1.5t"), MemorySizes.mebibytes("100K"),
                        MemorySizes.mebibytes("4GiB"), MemorySizes.mebibytes("2048")], [512, 4096, 1_572_864, 1, 4096, 2048])
        for bad in ["", "G", "-1G", "4X", "4 G G", "0", "65T", "1e3"] { XCTAssertNil(MemorySizes.mebibytes(bad), bad) }
        let task = "id: j\ntasks:\n  - id: t\n    commandLine: x\n"
        let both = error(task + "    gpusPerNode: 1\n    gpusPerRank: 1\n")
        XCTAssertEqual(both?.field, "tasks[0].gpusPerRank")
        XCTAssertTrue(both?.message.contains("not both") == true, both?.message ?? "")
        XCTAssertEqual(error(task + "    gpusPerNode: 65\n")?.field, "tasks[0].gpusPerNode")
        XCTAssertEqual(error(task + "    gpusPerNode: two\n")?.field, "tasks[0].gpusPerNode")
        let crowded = error(task + "    multiInstance: { instances: 1, processesPerNode: 16 }\n    gpusPerRank: 8\n")
        XCTAssertEqual(crowded?.field, "tasks[0].gpusPerRank")
        XCTAssertTrue(crowded?.message.contains("128 on a node") == true, crowded?.message ?? "")
        let raw = error(task + "    multiInstance: { instances: 2, launch: raw }\n    gpusPerRank: 1\n")
        XCTAssertTrue(raw?.message.contains("use gpusPerNode") == true, raw?.message ?? "")
        let memory = error(task + "    memoryPerNode: lots\n")
        XCTAssertEqual(memory?.field, "tasks[0].memoryPerNode")
        XCTAssertTrue(memory?.message.contains("4G, 512M or 2048") == true, memory?.message ?? "")
    }

    /// Dependencies between tasks of one job in Slurm's kinds: afterany, afternotok, and
    /// aftercorr, which pairs each element of an array with the other array's element of
    /// the same index; a condition on an array is on each element. Mistakes are located.
    func testTaskDependenciesTakeSlurmsKinds() throws {
        let job = try JobFile.parse("""
            id: j
            tasks:
              - { id: mesh, commandLine: x, array: 1-3 }
              - { id: solve, commandLine: x, array: 1-3, dependsOn: [{ task: mesh, condition: aftercorr }] }
              - { id: cleanup, commandLine: x, dependsOn: [{ task: solve, condition: afterany }, mesh] }
              - { id: debug, commandLine: x, dependsOn: [{ task: 'solve[2]', condition: afternotok }] }
            """, file: "j.yaml")
        let tasks = Dictionary(uniqueKeysWithValues: job.tasks.map { ($0.id, $0) })
        XCTAssertEqual(tasks["solve[2]"]?.dependsOn, ["mesh[2]"])
        XCTAssertNil(tasks["solve[2]"]?.dependencyConditions, "aftercorr becomes afterok on the partner")
        XCTAssertEqual(tasks["cleanup"]?.dependsOn, ["solve[1]", "solve[2]", "solve[3]", "mesh[1]", "mesh[2]", "mesh[3]"])
        XCTAssertEqual(tasks["cleanup"]?.condition(on: "solve[3]"), .afterany)
        XCTAssertEqual(tasks["cleanup"]?.condition(on: "mesh[1]"), .afterok)
        XCTAssertEqual(tasks["debug"]?.condition(on: "solve[2]"), .afternotok)
        let encoded = String(decoding: try JSONEncoder().encode(job), as: UTF8.self)
        XCTAssertEqual(try JobFile.parse(encoded, file: "encoded"), job, "an encoded job reads back with its conditions")

        let head = "id: j\ntasks:\n  - { id: mesh, commandLine: x, array: 1-2 }\n"
        let single = error(head + "  - { id: s, commandLine: x, dependsOn: [{ task: mesh, condition: aftercorr }] }\n")
        XCTAssertEqual(single?.field, "tasks[1]")
        XCTAssertTrue(single?.message.contains("task s is not an array") == true, single?.message ?? "")
        let partnerless = error(head + "  - { id: s, commandLine: x, array: 1-3, dependsOn: [{ task: mesh, condition: aftercorr }] }\n")
        XCTAssertTrue(partnerless?.message.contains("element 3 of s has no partner, since array mesh has no element 3") == true, partnerless?.message ?? "")
        let unknown = error(head + "  - { id: s, commandLine: x, dependsOn: [{ task: mesh, condition: afterwards }] }\n")
        XCTAssertEqual(unknown?.field, "tasks[1].dependsOn[0].condition")
        XCTAssertEqual(error(head + "  - { id: s, commandLine: x, dependsOn: [{ condition: afterany }] }\n")?.field, "tasks[1].dependsOn[0]")
        XCTAssertEqual(error("id: j\ndependsOn: [{ job: mesh, condition: aftercorr }]\ntasks:\n  - { id: a, commandLine: x }\n")?.field, "dependsOn[0].condition")
        XCTAssertNil(JobDependency.parse("mesh:corr"), "cohort submit --after takes no aftercorr")
    }

    /// Ranks in all, as Slurm's -n beside -N: spread as evenly as can be, the first nodes one
    /// more, each node given the most any holds; a count that leaves a node without a rank is refused.
    func testRanksInAllSpreadAsSlurmSpreadsThem() throws {
        XCTAssertEqual(MultiInstance.spread(ranks: 4, nodes: 3)?.perNode, [2, 1, 1])
        XCTAssertEqual(MultiInstance.spread(ranks: 5, nodes: 2)?.perNode, [3, 2])
        XCTAssertEqual(MultiInstance.spread(ranks: 6, nodes: 3)?.perNode, [2, 2, 2])
        XCTAssertNil(MultiInstance.spread(ranks: 2, nodes: 3))
        let job = try JobFile.parse("id: j\ntasks:\n  - id: cfd\n    commandLine: ./solver\n    multiInstance: { instances: 3, ranks: 4 }\n", file: "j.yaml")
        let multi = try XCTUnwrap(job.tasks[0].multiInstance)
        XCTAssertEqual(multi.processesPerNode, 2)
        XCTAssertEqual(multi.ranks, 4)
        XCTAssertEqual((0..<4).map(multi.node(ofRank:)), [0, 0, 1, 2], "ranks numbered node by node")
        let even = try JobFile.parse("id: j\ntasks:\n  - id: cfd\n    commandLine: x\n    multiInstance: { instances: 2, ranks: 4 }\n", file: "j.yaml")
        XCTAssertNil(even.tasks[0].multiInstance?.totalRanks, "an even count is the plain shape")
        XCTAssertEqual(even.tasks[0].multiInstance?.processesPerNode, 2)
        XCTAssertEqual(error("id: j\ntasks:\n  - id: c\n    commandLine: x\n    multiInstance: { instances: 3, ranks: 2 }\n")?.field, "tasks[0].multiInstance.ranks")
        XCTAssertEqual(error("id: j\ntasks:\n  - id: c\n    commandLine: x\n    multiInstance: { instances: 2, processesPerNode: 4, ranks: 5 }\n")?.field, "tasks[0].multiInstance.ranks")
    }
}
