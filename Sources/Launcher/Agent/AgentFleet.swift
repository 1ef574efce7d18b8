import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Every node agent of one pool as the controller sees them: one channel per remote node,
/// started on first use (a group's nodes all at once) and kept, and one watchdog thread
/// that counts a node lost when its agent has been silent too long. All per-node work of a
/// static pool goes through here: tasks, health checks, sweeps, loss detection.
public final class AgentFleet: @unchecked Sendable {
    let sshConfig: String?
    /// `<cohort> agent --stdio`, run on every node at the same path (a shared filesystem).
    let agentCommand: [String]
    let hello: ToAgent
    /// Seconds an agent has to come up (ssh connection, its start, the hello).
    public var connectLimit: Double = 30
    private let lock = NSLock()
    private var channels: [String: AgentChannel] = [:]
    private var watchdogStarted = false
    private var closed = false
    private var remoteShellServer: RemoteShellServer?

    public init(pool: Pool, settings: ExecutionSettings) {
        sshConfig = pool.sshConfig
        agentCommand = [settings.cohortExecutable, "agent", "--stdio"]
        hello = .hello(protocolVersion: AgentProtocol.version, workDirectory: settings.workDirectory, stateId: settings.stateId,
                       tasksOutliveChannel: settings.spawner != nil)
    }

    deinit { close() }

    /// `ssh … node '<cohort>' agent --stdio`: ssh joins the remote words into one shell line,
    /// so the agent's path is quoted there.
    func agentLine(_ node: Node) -> [String] {
        NodeCommand(sshConfig: sshConfig, connectTimeout: 5).sshPrefix(node) + [CommandLineWords.shellJoin(agentCommand)]
    }

    static func key(_ node: Node) -> String { "\(node.id) \(node.user ?? "")@\(node.address)" }

    /// The node's channel: the one it has, or (if it has none or lost it) a new one on its way up.
    public func channel(for node: Node) -> AgentChannel {
        lock.lock()
        defer { lock.unlock() }
        let key = Self.key(node)
        if let existing = channels[key], existing.lostReason == nil { return existing }
        if !watchdogStarted && !closed { startWatchdog() }
        let channel = AgentChannel(node: node, command: agentLine(node), hello: hello)
        channels[key] = channel
        return channel
    }

    /// The node among those with a channel whose address (or id) is `host`: how mpirun,
    /// through cohort-rsh, names the nodes of its hostfile.
    func node(named host: String) -> Node? {
        lock.lock(); defer { lock.unlock() }
        let nodes = channels.values.map(\.node)
        return nodes.first { $0.address == host } ?? nodes.first { $0.id == host }
    }

    /// The socket cohort-rsh reaches this controller at (made on first use); nil if it
    /// cannot be made, and mpirun then starts its daemons over ssh.
    public func remoteShellSocket() -> String? {
        lock.lock(); defer { lock.unlock() }
        if closed { return nil }
        if remoteShellServer == nil { remoteShellServer = try? RemoteShellServer(fleet: self) }
        return remoteShellServer?.path
    }

    /// Takes `channel` as its node's (tests start agents without ssh).
    func adopt(_ channel: AgentChannel) {
        lock.lock()
        channels[Self.key(channel.node)] = channel
        if !watchdogStarted && !closed { startWatchdog() }
        lock.unlock()
    }

    /// The node's agent once it is up, or why it is not.
    public func ready(_ node: Node) -> Result<(AgentChannel, AgentHello), AgentChannel.Lost> {
        let channel = channel(for: node)
        switch channel.waitUntilSettled(timeout: connectLimit) {
        case .ready(let hello): return .success((channel, hello))
        case .lost(let reason): return .failure(AgentChannel.Lost(reason: reason))
        case .connecting:
            channel.lose("its agent did not answer within \(Int(connectLimit)) s")
            return .failure(AgentChannel.Lost(reason: channel.lostReason ?? "no answer"))
        }
    }

