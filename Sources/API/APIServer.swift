import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Launcher

/// The HTTP/JSON API of `cohort serve` (described in `docs/openapi.yaml`). Every request
/// carries `Authorization: Bearer <token>`; every error is JSON naming what was wrong:
/// `{"error": {"status": 400, "message": "…", "field": "tasks[0].id", "line": 3, "column": 7}}`.
public struct APIServer: Sendable {
    let service: BatchService
    let store: JobStore
    let pools: PoolStore
    let token: String
    let metrics: ServiceMetrics
    let sessions: DashboardSessions

    public init(service: BatchService, token: String, metrics: ServiceMetrics = ServiceMetrics()) {
        self.service = service
        self.store = service.store
        self.pools = PoolStore(stateDirectory: service.stateDirectory)
        self.token = token
        self.metrics = metrics
        sessions = DashboardSessions(token: token)
    }

    /// The largest request body taken (a job of 100,000 tasks fits many times).
    static let maxBody = 64 << 20

    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    /// Every route: method, path (`:name` a parameter) and handler. `docs/openapi.yaml`
    /// describes exactly these (a test compares them).
    var routes: [(method: HTTPRequest.Method, path: String, handler: Handler)] {
        [
            (.get, "/v1/health", { _, _ in health() }),
            (.head, "/v1/health", { _, _ in Response(status: .ok, headers: [.contentType: "application/json"]) }),
            (.get, "/v1/jobs", { request, _ in try listJobs(request) }),
            (.post, "/v1/jobs", { request, _ in try await submit(request) }),
            (.get, "/v1/jobs/:job", { request, context in try showJob(request, context) }),
            (.delete, "/v1/jobs/:job", { _, context in try deleteJob(context) }),
            (.post, "/v1/jobs/:job/cancel", { _, context in try cancelJob(context) }),
            (.post, "/v1/jobs/:job/disable", { _, context in try hold(context, true) }),
            (.post, "/v1/jobs/:job/enable", { _, context in try hold(context, false) }),
            (.get, "/v1/jobs/:job/tasks", { _, context in try listTasks(context) }),
            (.get, "/v1/jobs/:job/tasks/:task/logs", { request, context in try logs(request, context) }),
            (.get, "/v1/pools", { _, _ in try listPools() }),
            (.get, "/v1/pools/:pool", { _, context in try showPool(context) }),
            (.get, "/v1/usage", { request, _ in try usage(request) }),
            (.get, "/v1/events", { request, _ in try events(request) }),
            // Prometheus's text format; the same token as the rest (a scrape config's `authorization`).
            (.get, "/metrics", { _, _ in
                Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                         body: .init(byteBuffer: metrics.render(service)))
            }),
        ]
    }

    /// Method and path of every route, for the test that holds the OpenAPI document to them.
    public var routeList: [(method: String, path: String)] { routes.map { ($0.method.rawValue, $0.path) } }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(RequestMetrics())
        router.middlewares.add(JSONErrors())
        router.middlewares.add(BearerAuthentication(token: token, sessions: sessions))
        for route in routes {
            router.on(RouterPath(route.path), method: route.method, use: route.handler)
        }
        // Any other method on a known path: 405 with the methods it has, not a 404.
        var methods: [String: [HTTPRequest.Method]] = [:]
        for route in routes { methods[route.path, default: []].append(route.method) }
        for (path, allowed) in methods {
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            for method in [HTTPRequest.Method.get, .head, .post, .put, .patch, .delete, .options, .trace] where !allowed.contains(method) {
                router.on(RouterPath(path), method: method) { _, _ -> Response in
                    var response = Self.error(.methodNotAllowed, "\(path) takes \(allow)")
                    response.headers[.allow] = allow
                    return response
                }
            }
        }
        Dashboard(api: self).register(on: router)
        return router
    }

    // MARK: - Handlers

    /// `GET /v1/events`: Server-Sent Events, one per job, attempt or node change, each
    /// `id: N`, `event: KIND`, `data: {json}`. `after` (or the `Last-Event-ID` a reconnecting
    /// client sends) resumes after that id; `job` keeps one job's; `follow=false` sends what
    /// is kept and ends. A stream that fell behind the kept events is told how many it
    /// missed (`event: missed`); a comment every 15 s keeps proxies from closing it; it ends
    /// when the server stops.
    func events(_ request: Request) throws -> Response {
        let query = request.uri.queryParameters
        var after = 0
        if let text = request.headers[HTTPField.Name("Last-Event-ID")!] ?? query["after"].map(String.init) {
            guard let value = Int(text), value >= 0 else { return Self.error(.badRequest, "after must be an event id (a whole number ≥ 0), found '\(text)'", field: "after") }
            after = value
        }
        var follow = true
        if let text = query["follow"].map(String.init) {
            guard let value = Bool(text) else { return Self.error(.badRequest, "follow must be true or false, found '\(text)'", field: "follow") }
            follow = value
        }
        let job = query["job"].map(String.init)
        let hub = service.events, service = self.service, start = after, follows = follow
        // The API's own JSON: times in seconds since 1970, as every answer has them.
        let encoder = Self.encoder
        let body = ResponseBody { writer in
            var last = start
            var quiet = Date()
            while true {
                let (batch, missed) = hub.events(after: last)
                var text = ""
                if missed > 0 { text += "event: missed\ndata: {\"count\":\(missed)}\n\n" }
                for event in batch where job == nil || event.job == job {
                    let data = (try? encoder.encode(event)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                    text += "id: \(event.id)\nevent: \(event.kind)\ndata: \(data)\n\n"
                }
                if let newest = batch.last?.id { last = newest }
                if text.isEmpty, Date().timeIntervalSince(quiet) >= 15 { text = ": keep-alive\n\n" }
                if !text.isEmpty {
                    try await writer.write(ByteBuffer(string: text))
                    quiet = Date()
                }
                if !follows && batch.isEmpty { break }
                if service.isStopping && batch.isEmpty { break }
                if batch.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }

    func health() -> Response {
        if let problem = service.storageProblem { return Self.error(.serviceUnavailable, problem) }
        return Self.json(["status": service.isStopping ? "stopping" : "serving", "pid": "\(getpid())"])
    }

    func listJobs(_ request: Request) throws -> Response {
        var jobs = try store.jobs()
        if let text = request.uri.queryParameters.get("state") {
            guard let state = JobState(rawValue: text) else {
                let names = JobState.allCases.map(\.rawValue)
                return Self.error(.badRequest, "state must be \(names.dropLast().joined(separator: ", ")) or \(names.last!), found '\(text)'", field: "state")
            }
            jobs.removeAll { $0.state != state }
        }
        return Self.json(jobs)
    }

    func submit(_ request: Request) async throws -> Response {
        guard !service.isStopping else { return Self.error(.serviceUnavailable, "the server is stopping and takes no new jobs") }
        if let problem = service.storageProblem { return Self.error(.serviceUnavailable, "\(problem); no new jobs until it can") }
        let buffer = try await request.body.collect(upTo: Self.maxBody)
        let text = String(buffer: buffer)
        var job: JobSpec
        do { job = try JobFile.parse(text, file: "request body") } catch {
            return Self.error(.badRequest, error.message, field: error.field, line: error.line, column: error.column)
        }
        // A job file's relative program paths start from its folder, which the body alone
        // cannot say (curl --data-binary @jobs/demo.yaml): the caller may name it.
        if let directory = request.uri.queryParameters.get("directory") {
            var isDirectory: ObjCBool = false
            guard directory.hasPrefix("/"), FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                return Self.error(.badRequest, "directory must be an absolute path to a directory on the server, found '\(directory.prefix(200))'", field: "directory")
            }
            job.resolvePrograms(relativeTo: directory)
        }
        if let pool = request.uri.queryParameters.get("pool") {
            guard Self.isName(pool) else { return Self.error(.badRequest, "pool names are 1-64 letters, digits, '-' or '_'", field: "pool") }
            job.pool = pool
        }
        for text in request.uri.queryParameters.getAll("after") {
            guard let dependency = JobDependency.parse(text), Self.isName(dependency.job) else {
                return Self.error(.badRequest, "after must be JOB, JOB:ok, JOB:any or JOB:notok, found '\(text.prefix(80))'", field: "after")
            }
            job.afterJobs = (job.afterJobs ?? []) + [dependency]
        }
        var held = false
        if let text = request.uri.queryParameters.get("disabled") {
            guard let value = Bool(text) else { return Self.error(.badRequest, "disabled must be true or false, found '\(text)'", field: "disabled") }
            held = value
        }
        let id: String
        do { id = try await Submission.submit(job, store: store, pools: pools, held: held) } catch let refused as Submission.Refused {
            // Well-formed but impossible: 422, as opposed to a malformed body's 400.
            return Self.error(.unprocessableContent, refused.description, field: refused.field)
        }
        service.wake()
        service.events.publish(ServiceEvent(kind: "job.submitted", job: id, state: held ? JobState.disabled.rawValue : JobState.active.rawValue,
                                            message: "\(job.tasks.count) task(s) on pool \(job.pool)"))
        return Self.json(["id": id], status: .created)
    }

    func showJob(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let id = try Self.name(context, "job")
        var withTasks = true
        if let text = request.uri.queryParameters.get("tasks") {
            guard let value = Bool(text) else { return Self.error(.badRequest, "tasks must be true or false, found '\(text)'", field: "tasks") }
            withTasks = value
        }
        guard let summary = try store.job(id) else { return Self.noJob(id) }
        return Self.json(JobDetail(job: summary, tasks: withTasks ? service.withWaitingReasons(try store.tasks(jobId: id), jobId: id) : nil, events: try store.events(jobId: id)))
    }

    func deleteJob(_ context: BasicRequestContext) throws -> Response {
        let id = try Self.name(context, "job")
        guard let summary = try store.job(id) else { return Self.noJob(id) }
        let removable = try summary.state == .completed || store.cancelQueued(jobId: id)
        guard removable else {
            return Self.error(.conflict, "job \(id) is \(summary.state.rawValue): cancel it first")
        }
        do { try store.delete(jobId: id) } catch let error as JobStore.StoreError { return Self.error(.conflict, error.description) }
        return Response(status: .noContent)
    }

    func cancelJob(_ context: BasicRequestContext) throws -> Response {
        let id = try Self.name(context, "job")
        switch try cancel(jobId: id) {
        case .notFound: return Self.noJob(id)
        case .refused(let message): return Self.error(.conflict, message)
        case .done(let state): return Self.json(["id": id, "state": state.rawValue], status: state == .completed ? .ok : .accepted)
        }
    }

    enum Cancellation { case notFound, refused(String), done(JobState) }

    /// Cancels a job (the API's and the dashboard's way). The same rules as `cohort job
    /// cancel`: a job no runner has taken (queued, or queued and disabled) simply never runs;
    /// a running one is ended by its runner.
    func cancel(jobId id: String) throws -> Cancellation {
        guard let summary = try store.job(id) else { return .notFound }
        switch summary.state {
        case .completed:
            return .refused("job \(id) has already completed")
        case _ where try store.cancelQueued(jobId: id):
            service.endedUnrun(id, result: "cancelled", why: "cancelled before it ran")
            return .done(.completed)
        default:
            guard service.cancel(jobId: id) else {
                return .refused("job \(id) is run by another process (cohort run); cancel it with `cohort job cancel \(id)`")
            }
            try store.markTerminating(jobId: id)
            service.events.publish(ServiceEvent(kind: "job.cancelling", job: id, state: JobState.terminating.rawValue))
            return .done(.terminating)
        }
    }

    /// Disables (holds) or enables a job: a disabled job's waiting tasks do not start.
    func hold(_ context: BasicRequestContext, _ held: Bool) throws -> Response {
        let id = try Self.name(context, "job")
        guard let summary = try store.job(id) else { return Self.noJob(id) }
        guard summary.state.canBeHeld else { return Self.error(.conflict, "job \(id) is \(summary.state.rawValue)") }
        if summary.state.mayRun, (try? store.origin(jobId: id)) == "run" {
            return Self.error(.conflict, "job \(id) is run by `cohort run`, not by this server")
        }
        // The job may have ended since it was read: then it is a conflict, not a failure.
        let state: JobState
        do { state = try store.setHeld(jobId: id, held) } catch let error as JobStore.StoreError {
            return Self.error(.conflict, error.description)
        }
        _ = service.setHeld(jobId: id, held)
        if !held { service.wake() }
        service.events.publish(ServiceEvent(kind: held ? "job.disabled" : "job.enabled", job: id, state: state.rawValue))
        return Self.json(["id": id, "state": state.rawValue])
    }

    func listTasks(_ context: BasicRequestContext) throws -> Response {
        let id = try Self.name(context, "job")
        guard try store.job(id) != nil else { return Self.noJob(id) }
        return Self.json(service.withWaitingReasons(try store.tasks(jobId: id), jobId: id))
    }

    /// A task's output from byte `offset` on; `X-Cohort-Log-Size` says how far the file
    /// goes, so a follower asks again from there.
    func logs(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let id = try Self.name(context, "job")
        let taskId = try Self.name(context, "task")
        let query = request.uri.queryParameters
        var display = taskId
        if let replica = query.get("replica") {
            guard let k = Int(replica), k >= 0 else { return Self.error(.badRequest, "replica must be a whole number ≥ 0, found '\(replica)'", field: "replica") }
            display = "\(taskId)[\(k)]"
        }
        let stream = query.get("stream") ?? "stdout"
        guard let chosen = TaskLogs.Stream(rawValue: stream) else { return Self.error(.badRequest, "stream must be stdout or stderr, found '\(stream)'", field: "stream") }
        var attempt: Int?
        if let text = query.get("attempt") {
            guard let n = Int(text), n >= 1 else { return Self.error(.badRequest, "attempt must be a whole number ≥ 1, found '\(text)'", field: "attempt") }
            attempt = n
        }
        var offset: UInt64 = 0
        if let text = query.get("offset") {
            guard let n = UInt64(text) else { return Self.error(.badRequest, "offset must be a whole number ≥ 0, found '\(text)'", field: "offset") }
            offset = n
        }
        let node = query.get("node")
        if let node, node.isEmpty || node.contains("/") || node.contains("\0") || node == ".." {
            return Self.error(.badRequest, "not a node id: '\(node)'", field: "node")
        }
        guard try store.job(id) != nil else { return Self.noJob(id) }
        let file: String
        do { file = try TaskLogs.file(TaskLogs.task(display, in: store.tasks(jobId: id), job: id), attempt: attempt, stream: chosen, node: node) } catch let missing as TaskLogs.NotFound {
            return Self.error(.notFound, missing.description)
        }
        guard let handle = FileHandle(forReadingAtPath: file) else { return Self.error(.notFound, "no \(stream) output yet for task \(display)") }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: min(offset, size))
        let data = (try? handle.read(upToCount: Self.maxBody)) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[HTTPField.Name("X-Cohort-Log-Size")!] = String(size)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func listPools() throws -> Response {
        Self.json(try pools.list())
    }

    func showPool(_ context: BasicRequestContext) throws -> Response {
        let name = try Self.name(context, "pool")
        do { return Self.json(try pools.load(name)) } catch { return Self.error(.notFound, error.description) }
    }

    func usage(_ request: Request) throws -> Response {
        let query = request.uri.queryParameters
        let by = query.get("by") ?? "job"
        guard let grouping = JobStore.Grouping(rawValue: by) else { return Self.error(.badRequest, "by must be job, pool, task or day, found '\(by)'", field: "by") }
        var since = Date.distantPast
        if let text = query.get("since") {
            guard let date = UsagePeriod.start(text) else {
                return Self.error(.badRequest, "since must be YYYY-MM-DD or an age such as 7d or 12h, found '\(text)'", field: "since")
            }
            since = date
        }
        let prices = Dictionary(try pools.list().compactMap { pool in pool.pricePerNodeHour.map { (pool.name, $0) } }) { a, _ in a }
        return Self.json(try store.usage(since: since, by: grouping, prices: prices))
    }

    // MARK: - Pieces

    struct JobDetail: Encodable {
        var job: JobStore.JobSummary
        var tasks: [JobStore.TaskRecord]?
        var events: [JobStore.Event]
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable {
            var status: Int
            var message: String
            var field: String?
            var line: Int?
            var column: Int?
        }
        var error: Detail
    }

    /// A path parameter that must be an id (letters, digits, '-', '_'; 1-64), or for a task
    /// also an array element's (`pi[3]`, sent as `pi%5B3%5D`): a 400 otherwise.
    static func name(_ context: BasicRequestContext, _ key: String) throws -> String {
        let raw = context.parameters.get(key) ?? ""
        let value = raw.removingPercentEncoding ?? raw
        guard isName(value) || (key == "task" && isArrayElement(value)) else { throw BadParameter(key: key, value: value) }
        return value
    }

    /// `ID[index]`: an element of a task array or sweep.
    static func isArrayElement(_ value: String) -> Bool {
        guard value.hasSuffix("]"), let open = value.firstIndex(of: "[") else { return false }
        let index = value[value.index(after: open)..<value.index(before: value.endIndex)]
        return isName(String(value[..<open])) && !index.isEmpty && index.count <= 8 && index.allSatisfy(\.isASCII) && index.allSatisfy(\.isNumber)
    }

    static func isName(_ value: String) -> Bool {
        !value.isEmpty && value.count <= 64 && value.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    struct BadParameter: Error, HTTPResponseError {
        var key: String
        var value: String
        var status: HTTPResponse.Status { .badRequest }
        func response(from request: Request, context: some RequestContext) throws -> Response {
            APIServer.error(.badRequest, "\(key) must be 1-64 letters, digits, '-' or '_'\(key == "task" ? " (an array's element: ID[index])" : ""), found '\(value.prefix(80))'", field: key)
        }
    }

    /// Cohort's one JSON style: ISO 8601 times, paths and URLs as written (not `\/`).
    static let encoder = JSONStyle.encoder()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, field: String? = nil, line: Int? = nil, column: Int? = nil) -> Response {
        json(ErrorBody(error: .init(status: status.code, message: message, field: field?.isEmpty == true ? nil : field, line: line, column: column)), status: status)
    }

    static func noJob(_ id: String) -> Response { error(.notFound, "no job '\(id)' is stored") }
}

/// Any error a handler did not turn into a response becomes JSON too: a store that cannot be
/// read is a 500 that says why, not an empty body.
struct JSONErrors<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do { return try await next(request, context) } catch is NIOTooManyBytesError {
            return APIServer.error(.contentTooLarge, "the request body is larger than \(APIServer.maxBody >> 20) MiB")
        } catch let error as HTTPError {
            // Hummingbird's own refusals (413 for a body over the limit, 404, …): JSON too.
            return APIServer.error(error.status, error.body ?? (error.status == .contentTooLarge
                ? "the request body is larger than \(APIServer.maxBody >> 20) MiB" : error.status.reasonPhrase))
        } catch let error as any HTTPResponseError {
            throw error
        } catch let error as JobStore.StoreError {
            return APIServer.error(.notFound, error.description)
        } catch {
            // The cause goes to the server's log, not to the client: it may hold SQL or paths.
            FileHandle.standardError.write(Data("cohort serve: \(request.method) \(request.uri.path): \(error)\n".utf8))
            return APIServer.error(.internalServerError, "the server could not answer (its log says why)")
        }
    }
}

/// Refuses (401) an API request without the server's bearer token. A logged-in dashboard's
/// session cookie stands for it on reads (GET, HEAD: the page's script following events and
/// logs), never on changes, which need the token or the dashboard's CSRF-checked forms.
/// The dashboard's own pages check their session themselves.
struct BearerAuthentication<Context: RequestContext>: RouterMiddleware {
    let token: String
    let sessions: DashboardSessions

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Dashboard.ownsPath(request.uri.path) { return try await next(request, context) }
        // The scheme is case-insensitive (RFC 7235 §2.1); the token is not.
        if let header = request.headers[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer ",
           APIToken.matches(header.dropFirst(7).drop { $0 == " " }, token) {
            return try await next(request, context)
        }
        if request.headers[.authorization] == nil, request.method == .get || request.method == .head,
           sessions.session(cookieHeader: request.headers[.cookie]) != nil {
            return try await next(request, context)
        }
        var response = APIServer.error(.unauthorized, "a bearer token is required (Authorization: Bearer <the token in the server's api-token file>)")
        response.headers[.wwwAuthenticate] = "Bearer"
        return response
    }
}
