import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest
@testable import Launcher

/// A hostile user and a careless admin against a real `cohort serve`, real files and real
/// processes (the parsing half is LauncherTests/AdversarialInputTests). Each case crashed the
/// server, hung it, leaked something or ran something it should not before its fix.
final class AdversarialServiceTests: XCTestCase {
    func started(_ home: String = Harness.temporaryDirectory(), launcher: [String] = []) throws -> ServerProcess {
        let server = try ServerProcess(home: home, launcher: launcher)
        try server.waitUntilListening()
        return server
    }

    // MARK: - Kills or hangs the service

    func testDeeplyNestedBodiesAreRefusedAndTheServerLives() throws {
        let server = try started()
        for body in ["{\"id\":\"x\",\"tasks\":" + String(repeating: "[", count: 6000) + String(repeating: "]", count: 6000) + "}",
                     "{\"id\":\"x\",\"displayName\":" + String(repeating: "{\"a\":", count: 6000) + "1" + String(repeating: "}", count: 6000) + ",\"tasks\":[]}"] {
            let answer = server.request("POST", "/v1/jobs", body: body)
            XCTAssertEqual(answer.status, 400, answer.text.prefix(300).description)
            XCTAssertTrue(answer.errorMessage?.contains("nested more than 64 levels") == true, answer.text.prefix(300).description)
        }
        XCTAssertEqual(server.request("GET", "/v1/health").status, 200, "the server still answers: \(server.log)")
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    func testEnvironmentsNoProcessCouldTakeAreRefusedAtSubmit() throws {
        let server = try started()
        let variables = (0..<66_000).map { "{\"name\":\"V\($0)\",\"value\":\"x\"}" }.joined(separator: ",")
        let answer = server.request("POST", "/v1/jobs", body: "{\"id\":\"env\",\"commonEnvironmentSettings\":[\(variables)],\"tasks\":[{\"id\":\"a\",\"commandLine\":\"true\"}]}")
        XCTAssertEqual(answer.status, 400, answer.text)
        XCTAssertEqual(answer.errorField, "commonEnvironmentSettings", "the field as the body named it")
        XCTAssertEqual(server.request("GET", "/v1/jobs/env").status, 404, "nothing was stored")
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    /// 260 clients that send half a request line each, against a server allowed 256
    /// descriptors: before the fix they held every descriptor forever and the API was gone.
    func testHalfSentRequestsCannotLockEveryoneOut() throws {
        let server = try started(launcher: ["prlimit", "--nofile=256:256", "--"])
        let port = try XCTUnwrap(Int(server.url.split(separator: ":").last ?? ""))
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        for _ in 0..<260 {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard connected == 0 else { close(descriptor); continue }
            _ = "GET /v1/health HTTP/1.1\r\nHost: x".withCString { send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            sockets.append(descriptor)
        }
        XCTAssertGreaterThan(sockets.count, 200, "the half-sent connections were made")
        let started = Date()
        // Half-sent requests are closed 10 s after they began, as many at once as the cap takes
        // (128 of 256 descriptors): the probe is answered within a few such waves.
        let answer = server.request("GET", "/v1/health", timeout: 60)
        XCTAssertEqual(answer.status, 200, "the API answers while they hang (\(Date().timeIntervalSince(started)) s): \(server.log)")
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
        print("half-sent requests: the API answered \(String(format: "%.1f", Date().timeIntervalSince(started))) s after 260 of them began")
        // The server closed them (a read sees the end), giving their descriptors back.
        var closedByServer = 0
        for descriptor in sockets {
            var timeout = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var byte: UInt8 = 0
            if recv(descriptor, &byte, 1, 0) <= 0 { closedByServer += 1 }
        }
        XCTAssertEqual(closedByServer, sockets.count, "every half-sent request was closed by the server")
        XCTAssertEqual(server.request("GET", "/v1/health").status, 200, server.log)
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    // MARK: - HTTP as clients speak it

    func testSchemesHeadAndTooLargeBodiesAnswerAsHTTPSays() throws {
        let server = try started()
        XCTAssertEqual(server.request("GET", "/v1/health", scheme: "bearer").status, 200, "schemes are case-insensitive (RFC 7235)")
        XCTAssertEqual(server.request("GET", "/v1/health", scheme: "BEARER").status, 200)
        XCTAssertEqual(server.request("GET", "/v1/health", token: "wrong-token-0123456789", scheme: "bearer").status, 401)
        let head = server.request("HEAD", "/v1/health")
        XCTAssertEqual(head.status, 200)
        XCTAssertTrue(head.body.isEmpty)
        XCTAssertEqual(server.request("HEAD", "/v1/health", token: .some(nil)).status, 401)
        let large = server.request("POST", "/v1/jobs", data: Data(count: 65 << 20), timeout: 120)
        XCTAssertEqual(large.status, 413, large.text)
        XCTAssertTrue(large.errorMessage?.contains("64 MiB") == true, "a JSON error: \(large.text)")
        let unknown = server.request("GET", "/v1/nothing")
        XCTAssertEqual(unknown.status, 404)
        XCTAssertNotNil(unknown.errorMessage, "JSON: \(unknown.text)")
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    // MARK: - Same rules through both doors

    func testDisabledJobsAreCancelledAndDeletedThroughTheAPIAsThroughTheCLI() throws {
        let home = Harness.temporaryDirectory()
        let server = try started(home)
        for id in ["held1", "held2"] {
            XCTAssertEqual(server.request("POST", "/v1/jobs?disabled=true", body: "id: \(id)\ntasks:\n  - id: a\n    commandLine: 'true'\n").status, 201)
        }
        let cancel = server.request("POST", "/v1/jobs/held1/cancel")
        XCTAssertEqual(cancel.status, 200, cancel.text)
        XCTAssertEqual((cancel.json as? [String: String])?["state"], "completed")
        XCTAssertEqual(server.request("DELETE", "/v1/jobs/held1").status, 204)
        XCTAssertEqual(server.request("DELETE", "/v1/jobs/held2").status, 204, "a disabled job that never ran can go at once")
        XCTAssertEqual(server.request("GET", "/v1/jobs/held2").status, 404)
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    func testGeneratedIdsAreIdsTheAPIAndCLIAccept() throws {
        let home = Harness.temporaryDirectory()
        let server = try started(home)
        let long = String(repeating: "j", count: 64)
        var ids: [String] = []
        for _ in 0..<2 {
            let answer = server.request("POST", "/v1/jobs?disabled=true", body: "id: \(long)\ntasks:\n  - id: a\n    commandLine: 'true'\n")
            XCTAssertEqual(answer.status, 201, answer.text)
            ids.append((answer.json as? [String: String])?["id"] ?? "")
        }
        XCTAssertEqual(ids[0], long)
        XCTAssertEqual(ids[1].count, 64, ids[1])
        XCTAssertEqual(server.request("GET", "/v1/jobs/\(ids[1])").status, 200)
        XCTAssertEqual(try Harness.cohort(["job", "show", ids[1]], home: home).exitCode, 0)
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    // MARK: - The state directory: private, and trusted only when it is one's own

    func testTheStateDirectoryAndEverythingInItArePrivate() throws {
        let home = Harness.temporaryDirectory() + "/state"
        let job = "\(Harness.temporaryDirectory())/job.yaml"
        try "id: private\ntasks:\n  - id: a\n    commandLine: [sh, -c, 'echo secret']\n".write(toFile: job, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Harness.cohort(["run", job], home: home).exitCode, 0)
        func mode(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int) ?? -1 }
        XCTAssertEqual(mode(home), 0o700, "the state directory")
        XCTAssertEqual(mode("\(home)/cohort.sqlite"), 0o600)
        let attempt = try XCTUnwrap(FileManager.default.subpathsOfDirectory(atPath: "\(home)/work").first { $0.hasSuffix("attempt-1") })
        XCTAssertEqual(mode("\(home)/work/\(attempt)"), 0o700, "the attempt directory")
        XCTAssertEqual(mode("\(home)/work/\(attempt)/stdout.txt"), 0o600, "the task's output")
        XCTAssertEqual(Harness.read("\(home)/work/\(attempt)/stdout.txt"), "secret\n")
        let server = try started(home)
        XCTAssertEqual(mode("\(home)/api-token"), 0o600)
        XCTAssertEqual(mode("\(home)/serve.json"), 0o600)
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    func testPlantedTokensAddressFilesAndOpenDirectoriesAreRefused() throws {
        // A token another user planted (theirs, mode 0600) is not the server's token.
        let planted = Harness.temporaryDirectory()
        try "0123456789abcdef0123456789abcdef\n".write(toFile: "\(planted)/api-token", atomically: true, encoding: .utf8)
        chmod("\(planted)/api-token", 0o600)
        chown("\(planted)/api-token", 65534, 65534)
        let refused = try Harness.cohort(["serve", "--listen", "127.0.0.1:0"], home: planted)
        XCTAssertEqual(refused.exitCode, 2)
        XCTAssertTrue(refused.stderr.contains("belongs to user 65534"), refused.stderr)

        // A serve.json another user planted must not get our token sent to their listener.
        let home = Harness.temporaryDirectory()
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(listener, 8)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = UInt16(bigEndian: address.sin_port)
        _ = try APITokenFile.make(home)
        try "{\"url\":\"http://127.0.0.1:\(port)\",\"pid\":\(getpid())}".write(toFile: "\(home)/serve.json", atomically: true, encoding: .utf8)
        chown("\(home)/serve.json", 65534, 65534)
        let listed = try Harness.cohort(["job", "list"], home: home)
        XCTAssertEqual(listed.exitCode, 2, listed.stdout + listed.stderr)
        XCTAssertTrue(listed.stderr.contains("belongs to user 65534"), listed.stderr)
        var flags = fcntl(listener, F_GETFL)
        flags |= O_NONBLOCK
        _ = fcntl(listener, F_SETFL, flags)
        XCTAssertLessThan(accept(listener, nil, nil), 0, "nobody connected to the planted address")

        // A state directory anyone may write to is refused, as is another user's.
        let open = Harness.temporaryDirectory()
        chmod(open, 0o777)
        let openRun = try Harness.cohort(["job", "list"], home: open)
        XCTAssertEqual(openRun.exitCode, 2)
        XCTAssertTrue(openRun.stderr.contains("can be written by others"), openRun.stderr)
        let theirs = Harness.temporaryDirectory()
        chown(theirs, 65534, 65534)
        let theirsRun = try Harness.cohort(["job", "list"], home: theirs)
        XCTAssertEqual(theirsRun.exitCode, 2)
        XCTAssertTrue(theirsRun.stderr.contains("belongs to user 65534"), theirsRun.stderr)
    }

    func testDamagedDatabasesAreNamedAndNeverReplaced() throws {
        // Truncated to nothing: SQLite would take it for a new, empty store.
        let empty = Harness.temporaryDirectory()
        XCTAssertTrue(FileManager.default.createFile(atPath: "\(empty)/cohort.sqlite", contents: Data()))
        for arguments in [["job", "list"], ["serve", "--listen", "127.0.0.1:0"]] {
            let result = try Harness.cohort(arguments, home: empty)
            XCTAssertNotEqual(result.exitCode, 0, arguments.joined(separator: " "))
            XCTAssertTrue(result.stderr.contains("\(empty)/cohort.sqlite is empty"), result.stderr)
        }
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: "\(empty)/cohort.sqlite")[.size] as? Int, 0, "left as it was")

        // A damaged page: a command that meets it names the file, and the server's integrity
        // check at its start finds it; no SQL reaches a client.
        let home = Harness.temporaryDirectory()
        let job = "\(home)/j.yaml"
        let text = "id: kept\ntasks:\n" + (0..<300).map { "  - id: t\($0)\n    commandLine: 'true'\n" }.joined()
        try text.write(toFile: job, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Harness.cohort(["submit", job], home: home).exitCode, 0)
        let path = "\(home)/cohort.sqlite"
        // Everything into the main file, then a page of it overwritten.
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sqlite.arguments = ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.close()", path]
        try sqlite.run()
        sqlite.waitUntilExit()
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        let rootPage = try XCTUnwrap(Int(Harness.shell(["python3", "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT rootpage FROM sqlite_master WHERE name = 'task'\").fetchone()[0])", path]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        try handle.seek(toOffset: UInt64(4096 * (rootPage - 1)))  // the task table's root: its b-tree can no longer be read
        handle.write(Data(repeating: 0x5a, count: 64))
        try handle.close()
        let listed = try Harness.cohort(["task", "list", "kept"], home: home)
        XCTAssertEqual(listed.exitCode, 2, listed.stdout)
        XCTAssertTrue(listed.stderr.contains("\(path) is damaged"), listed.stderr)
        XCTAssertFalse(listed.stderr.contains("SELECT"), "no SQL in what it says: \(listed.stderr)")
        // The server refuses to start (a server that did start is stopped, and fails the test).
        let server = try ServerProcess(home: home)
        let deadline = Date() + 30
        while server.process.isRunning, Date() < deadline { usleep(50_000) }
        if server.process.isRunning { server.killHard() }
        XCTAssertEqual(server.process.terminationStatus, 2, server.log)
        XCTAssertTrue(server.log.contains("\(path) is damaged"), server.log)
        XCTAssertFalse(server.log.contains("SELECT"), "no SQL in what it says")
    }

    /// Processes that open a new state directory at once never take it for a truncated one
    /// (the check once ran before the lock that creation holds; seen as a CI flake).
    func testConcurrentFirstOpensNeverSeeATruncatedDatabase() throws {
        for _ in 0..<5 {
            let home = Harness.temporaryDirectory()
            let processes = try (0..<8).map { _ in try Self.startCohort(["job", "list"], home: home) }
            for process in processes { process.waitUntilExit() }
            XCTAssertEqual(processes.map(\.terminationStatus), Array(repeating: 0, count: 8))
        }
    }

    /// Issue 9, bug 4: a server whose runner for the built-in local pool was made before the
    /// pool was first stored (at its first drain) never saw drains until restarted.
    func testDrainsReachARunnerMadeBeforeThePoolWasStored() throws {
        let home = Harness.temporaryDirectory()
        let server = try started(home)
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: first\ntasks:\n  - id: a\n    commandLine: 'true'\n").status, 201)
        try waitCompleted("first", home: home)
        XCTAssertEqual(try Harness.cohort(["node", "drain", "--pool", "local", "local-0", "local-1", "local-2"], home: home).exitCode, 0)
        usleep(1_500_000)  // the runner re-reads node states once a second
        let tasks = (0..<6).map { "  - id: t\($0)\n    commandLine: [sh, -c, 'echo $COHORT_NODE_ID']\n" }.joined()
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: second\ntasks:\n\(tasks)").status, 201)
        try waitCompleted("second", home: home)
        let records = try JobStore(stateDirectory: home).tasks(jobId: "second")
        XCTAssertEqual(Set(records.flatMap { $0.attempts.flatMap(\.nodes) }), ["local-3"], "only the node left undrained took work")
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    func waitCompleted(_ job: String, home: String) throws {
        let store = try JobStore(stateDirectory: home)
        let deadline = Date() + 60
        while Date() < deadline {
            if try store.job(job)?.state == .completed { return }
            usleep(50_000)
        }
        XCTFail("job \(job) did not complete")
    }

    // MARK: - Sweeps touch only their own processes

    /// Two state directories run a job and task of the same ids: the one that fails must not
    /// kill the other's running task (its sweep was keyed on job and task ids alone).
    func testASweepNeverReachesAnotherStateDirectorysTask() throws {
        let b = Harness.temporaryDirectory(), a = Harness.temporaryDirectory()
        try "id: same\ntasks:\n  - id: t\n    commandLine: [sh, -c, 'sleep 4; echo survived']\n".write(toFile: "\(b)/job.yaml", atomically: true, encoding: .utf8)
        try "id: same\ntasks:\n  - id: t\n    commandLine: [sh, -c, 'sleep 0.5; exit 3']\n".write(toFile: "\(a)/job.yaml", atomically: true, encoding: .utf8)
        let longer = try Self.startCohort(["run", "\(b)/job.yaml"], home: b)
        let deadline = Date() + 20
        while ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "same").isEmpty, Date() < deadline { usleep(50_000) }
        let failing = try Harness.cohort(["run", "\(a)/job.yaml"], home: a)
        XCTAssertEqual(failing.exitCode, 1, failing.stdout + failing.stderr)
        longer.waitUntilExit()
        XCTAssertEqual(longer.terminationStatus, 0, "the other state directory's task ran to its end")
    }

    /// A task that succeeds but leaves a daemon behind (setsid: out of its process group).
    func testWhatASuccessfulTaskLeftBehindIsSwept() throws {
        // The task ends only once the daemon has left its process group (it wrote `ready`
        // after setsid), or the group kill at the task's end would catch it anyway.
        let task = TaskSpec.shell("daemon", "setsid sh -c 'echo detached > ready; exec sleep 300' </dev/null >/dev/null 2>&1 & "
                                  + "while [ ! -s ready ]; do sleep 0.01; done; echo started")
        let run = try Harness.run(JobSpec(id: "leaves-daemon", tasks: [task]))  // checks that no process of it is left
        XCTAssertTrue(run.tasks[0].succeeded)
        XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "leaves-daemon"), [])
    }

    /// Hosts that look like ssh options and absurd slot counts never reach a stored pool.
    func testPoolsWithOptionLikeHostsOrHugeSlotCountsAreRefused() throws {
        let home = Harness.temporaryDirectory()
        try "node1 slots=2\n-oProxyCommand=touch${IFS}/tmp/x@node2\n".write(toFile: "\(home)/hosts", atomically: true, encoding: .utf8)
        for arguments in [["pool", "add", "p", "--hosts=-V"], ["pool", "add", "p", "--hostfile", "\(home)/hosts"],
                          ["pool", "add", "p", "--hosts", "n[1-2]", "--slots", "1000000000000"], ["pool", "add", "local", "--slots", "100000000"]] {
            let result = try Harness.cohort(arguments, home: home)
            XCTAssertEqual(result.exitCode, 2, "\(arguments): \(result.stdout)\(result.stderr)")
            XCTAssertFalse(result.stderr.isEmpty, "\(arguments) says why")
        }
        XCTAssertFalse(try Harness.cohort(["pool", "list"], home: home).stdout.contains("p "), "nothing was stored")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/x"))
    }

    /// A job's loader variables reach its ranks (through -x NAME=VALUE), not mpirun's own
    /// process, which runs on the server's host.
    func testLoaderVariablesReachTheRanksNotMpirun() throws {
        var task = TaskSpec.shell("ld", "echo \"[$LD_COHORT_PROBE]\"", multi: MultiInstance(instances: 2, processesPerNode: 1))
        task.environment = ["LD_COHORT_PROBE": "a b"]
        let run = try Harness.run(JobSpec(id: "loader", tasks: [task]))
        let attempt = try XCTUnwrap(run.tasks[0].attempts.first)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure))")
        XCTAssertEqual(Harness.read("\(attempt.directory)/stdout.txt"), "[a b]\n[a b]\n")
        XCTAssertTrue(attempt.launchedCommand.containsSequence(["-x", "LD_COHORT_PROBE=a b"]), "\(attempt.launchedCommand)")
    }

    /// More fields than the spawner takes: the attempt ends at once with the reason, never hangs.
    func testASpawnerRefusalEndsTheAttempt() throws {
        let spawner = try Spawner(executable: Harness.executable("cohort-spawner"), owner: Harness.temporaryDirectory())
        defer { spawner.close() }
        let environment = Dictionary(uniqueKeysWithValues: (0..<70_000).map { ("V\($0)", "x") })
        let started = Date()
        XCTAssertThrowsError(try spawner.spawn(["/bin/true"], environment: environment, directory: nil, stdout: nil, stderr: nil,
                                               statusFile: "\(Harness.temporaryDirectory())/exit-status")) { error in
            XCTAssertEqual((error as? ChildProcess.LaunchError)?.errno, E2BIG, "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        // It still starts what it can.
        let child = try spawner.spawn(["/bin/true"], environment: ["A": "1"], directory: nil, stdout: nil, stderr: nil,
                                      statusFile: "\(Harness.temporaryDirectory())/exit-status")
        XCTAssertEqual(child.wait(), .exited(0))
    }
}

extension AdversarialServiceTests {
    /// Starts `cohort ARGUMENTS` with state directory `home`, output discarded; not waited for.
    static func startCohort(_ arguments: [String], home: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Harness.executable("cohort"))
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["COHORT_HOME": home]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }
}

/// Makes an API token file as `cohort serve` would, for tests that need one present.
enum APITokenFile {
    static func make(_ home: String) throws -> String {
        let token = "0123456789abcdef0123456789abcdef"
        try (token + "\n").write(toFile: "\(home)/api-token", atomically: true, encoding: .utf8)
        chmod("\(home)/api-token", 0o600)
        return token
    }
}
