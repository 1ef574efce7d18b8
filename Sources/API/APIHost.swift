import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Launcher
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// Runs the API next to the batch service until the service has stopped: the first SIGTERM
/// or SIGINT stops taking jobs (the API still answers, submissions get 503) and lets the
/// running ones finish; then the API closes. A second signal ends the server at once: its
/// tasks run on and the next start reconciles them.
public enum APIHost {
    public struct Address: Sendable, Equatable {
        public var host: String
        public var port: Int

        /// `HOST:PORT`, `[V6]:PORT` or `:PORT` (127.0.0.1).
        public init?(_ text: String) {
            var host = "127.0.0.1", portText = Substring(text)
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
                host = String(text[text.index(after: text.startIndex)..<close])
                portText = text[text.index(close, offsetBy: 2)...]
            } else if let colon = text.lastIndex(of: ":") {
                if colon != text.startIndex { host = String(text[..<colon]) }
                portText = text[text.index(after: colon)...]
            } else {
                return nil
            }
            guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty, !host.contains(":") || text.hasPrefix("[") else { return nil }
            self.host = host
            self.port = port
        }

        public var isLoopback: Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }
    }

    /// Where a running server says it listens: `<state>/serve.json`, for the CLI.
    public struct Endpoint: Codable, Sendable {
        public var url: String
        public var pid: Int32
    }

    public static func endpointPath(stateDirectory: String) -> String { "\(stateDirectory)/serve.json" }

    public static func run(service: BatchService, token: String, address: Address, log: @escaping @Sendable (String) -> Void) async throws {
        let stateDirectory = service.stateDirectory
        var logger = Logger(label: "cohort.api")
        logger.logLevel = .warning
        let started = SignalCount()
        let groupBox = GroupBox()
        @Sendable func startBatch() {
            guard started.increment() == 1 else { return }
            let batch = Thread {
                service.run()
                Task { await groupBox.group?.triggerGracefulShutdown() }
            }
            batch.stackSize = 1 << 22
            batch.start()
        }
        let connections = raiseDescriptorLimit()
        let metrics = ServiceMetrics()
        metrics.bootstrap()
        let app = Application(
            router: APIServer(service: service, token: token, metrics: metrics).router(),
            server: .http1(configuration: .init(additionalChannelHandlers: [RequestDeadlines(head: .seconds(10), request: .seconds(120))],
                                                idleTimeout: .seconds(60))),
            // Past the cap, new connections wait in the backlog instead of taking the
            // descriptors the server needs for its database and its tasks.
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "cohort",
                                 availableConnectionsDelegate: MaximumAvailableConnections(connections)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? address.port
                let host = address.host.contains(":") ? "[\(address.host)]" : address.host
                let endpoint = Endpoint(url: "http://\(host):\(port)", pid: getpid())
                let encoder = JSONEncoder()
                encoder.outputFormatting = .withoutEscapingSlashes
                if let data = try? encoder.encode(endpoint) {
                    let path = endpointPath(stateDirectory: stateDirectory)
                    try? data.write(to: URL(fileURLWithPath: path), options: .atomic)
                    _ = chmod(path, 0o600)
                }
                log("API listening on \(endpoint.url)")
                // Jobs are taken only once the API is up: a port in use stops the server
                // before it runs anything.
                startBatch()
            },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger))

        // Signals: the first stops the service gracefully, the second ends the process.
        let signals = SignalCount()
        var sources: [DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if signals.increment() == 1 {
                    log("stopping: no new jobs; the running ones finish (signal again to stop at once)")
                    service.stop()
                } else {
                    log("stopping now: running tasks go on, and the next start reconciles them")
                    try? FileManager.default.removeItem(atPath: endpointPath(stateDirectory: stateDirectory))
                    exit(143)
                }
            }
            source.resume()
            sources.append(source)
        }
        groupBox.group = group
        defer { try? FileManager.default.removeItem(atPath: endpointPath(stateDirectory: stateDirectory)) }
        do {
            try await group.run()
        } catch {
            service.stop()
            throw error
        }
        sources.forEach { $0.cancel() }
    }
}

/// Raises the soft descriptor limit to the hard one (tasks, logs and connections all take
/// descriptors) and returns how many API connections to allow: half of it, at most 1,024
/// (the rest is the database's, the spawner's and the log readers').
func raiseDescriptorLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 64 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = min(limit.rlim_max, 1 << 20)
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
    }
    return max(16, min(1024, Int(limit.rlim_cur / 2)))
}

/// The service group, for the batch thread to close the API when it is done.
final class GroupBox: @unchecked Sendable {
    var group: ServiceGroup?
}

final class SignalCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() -> Int { lock.lock(); defer { lock.unlock() }; count += 1; return count }
}
