import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether a node can take work: for a remote node, its agent is up and answering (see
/// `AgentFleet.check`); on this machine, a command runs; and the pool's own health script
/// (if any) succeeds there.
public struct NodeHealth: Sendable {
    public struct Report: Sendable, Equatable {
        public var node: String
        public var healthy: Bool
        public var reason: String?
        public var seconds: Double
    }

    public var pool: Pool
    /// The pool's agents, which check remote nodes.
    public var agents: AgentFleet
    /// Seconds a health script may take (twice this, plus 5).
    public var timeout: Int

    public init(pool: Pool, agents: AgentFleet, timeout: Int = 5) {
        self.pool = pool
        self.agents = agents
        self.timeout = timeout
    }

    /// Checks `node` now.
    public func check(_ node: Node) -> Report {
        if !node.isLocal && pool.kind != .local { return agents.check(node, script: pool.healthCheckCommandLine, timeout: timeout) }
        let start = Date()
        let words = pool.healthCheckCommandLine ?? ["true"]
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-health-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        var environment = ProcessInfo.processInfo.environment
        environment["COHORT_NODE_ID"] = node.id
        guard let child = try? ChildProcess(words, environment: environment, directory: "/", stdout: "/dev/null", stderr: output) else {
            return Report(node: node.id, healthy: false, reason: "cannot start \(words[0])", seconds: 0)
        }
        let deadline = Deadline(after: Double(timeout) * 2 + 5, grace: 1) { child.signalGroup($0) }
        let termination = child.wait()
        deadline.cancel()
        let seconds = Date().timeIntervalSince(start)
        if termination == .exited(0) { return Report(node: node.id, healthy: true, reason: nil, seconds: seconds) }
        let said = MPIRunReport.lastLines(of: output, count: 2).map { $0.trimmingWhitespace() }.joined(separator: " ")
        let reason = deadline.hasFired ? "health check did not finish within \(timeout * 2 + 5) s"
            : "health check failed with \(termination)\(said.isEmpty ? "" : ": \(said)")"
        return Report(node: node.id, healthy: false, reason: reason, seconds: seconds)
    }
}
