import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest
import Yams
import API
@testable import Launcher

/// A real `cohort serve` on a free port of 127.0.0.1, with a private state directory.
final class ServerProcess {
    let home: String
    let process = Process()
    let logPath: String
    private(set) var url = ""
    private(set) var token = ""

    /// `launcher`: words to start it through (e.g. `prlimit --nofile=256:256`).
    init(home: String, arguments: [String] = ["--listen", "127.0.0.1:0"], launcher: [String] = [], environment: [String: String] = [:]) throws {
        self.home = home
        logPath = "\(home)/serve-\(UUID().uuidString.prefix(8)).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        try? FileManager.default.removeItem(atPath: "\(home)/serve.json")
        if launcher.isEmpty {
            process.executableURL = URL(fileURLWithPath: Harness.executable("cohort"))
            process.arguments = ["serve"] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = launcher + [Harness.executable("cohort"), "serve"] + arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment.merging(["COHORT_HOME": home]) { $1 }) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
    }

    var log: String { Harness.read(logPath) }

    /// Waits until the server says where it listens.
    func waitUntilListening(file: StaticString = #filePath, line: UInt = #line) throws {
        let deadline = Date() + 60
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: "\(home)/serve.json"),
               let endpoint = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               (endpoint["pid"] as? Int).map(Int32.init) == process.processIdentifier, let url = endpoint["url"] as? String {
                self.url = url
                token = Harness.read("\(home)/api-token").trimmingCharacters(in: .whitespacesAndNewlines)
                return
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        XCTFail("cohort serve did not start listening: \(log)", file: file, line: line)
        throw CocoaError(.fileReadNoSuchFile)
    }

    struct Answer {
        var status: Int
        var body: Data
        var headers: [String: String]
        var json: Any? { try? JSONSerialization.jsonObject(with: body) }
        var text: String { String(decoding: body, as: UTF8.self) }
        var errorMessage: String? { ((json as? [String: Any])?["error"] as? [String: Any])?["message"] as? String }
        var errorField: String? { ((json as? [String: Any])?["error"] as? [String: Any])?["field"] as? String }
    }

    /// One HTTP request; `token: nil` sends none.
    func request(_ method: String, _ path: String, body: String? = nil, token: String?? = .none, scheme: String = "Bearer",
                 data: Data? = nil, timeout: Double = 30) -> Answer {
        var request = URLRequest(url: URL(string: url + path)!, timeoutInterval: timeout)
        request.httpMethod = method
        let bearer = token ?? self.token
        if let bearer { request.setValue("\(scheme) \(bearer)", forHTTPHeaderField: "Authorization") }
        if let body { request.httpBody = Data(body.utf8) }
        if let data { request.httpBody = data }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var answer = Answer(status: 0, body: Data(), headers: [:])
        URLSession.shared.dataTask(with: request) { data, response, _ in
            let http = response as? HTTPURLResponse
            answer = Answer(status: http?.statusCode ?? 0, body: data ?? Data(),
                            headers: (http?.allHeaderFields as? [String: String]) ?? [:])
            done.signal()
        }.resume()
        done.wait()
        return answer
    }

    func killHard() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }
}

final class ServiceTests: XCTestCase {
    func waitCompleted(_ job: String, home: String, timeout: Double = 120) throws -> JobStore.JobSummary {
        try Harness.waitCompleted(job, home: home, timeout: timeout)
    }

