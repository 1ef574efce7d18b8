import Foundation
import XCTest
@testable import Launcher

/// The `cohort` command itself: exit codes, errors that say where, output formats.
final class CommandLineTests: XCTestCase {
    func testQuickRunAndJSONOutput() throws {
        let home = Harness.temporaryDirectory()
        let result = try Harness.cohort(["run", "--output", "json", "-N", "2", "-n", "4", "--transport", "shm", "--", Harness.executable("hello")], home: home)
        XCTAssertEqual(result.exitCode, 0, result.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let tasks = try XCTUnwrap(object?["tasks"] as? [[String: Any]])
        let attempt = try XCTUnwrap((tasks[0]["attempts"] as? [[String: Any]])?.first)
        XCTAssertEqual(attempt["nodes"] as? [String], ["local-0", "local-1"])
        XCTAssertEqual(attempt["exitCode"] as? Int, 0)
        let stdout = Harness.read("\(attempt["directory"] as! String)/stdout.txt")
        XCTAssertEqual(stdout.split(separator: "\n").filter { $0.hasPrefix("hello from rank") }.count, 4)
    }

    /// `cohort run -N 2 -n 4 -- ./solver input.dat` finds input.dat where it was run (it
    /// once failed: ranks started in their attempt's node directories); --chdir chooses.
    func testAQuickRunStartsWhereItIsRunOrWhereChdirSays() throws {
        let home = Harness.temporaryDirectory()
        let project = Harness.temporaryDirectory()
        try "#!/bin/sh\nprintf '%s %s\\n' \"$OMPI_COMM_WORLD_RANK\" \"$(cat \"$1\")\"\n".write(toFile: "\(project)/solver", atomically: true, encoding: .utf8)
        chmod("\(project)/solver", 0o755)
        try "mesh".write(toFile: "\(project)/input.dat", atomically: true, encoding: .utf8)
        func ranks(_ result: Harness.CLIResult) throws -> [String] {
            XCTAssertEqual(result.exitCode, 0, result.stderr + result.stdout)
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            let tasks = try XCTUnwrap(object?["tasks"] as? [[String: Any]])
            let attempt = try XCTUnwrap((tasks[0]["attempts"] as? [[String: Any]])?.first)
            return Harness.read("\(attempt["directory"] as! String)/stdout.txt").split(separator: "\n").map(String.init).sorted()
        }
        let here = try Harness.cohort(["run", "--output", "json", "-N", "2", "-n", "4", "--transport", "shm", "--", "./solver", "input.dat"], home: home, directory: project)
        XCTAssertEqual(try ranks(here), ["0 mesh", "1 mesh", "2 mesh", "3 mesh"])
        let elsewhere = Harness.temporaryDirectory()
        let chosen = try Harness.cohort(["run", "--output", "json", "--chdir", project, "--", "\(project)/solver", "input.dat"], home: home, directory: elsewhere)
        XCTAssertEqual(try ranks(chosen), [" mesh"])
        let missing = try Harness.cohort(["run", "--chdir", "/no/such/dir", "--", "true"], home: home)
        XCTAssertEqual(missing.exitCode, 2)
        XCTAssertTrue(missing.stderr.contains("--chdir") && missing.stderr.contains("/no/such/dir is not a directory"), missing.stderr)
    }

    /// --time reads as Slurm's (`2` is two minutes, `1:30:00`, `2-00:00:00`); quick-run flags
    /// beside a job file are refused by name (they were ignored, and `--replicas 2 job.yaml`
    /// ran the YAML file as a program).
    func testTimeIsReadAsSlurmsAndQuickFlagsBesideAJobFileAreRefused() throws {
        XCTAssertEqual(Durations.slurm("2"), 120)
        XCTAssertEqual(Durations.slurm("1:30"), 90)
        XCTAssertEqual(Durations.slurm("1:30:00"), 5400)
        XCTAssertEqual(Durations.slurm("2-00:00:00"), 172_800)
        XCTAssertEqual(Durations.slurm("1-12"), 129_600)
        XCTAssertEqual(Durations.slurm("1-0:30"), 88_200)
        XCTAssertEqual(Durations.slurm("90s"), 90)
        XCTAssertEqual(Durations.slurm("PT1H"), 3600)
        for bad in ["1:2:3:4", "x", "1-", ":5", "1--2"] { XCTAssertNil(Durations.slurm(bad), bad) }
        let home = Harness.temporaryDirectory()
        let limited = try Harness.cohort(["run", "--output", "json", "--time", "0:01", "--", "sleep", "30"], home: home)
        XCTAssertEqual(limited.exitCode, 1, limited.stderr)
        XCTAssertTrue(limited.stdout.contains("maxWallClockTime of 1s ran out") || limited.stdout.contains("timeout"), limited.stdout)
        let job = "\(home)/job.yaml"
        try "id: j\ntasks:\n  - { id: a, commandLine: 'true' }\n".write(toFile: job, atomically: true, encoding: .utf8)
        // --signal, as Slurm's: the warning needs a limit to come before, and a catchable signal.
        for (flags, says) in [(["--signal", "USR1@30"], "give --time too"), (["--time", "1", "--signal", "KILL@10"], "expected SIG[@SECONDS]"),
                              (["--time", "0:30", "--signal", "USR1@30"], "30 s early is not within --time (30 s)")] {
            let refused = try Harness.cohort(["run"] + flags + ["--", "true"], home: home)
            XCTAssertEqual(refused.exitCode, 2, flags.joined(separator: " "))
            XCTAssertTrue(refused.stderr.contains("--signal") && refused.stderr.contains(says), refused.stderr)
        }
        let warned = try Harness.cohort(["run", "--time", "0:30", "--signal", "USR2@28", "--", "sh", "-c", "trap 'echo warned; exit 0' USR2; while :; do sleep 0.1; done"], home: home)
        XCTAssertEqual(warned.exitCode, 0, warned.stderr)
        XCTAssertTrue(warned.stdout.contains("warned"), warned.stdout)
        for (flags, name) in [(["--replicas", "2"], "--replicas"), (["--time", "5"], "--time"), (["-N", "2"], "-N"), (["--retries", "1"], "--retries"),
                              (["--signal", "USR1"], "--signal")] {
            let refused = try Harness.cohort(["run"] + flags + [job], home: home)
            XCTAssertEqual(refused.exitCode, 2, flags.joined(separator: " "))
            XCTAssertTrue(refused.stderr.contains("\(name) is for quick runs"), refused.stderr)
        }
        XCTAssertEqual(try Harness.cohort(["run", job], home: home).exitCode, 0)
    }

    /// docs/man/cohort.1 (scripts/man.sh) keeps up with the command: every subcommand
    /// `cohort --help` lists, and every option of `cohort run`, is in the page.
    func testTheManPageHasEveryCommandAndEveryOptionOfRun() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let page = Harness.read(root.appendingPathComponent("docs/man/cohort.1").path)
        XCTAssertTrue(page.contains(".Dt COHORT 1"), "docs/man/cohort.1 is a man page: run scripts/man.sh")
        let home = Harness.temporaryDirectory()
        let help = try Harness.cohort(["--help"], home: home).stdout
        let commands = help.components(separatedBy: "SUBCOMMANDS:").last?.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let word = line.split(separator: " ").first, word.allSatisfy(\.isLowercase) else { return nil }
            return String(word)
        } ?? []
        XCTAssertGreaterThan(commands.count, 15, help)
        for command in commands { XCTAssertTrue(page.contains(".It Em \(command)\n"), "\(command) is not in docs/man/cohort.1: run scripts/man.sh") }
        let runHelp = try Harness.cohort(["run", "--help"], home: home).stdout
        let options = runHelp.split(separator: "\n").compactMap { line -> String? in
            line.range(of: #"^\s+(-[a-zA-Z], )?--[a-z-]+"#, options: .regularExpression).map { String(line[$0].components(separatedBy: "--").last!) }
        }
        XCTAssertGreaterThan(options.count, 15, runHelp)
        for option in options where option != "version" && option != "help" {
            XCTAssertTrue(page.contains("Fl -\(option)") || page.contains(", -\(option) "), "--\(option) of cohort run is not in docs/man/cohort.1: run scripts/man.sh")
        }
    }

