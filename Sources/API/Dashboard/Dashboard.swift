import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Launcher

/// The web dashboard `cohort serve` serves at `/`: pools with their nodes, jobs, one job's
/// tasks, attempt timeline and live output, usage and cost. Pages are rendered here (HTML, a
/// stylesheet and a little script, all in the binary; nothing is fetched from elsewhere);
/// the script only follows `/v1/events` and a task's log, with the session cookie.
struct Dashboard: Sendable {
    let api: APIServer
    var sessions: DashboardSessions { api.sessions }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/") { request, _ in try page(request) { session in try overview(session) } }
        router.get("/jobs/:job") { request, context in
            try page(request) { session in try jobPage(session, APIServer.name(context, "job"), request) }
        }
        router.post("/jobs/:job/cancel") { request, context in try await cancel(request, context) }
        router.get("/login") { request, _ in loginPage(request) }
        router.post("/login") { request, _ in try await login(request) }
        router.post("/logout") { request, _ in try await logout(request) }
        router.get("/assets/dashboard.css") { _, _ in asset(DashboardAssets.stylesheet, type: "text/css; charset=utf-8") }
        router.get("/assets/dashboard.js") { _, _ in asset(DashboardAssets.script, type: "text/javascript; charset=utf-8") }
    }

    /// Whether a path is the dashboard's (its pages check their session themselves): the
    /// root, `login`, `logout`, `assets/…`, `jobs/…`. Everything else needs the API's token.
    static func ownsPath(_ path: String) -> Bool {
        let parts = path.split(separator: "/")
        guard !parts.contains(where: { $0 == "." || $0 == ".." }) else { return false }
        guard let first = parts.first else { return true }
        return ["login", "logout", "assets", "jobs"].contains(first)
    }

    // MARK: - Pages

    /// A page for a logged-in browser; others are sent to log in first (and brought back).
    func page(_ request: Request, _ render: (DashboardSessions.Session) throws -> String) throws -> Response {
        guard let session = sessions.session(cookieHeader: request.headers[.cookie]) else {
            let next = request.uri.path + (request.uri.query.map { "?\($0)" } ?? "")
            return redirect("/login?next=\(next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/")")
        }
        do { return html(try render(session)) } catch let missing as Missing {
            return html(DashboardPages.layout(title: "Not found", csrf: sessions.csrfToken(session), body: "<p class=\"notice\">\(escape(missing.message))</p>"),
                        status: .notFound)
        }
    }

    struct Missing: Error { var message: String }

    func overview(_ session: DashboardSessions.Session) throws -> String {
        let pools = api.service.occupancy()
        let jobs = try api.store.jobs()
        let prices = Dictionary(pools.compactMap { occupancy in occupancy.pool.pricePerNodeHour.map { (occupancy.pool.name, $0) } }) { a, _ in a }
        let since = Date().addingTimeInterval(-Double(DashboardPages.usageDays - 1) * 86_400)
        let usage = try api.store.usage(since: DashboardPages.startOfUTCDay(since), by: .day, prices: prices)
        return DashboardPages.overview(pools: pools, jobs: jobs, usage: usage, newestEvent: api.service.events.newestId,
                                       csrf: sessions.csrfToken(session))
    }

    func jobPage(_ session: DashboardSessions.Session, _ id: String, _ request: Request) throws -> String {
        guard let job = try api.store.job(id) else { throw Missing(message: "no job '\(id)' is stored") }
        let tasks = api.service.withWaitingReasons(try api.store.tasks(jobId: id), jobId: id)
        // The task whose output is followed: the one asked for, else the first running, else the first.
        let asked = request.uri.queryParameters.get("task")
        let followed = tasks.first { $0.displayId == asked } ?? tasks.first { $0.state == .running } ?? tasks.first
        return DashboardPages.job(job, tasks: tasks, events: try api.store.events(jobId: id), followed: followed?.displayId,
                                  newestEvent: api.service.events.newestId, notice: request.uri.queryParameters.get("notice"),
                                  csrf: sessions.csrfToken(session))
    }

    // MARK: - Actions

    /// Cancels a job from its page: a POST with the session's CSRF token, from this origin.
    func cancel(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let form = try await Self.form(request)
        guard let session = sessions.session(cookieHeader: request.headers[.cookie]) else { return refusal(.unauthorized, "log in first") }
        if let problem = crossSite(request) ?? (sessions.csrfMatches(session, form["csrf"]) ? nil : "the form's CSRF token is missing or wrong") {
            return refusal(.forbidden, problem)
        }
        let id = try APIServer.name(context, "job")
        let notice: String
        switch try api.cancel(jobId: id) {
        case .notFound: return refusal(.notFound, "no job '\(id)' is stored")
        case .refused(let message): notice = message
        case .done(let state): notice = "job \(id) is \(state.rawValue)"
        }
        return redirect("/jobs/\(id)?notice=\(notice.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")")
    }

    func loginPage(_ request: Request, problem: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        let next = Self.localPath(request.uri.queryParameters.get("next"))
        if let code = request.uri.queryParameters.get("code") {
            guard sessions.redeem(code) else {
                return html(DashboardPages.login(next: next, problem: "that login link is used, expired or not this server's: ask `cohort dashboard` for a new one"),
                            status: .unauthorized)
            }
            return loggedIn(next: next)
        }
        return html(DashboardPages.login(next: next, problem: problem), status: status)
    }

    func login(_ request: Request) async throws -> Response {
        let form = try await Self.form(request)
        let next = Self.localPath(form["next"])
        if let problem = crossSite(request) { return refusal(.forbidden, problem) }
        guard let given = form["token"], APIToken.matches(Substring(given.trimmingCharacters(in: .whitespacesAndNewlines)), api.token) else {
            return html(DashboardPages.login(next: next, problem: "that is not this server's token (the api-token file in its state directory)"),
                        status: .unauthorized)
        }
        return loggedIn(next: next)
    }

    func loggedIn(next: String) -> Response {
        let (cookie, _) = sessions.open()
        var response = redirect(next)
        response.headers[.setCookie] = "\(DashboardSessions.cookieName)=\(cookie); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(DashboardSessions.sessionLifetime))"
        return response
    }

    func logout(_ request: Request) async throws -> Response {
        let form = try await Self.form(request)
        if let session = sessions.session(cookieHeader: request.headers[.cookie]) {
            if let problem = crossSite(request) ?? (sessions.csrfMatches(session, form["csrf"]) ? nil : "the form's CSRF token is missing or wrong") {
                return refusal(.forbidden, problem)
            }
            sessions.close(session)
        }
        var response = redirect("/login")
        response.headers[.setCookie] = "\(DashboardSessions.cookieName)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        return response
    }

    // MARK: - Pieces

    /// Why a form post is refused as another site's (nil: it is this one's). Browsers send
    /// `Origin` with every POST; `Sec-Fetch-Site` where they know it.
    func crossSite(_ request: Request) -> String? {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin", site != "none" {
            return "a form from another site (Sec-Fetch-Site: \(site)) is refused"
        }
        if let origin = request.headers[HTTPField.Name("Origin")!] {
            let host = request.head.authority ?? ""
            guard origin == "http://\(host)" || origin == "https://\(host)" else { return "a form from \(origin.prefix(100)) is refused: this server is \(host)" }
        }
        return nil
    }

    /// A path on this server to go to after logging in: never another site (`//evil`, `https:`).
    static func localPath(_ given: String?) -> String {
        guard let given, given.hasPrefix("/"), !given.hasPrefix("//"), given.count <= 1_000,
              !given.contains("\\"), given.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "\"" && $0 != "<" }) else { return "/" }
        return given
    }

    /// An `application/x-www-form-urlencoded` body's fields (a form of at most 64 KiB).
    static func form(_ request: Request) async throws -> [String: String] {
        let buffer = try await request.body.collect(upTo: 64 << 10)
        var fields: [String: String] = [:]
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String { text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    /// The headers every page gets: no framing, no sniffing, scripts and styles from here only.
    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
    ]

    func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func refusal(_ status: HTTPResponse.Status, _ message: String) -> Response {
        html(DashboardPages.layout(title: status.reasonPhrase, csrf: nil, body: "<p class=\"notice\">\(escape(message))</p>"), status: status)
    }

    func redirect(_ location: String) -> Response {
        var headers = Self.securityHeaders
        headers[.location] = location
        headers[.cacheControl] = "no-store"
        return Response(status: .seeOther, headers: headers)
    }

    func asset(_ text: String, type: String) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "max-age=3600"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Text made safe inside HTML elements and quoted attributes.
func escape(_ text: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(text.utf8.count)
    for character in text {
        switch character {
        case "&": escaped += "&amp;"
        case "<": escaped += "&lt;"
        case ">": escaped += "&gt;"
        case "\"": escaped += "&quot;"
        case "'": escaped += "&#39;"
        default: escaped.append(character)
        }
    }
    return escaped
}
