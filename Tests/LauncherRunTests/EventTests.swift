import Foundation
import XCTest
@testable import Launcher

/// `GET /v1/events` and `cohort events` against a real `cohort serve`.
final class EventTests: XCTestCase {
    func testTheEventStreamTellsWhatHappenedAsItHappensAndResumesAfterAnId() throws {
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        // A follower started before anything happens: it sees everything as it happens.
        let followed = "\(home)/followed.txt"
        var environment = ProcessInfo.processInfo.environment
        environment["COHORT_HOME"] = home
        let follower = try ChildProcess([Harness.executable("cohort"), "events", "--follow"], environment: environment, directory: home,
                                        stdout: followed, stderr: "\(home)/follower-errors.txt")
        usleep(500_000)
        let job = "id: watched\ntasks:\n  - { id: ok, commandLine: 'true' }\n  - { id: bad, commandLine: \"sh -c 'exit 3'\" }\n"
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: job).status, 201)
        _ = try Harness.waitCompleted("watched", home: home)
        let deadline = Date() + 10
        while !Harness.read(followed).contains("job.completed"), Date() < deadline { usleep(50_000) }
        let lines = Harness.read(followed).split(separator: "\n").map(String.init)
        func line(_ pattern: String) -> String? { lines.first { $0.contains(pattern) } }
        XCTAssertNotNil(line("job.submitted job=watched"), "\(lines)")
        XCTAssertNotNil(line("job.started job=watched"), "\(lines)")
        XCTAssertEqual(lines.filter { $0.contains("attempt.started job=watched") }.count, 2, "\(lines)")
        XCTAssertNotNil(line("attempt.ended job=watched task=ok attempt=1 nodes=local-"), "\(lines)")
        XCTAssertTrue(line("task=ok attempt=1")?.contains("result=success state=completed") == true || lines.contains { $0.contains("task=ok") && $0.contains("result=success") }, "\(lines)")
        XCTAssertNotNil(lines.first { $0.contains("attempt.ended") && $0.contains("task=bad") && $0.contains("result=exitCode") }, "\(lines)")
        XCTAssertNotNil(line("job.completed job=watched result=failure"), "\(lines)")
        // Each line's time is now's, in ISO 8601 (the CLI read the server's seconds since 1970
        // as seconds since 2001 and printed 2057).
        for line in lines {
            let time = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            XCTAssertLessThan(abs(JSONStyle.time(time)?.timeIntervalSinceNow ?? .infinity), 120, line)
        }
        // The API writes times as the CLI does: ISO 8601 UTC with milliseconds.
        let detail = server.request("GET", "/v1/jobs/watched?tasks=true").text
        for field in ["submitted", "start", "end", "at"] {
            XCTAssertNotNil(detail.range(of: #""\#(field)":"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z""#, options: .regularExpression), "\(field): \(detail.prefix(600))")
        }
        let ids = lines.compactMap { Int($0.split(separator: " ").first?.dropFirst() ?? "") }
        XCTAssertEqual(ids, ids.sorted(), "in order")
        XCTAssertEqual(Set(ids).count, ids.count, "each once")

        // Resuming: only what came after the id given; one job's; JSON lines.
        let resumed = server.request("GET", "/v1/events?follow=false&after=\(ids[2])")
        XCTAssertEqual(resumed.status, 200)
        XCTAssertTrue(resumed.headers["Content-Type"]?.hasPrefix("text/event-stream") == true)
        XCTAssertFalse(resumed.text.contains("id: \(ids[2])\n"))
        XCTAssertTrue(resumed.text.contains("id: \(ids[3])\n"), resumed.text)
        let json = try Harness.cohort(["events", "--job", "watched", "--output", "json"], home: home)
        XCTAssertEqual(json.exitCode, 0, json.stderr)
        let decoded = try json.stdout.split(separator: "\n").map { try JSONStyle.decoder().decode(ServiceEvent.self, from: Data($0.utf8)) }
        XCTAssertEqual(decoded.map(\.kind).first, "job.submitted")
        XCTAssertEqual(decoded.map(\.kind).last, "job.completed")
        XCTAssertTrue(decoded.allSatisfy { $0.job == "watched" })
        XCTAssertEqual(server.request("GET", "/v1/events?after=soon").status, 400)

        // The server's stop ends the stream, and the follower with it.
        XCTAssertEqual(server.stop(), 0, server.log)
        let ended = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var status: Termination?
        Thread { status = follower.wait(); ended.signal() }.start()
        if ended.wait(timeout: .now() + 15) == .timedOut {
            follower.signalGroup(SIGKILL)
            XCTFail("cohort events --follow went on after the server stopped")
        }
        XCTAssertEqual(status, .exited(0), Harness.read("\(home)/follower-errors.txt"))
        let without = try Harness.cohort(["events"], home: home)
        XCTAssertEqual(without.exitCode, 2, "no server: a clear error")
        XCTAssertTrue(without.stderr.contains("none runs"), without.stderr)
    }

    /// A job's `notify` URL gets its outcome POSTed once its end is recorded: a receiver on
    /// loopback that fails the first time (503) is tried again; a bad URL is refused naming the field.
    func testAJobsWebhookIsPostedItsOutcomeWhenItCompletes() throws {
        let home = Harness.temporaryDirectory()
        let port = MetricsTests.freePort()
        let received = "\(home)/received.jsonl"
        let receiver = """
            import http.server, sys
            calls = [0]
            class Hook(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    calls[0] += 1
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    if calls[0] == 1:
                        self.send_response(503); self.end_headers(); return
                    with open(sys.argv[2], "ab") as f: f.write(self.path.encode() + b" " + body + b"\\n")
                    self.send_response(204); self.end_headers()
                def log_message(self, *args): pass
            http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
            """
        try receiver.write(toFile: "\(home)/receiver.py", atomically: true, encoding: .utf8)
        let hook = try ChildProcess(["python3", "\(home)/receiver.py", "\(port)", received], environment: ["PATH": "/usr/bin:/bin"], directory: home,
                                    stdout: "\(home)/receiver.log", stderr: "\(home)/receiver.log")
        defer { hook.signalGroup(SIGKILL); _ = hook.wait() }
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        defer { _ = server.stop() }
        let bad = server.request("POST", "/v1/jobs", body: "id: hooked\nnotify: ftp://example.com/x\ntasks:\n  - { id: a, commandLine: 'true' }\n")
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(bad.errorField, "notify", bad.text)
        let job = "id: hooked\nnotify: http://127.0.0.1:\(port)/done?secret=1\ntasks:\n  - { id: a, commandLine: 'true' }\n  - { id: b, commandLine: 'false' }\n"
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: job).status, 201)
        _ = try Harness.waitCompleted("hooked", home: home)
        let deadline = Date() + 20
        while Harness.read(received).isEmpty, Date() < deadline { usleep(100_000) }
        let line = Harness.read(received).split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertTrue(line.hasPrefix("/done?secret=1 "), "the URL as given: \(line) \(server.log)")
        let outcome = try JSONStyle.decoder().decode(JobNotifier.Outcome.self, from: Data(line.drop { $0 != "{" }.utf8))
        XCTAssertEqual(outcome.id, "hooked")
        XCTAssertEqual(outcome.result, "failure")
        XCTAssertEqual([outcome.succeeded, outcome.failed], [1, 1])
        XCTAssertEqual(outcome.state, "completed")
        XCTAssertLessThan(abs(outcome.finished.timeIntervalSinceNow), 120, "an ISO 8601 time of now: \(line)")
        while !server.log.contains("job hooked: notified"), Date() < deadline { usleep(100_000) }
        XCTAssertTrue(server.log.contains("job hooked: notified http://127.0.0.1:\(port)/done: HTTP 204"), "tried again after the 503, the query kept out of the log: \(server.log)")

        // Jobs that end without running are told too: one cancelled while held, one whose
        // dependency (hooked, which failed) ended otherwise than it asks.
        let unrun = { (id: String) in "id: \(id)\nnotify: http://127.0.0.1:\(port)/\(id)\ntasks:\n  - { id: a, commandLine: 'true' }\n  - { id: b, commandLine: 'true' }\n" }
        XCTAssertEqual(server.request("POST", "/v1/jobs?disabled=true", body: unrun("held")).status, 201)
        XCTAssertEqual(server.request("POST", "/v1/jobs/held/cancel").status, 200)
        XCTAssertEqual(server.request("POST", "/v1/jobs?after=hooked", body: unrun("waiting")).status, 201)
        while Harness.read(received).split(separator: "\n").count < 3, Date() < deadline + 20 { usleep(100_000) }
        var told: [String: JobNotifier.Outcome] = [:]
        for line in Harness.read(received).split(separator: "\n").dropFirst() {
            let outcome = try JSONStyle.decoder().decode(JobNotifier.Outcome.self, from: Data(line.drop { $0 != "{" }.utf8))
            told[outcome.id] = outcome
        }
        XCTAssertEqual(told.keys.sorted(), ["held", "waiting"], Harness.read(received))
        for outcome in told.values {
            XCTAssertEqual([outcome.result, outcome.state], ["failure", "completed"])
            XCTAssertEqual([outcome.succeeded, outcome.failed], [0, 2])
            XCTAssertNil(outcome.started, "it never started")
        }
    }
}