    /// One JSON style (ISO 8601 times: `job list` wrote seconds since 2001; no `\/`),
    /// aligned tables, "1 slot", --version, and --help naming the environment and exit codes.
    func testOutputIsConsistentAndSelfDescribing() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["run", "--", "true"], home: home).exitCode, 0)
        let jobs = try Harness.cohort(["job", "list", "--output", "json"], home: home).stdout
        XCTAssertNotNil(jobs.range(of: #""submitted" : "20\d\d-\d\d-\d\dT"#, options: .regularExpression), jobs)
        XCTAssertFalse(jobs.contains("\\/"), jobs)
        let added = try Harness.cohort(["pool", "add", "tiny", "--hosts", "n1", "--slots", "1"], home: home)
        XCTAssertEqual(added.stdout, "pool tiny: 1 node, 1 slot\n", added.stderr)
        XCTAssertEqual(try Harness.cohort(["pool", "add", "wide-pool-name", "--hosts", "n[1-12]", "--slots", "2"], home: home).exitCode, 0)
        let lines = try Harness.cohort(["pool", "list"], home: home).stdout.split(separator: "\n").map(String.init)
        let kindColumn = try XCTUnwrap(lines.first?.range(of: "KIND")?.lowerBound.utf16Offset(in: lines[0]))
        for line in lines.dropFirst() {
            let at = line.index(line.startIndex, offsetBy: kindColumn)
            XCTAssertTrue(line[at] != " " && line[line.index(before: at)] == " ", "the KIND column starts at \(kindColumn) in every row: \(lines)")
        }
        let version = try Harness.cohort(["--version"], home: home)
        XCTAssertTrue(version.stdout.hasPrefix("cohort 0.5 (build "), version.stdout)
        let help = try Harness.cohort(["--help"], home: home).stdout
        for word in ["COHORT_HOME", "COHORT_SERVER", "COHORT_TOKEN", "64 a command-line usage error", "130 cancelled"] {
            XCTAssertTrue(help.contains(word), "--help names \(word)")
        }
    }

    func testTableSummaryAndExitCodeOfAFailure() throws {
        let home = Harness.temporaryDirectory()
        let result = try Harness.cohort(["run", "--", "/bin/sh", "-c", "exit 5"], home: home)
        XCTAssertEqual(result.exitCode, 1)
        XCTAssertTrue(result.stdout.contains("failure"), result.stdout)
        XCTAssertTrue(result.stdout.contains("exited with code 5"), result.stdout)
        XCTAssertTrue(result.stdout.contains("0 succeeded, 1 failed"), result.stdout)
    }

    func testBadJobFilesExitWith2AndSayWhere() throws {
        let home = Harness.temporaryDirectory()
        let file = home + "/bad.yaml"
        try "id: j\ntasks:\n  - id: a\n    commandLine: /bin/true\n    multiInstance: { instances: many }\n".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try Harness.cohort(["run", file], home: home)
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertTrue(result.stderr.contains("\(file):5:"), result.stderr)
        XCTAssertTrue(result.stderr.contains("tasks[0].multiInstance.instances"), result.stderr)
        XCTAssertEqual(try Harness.cohort(["run", home + "/absent.yaml"], home: home).exitCode, 2)
    }

    func testUnknownPoolAndImpossibleTasksExitWith2() throws {
        let home = Harness.temporaryDirectory()
        let unknown = try Harness.cohort(["run", "--pool", "nowhere", "--", "/bin/true"], home: home)
        XCTAssertEqual(unknown.exitCode, 2)
        XCTAssertTrue(unknown.stderr.contains("unknown pool 'nowhere'"), unknown.stderr)
        let impossible = try Harness.cohort(["run", "-N", "9", "-n", "9", "--", "/bin/true"], home: home)
        XCTAssertEqual(impossible.exitCode, 2)
        XCTAssertTrue(impossible.stderr.contains("can never run"), impossible.stderr)
        // Fewer ranks than nodes leaves a node with none (-N 2 -n 3 is Slurm's 2 and 1: it runs).
        let short = try Harness.cohort(["run", "-N", "3", "-n", "2", "--", "/bin/true"], home: home)
        XCTAssertEqual(short.exitCode, 2)
        XCTAssertTrue(short.stderr.contains("-n: 2 ranks cannot give each of 3 nodes one"), short.stderr)
    }

    func testPoolsAreAddedListedShownAndRemoved() throws {
        let home = Harness.temporaryDirectory()
        let hostfile = home + "/hosts"
        try "# two nodes\nnode1 slots=4\nalice@node2 slots=2\n".write(toFile: hostfile, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Harness.cohort(["pool", "add", "cluster", "--hostfile", hostfile, "--price", "1.5"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["pool", "add", "slurmish", "--hosts", "n[01-04]", "--slots", "2(x3),8"], home: home).exitCode, 0)
        let list = try Harness.cohort(["pool", "list"], home: home)
        for row in [#"cluster\s+static\s+2\s+6"#, #"local\s+local"#, #"slurmish\s+static\s+4\s+14"#] {
            XCTAssertNotNil(list.stdout.range(of: row, options: .regularExpression), list.stdout)
        }
        let show = try Harness.cohort(["pool", "show", "cluster"], home: home)
        XCTAssertNotNil(show.stdout.range(of: #"node2\s+alice@node2\s+2\s+idle"#, options: .regularExpression), show.stdout)
        XCTAssertEqual(try Harness.cohort(["pool", "remove", "cluster"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["pool", "show", "cluster"], home: home).exitCode, 2)
        XCTAssertEqual(try Harness.cohort(["pool", "remove", "local"], home: home).exitCode, 2)
    }

    /// GPUs and memory from the command line, as Slurm users write them: the pool's inventory
    /// (`pool add --gpus-per-node --memory-per-node`), a quick run's `--gpus-per-task` (each
    /// rank its own device) and `--mem`; a request no node meets, or two GPU flags, exit 2.
    func testGPUsAndMemoryFromTheCommandLine() throws {
        let home = Harness.temporaryDirectory()
        let added = try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "2", "--gpus-per-node", "2", "--memory-per-node", "8G"], home: home)
        XCTAssertEqual(added.exitCode, 0, added.stderr)
        let show = try Harness.cohort(["pool", "show", "local"], home: home).stdout
        XCTAssertNotNil(show.range(of: #"NODE\s+ADDRESS\s+SLOTS\s+GPUS\s+MEMORY\s+STATE"#, options: .regularExpression), show)
        XCTAssertNotNil(show.range(of: #"local-1\s+localhost\s+2\s+2,3\s+8192M\s+idle"#, options: .regularExpression), show)
        let run = try Harness.cohort(["run", "-N", "2", "-n", "4", "--gpus-per-task", "1", "--mem", "1G", "--",
                                      "/bin/sh", "-c", "echo rank $OMPI_COMM_WORLD_RANK sees $CUDA_VISIBLE_DEVICES"], home: home)
        XCTAssertEqual(run.exitCode, 0, run.stderr)
        for rank in 0..<4 { XCTAssertTrue(run.stdout.contains("rank \(rank) sees \(rank)\n"), run.stdout) }
        let list = try Harness.cohort(["job", "list"], home: home).stdout
        let job = try XCTUnwrap(list.range(of: #"run-\d+"#, options: .regularExpression).map { String(list[$0]) }, list)
        let shown = try Harness.cohort(["task", "show", job, "sh"], home: home).stdout
        XCTAssertTrue(shown.contains("  gpus: local-0=0,1 local-1=2,3\n"), shown)
        let both = try Harness.cohort(["run", "--gpus-per-node", "1", "--gpus-per-task", "1", "--", "true"], home: home)
        XCTAssertEqual(both.exitCode, 2)
        XCTAssertTrue(both.stderr.contains("--gpus-per-task") && both.stderr.contains("not both"), both.stderr)
        let size = try Harness.cohort(["run", "--mem", "lots", "--", "true"], home: home)
        XCTAssertEqual(size.exitCode, 2)
        XCTAssertTrue(size.stderr.contains("--mem") && size.stderr.contains("'lots'"), size.stderr)
        let greedy = try Harness.cohort(["run", "--gpus-per-node", "3", "--", "true"], home: home)
        XCTAssertEqual(greedy.exitCode, 2)
        XCTAssertTrue(greedy.stderr.contains("needs 3 GPUs per node but the most a node has is 2"), greedy.stderr)
        let badPool = try Harness.cohort(["pool", "add", "local", "--memory-per-node", "8Q"], home: home)
        XCTAssertEqual(badPool.exitCode, 2)
        XCTAssertTrue(badPool.stderr.contains("--memory-per-node"), badPool.stderr)
    }

    /// Issue 9, bug 4: redefining a pool (here only its price) kept no node state: a drained
    /// node was silently undrained.
    func testRedefiningAPoolKeepsItsNodesStates() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "cluster", "--hosts", "n[1-3]"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["node", "drain", "--pool", "cluster", "n2", "--reason", "bad DIMM"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["pool", "add", "cluster", "--hosts", "n[1-4]", "--price", "3"], home: home).exitCode, 0)
        let show = try Harness.cohort(["pool", "show", "cluster"], home: home).stdout
        XCTAssertNotNil(show.range(of: #"n2\s+n2\s+1\s+offline \(bad DIMM\)"#, options: .regularExpression), show)
        XCTAssertNotNil(show.range(of: #"n4\s+n4\s+1\s+idle"#, options: .regularExpression), "a new node starts idle: \(show)")
    }

    /// Issue 9, bug 7: `cohort run --pool X` recorded the job file's pool, not X.
    func testARunIsRecordedOnThePoolItRanOn() throws {
        let home = Harness.temporaryDirectory()
        try "id: elsewhere\npool: somewhere-else\ntasks:\n  - id: a\n    commandLine: 'true'\n".write(toFile: "\(home)/job.yaml", atomically: true, encoding: .utf8)
        XCTAssertEqual(try Harness.cohort(["run", "--pool", "local", "\(home)/job.yaml"], home: home).exitCode, 0)
        let list = try Harness.cohort(["job", "list"], home: home).stdout
        XCTAssertTrue(list.contains("elsewhere  local  completed"), list)
    }

    func testHostileHostNamesNeverReachAShell() throws {
        let home = Harness.temporaryDirectory()
        let pwned = "/tmp/pwned-\(UUID().uuidString)"
        let viaHosts = try Harness.cohort(["pool", "add", "evil", "--hosts", "a;touch \(pwned)"], home: home)
        XCTAssertEqual(viaHosts.exitCode, 2)
        XCTAssertTrue(viaHosts.stderr.contains("--hosts:1:"), viaHosts.stderr)
        let hostfile = home + "/evil-hosts"
        try "good slots=1\n$(touch \(pwned)) slots=1\n".write(toFile: hostfile, atomically: true, encoding: .utf8)
        let viaFile = try Harness.cohort(["pool", "add", "evil", "--hostfile", hostfile], home: home)
        XCTAssertEqual(viaFile.exitCode, 2)
        XCTAssertTrue(viaFile.stderr.contains("\(hostfile):2:1:"), viaFile.stderr)
        // Arguments with shell syntax are passed to the program as plain words.
        let echo = try Harness.cohort(["run", "--output", "json", "--", "/bin/echo", "a;touch \(pwned)", "$(touch \(pwned))"], home: home)
        XCTAssertEqual(echo.exitCode, 0, echo.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned), "a shell ran a user-supplied string")
        XCTAssertEqual(try Harness.cohort(["pool", "list"], home: home).stdout.contains("evil"), false, "nothing stored")
    }

    func testHostfileExpandAndConvert() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["hostfile", "expand", "n[08-10]"], home: home).stdout, "n08\nn09\nn10\n")
        let file = home + "/machines"
        try "n1:4\nn2:4\nn3:2\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Harness.cohort(["hostfile", "convert", file, "--to", "openmpi"], home: home).stdout, "n1 slots=4\nn2 slots=4\nn3 slots=2\n")
        XCTAssertEqual(try Harness.cohort(["hostfile", "convert", file, "--to", "slurm"], home: home).stdout, "n[1-3]\n")
        let bad = try Harness.cohort(["hostfile", "expand", "n[3-1]"], home: home)
        XCTAssertEqual(bad.exitCode, 2)
        XCTAssertTrue(bad.stderr.contains("backwards"), bad.stderr)
    }

    func testTheDemoJobFileParses() throws {
        // The README's main command runs this file; keep it valid.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let job = try JobFile.load(path: root.appendingPathComponent("jobs/demo.yaml").path)
        XCTAssertEqual(job.tasks.filter { $0.multiInstance == nil }.map(\.id), (1...20).map { "pi[\($0)]" }, "an array of 20")
        XCTAssertEqual(job.tasks[6].commandLine.suffix(2), ["--seed", "7"])
        XCTAssertEqual(job.tasks.first { $0.id == "ring" }?.multiInstance?.replicas, 2)
    }
}

final class CancellationTests: XCTestCase {
    func testCtrlCEndsEveryProcessOfTheRun() throws {
        let home = Harness.temporaryDirectory()
        let file = home + "/long.yaml"
        try """
            id: cancel-me
            tasks:
              - { id: a, commandLine: sleep 60 }
              - { id: b, commandLine: /bin/sh -c 'sleep 60 & sleep 60; wait' }
              - id: mpi
                commandLine: sleep 60
                multiInstance: { instances: 2, processesPerNode: 1, transport: shm }
              - { id: later, commandLine: sleep 60, dependsOn: [a] }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Harness.executable("cohort"))
        process.arguments = ["run", file]
        process.environment = ProcessInfo.processInfo.environment.merging(["COHORT_HOME": home]) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until the tasks run: 1 + 3 + 2 ranks carry the job's id.
        let deadline = Date() + 30
        while ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "cancel-me").count < 5, Date() < deadline { usleep(100_000) }
        XCTAssertGreaterThanOrEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "cancel-me").count, 5)
        let interrupted = Date()
        kill(process.processIdentifier, SIGINT)
        let summary = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(interrupted), 15)
        XCTAssertEqual(process.terminationStatus, 130, summary)
        XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "cancel-me"), [], "processes left after Ctrl-C")
        XCTAssertTrue(summary.contains("cancelled"), summary)
        XCTAssertTrue(summary.contains("later"), summary)
    }
}

final class StoredJobTests: XCTestCase {
    func testRunsAreStoredAndReadBackWithLogsAndUsage() throws {
        let home = Harness.temporaryDirectory()
        let file = home + "/job.yaml"
        try """
            id: kept
            tasks:
              - { id: hello, commandLine: /bin/sh -c 'echo hi from $AZ_BATCH_TASK_ID; echo oops >&2' }
              - { id: flaky, commandLine: /bin/sh -c 'exit 4', constraints: { maxTaskRetryCount: 1 } }
              - id: pair
                commandLine: /bin/sh -c 'sleep 0.2'
                multiInstance: { instances: 2, processesPerNode: 2, transport: shm }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Harness.cohort(["run", "--quiet", file], home: home).exitCode, 1)
        XCTAssertEqual(try Harness.cohort(["run", "--quiet", file], home: home).exitCode, 1)
        let list = try Harness.cohort(["job", "list"], home: home)
        XCTAssertTrue(list.stdout.contains("kept    local  completed  3      2          1"), list.stdout)
        XCTAssertTrue(list.stdout.contains("kept-2"), "the second run got its own id: \(list.stdout)")
        let show = try Harness.cohort(["job", "show", "kept"], home: home)
        XCTAssertTrue(show.stdout.contains("flaky  failure  1"), show.stdout)
        XCTAssertTrue(show.stdout.contains("flaky  failure  2"), "every attempt is kept: \(show.stdout)")
        XCTAssertEqual(try Harness.cohort(["logs", "kept", "hello"], home: home).stdout, "hi from hello\n")
        XCTAssertEqual(try Harness.cohort(["logs", "kept-2", "hello", "--stderr"], home: home).stdout, "oops\n")
        XCTAssertEqual(try Harness.cohort(["logs", "kept", "flaky", "--attempt", "3"], home: home).exitCode, 2)
        XCTAssertEqual(try Harness.cohort(["logs", "kept", "../../etc/passwd"], home: home).exitCode, 2, "only a task of the job")
        XCTAssertEqual(try Harness.cohort(["logs", "kept", "pair", "--node", "../../.."], home: home).exitCode, 2, "only a node of the group")
        let usage = try Harness.cohort(["usage", "--by", "job", "--output", "json"], home: home)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(usage.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["key"] as? String }, ["kept", "kept-2"])
        XCTAssertEqual(rows[0]["attempts"] as? Int, 4, "hello, flaky twice, pair")
        let pair = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try Harness.cohort(["usage", "--by", "task", "--output", "json"], home: home).stdout.utf8)) as? [[String: Any]])
            .first { $0["key"] as? String == "kept/pair" }
        let nodeSeconds = try XCTUnwrap(pair?["nodeSeconds"] as? Double), coreSeconds = try XCTUnwrap(pair?["coreSeconds"] as? Double)
        XCTAssertEqual(coreSeconds, nodeSeconds * 2, accuracy: 1e-6, "2 ranks per node")
        XCTAssertGreaterThan(nodeSeconds, 0.4, "2 nodes × at least 0.2 s")
        XCTAssertEqual(try Harness.cohort(["job", "delete", "kept"], home: home).exitCode, 0)
        XCTAssertFalse(try Harness.cohort(["job", "list"], home: home).stdout.contains("kept  "))
        XCTAssertEqual(try Harness.cohort(["job", "show", "kept"], home: home).exitCode, 2)
    }
}

final class WaitAndCancelTests: XCTestCase {
    /// Starts `cohort run FILE` in the background with a private state directory.
    func start(_ file: String, home: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Harness.executable("cohort"))
        process.arguments = ["run", "--quiet", file]
        process.environment = ProcessInfo.processInfo.environment.merging(["COHORT_HOME": home]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: "\(home)/runner-stderr.txt", contents: nil)
        process.standardError = FileHandle(forWritingAtPath: "\(home)/runner-stderr.txt")
        try process.run()
        return process
    }

    func waitUntilStored(_ job: String, home: String) throws {
        let deadline = Date() + 30
        while Date() < deadline {
            if try Harness.cohort(["job", "list"], home: home).stdout.contains("\(job)  ") { return }
            usleep(100_000)
        }
        XCTFail("job \(job) never appeared in the store; the runner said: \(Harness.read("\(home)/runner-stderr.txt"))")
    }

    func testWaitFollowsARunInAnotherProcess() throws {
        let home = Harness.temporaryDirectory()
        let file = home + "/job.yaml"
        try "id: waited\ntasks:\n  - { id: a, commandLine: sleep 1 }\n  - { id: b, commandLine: /bin/sh -c 'sleep 1; exit 2' }\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let runner = try start(file, home: home)
        try waitUntilStored("waited", home: home)
        let wait = try Harness.cohort(["wait", "waited"], home: home)
        XCTAssertEqual(wait.exitCode, 1, "a task failed: \(wait.stdout) \(wait.stderr)")
        XCTAssertEqual(wait.stdout, "job waited: 1 succeeded, 1 failed\n")
        runner.waitUntilExit()
        XCTAssertEqual(try Harness.cohort(["wait", "nothing-like-it"], home: home).exitCode, 2)
    }

    func testCancelEndsARunningJobEverywhereAndRecordsIt() throws {
        let home = Harness.temporaryDirectory()
        let file = home + "/job.yaml"
        try "id: stopme\ntasks:\n  - { id: long, commandLine: sleep 120 }\n  - id: mpi\n    commandLine: sleep 120\n    multiInstance: { instances: 2, transport: shm }\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let runner = try start(file, home: home)
        try waitUntilStored("stopme", home: home)
        let deadline = Date() + 30
        while ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "stopme").count < 3, Date() < deadline { usleep(100_000) }
        let cancel = try Harness.cohort(["job", "cancel", "stopme"], home: home)
        XCTAssertEqual(cancel.exitCode, 0, cancel.stderr)
        runner.waitUntilExit()
        XCTAssertEqual(runner.terminationStatus, 130)
        XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "stopme"), [])
        let show = try Harness.cohort(["job", "show", "stopme"], home: home)
        XCTAssertTrue(show.stdout.contains("cancelled"), show.stdout)
        XCTAssertEqual(try Harness.cohort(["job", "cancel", "stopme"], home: home).exitCode, 2, "not running any more")
    }
}