    /// Whether `node` can take work: its agent is up and answering, and the pool's health
    /// script (if any) succeeds there. No ssh of its own: the channel is the check.
    public func check(_ node: Node, script: [String]?, timeout: Int) -> NodeHealth.Report {
        let start = Date()
        func report(_ reason: String?) -> NodeHealth.Report {
            NodeHealth.Report(node: node.id, healthy: reason == nil, reason: reason, seconds: Date().timeIntervalSince(start))
        }
        switch ready(node) {
        case .failure(let lost):
            return report(lost.reason)
        case .success(let (channel, _)):
            guard let script else { return report(nil) }
            let limit = timeout * 2 + 5
            guard let (termination, errors) = channel.run(script, variables: ["COHORT_NODE_ID": node.id], directory: "/", timeout: Double(limit)) else {
                return report(channel.lostReason ?? "health check did not finish within \(limit) s")
            }
            if termination == .exited(0) { return report(nil) }
            let said = errors.map { $0.trimmingWhitespace() }.joined(separator: " ")
            return report("health check failed with \(termination)\(said.isEmpty ? "" : ": \(said)")")
        }
    }

    /// Kills the processes marked `variable=value` (any of `values`) on `node`; false if its
    /// agent could not be reached.
    public func sweep(variable: String, values: [String], on node: Node) -> Bool {
        guard case .success(let (channel, _)) = ready(node) else { return false }
        return channel.sweep(variable: variable, values: values)
    }

    /// Whether each node's agent answers a ping within `timeout`; the first that does not
    /// and why. Every node at once.
    func firstSilent(_ nodes: [Node], timeout: Double) -> (node: String, reason: String)? {
        let answers = concurrentMap(nodes) { node -> String? in
            let channel = self.channel(for: node)
            if case .lost(let reason) = channel.waitUntilSettled(timeout: timeout) { return reason }
            if channel.ping(timeout: timeout) { return nil }
            return channel.lostReason ?? "its agent did not answer within \(timeout) s"
        }
        return zip(nodes, answers).first { $0.1 != nil }.map { ($0.0.id, $0.1!) }
    }

    /// Watches the channels of `nodes`; `onLost` is called once, for the first lost.
    func watch(_ nodes: [Node], onLost: @escaping @Sendable (String) -> Void) -> LossWatch {
        let watch = LossWatch()
        for node in nodes {
            let channel = channel(for: node)
            let token = channel.watch { reason in
                if watch.markLost(node.id, reason) { onLost(node.id) }
            }
            watch.add { channel.unwatch(token) }
        }
        return watch
    }

    /// Lets go of every agent (the channels close; agents end, a served controller's tasks
    /// run on).
    public func close() {
        lock.lock()
        closed = true
        let all = Array(channels.values)
        channels.removeAll()
        let server = remoteShellServer
        remoteShellServer = nil
        lock.unlock()
        server?.close()
        for channel in all { channel.release() }
    }

    /// One thread for all channels: a node whose agent is silent past the limit is lost
    /// (a hung agent, a link down); one whose agent never came up is given up on.
    private func startWatchdog() {  // under lock
        watchdogStarted = true
        let thread = Thread { [weak self] in
            while true {
                usleep(200_000)
                guard let self else { return }
                self.lock.lock()
                let all = Array(self.channels.values), done = self.closed
                self.lock.unlock()
                if done { return }
                for channel in all {
                    switch channel.currentState {
                    case .ready where channel.silence > AgentProtocol.silenceLimit:
                        channel.lose(String(format: "no heartbeat from its agent for %.1f s", channel.silence))
                    case .connecting where channel.age > self.connectLimit:
                        channel.lose("its agent did not answer within \(Int(self.connectLimit)) s")
                    default: break
                    }
                }
            }
        }
        thread.stackSize = 256 << 10
        thread.start()
    }
}

/// The nodes of a running attempt being watched: which was lost first, and when.
final class LossWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var lost: (node: String, reason: String, after: Double)?
    private var stopped = false
    private var undo: [() -> Void] = []
    private let start = Date()

    func add(_ unwatch: @escaping () -> Void) { lock.lock(); undo.append(unwatch); lock.unlock() }

    func markLost(_ node: String, _ reason: String) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if stopped || lost != nil { return false }
        lost = (node, reason, Date().timeIntervalSince(start))
        return true
    }

    var lostNode: (node: String, reason: String, after: Double)? { lock.lock(); defer { lock.unlock() }; return lost }

    func stop() {
        lock.lock()
        stopped = true
        let all = undo
        undo.removeAll()
        lock.unlock()
        all.forEach { $0() }
    }
}