    /// kill -9 the server at random moments while a job with dependencies, retries and a
    /// failure runs; after the restarts every task has ended exactly once: no success was
    /// run a second time, no task was lost, and nothing of the job is left running.
    func testKillNineAtRandomMomentsLosesNothingAndRunsNothingTwice() throws {
        var generator = SystemRandomNumberGenerator()
        let seed = UInt64.random(in: 0...UInt64.max, using: &generator)
        var random = SplitMix(seed: seed)
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "2", "--slots", "3"], home: home).exitCode, 0)
        var lines = ["id: crashy", "tasks:"]
        for index in 0..<24 {
            let pause = String(format: "%.2f", Double(random.next() % 60) / 100)
            var line = "  - { id: t\(index), commandLine: \"sh -c 'sleep \(pause)'\""
            if index >= 8 { line += ", dependsOn: [t\(index - 8)]" }
            line += " }"
            lines.append(line)
        }
        lines.append("  - { id: fails, commandLine: \"sh -c 'sleep 0.3; exit 3'\" }")
        lines.append("  - { id: never, commandLine: 'true', dependsOn: [fails] }")
        lines.append("  - { id: flaky, commandLine: \"sh -c 'sleep 0.2; test -e ../../flaky-once || { touch ../../flaky-once; exit 1; }'\", constraints: { maxTaskRetryCount: 2 } }")
        let file = "\(home)/crashy.yaml"
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)

        var kills = 0
        var server = try ServerProcess(home: home)
        try server.waitUntilListening()
        XCTAssertEqual(try Harness.cohort(["submit", file], home: home).stdout, "crashy\n")
        for _ in 0..<6 {
            usleep(useconds_t(100_000 + random.next() % 700_000))
            server.killHard()
            kills += 1
            server = try ServerProcess(home: home)
            try server.waitUntilListening()
        }
        let summary = try waitCompleted("crashy", home: home)
        XCTAssertEqual(server.stop(), 0, server.log)
        let context = "seed \(seed), \(kills) kills"

        XCTAssertEqual(summary.tasks, 27, context)
        XCTAssertEqual(summary.succeeded, 25, context)
        XCTAssertEqual(summary.failed, 2, context)
        let tasks = try JobStore(stateDirectory: home).tasks(jobId: "crashy")
        let workKey = try JobStore(stateDirectory: home).spec(jobId: "crashy").workKey
        for task in tasks {
            let counted = task.attempts.filter { $0.failure?.category != .interrupted }
            switch task.taskId {
            case "fails":
                XCTAssertEqual(task.result, .failure, context)
                XCTAssertEqual(counted.count, 1, "no retries allowed: \(context)")
            case "never":
                XCTAssertEqual(task.failure?.category, .dependencyFailed, context)
                XCTAssertTrue(task.attempts.isEmpty, context)
            case "flaky":
                XCTAssertEqual(task.result, .success, context)
                XCTAssertEqual(counted.filter(\.succeeded).count, 1, context)
            default:
                XCTAssertEqual(task.result, .success, "\(task.taskId): \(task.failure.map { "\($0)" } ?? ""); \(context)")
                XCTAssertEqual(counted.count, 1, "\(task.taskId) completed more than once: \(context)")
            }
            // What the spawner wrote: at most one successful end of each task, ever.
            let directory = "\(home)/work/\(workKey)/\(task.taskId)"
            let ends = Recovery.attemptNumbers(in: directory).compactMap { ExitStatus(contentsOf: "\(directory)/attempt-\($0)/exit-status") }
            XCTAssertLessThanOrEqual(ends.filter { $0.termination == .exited(0) }.count, 1, "\(task.taskId) succeeded twice: \(context)")
            // Every attempt directory is recorded (nothing ran unrecorded). A start is recorded
            // beside the making of its directory: a kill between leaves a record without one,
            // which the recovery ended as interrupted (it never ran).
            let numbers = Set(Recovery.attemptNumbers(in: directory)), recorded = task.attempts.map { "\($0.number):\($0.failure?.category.rawValue ?? "ok")" }
            XCTAssertTrue(numbers.isSubset(of: Set(task.attempts.map(\.number))),
                          "every attempt directory is recorded: \(task.taskId) has directories \(numbers.sorted()), records \(recorded); \(context)")
            for attempt in task.attempts where !numbers.contains(attempt.number) {
                XCTAssertEqual(attempt.failure?.category, .interrupted, "\(task.taskId) attempt \(attempt.number) has no directory, so it never ran: \(recorded); \(context)")
            }
        }
        XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "crashy"), [], context)
        let recoveries = try JobStore(stateDirectory: home).events(jobId: "crashy").filter { $0.kind == .recovered }
        XCTAssertGreaterThanOrEqual(recoveries.count, 1, "the kills hit the running job: \(context)")
    }

    /// The README's curl submission of a job file with relative programs (`bin/…`): with
    /// `?directory=` they start from the file's folder and run (they once all failed:
    /// `cannot start bin/montecarlo-pi`); a directory that is not one is a 400 naming it.
    func testACurlSubmissionNamesTheJobFilesFolderForItsRelativePrograms() throws {
        let home = Harness.temporaryDirectory()
        let project = Harness.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: "\(project)/bin", withIntermediateDirectories: true)
        try "#!/bin/sh\necho estimate $1\n".write(toFile: "\(project)/bin/estimate", atomically: true, encoding: .utf8)
        chmod("\(project)/bin/estimate", 0o755)
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let body = "id: relative\ntasks:\n  - { id: a, commandLine: bin/estimate 7 }\n"
        let bad = server.request("POST", "/v1/jobs?directory=relative/path", body: body)
        XCTAssertEqual(bad.status, 400, bad.text)
        XCTAssertEqual(bad.errorField, "directory")
        let created = server.request("POST", "/v1/jobs?directory=\(project)", body: body)
        XCTAssertEqual(created.status, 201, created.text)
        let summary = try waitCompleted("relative", home: home)
        let tasks = try JobStore(stateDirectory: home).tasks(jobId: "relative")
        XCTAssertEqual(summary.succeeded, 1, "\(tasks.map(\.failure))")
        let attempt = try XCTUnwrap(tasks.first?.attempts.last)
        XCTAssertEqual(Harness.read("\(attempt.directory)/stdout.txt"), "estimate 7\n")
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    func testTheAPIRequiresTheTokenValidatesInputAndCancelsOneJob() throws {
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        // The token file: made on first start, owner-only.
        var info = stat()
        XCTAssertEqual(stat("\(home)/api-token", &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        XCTAssertEqual(server.token.count, 64)

        XCTAssertEqual(server.request("GET", "/v1/jobs", token: .some(nil)).status, 401)
        XCTAssertEqual(server.request("GET", "/v1/jobs", token: "wrong-token-0123456789").status, 401)
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: x\ntasks: [{id: a, commandLine: 'true'}]", token: .some(nil)).status, 401)
        XCTAssertEqual(server.request("GET", "/v1/health").status, 200)
        let wrongMethod = server.request("PUT", "/v1/jobs")
        XCTAssertEqual(wrongMethod.status, 405)
        XCTAssertEqual(wrongMethod.headers["Allow"], "GET, POST")

        // A malformed body: 400 naming the field, line and column.
        let bad = server.request("POST", "/v1/jobs", body: "id: x\ntasks:\n  - id: a\n    commandLine: 'true'\n    multiInstance: { instances: zero }\n")
        XCTAssertEqual(bad.status, 400, bad.text)
        XCTAssertEqual(bad.errorField, "tasks[0].multiInstance.instances", bad.text)
        XCTAssertEqual((((bad.json as? [String: Any])?["error"]) as? [String: Any])?["line"] as? Int, 5, bad.text)
        let impossible = server.request("POST", "/v1/jobs", body: "id: x\ntasks:\n  - { id: a, commandLine: 'true', multiInstance: { instances: 99 } }\n")
        XCTAssertEqual(impossible.status, 422, "well-formed but impossible")
        XCTAssertEqual(impossible.errorField, "tasks")
        XCTAssertTrue(impossible.errorMessage?.contains("can never run") == true, impossible.text)
        XCTAssertEqual(server.request("POST", "/v1/jobs?pool=no/such", body: "id: x\ntasks: [{id: a, commandLine: 'true'}]").errorField, "pool")

        // Path parameters are ids; logs never leave the task's directory.
        XCTAssertEqual(server.request("GET", "/v1/jobs/bad%20id").status, 400)
        XCTAssertEqual(server.request("GET", "/v1/jobs/..%2F..%2Fetc").status, 400)
        XCTAssertEqual(server.request("GET", "/v1/jobs/nosuchjob").status, 404)

        let submitted = server.request("POST", "/v1/jobs", body: "id: api\ntasks:\n  - { id: hello, commandLine: echo hello api }\n  - { id: long, commandLine: sleep 120 }\n")
        XCTAssertEqual(submitted.status, 201, submitted.text)
        XCTAssertEqual((submitted.json as? [String: String])?["id"], "api")
        let again = server.request("POST", "/v1/jobs", body: "id: api\ntasks:\n  - { id: a, commandLine: 'true' }\n")
        XCTAssertEqual((again.json as? [String: String])?["id"], "api-2", "ids are never reused")
        // The logs of the first task, and the same request trying to escape.
        var logs = ServerProcess.Answer(status: 0, body: Data(), headers: [:])
        let deadline = Date() + 30
        while Date() < deadline {
            logs = server.request("GET", "/v1/jobs/api/tasks/hello/logs")
            if logs.status == 200, logs.text == "hello api\n" { break }
            usleep(50_000)
        }
        XCTAssertEqual(logs.text, "hello api\n")
        XCTAssertEqual(server.request("GET", "/v1/jobs/api/tasks/hello/logs?offset=6").text, "api\n")
        // Paths come out as written (one JSON style: no `\/`), in the API and in serve.json.
        let shown = server.request("GET", "/v1/jobs/api").text
        XCTAssertTrue(shown.contains("/attempt-1") && !shown.contains("\\/"), shown)
        let endpoint = Harness.read("\(server.home)/serve.json")
        XCTAssertTrue(endpoint.contains("http://127.0.0.1:"), endpoint)
        XCTAssertEqual(server.request("GET", "/v1/jobs/api/tasks/hello/logs?node=../../../etc").status, 400)
        XCTAssertEqual(server.request("GET", "/v1/jobs/api/tasks/hello/logs?node=elsewhere").status, 404)
        XCTAssertEqual(server.request("GET", "/v1/jobs/api/tasks/hello/logs?stream=passwd").errorField, "stream")
        XCTAssertEqual(server.request("GET", "/v1/jobs/api/tasks/..%2Fhello/logs").status, 400)
        XCTAssertEqual(server.request("GET", "/v1/usage?by=nothing").errorField, "by")

        // Cancel one job through the CLI (which goes through the API): the server goes on.
        while ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "api").isEmpty, Date() < deadline { usleep(50_000) }
        XCTAssertEqual(server.request("DELETE", "/v1/jobs/api").status, 409, "a running job is cancelled before it is deleted")
        let cancel = try Harness.cohort(["job", "cancel", "api"], home: home)
        XCTAssertEqual(cancel.exitCode, 0, cancel.stderr + server.log)
        XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "api"), [])
        let show = server.request("GET", "/v1/jobs/api")
        let detail = try XCTUnwrap(show.json as? [String: Any])
        XCTAssertEqual((detail["job"] as? [String: Any])?["state"] as? String, "completed")
        XCTAssertEqual(server.request("GET", "/v1/health").status, 200, "the server outlives a cancelled job")
        XCTAssertEqual(try waitCompleted("api-2", home: home).succeeded, 1)
        XCTAssertEqual(server.request("DELETE", "/v1/jobs/api").status, 204)
        XCTAssertEqual(server.request("GET", "/v1/jobs/api").status, 404)
        XCTAssertEqual(server.request("GET", "/v1/pools/local").status, 200)
        XCTAssertEqual(server.request("GET", "/v1/usage?by=pool&since=1d").status, 200)

        // A second server on the same state directory is refused; SIGTERM stops gracefully.
        let second = try ServerProcess(home: home)
        second.process.waitUntilExit()
        XCTAssertEqual(second.process.terminationStatus, 2)
        XCTAssertTrue(second.log.contains("another cohort serve"), second.log)
        XCTAssertEqual(server.stop(), 0, server.log)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(home)/serve.json"))
    }

    func testListeningBeyondLoopbackNeedsATokenMadeBeforehand() throws {
        let home = Harness.temporaryDirectory()
        let open = try ServerProcess(home: home, arguments: ["--listen", "0.0.0.0:0"])
        open.process.waitUntilExit()
        XCTAssertEqual(open.process.terminationStatus, 2)
        XCTAssertTrue(open.log.contains("not a loopback address"), open.log)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(home)/api-token"))
        // A token file others can read is refused too.
        try "0123456789abcdef0123456789abcdef\n".write(toFile: "\(home)/token", atomically: true, encoding: .utf8)
        chmod("\(home)/token", 0o644)
        let loose = try ServerProcess(home: home, arguments: ["--listen", "0.0.0.0:0", "--token-file", "\(home)/token"])
        loose.process.waitUntilExit()
        XCTAssertEqual(loose.process.terminationStatus, 2)
        XCTAssertTrue(loose.log.contains("chmod 600"), loose.log)
        chmod("\(home)/token", 0o600)
        let served = try ServerProcess(home: home, arguments: ["--listen", "0.0.0.0:0", "--token-file", "\(home)/token"])
        try served.waitUntilListening()
        XCTAssertEqual(served.request("GET", "/v1/health", token: "0123456789abcdef0123456789abcdef").status, 200)
        XCTAssertEqual(served.request("GET", "/v1/health", token: .some(nil)).status, 401)
        XCTAssertEqual(served.stop(), 0)
    }

    /// A disabled job starts nothing until enabled; disabling a running job lets its
    /// running task finish and holds the rest.
    func testDisabledJobsWaitUntilEnabled() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "1", "--slots", "1"], home: home).exitCode, 0)
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let held = "\(home)/held.yaml", chain = "\(home)/chain.yaml"
        try "id: held\ntasks:\n  - { id: a, commandLine: 'true' }\n".write(toFile: held, atomically: true, encoding: .utf8)
        try "id: chain\ntasks:\n  - { id: a, commandLine: sleep 0.8 }\n  - { id: b, commandLine: 'true' }\n".write(toFile: chain, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Harness.cohort(["submit", "--disabled", held], home: home).stdout, "held\n")
        XCTAssertEqual(try Harness.cohort(["submit", chain], home: home).stdout, "chain\n")
        let store = try JobStore(stateDirectory: home)
        let deadline = Date() + 30
        while try store.tasks(jobId: "chain")[0].attempts.isEmpty && ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: "chain").isEmpty,
              Date() < deadline { usleep(20_000) }
        let disable = try Harness.cohort(["job", "disable", "chain"], home: home)
        XCTAssertEqual(disable.stdout, "job chain is disabled\n", disable.stderr)
        usleep(2_000_000)
        XCTAssertEqual(try store.job("held")?.state, .disabled)
        XCTAssertEqual(try store.tasks(jobId: "held")[0].attempts.count, 0, "a disabled job starts nothing")
        let tasks = try store.tasks(jobId: "chain")
        XCTAssertEqual(tasks[0].result, .success, "the running task finished")
        XCTAssertEqual(tasks[1].attempts.count, 0, "the waiting one did not start")
        XCTAssertEqual(try store.job("chain")?.state, .disabled)
        XCTAssertEqual(try Harness.cohort(["job", "enable", "chain"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["job", "enable", "held"], home: home).exitCode, 0)
        XCTAssertEqual(try waitCompleted("chain", home: home).succeeded, 2)
        XCTAssertEqual(try waitCompleted("held", home: home).succeeded, 1)
        XCTAssertEqual(server.request("POST", "/v1/jobs/held/disable").status, 409, "a completed job cannot be disabled")
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    /// The CLI talks to the server: here from another machine's point of view (an empty
    /// state directory, $COHORT_SERVER and $COHORT_TOKEN), and `logs --follow` streams.
    func testTheCLIWorksThroughTheAPIFromElsewhere() throws {
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let elsewhere = Harness.temporaryDirectory()
        func remote(_ arguments: [String]) throws -> Harness.CLIResult {
            try Harness.cohort(arguments, home: elsewhere, environment: ["COHORT_SERVER": server.url, "COHORT_TOKEN": server.token])
        }
        let file = "\(elsewhere)/job.yaml"
        try "id: far\ntasks:\n  - { id: talk, commandLine: \"sh -c 'for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done'\" }\n  - { id: bad, commandLine: sh -c 'exit 5' }\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try remote(["submit", file]).stdout, "far\n")
        let follow = try remote(["logs", "--follow", "far", "talk"])
        XCTAssertEqual(follow.exitCode, 0, follow.stderr)
        XCTAssertEqual(follow.stdout, (1...5).map { "line \($0)\n" }.joined())
        let wait = try remote(["wait", "far"])
        XCTAssertEqual(wait.exitCode, 1, "a task failed: \(wait.stdout)\(wait.stderr)")
        let list = try remote(["job", "list", "--output", "json"])
        let jobs = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]], list.stderr)
        XCTAssertEqual(jobs.map { $0["id"] as? String }, ["far"])
        let show = try remote(["task", "show", "far", "bad"])
        XCTAssertTrue(show.stdout.contains("exit code: 5"), show.stdout + show.stderr)
        XCTAssertEqual(try remote(["logs", "far", "nosuch"]).exitCode, 2)
        XCTAssertEqual(try remote(["usage", "--by", "pool", "--output", "json"]).exitCode, 0)
        let wrong = try Harness.cohort(["job", "list"], home: elsewhere, environment: ["COHORT_SERVER": server.url, "COHORT_TOKEN": "not-the-token-at-all"])
        XCTAssertEqual(wrong.exitCode, 2)
        XCTAssertTrue(wrong.stderr.contains("bearer token"), wrong.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(elsewhere)/cohort.sqlite"), "nothing was read from a local store")
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    /// API calls that reach a job's runner (disable, enable, cancel) while thousands of
    /// attempts report their ends: no deadlock between the API and the runner (found by
    /// schemathesis: the server stopped answering).
    func testAPICallsDuringABusyRunNeverDeadlock() throws {
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let many = "id: busy\ntasks:\n" + (0..<1500).map { "  - { id: t\($0), commandLine: 'true' }\n" }.joined()
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: many).status, 201)
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: idle\ntasks: [{ id: a, commandLine: sleep 60 }]\n").status, 201)
        let store = try JobStore(stateDirectory: home)
        var rounds = 0
        while try store.job("busy")?.state != .completed {
            for path in ["/v1/jobs/idle/disable", "/v1/jobs/idle/enable", "/v1/jobs/busy/disable", "/v1/jobs/busy/enable"] {
                let answer = server.request("POST", path)
                XCTAssertTrue([200, 409].contains(answer.status), "\(path): \(answer.status) \(answer.text)")
                if answer.status == 0 { server.killHard(); return XCTFail("the server stopped answering: \(server.log)") }
            }
            rounds += 1
        }
        XCTAssertGreaterThan(rounds, 3)
        XCTAssertEqual(server.request("POST", "/v1/jobs/idle/cancel").status, 202)
        XCTAssertEqual(try waitCompleted("idle", home: home).failed, 1)
        XCTAssertEqual(try store.job("busy")?.succeeded, 1500)
        XCTAssertEqual(server.stop(), 0, server.log)
    }

    /// docs/openapi.yaml describes exactly the routes the server has.
    func testTheOpenAPIDocumentDescribesEveryRoute() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        let document = try XCTUnwrap(try Yams.load(yaml: text) as? [String: Any])
        XCTAssertEqual(document["openapi"] as? String, "3.0.3")
        let paths = try XCTUnwrap(document["paths"] as? [String: Any])
        var documented: Set<String> = []
        for (path, item) in paths {
            for key in (item as? [String: Any] ?? [:]).keys where ["get", "head", "post", "put", "delete", "patch"].contains(key) {
                documented.insert("\(key.uppercased()) \(path)")
            }
        }
        let service = try BatchService(stateDirectory: Harness.temporaryDirectory(), cohortExecutable: Harness.executable("cohort"), log: { _ in })
        let served = Set(APIServer(service: service, token: "unused-token-0123456789").routeList.map { route in
            "\(route.method) /" + route.path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
        })
        XCTAssertEqual(documented, served)
    }

    /// Thousands of mutated job bodies: every answer is a 201 or a 400 with a message, and
    /// the server is still healthy after.
    func testMutatedBodiesGetClearErrorsAndNeverCrashTheServer() throws {
        let home = Harness.temporaryDirectory()
        // Valid mutants go to a pool whose one node is drained: accepted, they wait for it
        // and never run (a graceful stop leaves them queued).
        XCTAssertEqual(try Harness.cohort(["pool", "add", "fuzz", "--hosts", "fuzz-node1"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["node", "drain", "--pool", "fuzz", "fuzz-node1"], home: home).exitCode, 0)
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        let seeds = [
            "id: fz\npool: fuzz\npriority: 3\nenvironment: { A: b }\ntasks:\n  - id: a\n    commandLine: echo a\n    constraints: { maxWallClockTime: 10s, maxTaskRetryCount: 1 }\n  - id: b\n    commandLine: [sh, -c, 'exit 0']\n    dependsOn: [a]\n    multiInstance: { instances: 1, processesPerNode: 1, transport: tcp, coordinationCommandLine: 'true' }\n",
            "{\"id\": \"fz\", \"poolInfo\": {\"poolId\": \"fuzz\"}, \"tasks\": [{\"id\": \"1\", \"commandLine\": \"true\"}, {\"id\": \"2\", \"commandLine\": \"true\", \"dependsOn\": {\"taskIdRanges\": [{\"start\": 1, \"end\": 1}]}}]}",
        ]
        let pieces = ["", " ", "\n", ":", "-", "[", "]", "{", "}", "'", "\"", "0", "-1", "99999999999999999999", "null", "~", "&a", "*a", "!!int", "\t", "é", "\u{0}", "tasks", "id", "dependsOn: [zz]", "x: y", "a", ",", "#",
                      // depth, size and numeric extremes
                      String(repeating: "[", count: 5000), String(repeating: "{\"a\":", count: 3000), String(repeating: "- ", count: 3000),
                      String(repeating: "x", count: 200_000), String(repeating: "9", count: 400), "1e308", "-1e308", ".inf", ".nan",
                      "9223372036854775808", "-9223372036854775809", "P99999999999999D", "replicas: 1000000000", "slots: 1000000000000"]
        var random = SplitMix(seed: 42)
        var counts: [Int: Int] = [:]
        for round in 0..<2000 {
            var text = Array(seeds[round % seeds.count].unicodeScalars)
            for _ in 0..<(1 + Int(random.next() % 3)) {
                let position = Int(random.next() % UInt64(text.count + 1))
                switch random.next() % 3 {
                case 0: if position < text.count { text.remove(at: position) }
                case 1: text.insert(contentsOf: pieces[Int(random.next() % UInt64(pieces.count))].unicodeScalars, at: position)
                default:
                    let end = min(text.count, position + Int(random.next() % 8))
                    text.replaceSubrange(position..<end, with: pieces[Int(random.next() % UInt64(pieces.count))].unicodeScalars)
                }
            }
            var body = ""
            body.unicodeScalars.append(contentsOf: text)
            let answer = server.request("POST", "/v1/jobs", body: body)
            counts[answer.status, default: 0] += 1
            XCTAssertTrue([201, 400, 422].contains(answer.status), "round \(round): \(answer.status) \(answer.text) for \(body.debugDescription)")
            if answer.status == 400 || answer.status == 422 {
                XCTAssertFalse((answer.errorMessage ?? "").isEmpty, "round \(round): no message: \(answer.text)")
            }
            if ![201, 400, 422].contains(answer.status) { break }
        }
        print("mutated job bodies: 2000 sent, answers by status: \(counts.sorted { $0.key < $1.key })")
        XCTAssertGreaterThan(counts[400] ?? 0, 1000, "\(counts)")
        XCTAssertGreaterThan(counts[201] ?? 0, 10, "valid mutants are queued: \(counts)")
        let tasks = server.request("GET", "/v1/jobs")
        XCTAssertFalse(tasks.text.contains("\"completed\""), "nothing ran on the drained node: \(tasks.text.prefix(2000))")
        XCTAssertEqual(server.request("GET", "/v1/health").status, 200, server.log)
        XCTAssertEqual(server.stop(), 0, server.log)
    }
}

/// A small seeded generator, so a failing random test can be replayed from its seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49EB_133B_FA34
        return z ^ (z >> 31)
    }
}
