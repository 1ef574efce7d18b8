import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Launcher

/// `cohort events`: what the server did — jobs submitted, started, ended; attempts started
/// and ended (how, on which nodes); nodes lost — from its `GET /v1/events` stream.
struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", 
        abstract: "What the server did: job, attempt and node changes (the recent ones; --follow streams new ones as they happen).")

    @Flag(help: "Keep streaming events as they happen, until the server stops or Ctrl-C.")
    var follow = false

    @Option(help: "Only this job's events.")
    var job: String?

    @Option(help: "Start after this event id (what a previous run printed last).")
    var after: Int?

    @Option(help: "table: a line per event; json: each event's JSON, a line each.")
    var output: OutputFormat = .table

    func run() throws {
        guard let client = try Client.discover() else {
            throw Exit.badInput("cohort events reads a running cohort serve's stream, and none runs for \(PoolStore.defaultStateDirectory) (start one with `cohort serve`, or set COHORT_SERVER)")
        }
        var query = ["follow=\(follow)"]
        if let job { query.append("job=\(job.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? job)") }
        if let after { query.append("after=\(after)") }
        final class Parsing: @unchecked Sendable { var parser = EventStreamParser() }  // fed by one delegate queue
        let parsing = Parsing()
        let format = output
        let failure = client.stream("/v1/events?" + query.joined(separator: "&")) { chunk in
            for (kind, data) in parsing.parser.feed(chunk) { Self.print(kind: kind, data: data, format: format) }
        }
        if let failure { throw Exit.badInput(failure.description) }
    }

    static func print(kind: String, data: String, format: OutputFormat) {
        if format == .json { write(data); return }
        // The server's times are ISO 8601 (this decoded them as seconds since 2001: 2057 for 2026).
        guard let event = try? Source.decoder.decode(ServiceEvent.self, from: Data(data.utf8)) else { return write("\(kind) \(data)") }
        var words = [JSONStyle.time(event.time), event.kind]
        if let job = event.job { words.append("job=\(job)") }
        if let task = event.task { words.append("task=\(task)") }
        if let attempt = event.attempt { words.append("attempt=\(attempt)") }
        if let nodes = event.nodes, !nodes.isEmpty { words.append("nodes=\(Hostlist.compress(nodes))") }
        if let result = event.result { words.append("result=\(result)") }
        if let state = event.state { words.append("state=\(state)") }
        if let message = event.message { words.append("— \(message)") }
        write("#\(event.id) " + words.joined(separator: " "))
    }

    /// A line at once (not when a buffer fills): someone is watching.
    static func write(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
}

/// Cuts a Server-Sent Events byte stream into events: `event:` and `data:` lines up to a
/// blank line (comments and ids skipped), whatever pieces the bytes come in.
struct EventStreamParser {
    private var pending = ""

    mutating func feed(_ chunk: Data) -> [(kind: String, data: String)] {
        pending += String(decoding: chunk, as: UTF8.self)
        var events: [(String, String)] = []
        while let end = pending.range(of: "\n\n") {
            let block = pending[..<end.lowerBound]
            pending.removeSubrange(..<end.upperBound)
            var kind = "message", data: [String] = []
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("event:") { kind = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
                if line.hasPrefix("data:") { data.append(String(line.dropFirst(5)).trimmingCharacters(in: .whitespaces)) }
            }
            if !data.isEmpty { events.append((kind, data.joined(separator: "\n"))) }
        }
        return events
    }
}

extension Client {
    /// GETs `path` and hands each piece of the body to `received` as it comes, until the
    /// server ends it; a failure (no server, or an error status) is returned.
    func stream(_ path: String, received: @escaping @Sendable (Data) -> Void) -> Failure? {
        guard let url = URL(string: base + path) else { return Failure(status: 0, description: "not a URL: \(base + path)") }
        var request = URLRequest(url: url, timeoutInterval: 24 * 3600)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("text/event-stream", forHTTPHeaderField: "Accept")
        let relay = StreamRelay(received: received)
        let session = URLSession(configuration: .ephemeral, delegate: relay, delegateQueue: nil)
        session.dataTask(with: request).resume()
        relay.done.wait()
        session.finishTasksAndInvalidate()
        if let status = relay.status, !(200..<300).contains(status) {
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: relay.errorBody))?.error.message ?? String(decoding: relay.errorBody, as: UTF8.self)
            return Failure(status: status, description: message)
        }
        if relay.status == nil { return Failure(status: 0, description: "cannot reach the server at \(base): \(relay.error ?? "no answer")") }
        return nil
    }

    final class StreamRelay: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let received: @Sendable (Data) -> Void
        let done = DispatchSemaphore(value: 0)
        var status: Int?
        var error: String?
        var errorBody = Data()

        init(received: @escaping @Sendable (Data) -> Void) { self.received = received }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            status = (response as? HTTPURLResponse)?.statusCode
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            if let status, (200..<300).contains(status) { received(data) } else { errorBody.append(data) }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            self.error = error?.localizedDescription
            done.signal()
        }
    }
}