final class ServeTests: XCTestCase {
    func write(_ text: String, _ name: String, in home: String) throws -> String {
        let path = "\(home)/\(name).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func starts(_ job: String, home: String) throws -> [(Double, Double)] {
        let show = try Harness.cohort(["job", "show", job, "--output", "json"], home: home)
        let tasks = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [[String: Any]], show.stderr)
        // ISO 8601 with milliseconds, as every --output json writes times.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func seconds(_ value: Any?) -> Double { (value as? String).flatMap { formatter.date(from: $0) }?.timeIntervalSince1970 ?? .nan }
        return tasks.flatMap { ($0["attempts"] as? [[String: Any]] ?? []).map { (seconds($0["start"]), seconds($0["end"])) } }
    }

    /// `cohort submit` hands the job the submitter's environment, as sbatch does
    /// (`--export=ALL` by default; NONE; names; NAME=VALUE), under the job file's own
    /// variables, and never the submitting shell's directory or Cohort's own settings.
    func testSubmitExportsTheSubmittersEnvironmentAsSbatchDoes() throws {
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        defer { _ = server.stop() }
        let shell = home + "/env.yaml"
        func job(_ id: String, fileVariable: Bool = false) throws -> String {
            let environment = fileVariable ? "environment: { SECOND_PROBE: from-file }\n" : ""
            let text = "id: \(id)\n\(environment)tasks:\n  - { id: show, commandLine: \"sh -c 'echo first=$FIRST_PROBE second=$SECOND_PROBE extra=$EXTRA_PROBE pwd=$PWD'\" }\n"
            try text.write(toFile: shell, atomically: true, encoding: .utf8)
            return shell
        }
        let submitter = ["FIRST_PROBE": "one", "SECOND_PROBE": "two", "COHORT_SECRET_PROBE": "no"]
        let cases: [(id: String, flags: [String], fileVariable: Bool, expected: String)] = [
            ("all", [], false, "first=one second=two extra="),
            ("file-wins", [], true, "first=one second=from-file extra="),
            ("none", ["--export=NONE"], false, "first= second= extra="),
            ("names", ["--export=FIRST_PROBE,EXTRA_PROBE=3"], false, "first=one second= extra=3"),
            ("all-plus", ["--export", "ALL,EXTRA_PROBE=x y"], false, "first=one second=two extra=x y"),
        ]
        for item in cases {
            let submitted = try Harness.cohort(["submit"] + item.flags + [try job(item.id, fileVariable: item.fileVariable)], home: home, environment: submitter)
            XCTAssertEqual(submitted.exitCode, 0, "\(item.id): \(submitted.stderr)")
            _ = try Harness.waitCompleted(item.id, home: home)
            let output = try Harness.cohort(["logs", item.id, "show"], home: home).stdout
            XCTAssertTrue(output.hasPrefix(item.expected + " pwd="), "\(item.id): \(output)")
            XCTAssertFalse(output.contains("pwd=\(FileManager.default.currentDirectoryPath) "), "the submitter's directory is not the task's")
        }
        let secret = try Harness.cohort(["submit", try job("secret")], home: home, environment: submitter)
        XCTAssertEqual(secret.exitCode, 0, secret.stderr)
        _ = try Harness.waitCompleted("secret", home: home)
        let stored = try JobStore(stateDirectory: home).spec(jobId: "secret").environment
        XCTAssertEqual(stored["FIRST_PROBE"], "one", "the exported variables are kept with the job")
        XCTAssertNil(stored["COHORT_SECRET_PROBE"], "Cohort's own variables stay with the submitter")
        XCTAssertNil(stored["PWD"])
        // `cohort run` handed to the server: its tasks see this environment, as when it runs alone.
        let run = try Harness.cohort(["run", "--", "sh", "-c", "echo first=$FIRST_PROBE"], home: home, environment: submitter)
        XCTAssertEqual(run.exitCode, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("a server runs for this state directory"), run.stderr)
        XCTAssertTrue(run.stdout.contains("first=one"), run.stdout)
        let bad = try Harness.cohort(["submit", "--export=FIRST-PROBE", shell], home: home)
        XCTAssertEqual(bad.exitCode, 2)
        XCTAssertTrue(bad.stderr.contains("--export: expected ALL, NONE or NAME"), bad.stderr)
    }

    func testServeRunsQueuedJobsByPriorityOnSharedSlotsAndStopsGracefully() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "1", "--slots", "1"], home: home).exitCode, 0)
        let low = try write("id: low\ntasks:\n  - { id: a, commandLine: sleep 0.3 }\n  - { id: b, commandLine: sleep 0.3 }\n", "low", in: home)
        let high = try write("id: high\npriority: 5\ntasks:\n  - { id: a, commandLine: sleep 0.3 }\n", "high", in: home)
        let late = try write("id: late\ntasks:\n  - { id: a, commandLine: /bin/sh -c 'exit 3' }\n", "late", in: home)
        let wide = try write("id: wide\ntasks:\n  - id: a\n    commandLine: 'true'\n    multiInstance: { instances: 2 }\n", "wide", in: home)
        XCTAssertEqual(try Harness.cohort(["submit", low], home: home).stdout, "low\n")
        XCTAssertEqual(try Harness.cohort(["submit", high], home: home).stdout, "high\n")
        let rejected = try Harness.cohort(["submit", wide], home: home)
        XCTAssertEqual(rejected.exitCode, 2, "a job that can never fit is refused at submission")
        XCTAssertTrue(rejected.stderr.contains("can never run"), rejected.stderr)

        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: Harness.executable("cohort"))
        serve.arguments = ["serve", "--listen", "127.0.0.1:0"]
        serve.environment = ProcessInfo.processInfo.environment.merging(["COHORT_HOME": home]) { $1 }
        let log = Pipe()
        serve.standardError = log
        serve.standardOutput = FileHandle.nullDevice
        try serve.run()
        XCTAssertEqual(try Harness.cohort(["wait", "high"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["submit", late], home: home).stdout, "late\n", "submitted while serving")
        XCTAssertEqual(try Harness.cohort(["wait", "low"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["wait", "late"], home: home).exitCode, 1, "its task failed")
        kill(serve.processIdentifier, SIGTERM)
        let text = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        serve.waitUntilExit()
        XCTAssertEqual(serve.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("stopped"), text)

        // One slot for all jobs: the high-priority job first, and never two tasks at once.
        let attempts = try starts("high", home: home) + starts("low", home: home) + starts("late", home: home)
        XCTAssertEqual(attempts.count, 4)
        XCTAssertLessThan(try starts("high", home: home)[0].0, try starts("low", home: home).map(\.0).min()!)
        let sorted = attempts.sorted { $0.0 < $1.0 }
        for (a, b) in zip(sorted, sorted.dropFirst()) { XCTAssertLessThanOrEqual(a.1, b.0 + 0.001, "two tasks shared the one slot") }
        XCTAssertEqual(try Harness.cohort(["logs", "late", "a"], home: home).exitCode, 0)
    }
}

