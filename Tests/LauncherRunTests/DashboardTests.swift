import Foundation
import XCTest
@testable import API
@testable import Launcher

/// The web dashboard of a real `cohort serve`, looked at by a real headless Chromium
/// (Debian's `chromium`, installed by scripts/setup.sh) driven over the DevTools protocol
/// (`Tests/Browser/browse.py`), and its login and forms probed with curl. A missing browser
/// fails the test: CI installs it.
final class DashboardTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// Screenshots and page copies, kept after the run (`test-artifacts/dashboard/`).
    static let artifacts: String = {
        let path = ProcessInfo.processInfo.environment["COHORT_TEST_ARTIFACTS"] ?? root.appendingPathComponent("test-artifacts").path
        try? FileManager.default.createDirectory(atPath: "\(path)/dashboard", withIntermediateDirectories: true)
        return "\(path)/dashboard"
    }()

    struct Visit {
        var outcomes: [[String: Any]]
        var complaints: [String]
    }

    /// Runs the browser through `steps` (see browse.py) in one session.
    func browse(_ steps: [[String: Any]], home: String) throws -> Visit {
        let plan = "\(home)/plan-\(UUID().uuidString.prefix(6)).json"
        try JSONSerialization.data(withJSONObject: ["chromium": "chromium", "size": [1280, 900], "steps": steps]).write(to: URL(fileURLWithPath: plan))
        let script = Self.root.appendingPathComponent("Tests/Browser/browse.py").path
        let run = Harness.shell(["sh", "-c", "python3 \"$0\" < \"$1\"", script, plan], mergeErrors: false, timeout: 180)
        XCTAssertEqual(run.status, 0, run.output)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any], run.output)
        let visit = Visit(outcomes: json["steps"] as? [[String: Any]] ?? [], complaints: json["complaints"] as? [String] ?? [])
        for outcome in visit.outcomes { XCTAssertNil(outcome["error"], "the browser: \(outcome)") }
        return visit
    }

    /// curl, as a browser's form would post: `-D -` headers first, then the body.
    func curl(_ arguments: [String]) -> (status: Int, headers: String, body: String) {
        let run = Harness.shell(["curl", "-s", "-D", "-", "--max-time", "30"] + arguments, mergeErrors: false)
        let parts = run.output.components(separatedBy: "\r\n\r\n")
        let headers = parts.first ?? ""
        let status = Int(headers.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, headers, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    func header(_ name: String, in headers: String) -> String? {
        for line in headers.components(separatedBy: "\r\n") where line.lowercased().hasPrefix(name.lowercased() + ":") {
            return String(line.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    func testTheDashboardShowsPoolsJobsATimelineAndLiveOutputInARealBrowser() throws {
        XCTAssertEqual(Harness.shell(["sh", "-c", "command -v chromium && command -v python3"]).status, 0, "chromium is not installed: run scripts/setup.sh")
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        defer { _ = server.stop() }
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: earlier\ntasks:\n  - { id: a, commandLine: 'true' }\n  - { id: b, commandLine: \"sh -c 'exit 3'\" }\n").status, 201)
        _ = try Harness.waitCompleted("earlier", home: home)
        // Prints three lines at once, then runs until the browser has seen it running: the
        // first step's copy of the page is written after its check (a fixed sleep lost the race
        // on a slow machine, where Chromium took longer to start than the task to end).
        let seen = "\(Self.artifacts)/job-running.html"
        try? FileManager.default.removeItem(atPath: seen)
        let talk = "sh -c 'for i in 1 2 3; do echo line $i; done; i=0; while [ ! -e \\\"$0\\\" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done' \(seen)"
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: live\ntasks:\n  - { id: talk, commandLine: \"\(talk)\" }\n  - { id: after, commandLine: 'true', dependsOn: [talk] }\n").status, 201)
        let nodes = try XCTUnwrap((server.request("GET", "/v1/pools/local").json as? [String: Any])?["nodes"] as? [[String: Any]]).count

        let login = try Harness.cohort(["dashboard", "live"], home: home)
        XCTAssertEqual(login.exitCode, 0, login.stderr)
        let link = login.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(link.hasPrefix(server.url + "/login?code="), link)
        let overviewLink = try Harness.cohort(["dashboard"], home: home).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let visit = try browse([
            // The one-time link logs in and lands on the job's page; its output appears as the task writes it.
            ["url": link, "wait": "(document.getElementById('log') || {}).textContent === 'line 1\\nline 2\\nline 3\\n'", "timeout": 20,
             "eval": "document.querySelector('section.job').dataset.state", "dom": seen,
             "screenshot": "\(Self.artifacts)/job-running.png"],
            // Without reloading, the page redraws itself when the job ends (events).
            ["wait": "document.querySelector('section.job').dataset.state === 'completed'", "timeout": 40,
             "eval": "[document.getElementById('live').dataset.redrawn, document.querySelectorAll('svg.timeline g.attempt').length, document.getElementById('log').textContent]",
             "screenshot": "\(Self.artifacts)/job-completed.png"],
            // The same session reads the overview; a used link logs nobody in.
            ["url": server.url + "/", "wait": "document.querySelectorAll('.pool .node').length > 0", "dom": "\(Self.artifacts)/overview.html",
             "screenshot": "\(Self.artifacts)/overview.png",
             "eval": "[document.querySelectorAll('.pool[data-pool=local] .node').length, document.querySelector('table[data-jobs=finished] tr[data-job=live]')?.dataset.state, document.querySelector('table[data-jobs=finished] tr[data-job=earlier]')?.dataset.state, document.querySelectorAll('svg.usage rect[data-pool=local]').length]"],
            ["url": link, "eval": "document.querySelector('.notice')?.textContent"],
        ], home: home)
        let steps = visit.outcomes
        XCTAssertEqual(steps.count, 4)
        guard steps.count == 4 else { return }
        XCTAssertEqual(steps[0]["location"] as? String, "/jobs/live", "the link landed on the job's page")
        XCTAssertEqual(steps[0]["met"] as? Bool, true, "the task's output reached the page: \(Harness.read("\(Self.artifacts)/job-running.html").suffix(1500))")
        XCTAssertEqual(steps[0]["value"] as? String, "running")
        XCTAssertEqual(steps[1]["met"] as? Bool, true, "the page saw the job end without a reload")
        let ended = steps[1]["value"] as? [Any] ?? []
        XCTAssertGreaterThanOrEqual(Int(ended.first as? String ?? "") ?? 0, 1, "redrawn from events: \(ended)")
        XCTAssertEqual(ended.count > 1 ? ended[1] as? Int : nil, 2, "a timeline row per attempt")
        XCTAssertEqual(ended.count > 2 ? ended[2] as? String : nil, "line 1\nline 2\nline 3\n", "the output, once, kept across redraws")
        let overview = steps[2]["value"] as? [Any] ?? []
        XCTAssertEqual(overview.first as? Int, nodes, "a tile per node of the pool")
        XCTAssertEqual(overview.count > 2 ? [overview[1] as? String, overview[2] as? String] : [], ["completed", "completed"])
        XCTAssertEqual(overview.count > 3 ? overview[3] as? Int : nil, 1, "today's usage of the local pool is a bar")
        XCTAssertEqual(steps[3]["location"] as? String, "/login?code=" + (link.components(separatedBy: "code=").last ?? ""))
        XCTAssertTrue((steps[3]["value"] as? String)?.contains("that login link is used") == true, "\(steps[3])")
        // Nothing the browser complained of: console errors or warnings, exceptions, CSP
        // violations, answers of 400 and up — except the used link's 401, asked for above.
        XCTAssertEqual(visit.complaints.filter { !($0.contains("401") && $0.contains("/login?code=")) }, [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(Self.artifacts)/overview.png"))
        XCTAssertEqual(overviewLink.components(separatedBy: "code=").first, server.url + "/login?")

        // The first load's weight: the page, its stylesheet and its script.
        var weight = 0
        let cookie = try loginWithToken(server)
        for path in ["/", "/assets/dashboard.css", "/assets/dashboard.js"] {
            let answer = curl(["-H", "Cookie: \(cookie)", server.url + path])
            XCTAssertEqual(answer.status, 200, path)
            weight += answer.body.utf8.count
        }
        print("the dashboard's first load: \(weight) bytes")
        XCTAssertLessThanOrEqual(weight, 300 << 10, "the first load stays under 300 KB")
    }

    /// Logs in with the token through the form, as a browser does; the session cookie.
    func loginWithToken(_ server: ServerProcess, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let answer = curl(["--data-urlencode", "token=\(server.token)", "--data-urlencode", "next=/jobs/x", "-H", "Origin: \(server.url)", server.url + "/login"])
        XCTAssertEqual(answer.status, 303, answer.body, file: file, line: line)
        XCTAssertEqual(header("Location", in: answer.headers), "/jobs/x", file: file, line: line)
        let setCookie = try XCTUnwrap(header("Set-Cookie", in: answer.headers), answer.headers, file: file, line: line)
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] { XCTAssertTrue(setCookie.contains(attribute), setCookie, file: file, line: line) }
        return String(setCookie.prefix { $0 != ";" })
    }

    /// Logging in, the cookie's reach, and the forms' defences: a cancel needs the session's
    /// CSRF token and a same-origin post; the cookie reads the API but never changes anything.
    func testLoginCookiesAndCSRFGuardTheDashboardsActions() throws {
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        defer { _ = server.stop() }
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: "id: long\ntasks:\n  - { id: wait, commandLine: 'sleep 60' }\n").status, 201)

        // Nobody logged in: pages send to the login page (and back), the API wants its token.
        let anonymous = curl([server.url + "/jobs/long"])
        XCTAssertEqual(anonymous.status, 303)
        XCTAssertEqual(header("Location", in: anonymous.headers), "/login?next=%2Fjobs%2Flong")
        XCTAssertEqual(curl([server.url + "/v1/jobs"]).status, 401)
        for path in ["//v1/jobs", "/jobs/../v1/jobs", "/assets/../metrics"] {
            XCTAssertNotEqual(curl(["--path-as-is", server.url + path]).status, 200, "\(path) is no way around the token")
        }
        let wrong = curl(["--data-urlencode", "token=not-the-token", server.url + "/login"])
        XCTAssertEqual(wrong.status, 401)
        XCTAssertTrue(wrong.body.contains("not this server&#39;s token"), wrong.body)
        XCTAssertNil(header("Set-Cookie", in: wrong.headers))
        let forged = "\(DashboardSessions.cookieName)=\(Int(Date().timeIntervalSince1970) + 3600).\(String(repeating: "a", count: 32)).\(String(repeating: "0", count: 64))"
        XCTAssertEqual(curl(["-H", "Cookie: \(forged)", server.url + "/"]).status, 303, "a forged cookie is nobody's")
        // Another site's next page is not followed.
        let away = curl(["--data-urlencode", "token=\(server.token)", "--data-urlencode", "next=//evil.example/", server.url + "/login"])
        XCTAssertEqual(header("Location", in: away.headers), "/")

        let cookie = try loginWithToken(server)
        let page = curl(["-H", "Cookie: \(cookie)", server.url + "/jobs/long"])
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(header("Content-Security-Policy", in: page.headers)?.contains("script-src 'self'") == true, page.headers)
        XCTAssertEqual(header("X-Frame-Options", in: page.headers), "DENY")
        let csrf = try XCTUnwrap(page.body.range(of: #"name="csrf" value="[0-9a-f]{64}""#, options: .regularExpression).map {
            String(page.body[$0].dropFirst(#"name="csrf" value=""#.count).dropLast())
        }, "the page's forms carry a CSRF token")

        // The cookie reads the API (the page's script does) but changes nothing there.
        XCTAssertEqual(curl(["-H", "Cookie: \(cookie)", server.url + "/v1/jobs/long"]).status, 200)
        XCTAssertEqual(curl(["-X", "POST", "-H", "Cookie: \(cookie)", server.url + "/v1/jobs/long/cancel"]).status, 401)
        // A cancel without the token, or from another origin, is refused; the job runs on.
        XCTAssertEqual(curl(["-H", "Cookie: \(cookie)", "--data", "csrf=", server.url + "/jobs/long/cancel"]).status, 403)
        XCTAssertEqual(curl(["-H", "Cookie: \(cookie)", "-H", "Origin: http://evil.example", "--data", "csrf=\(csrf)", server.url + "/jobs/long/cancel"]).status, 403)
        XCTAssertEqual(curl(["-H", "Cookie: \(cookie)", "-H", "Sec-Fetch-Site: cross-site", "--data", "csrf=\(csrf)", server.url + "/jobs/long/cancel"]).status, 403)
        XCTAssertEqual(curl(["--data", "csrf=\(csrf)", server.url + "/jobs/long/cancel"]).status, 401, "no session, no cancel")
        XCTAssertNotEqual(try JobStore(stateDirectory: home).job("long")?.state, .completed)
        // The real form: same origin, the session's token.
        let cancel = curl(["-H", "Cookie: \(cookie)", "-H", "Origin: \(server.url)", "-H", "Sec-Fetch-Site: same-origin", "--data", "csrf=\(csrf)", server.url + "/jobs/long/cancel"])
        XCTAssertEqual(cancel.status, 303, cancel.body)
        XCTAssertEqual(header("Location", in: cancel.headers), "/jobs/long?notice=job%20long%20is%20terminating")
        XCTAssertEqual(try Harness.waitCompleted("long", home: home).failed, 1)

        // Logging out ends the session on the server, not just in the browser.
        XCTAssertEqual(curl(["-H", "Cookie: \(cookie)", "--data", "csrf=\(csrf)", server.url + "/logout"]).status, 303)
        XCTAssertEqual(curl(["-H", "Cookie: \(cookie)", server.url + "/"]).status, 303)
        XCTAssertEqual(curl(["-H", "Cookie: \(cookie)", server.url + "/v1/jobs"]).status, 401)
    }

    /// The benchmark's store of 9,000 held jobs made a 2.7 MB overview: each table shows
    /// its first rows and says how many there are.
    func testAStoreOfThousandsOfJobsMakesAPageOfKilobytes() {
        let now = Date()
        var jobs: [JobStore.JobSummary] = []
        for index in 0..<3_000 {
            let done = index % 3 == 0
            let submitted = now.addingTimeInterval(Double(index))
            jobs.append(JobStore.JobSummary(id: "held\(index)", pool: "local", state: done ? .completed : .disabled, submitted: submitted,
                                            finished: done ? now : nil, tasks: 1, succeeded: 0, failed: 0))
        }
        let page = DashboardPages.overview(pools: [], jobs: jobs, usage: [], newestEvent: 0, csrf: "x")
        XCTAssertEqual(page.components(separatedBy: "<tr data-job=").count - 1, DashboardPages.jobRows + DashboardPages.finishedJobRows)
        XCTAssertTrue(page.contains("the first \(DashboardPages.jobRows) of 2000"), "the queued table says how many")
        XCTAssertTrue(page.contains("the newest \(DashboardPages.finishedJobRows) of 1000"))
        XCTAssertLessThan(page.utf8.count, 100_000)
    }

    /// Cookies and links are signed with a key from the token: tampered, expired, spent or
    /// another token's are refused.
    func testSessionsAndLoginCodesAreSignedExpireAndAreSpentOnce() {
        let sessions = DashboardSessions(token: "0123456789abcdef0123456789abcdef")
        let now = Date()
        let (cookie, session) = sessions.open(now: now)
        let header = "theme=dark; \(DashboardSessions.cookieName)=\(cookie)"
        XCTAssertEqual(sessions.session(cookieHeader: header, now: now)?.nonce, session.nonce)
        XCTAssertNil(sessions.session(cookieHeader: header, now: now + DashboardSessions.sessionLifetime + 1), "expired")
        var tampered = Array(cookie)
        tampered[tampered.count - 1] = tampered.last == "0" ? "1" : "0"
        XCTAssertNil(sessions.session(cookieHeader: "\(DashboardSessions.cookieName)=\(String(tampered))", now: now))
        let later = Int(now.timeIntervalSince1970) + 99_999
        let stretched = "\(later)" + cookie.drop { $0 != "." }
        XCTAssertNil(sessions.session(cookieHeader: "\(DashboardSessions.cookieName)=\(stretched)", now: now), "the expiry is signed")
        XCTAssertNil(DashboardSessions(token: "another token, another key!!").session(cookieHeader: header, now: now))
        XCTAssertNotEqual(sessions.csrfToken(session), sessions.csrfToken(sessions.open(now: now).session), "a CSRF token per session")

        let code = sessions.loginCode(now: now)
        XCTAssertFalse(sessions.redeem(code, now: now + DashboardSessions.linkLifetime + 1), "a link expires")
        XCTAssertTrue(sessions.redeem(code, now: now))
        XCTAssertFalse(sessions.redeem(code, now: now), "a link logs in once")
        XCTAssertNil(sessions.session(cookieHeader: "\(DashboardSessions.cookieName)=\(sessions.loginCode(now: now))", now: now), "a link is no cookie")
        sessions.close(session)
        XCTAssertNil(sessions.session(cookieHeader: header, now: now), "logged out")
    }
}
