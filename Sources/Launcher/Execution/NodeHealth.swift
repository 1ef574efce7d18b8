import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether a node can take work: ssh answers within a timeout, a command runs there, and
/// the pool's own health script (if any) succeeds.
public struct NodeHealth: Sendable {
    public struct Report: Sendable, Equatable {
        public var node: String
        public var healthy: Bool
        public var reason: String?
        public var seconds: Double
    }

    public var pool: Pool
    /// Seconds ssh may take to connect.
    public var timeout: Int

    public init(pool: Pool, timeout: Int = 5) {
        self.pool = pool
        self.timeout = timeout
    }

    /// Checks `node` now.
    public func check(_ node: Node) -> Report {
        let start = Date()
        let words = pool.healthCheckCommandLine ?? ["true"]
        let command = NodeCommand(sshConfig: pool.sshConfig, connectTimeout: timeout)
        let arguments = command.arguments(words, on: node, directory: "/", environment: ["COHORT_NODE_ID": node.id])
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-health-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let environment = ProcessInfo.processInfo.environment
        guard let child = try? ChildProcess(arguments, environment: environment, directory: nil, stdout: "/dev/null", stderr: output) else {
            return Report(node: node.id, healthy: false, reason: "cannot start \(arguments[0])", seconds: 0)
        }
        // ssh's own timeout covers the connection; this one covers a hanging command.
        let deadline = Deadline(after: Double(timeout) * 2 + 5, grace: 1) { child.signalGroup($0) }
        let termination = child.wait()
        deadline.cancel()
        let seconds = Date().timeIntervalSince(start)
        if termination == .exited(0) { return Report(node: node.id, healthy: true, reason: nil, seconds: seconds) }
        let said = MPIRunReport.lastLines(of: output, count: 2).map { $0.trimmingWhitespace() }.joined(separator: " ")
        let reason: String
        if deadline.hasFired {
            reason = "health check did not finish within \(timeout * 2 + 5) s"
        } else if termination == .exited(255) && !node.isLocal {
            reason = "unreachable over ssh\(said.isEmpty ? "" : ": \(said)")"
        } else {
            reason = "health check failed with \(termination)\(said.isEmpty ? "" : ": \(said)")"
        }
        return Report(node: node.id, healthy: false, reason: reason, seconds: seconds)
    }
}

/// Watches the remote nodes of a running attempt and calls `onLost` once when one stops
/// answering: a check every `interval` seconds with a short ssh connect timeout, and a miss
/// confirmed by `misses - 1` immediate re-checks. Detection takes about
/// interval + misses × timeout at worst.
final class NodeMonitor: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private(set) var lost: (node: String, reason: String, after: Double)?

    init(nodes: [Node], pool: Pool, interval: Double = 1, timeout: Int = 2, misses: Int = 2,
         onLost: @escaping @Sendable (String) -> Void) {
        let remote = nodes.filter { !$0.isLocal }
        guard !remote.isEmpty else { return }
        let health = NodeHealth(pool: Pool(name: pool.name, kind: pool.kind, nodes: [], sshConfig: pool.sshConfig), timeout: timeout)
        let start = Date()
        let thread = Thread { [self] in
            while !isStopped {
                usleep(useconds_t(interval * 1e6))  // short tasks finish before the first check
                if isStopped { return }
                for node in remote {
                    // A miss is confirmed at once rather than after another interval.
                    var report = health.check(node)
                    var missed = 0
                    while !report.healthy, !isStopped {
                        missed += 1
                        if missed >= misses { break }
                        report = health.check(node)
                    }
                    if !report.healthy, markLost(node.id, report.reason ?? "no answer", Date().timeIntervalSince(start)) {
                        onLost(node.id)
                        return
                    }
                }
            }
        }
        thread.start()
    }

    private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    private func markLost(_ node: String, _ reason: String, _ after: Double) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if stopped || lost != nil { return false }
        lost = (node, reason, after)
        return true
    }

    var lostNode: (node: String, reason: String, after: Double)? { lock.lock(); defer { lock.unlock() }; return lost }

    func stop() { lock.lock(); stopped = true; lock.unlock() }
}