/// Issue 9, bug 3: while tasks ran, `task list` said `active` with 0 attempts, `node list`
/// showed every node idle and `logs` said "has not run yet" although the task had printed.
final class RunningWorkTests: XCTestCase {
    func testRunningAttemptsAreVisibleToEveryReader() throws {
        let home = Harness.temporaryDirectory()
        let file = "\(home)/job.yaml"
        try """
            id: visible
            tasks:
              - id: solo
                commandLine: [sh, -c, 'echo partial; sleep 30']
              - id: mpi
                commandLine: [sh, -c, 'echo rank; sleep 30']
                multiInstance: { instances: 2, processesPerNode: 1 }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let runner = Process()
        runner.executableURL = URL(fileURLWithPath: Harness.executable("cohort"))
        runner.arguments = ["run", "--quiet", file]
        runner.environment = ProcessInfo.processInfo.environment.merging(["COHORT_HOME": home]) { $1 }
        runner.standardOutput = FileHandle.nullDevice
        runner.standardError = FileHandle.nullDevice
        try runner.run()
        defer { if runner.isRunning { kill(runner.processIdentifier, SIGINT) }; runner.waitUntilExit() }

        var ps = ""
        let deadline = Date() + 30
        while Date() < deadline {
            ps = try Harness.cohort(["ps"], home: home).stdout
            // (aligned columns: as many spaces as the widest cell takes)
            if ps.range(of: #"visible\s+solo\s+1\s+local"#, options: .regularExpression) != nil
                && ps.range(of: #"visible\s+mpi\s+1\s+local"#, options: .regularExpression) != nil { break }
            usleep(100_000)
        }
        XCTAssertNotNil(ps.range(of: #"visible\s+solo\s+1\s+local\s+local-"#, options: .regularExpression), ps)
        XCTAssertTrue(ps.contains("running"), ps)
        let tasks = try Harness.cohort(["task", "list", "visible"], home: home).stdout
        XCTAssertTrue(tasks.contains("solo  running"), tasks)
        XCTAssertTrue(tasks.contains("mpi   running") || tasks.contains("mpi  running"), tasks)
        var logs = ""
        while Date() < deadline, !logs.contains("partial") {
            logs = try Harness.cohort(["logs", "visible", "solo"], home: home).stdout
            usleep(100_000)
        }
        XCTAssertEqual(logs, "partial\n", "the output so far")
        let nodes = try Harness.cohort(["node", "list"], home: home).stdout
        XCTAssertTrue(nodes.contains("visible/mpi"), nodes)
        XCTAssertTrue(nodes.contains("visible/solo"), nodes)
        let json = try Harness.cohort(["ps", "--output", "json"], home: home).stdout
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        XCTAssertEqual((parsed.first { $0["taskId"] as? String == "mpi" }?["nodes"] as? [String])?.count, 2, json)

        // Ctrl-C: the run ends, and nothing is shown as running any more.
        kill(runner.processIdentifier, SIGINT)
        runner.waitUntilExit()
        XCTAssertEqual(try Harness.cohort(["ps"], home: home).stdout, "JOB  TASK  ATTEMPT  POOL  NODES  ELAPSED  STATE\n")
        XCTAssertFalse(try Harness.cohort(["task", "list", "visible"], home: home).stdout.contains("running"))
    }

    func testTheServiceShowsRunningAttemptsThroughTheAPI() throws {
        let server = try ServerProcess(home: Harness.temporaryDirectory())
        try server.waitUntilListening()
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: busy\ntasks:\n  - id: a\n    commandLine: [sleep, '30']\n").status, 201)
        var attempts: [[String: Any]] = []
        let deadline = Date() + 30
        while Date() < deadline {
            let tasks = server.request("GET", "/v1/jobs/busy/tasks").json as? [[String: Any]] ?? []
            attempts = tasks.first?["attempts"] as? [[String: Any]] ?? []
            if !attempts.isEmpty { XCTAssertEqual(tasks.first?["state"] as? String, "running"); break }
            usleep(100_000)
        }
        XCTAssertEqual(attempts.count, 1, "the running attempt is shown")
        XCTAssertNil(attempts.first?["end"], "and has not ended")
        XCTAssertEqual((attempts.first?["nodes"] as? [String])?.count, 1)
        XCTAssertEqual(server.request("POST", "/v1/jobs/busy/cancel").status, 202)
        XCTAssertEqual(server.stop(), 0, server.log)
    }
}

/// `cohort run --array` and job-file arrays and sweeps, end to end on the local pool.
final class TaskArrayRunTests: XCTestCase {
    func testAQuickRunArrayRunsEachIndexAtMostThrottleAtOnce() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "4"], home: home).exitCode, 0)
        let script = "echo $COHORT_ARRAY_INDEX {index} $COHORT_ARRAY_COUNT; date +%s.%N; sleep 0.4; date +%s.%N"
        let result = try Harness.cohort(["run", "--array", "1-8%3", "--output", "json", "--", "/bin/sh", "-c", script], home: home)
        XCTAssertEqual(result.exitCode, 0, result.stderr + result.stdout)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let jobId = try XCTUnwrap(object?["jobId"] as? String)
        let tasks = try JobStore(stateDirectory: home).tasks(jobId: jobId)
        XCTAssertEqual(tasks.map(\.taskId), (1...8).map { "sh[\($0)]" })
        var spans: [(Double, Double)] = []
        for (offset, task) in tasks.enumerated() {
            let attempt = try XCTUnwrap(task.attempts.last)
            let lines = Harness.read("\(attempt.directory)/stdout.txt").split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.first, "\(offset + 1) \(offset + 1) 8", "the index in the command line and in COHORT_ARRAY_INDEX")
            if lines.count == 3, let start = Double(lines[1]), let end = Double(lines[2]) { spans.append((start, end)) }
        }
        XCTAssertEqual(spans.count, 8)
        let most = spans.map { span in spans.filter { $0.0 <= span.0 && $0.1 > span.0 }.count }.max()
        XCTAssertEqual(most, 3, "8 slots free; %3 ran three at a time")
        let logs = try Harness.cohort(["logs", jobId, "sh[5]"], home: home)
        XCTAssertEqual(logs.stdout.split(separator: "\n").first, "5 5 8", logs.stderr)
        let bad = try Harness.cohort(["run", "--array", "3-1", "--", "true"], home: home)
        XCTAssertEqual(bad.exitCode, 2)
        XCTAssertTrue(bad.stderr.contains("--array") && bad.stderr.contains("the range '3-1' ends before it starts"), bad.stderr)
        let beside = try Harness.cohort(["run", "--array", "1-2", "\(home)/job.yaml"], home: home, environment: [:])
        XCTAssertEqual(beside.exitCode, 2, beside.stderr)
    }

    /// A sweep submitted to the server: every combination runs with its parameters, and an
    /// element's output is read through the API by its id (`cfd%5B3%5D`).
    func testASweepThroughTheServerAndAnElementsLogsThroughTheAPI() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "2"], home: home).exitCode, 0)
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        defer { _ = server.stop() }
        let body = """
            id: study
            tasks:
              - id: cfd
                commandLine: [/bin/sh, -c, 'echo "{index} {mesh} {re} $mesh $re $COHORT_ARRAY_INDEX"']
                sweep: { mesh: [coarse, fine], re: [100, 1000] }
              - { id: report, commandLine: [/bin/sh, -c, 'echo all done'], dependsOn: [cfd] }
            """
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: body).status, 201)
        let summary = try Harness.waitCompleted("study", home: home, timeout: 60)
        XCTAssertEqual(summary.succeeded, 5, "\(summary)")
        let tasks = try JobStore(stateDirectory: home).tasks(jobId: "study")
        XCTAssertEqual(tasks.map(\.taskId), ["cfd[0]", "cfd[1]", "cfd[2]", "cfd[3]", "report"])
        let reportStart = try XCTUnwrap(tasks.last?.attempts.first?.start)
        XCTAssertTrue(tasks.prefix(4).allSatisfy { ($0.attempts.last?.end ?? .distantFuture) <= reportStart }, "report ran after every element")
        let answer = server.request("GET", "/v1/jobs/study/tasks/cfd%5B3%5D/logs")
        XCTAssertEqual(answer.status, 200, answer.text)
        XCTAssertEqual(answer.text, "3 fine 1000 fine 1000 3\n")
        let missing = server.request("GET", "/v1/jobs/study/tasks/cfd%5B9%5D/logs")
        XCTAssertEqual(missing.status, 404, missing.text)
        XCTAssertEqual(server.request("GET", "/v1/jobs/study/tasks/cfd%5Bx%5D/logs").status, 400)
    }
}

extension TaskArrayRunTests {
    /// The README's array example is a valid job file that means what the README says.
    func testTheReadmesArrayExampleParsesAsDescribed() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = Harness.read(root.appendingPathComponent("README.md").path)
        let marker = try XCTUnwrap(readme.range(of: "<!-- example: arrays"))
        let block = readme[marker.upperBound...]
        let start = try XCTUnwrap(block.range(of: "```yaml\n")), end = try XCTUnwrap(block.range(of: "\n```", range: start.upperBound..<block.endIndex))
        let job = try JobFile.parse(String(block[start.upperBound..<end.lowerBound]), file: "README.md")
        XCTAssertEqual(job.tasks.count, 200 + 6 + 1)
        XCTAssertEqual(job.tasks[199].id, "sample[200]")
        XCTAssertEqual(job.tasks[199].array?.throttle, 16)
        XCTAssertEqual(job.tasks[204].commandLine, ["./solver", "--mesh", "fine.msh", "--re", "1000", "--out", "run-4"])
        XCTAssertEqual(job.tasks[204].array?.throttle, 2)
        XCTAssertEqual(job.tasks[206].dependsOn.count, 206)
    }
}

/// `cohort run` shows what tasks write as they run (as srun does); `cohort logs --all`.
final class LiveOutputTests: XCTestCase {
    /// `--label`, as srun's: every line of an MPI run labelled with its rank (`2: …`), stdout
    /// and stderr alike, and with its task too when the job has several (replicas here).
    func testLabelPrefixesEachLineWithItsRank() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "2"], home: home).exitCode, 0)
        let script = "echo rank $OMPI_COMM_WORLD_RANK; echo oops $OMPI_COMM_WORLD_RANK >&2"
        let labelled = try Harness.cohort(["run", "--label", "-N", "2", "-n", "4", "--", "/bin/sh", "-c", script], home: home)
        XCTAssertEqual(labelled.exitCode, 0, labelled.stderr)
        for rank in 0..<4 {
            XCTAssertTrue(labelled.stdout.contains("\n\(rank): rank \(rank)\n") || labelled.stdout.hasPrefix("\(rank): rank \(rank)\n"), labelled.stdout)
            XCTAssertTrue(labelled.stderr.contains("\(rank): oops \(rank)\n"), labelled.stderr)
        }
        let twins = try Harness.cohort(["run", "--label", "--replicas", "2", "-N", "1", "-n", "2", "--", "/bin/sh", "-c", script], home: home)
        XCTAssertEqual(twins.exitCode, 0, twins.stderr)
        for replica in 0..<2 { for rank in 0..<2 { XCTAssertTrue(twins.stdout.contains("sh[\(replica)] \(rank): rank \(rank)\n"), twins.stdout) } }
        let plain = try Harness.cohort(["run", "-N", "2", "-n", "2", "--", "/bin/sh", "-c", script], home: home)
        XCTAssertTrue(plain.stdout.hasPrefix("rank ") && !plain.stdout.contains("<stdout>"), "no label unless asked: \(plain.stdout)")
        XCTAssertEqual(try JobFile.parse("id: j\ntasks:\n  - { id: t, commandLine: x, multiInstance: { instances: 2, labelRanks: true } }\n", file: "j.yaml")
                        .tasks[0].multiInstance?.labelRanks, true)
    }

    func testRunStreamsEachTasksLinesLabelledAndOnlyTheSummaryWhenQuiet() throws {
        let home = Harness.temporaryDirectory()
        let script = "echo out {index}; echo err {index} >&2; printf 'no newline {index}'"
        let streamed = try Harness.cohort(["run", "--array", "1-3", "--", "/bin/sh", "-c", script], home: home)
        XCTAssertEqual(streamed.exitCode, 0, streamed.stderr)
        let lines = streamed.stdout.split(separator: "\n").map(String.init)
        for index in 1...3 {
            XCTAssertTrue(lines.contains("sh[\(index)]: out \(index)"), streamed.stdout)
            XCTAssertTrue(lines.contains("sh[\(index)]: no newline \(index)"), "a last line without a newline is printed: \(streamed.stdout)")
            XCTAssertTrue(streamed.stderr.contains("sh[\(index)]: err \(index)\n"), streamed.stderr)
        }
        let table = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("TASK") })
        XCTAssertEqual(lines[..<table].count, 6, "what the tasks wrote comes before the summary: \(streamed.stdout)")
        let quiet = try Harness.cohort(["run", "--quiet", "--array", "1-3", "--", "/bin/sh", "-c", script], home: home)
        XCTAssertFalse(quiet.stdout.contains("out 1") || quiet.stderr.contains("err 1"), quiet.stdout + quiet.stderr)
        XCTAssertTrue(quiet.stdout.hasPrefix("TASK"), quiet.stdout)
        let json = try Harness.cohort(["run", "--output", "json", "--array", "1-3", "--", "/bin/sh", "-c", script], home: home)
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(json.stdout.utf8)), "JSON output stays JSON: \(json.stdout)")
        // One task: no label, as srun without -l.
        let one = try Harness.cohort(["run", "--", "/bin/sh", "-c", "echo hello"], home: home)
        XCTAssertTrue(one.stdout.hasPrefix("hello\nTASK"), one.stdout)
        // Every task's output at once, labelled, in the job's order.
        let jobs = try JobStore(stateDirectory: home).jobs()
        let first = try XCTUnwrap(jobs.first { $0.tasks == 3 }?.id)
        let all = try Harness.cohort(["logs", first, "--all"], home: home)
        XCTAssertEqual(all.stdout, "sh[1]: out 1\nsh[1]: no newline 1\nsh[2]: out 2\nsh[2]: no newline 2\nsh[3]: out 3\nsh[3]: no newline 3\n", all.stderr)
        XCTAssertEqual(try Harness.cohort(["logs", first, "--all", "--stderr"], home: home).stdout, "sh[1]: err 1\nsh[2]: err 2\nsh[3]: err 3\n")
        XCTAssertEqual(try Harness.cohort(["logs", first, "sh[1]", "--all"], home: home).exitCode, 2)
        XCTAssertEqual(try Harness.cohort(["logs", first], home: home).exitCode, 2)
    }

    /// Lines arrive while the task runs, not when it ends.
    func testLinesArriveWhileTheTaskRuns() throws {
        let home = Harness.temporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Harness.executable("cohort"))
        process.arguments = ["run", "--", "/bin/sh", "-c", "echo first; sleep 2; echo second"]
        process.environment = ProcessInfo.processInfo.environment.merging(["COHORT_HOME": home]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = "", firstSeen: Date?
        while true {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            if firstSeen == nil, text.contains("first\n") { firstSeen = Date() }
        }
        let ended = Date()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
        let seen = try XCTUnwrap(firstSeen, text)
        XCTAssertGreaterThan(ended.timeIntervalSince(seen), 1.5, "'first' was printed as it was written, 2 s before the task ended")
        XCTAssertTrue(text.hasPrefix("first\nsecond\nTASK"), text)
    }

    /// Through a server: `cohort run` queues the job there and still shows its lines;
    /// `cohort logs` reads them through the API, an array's element by its id.
    func testARunThroughTheServerStreamsAndLogsGoThroughTheAPI() throws {
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        defer { _ = server.stop() }
        let run = try Harness.cohort(["run", "--array", "4,7", "--", "/bin/sh", "-c", "echo served {index}"], home: home)
        XCTAssertEqual(run.exitCode, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("is queued there"), run.stderr)
        XCTAssertTrue(run.stdout.contains("sh[4]: served 4\n") && run.stdout.contains("sh[7]: served 7\n"), run.stdout)
        let id = try XCTUnwrap(try JobStore(stateDirectory: home).jobs().first?.id)
        XCTAssertEqual(try Harness.cohort(["logs", id, "sh[7]"], home: home).stdout, "served 7\n")
        XCTAssertEqual(try Harness.cohort(["logs", id, "--all"], home: home).stdout, "sh[4]: served 4\nsh[7]: served 7\n")
    }
}

/// Jobs that wait for other jobs (`cohort submit --after`, a job file's dependsOn), through
/// a real server.
final class JobDependencyRunTests: XCTestCase {
    /// Tasks of one job wait for each other in Slurm's kinds, on real processes: a failed
    /// build skips what waits with afterok, runs what waits with afterany or afternotok, and
    /// aftercorr pairs two arrays element by element (element 2's failure skips only its partner).
    func testTasksOfAJobWaitAsAfterokAfteranyAfternotokAndAftercorrSay() throws {
        let home = Harness.temporaryDirectory()
        try """
            id: pipeline
            tasks:
              - { id: build, commandLine: [sh, -c, 'echo building; exit 3'] }
              - { id: deploy, commandLine: [sh, -c, 'echo deploying'], dependsOn: [build] }
              - { id: cleanup, commandLine: [sh, -c, 'echo cleaning'], dependsOn: [{ task: build, condition: afterany }] }
              - { id: report, commandLine: [sh, -c, 'echo the build failed'], dependsOn: [{ task: build, condition: afternotok }] }
              - { id: mesh, commandLine: [sh, -c, 'test {index} -ne 2'], array: 1-3 }
              - { id: solve, commandLine: [sh, -c, 'echo solving {index}'], array: 1-3, dependsOn: [{ task: mesh, condition: aftercorr }] }
            """.write(toFile: "\(home)/pipeline.yaml", atomically: true, encoding: .utf8)
        let run = try Harness.cohort(["run", "--output", "json", "\(home)/pipeline.yaml"], home: home)
        XCTAssertEqual(run.exitCode, 1, run.stderr)
        let tasks = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])["tasks"] as? [[String: Any]]
        let results = Dictionary(uniqueKeysWithValues: (tasks ?? []).map { ($0["taskId"] as? String ?? "?", $0["result"] as? String ?? "?") })
        XCTAssertEqual(results, ["build": "failure", "deploy": "failure", "cleanup": "success", "report": "success",
                                 "mesh[1]": "success", "mesh[2]": "failure", "mesh[3]": "success",
                                 "solve[1]": "success", "solve[2]": "failure", "solve[3]": "success"], run.stdout)
        // One shape for a task: what run --output json writes is what job show --output json writes.
        let shown = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try Harness.cohort(["job", "show", "pipeline", "--output", "json"], home: home).stdout.utf8)) as? [[String: Any]])
        for id in ["deploy", "cleanup"] {
            let ran = try XCTUnwrap(tasks?.first { $0["taskId"] as? String == id }), stored = try XCTUnwrap(shown.first { $0["taskId"] as? String == id })
            XCTAssertEqual(Set(ran.keys), Set(stored.keys), id)
        }
        let logs = try Harness.cohort(["logs", "pipeline", "--all"], home: home).stdout
        XCTAssertTrue(logs.contains("report: the build failed") && logs.contains("cleanup: cleaning") && !logs.contains("deploying"), logs)
        XCTAssertTrue(logs.contains("solve[3]: solving 3") && !logs.contains("solving 2"), logs)
    }

    func testJobsStartAfterTheJobsTheyWaitForOrEndUnrun() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "2"], home: home).exitCode, 0)
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        defer { _ = server.stop() }
        func file(_ name: String, _ text: String) throws -> String {
            let path = "\(home)/\(name).yaml"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        func submit(_ words: [String]) throws -> String {
            let result = try Harness.cohort(["submit"] + words, home: home)
            XCTAssertEqual(result.exitCode, 0, result.stderr)
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let stamp = "[/bin/sh, -c, 'date +%s.%N']"
        let mesh = try submit([try file("mesh", "id: mesh\nconstraints: { maxWallClockTime: 5m }\ntasks:\n  - { id: m, commandLine: [/bin/sh, -c, 'sleep 1.5; date +%s.%N'] }\n")])
        let solve = try submit(["--after", mesh, try file("solve", "id: solve\ntasks:\n  - { id: s, commandLine: \(stamp), array: 1-3 }\n")])
        let rescue = try submit(["--after", "\(mesh):notok", try file("rescue", "id: rescue\ntasks:\n  - { id: r, commandLine: \(stamp) }\n")])
        let report = try submit([try file("report", "id: report\ndependsOn: [{ job: \(solve), condition: afterany }, \(rescue)]\ntasks:\n  - { id: p, commandLine: \(stamp) }\n")])
        let missing = try Harness.cohort(["submit", "--after", "nosuch", try file("x", "id: x\ntasks: [{ id: a, commandLine: 'true' }]\n")], home: home)
        XCTAssertEqual(missing.exitCode, 2)
        XCTAssertTrue(missing.stderr.contains("no job 'nosuch' is stored to wait for"), missing.stderr)
        XCTAssertEqual(try Harness.cohort(["submit", "--after", "mesh:maybe", "\(home)/x.yaml"], home: home).exitCode, 2)

        XCTAssertEqual(try Harness.waitCompleted(mesh, home: home, timeout: 60).succeeded, 1)
        XCTAssertEqual(try Harness.waitCompleted(solve, home: home, timeout: 60).succeeded, 3, "an array, from a job file submitted through the server")
        let store = try JobStore(stateDirectory: home)
        func time(_ job: String, _ index: Int = 0) throws -> Double {
            let attempt = try XCTUnwrap(try store.tasks(jobId: job)[index].attempts.last)
            return Double(Harness.read("\(attempt.directory)/stdout.txt").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        let meshEnd = try time(mesh)
        for index in 0..<3 { XCTAssertGreaterThan(try time(solve, index), meshEnd, "solve started after mesh ended") }
        let rescued = try Harness.waitCompleted(rescue, home: home, timeout: 60)
        XCTAssertEqual(rescued.failed, 1)
        let reason = try XCTUnwrap(try store.tasks(jobId: rescue).first?.failure)
        XCTAssertEqual(reason.category, .dependencyFailed)
        XCTAssertEqual(reason.message, "job \(mesh) succeeded; this job waited for it with afternotok")
        XCTAssertTrue(try store.tasks(jobId: rescue).first?.attempts.isEmpty == true, "it never ran")
        let reported = try Harness.waitCompleted(report, home: home, timeout: 60)
        XCTAssertEqual(reported.failed, 1, "rescue did not succeed, and report asked afterok of it")
        let shown = try Harness.cohort(["job", "show", solve], home: home)
        XCTAssertTrue(shown.stdout.contains("waits for job \(mesh) (afterok) to end"), shown.stdout)

        // cohort run (no server) does not wait: a job whose dependency has not ended is refused at once.
        let alone = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["submit", try file("later", "id: later\ntasks: [{ id: a, commandLine: 'true' }]\n")], home: alone).exitCode, 0)
        let early = try Harness.cohort(["run", try file("early", "id: early\ndependsOn: [later]\ntasks: [{ id: a, commandLine: 'true' }]\n")], home: alone)
        XCTAssertEqual(early.exitCode, 2, early.stderr)
        XCTAssertTrue(early.stderr.contains("dependsOn: job later has not ended yet"), early.stderr)
    }
}

/// Where an attempt's time went: each step of its way, recorded and shown.
final class AttemptPhaseTests: XCTestCase {
    func testEveryAttemptRecordsItsStepsInOrder() throws {
        let mpi = TaskSpec.shell("mpi", "sleep 0.3", multi: MultiInstance(instances: 2, processesPerNode: 1, coordinationCommandLine: ["/bin/sh", "-c", "sleep 0.2"], transport: .shm, launch: .raw))
        let single = TaskSpec.shell("single", "sleep 0.4")
        let run = try Harness.run(JobSpec(id: "phases", pool: "local", tasks: [mpi, single]))
        XCTAssertTrue(run.succeeded)
        func phases(_ id: String) throws -> [AttemptPhase] { try XCTUnwrap(run.tasks.first { $0.taskId == id }?.attempts.first?.phases) }
        let multi = try phases("mpi"), one = try phases("single")
        XCTAssertEqual(multi.map(\.name), [.queued, .allocated, .nodesReady, .staged, .coordinated, .launched, .ended, .swept])
        XCTAssertEqual(one.map(\.name), [.queued, .allocated, .nodesReady, .staged, .launched, .ended, .swept])
        for list in [multi, one] { XCTAssertEqual(list.map(\.at), list.map(\.at).sorted(), "in time order: \(AttemptPhase.line(list))") }
        func span(_ list: [AttemptPhase], _ from: AttemptPhase.Name, _ to: AttemptPhase.Name) -> Double {
            list.first { $0.name == to }!.at.timeIntervalSince(list.first { $0.name == from }!.at)
        }
        XCTAssertGreaterThanOrEqual(span(multi, .staged, .coordinated), 0.2, AttemptPhase.line(multi))
        XCTAssertGreaterThanOrEqual(span(multi, .launched, .ended), 0.3, AttemptPhase.line(multi))
        XCTAssertGreaterThanOrEqual(span(one, .launched, .ended), 0.4, AttemptPhase.line(one))

        // Shown by cohort task show, and kept by the store.
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["run", "--quiet", "--", "/bin/sh", "-c", "sleep 0.2"], home: home).exitCode, 0)
        let id = try XCTUnwrap(try JobStore(stateDirectory: home).jobs().first?.id)
        let shown = try Harness.cohort(["task", "show", id, "sh"], home: home)
        XCTAssertTrue(shown.stdout.contains("  phases: queued → allocated +"), shown.stdout)
        XCTAssertTrue(shown.stdout.contains("→ launched +") && shown.stdout.contains("→ ended +"), shown.stdout)
        XCTAssertEqual(try JobStore(stateDirectory: home).tasks(jobId: id).first?.attempts.first?.phases?.last?.name, .swept)
    }
}
