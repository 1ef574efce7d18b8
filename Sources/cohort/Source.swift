import ArgumentParser
import Foundation
import Launcher

/// Where the read commands get jobs, tasks, events, usage and logs: the running server's
/// API when there is one (also a remote one, `$COHORT_SERVER`), else the store itself.
enum Source {
    /// The server, discovered once per command.
    nonisolated(unsafe) static var cached: Client?? = nil
    static func server() throws -> Client? {
        if let cached { return cached }
        let client = try Client.discover()
        cached = .some(client)
        return client
    }

    static let decoder = JSONStyle.decoder()

    /// Calls the API and decodes the answer, or exits 2 with the server's message.
    static func get<T: Decodable>(_ client: Client, _ path: String, as type: T.Type) throws -> T {
        do { return try decoder.decode(T.self, from: client.call("GET", path)) } catch let failure as Client.Failure {
            throw Exit.badInput(failure.description)
        } catch { throw Exit.badInput("the server's answer to \(path) could not be read: \(error)") }
    }

    /// Runs `body` on the store, turning its errors into exit 2.
    static func store<T>(_ body: (JobStore) throws -> T) throws -> T {
        do { return try body(Stored.jobs()) } catch let error as ExitCode { throw error } catch { throw Exit.badInput(error) }
    }

    static func jobs() throws -> [JobStore.JobSummary] {
        if let client = try server() { return try get(client, "/v1/jobs", as: [JobStore.JobSummary].self) }
        return try store { try $0.jobs() }
    }

    struct Detail: Decodable {
        var job: JobStore.JobSummary
        var events: [JobStore.Event]
    }

    static func job(_ id: String) throws -> JobStore.JobSummary {
        if let client = try server() { return try get(client, "/v1/jobs/\(id)?tasks=false", as: Detail.self).job }
        guard let summary = try store({ try $0.job(id) }) else { throw Exit.badInput("no job '\(id)' is stored") }
        return summary
    }

    static func tasks(_ job: String) throws -> [JobStore.TaskRecord] {
        if let client = try server() { return try get(client, "/v1/jobs/\(job)/tasks", as: [JobStore.TaskRecord].self) }
        return try store { try $0.tasks(jobId: job) }
    }

    static func events(_ job: String) throws -> [JobStore.Event] {
        if let client = try server() { return try get(client, "/v1/jobs/\(job)?tasks=false", as: Detail.self).events }
        return try store { try $0.events(jobId: job) }
    }

    static func usage(since: String?, by grouping: JobStore.Grouping) throws -> [JobStore.UsageRow] {
        if let client = try server() {
            let query = "by=\(grouping.rawValue)" + (since.map { "&since=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)" } ?? "")
            return try get(client, "/v1/usage?\(query)", as: [JobStore.UsageRow].self)
        }
        var start = Date.distantPast
        if let since {
            guard let date = UsagePeriod.start(since) else { throw Exit.badInput("--since: expected YYYY-MM-DD or an age such as 7d, found '\(since)'") }
            start = date
        }
        let pools = (try? PoolStore(stateDirectory: PoolStore.defaultStateDirectory).list()) ?? []
        let prices = Dictionary(pools.compactMap { pool in pool.pricePerNodeHour.map { (pool.name, $0) } }) { a, _ in a }
        return try store { try $0.usage(since: start, by: grouping, prices: prices) }
    }

    /// A task's output from byte `offset` on, and how long the file is.
    static func log(job: String, task: String, attempt: Int?, stream: TaskLogs.Stream, node: String?, offset: UInt64) throws -> (Data, UInt64) {
        // `pi[3]` is an array's element or a replica of pi: the job's tasks say which.
        let record: JobStore.TaskRecord
        do { record = try TaskLogs.task(task, in: tasks(job), job: job) } catch let error as ExitCode { throw error } catch { throw Exit.badInput(error) }
        return try log(job: job, record: record, attempt: attempt, stream: stream, node: node, offset: offset)
    }

    /// The output of `record`'s attempt (default: the last) from `offset`, and the size read to.
    static func log(job: String, record: JobStore.TaskRecord, attempt: Int?, stream: TaskLogs.Stream, node: String?, offset: UInt64) throws -> (Data, UInt64) {
        if let client = try server() {
            let id = record.taskId.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "-_").union(.alphanumerics)) ?? record.taskId
            var query = ["stream=\(stream.rawValue)", "offset=\(offset)"]
            if let replica = record.replica { query.append("replica=\(replica)") }
            if let attempt { query.append("attempt=\(attempt)") }
            if let node { query.append("node=\(node.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? node)") }
            let data: Data
            do { data = try client.call("GET", "/v1/jobs/\(job)/tasks/\(id)/logs?" + query.joined(separator: "&")) } catch {
                throw Exit.badInput(error)
            }
            return (data, offset + UInt64(data.count))
        }
        let file: String
        do {
            file = try TaskLogs.file(record, attempt: attempt, stream: stream, node: node)
        } catch { throw Exit.badInput(error) }
        guard let handle = FileHandle(forReadingAtPath: file) else { throw Exit.badInput("no output at \(file)") }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: min(offset, size))
        return ((try? handle.readToEnd()) ?? Data(), size)
    }
}
