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
    private var shellSocket: ShellSocket?
    /// Commands that tasks' cohort-rsh asked for through their agents, by origin and id: what ends them.
    private var relayed: [String: @Sendable () -> Void] = [:]

    /// Inside a Slurm allocation: the words that start an agent as a step of it on a node
    /// (srun carries the channel instead of ssh); nil for ssh.
    let slurmStep: [String]?

    public init(pool: Pool, settings: ExecutionSettings) {
        sshConfig = pool.sshConfig
        if pool.kind == .slurm, let options = pool.slurm, let allocation = options.allocation {
            // --overlap: the agent shares the CPUs its tasks' steps would have; its tasks use them.
            slurmStep = ["/usr/bin/env"] + (options.configuration.map { ["SLURM_CONF=\($0)"] } ?? [])
                + ["srun", "--jobid=\(allocation)", "--overlap", "--nodes=1", "--ntasks=1", "--job-name=cohort.agent", "--quiet"]
        } else {
            slurmStep = nil
        }
        agentCommand = [settings.cohortExecutable, "agent", "--stdio"]
        hello = .hello(protocolVersion: AgentProtocol.version, build: AgentProtocol.build(of: settings.cohortExecutable), workDirectory: settings.workDirectory, stateId: settings.stateId,
                       tasksOutliveChannel: settings.spawner != nil)
    }

    deinit { close() }

    /// `ssh … node '<cohort>' agent --stdio`: ssh joins the remote words into one shell line,
    /// so the agent's path is quoted there.
    func agentLine(_ node: Node) -> [String] {
        if let slurmStep { return slurmStep + ["--nodelist=\(node.id)", "--"] + agentCommand + ["--lines"] }
        return NodeCommand(sshConfig: sshConfig, connectTimeout: 5).sshPrefix(node) + [CommandLineWords.shellJoin(agentCommand)]
    }

    static func key(_ node: Node) -> String { "\(node.id) \(node.user ?? "")@\(node.address)" }

    /// The node's channel: the one it has, or (if it has none or lost it) a new one on its way up.
    public func channel(for node: Node) -> AgentChannel {
        lock.lock()
        let key = Self.key(node)
        if let existing = channels[key], existing.lostReason == nil { lock.unlock(); return existing }
        if !watchdogStarted && !closed { startWatchdog() }
        let channel = AgentChannel(node: node, command: agentLine(node), hello: hello, startingNow: false, lines: slurmStep != nil)
        channel.shellHandler = { [weak self, weak channel] message in
            guard let self, let channel else { return }
            self.relay(message, from: channel)
        }
        channels[key] = channel
        lock.unlock()
        // Started outside the lock: a group's nodes spawn their ssh at once, not in turn.
        channel.start()
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
        if shellSocket == nil {
            shellSocket = try? ShellSocket { [weak self] host, line, reply in
                guard let self else { reply.finish(error: "cohort-rsh: the controller is closing", code: 255); return {} }
                return self.runShell(host: host, line: line, output: { reply.send(kind: $0, $1) }, finish: { reply.finish(error: $0, code: $1) })
            }
        }
        return shellSocket?.path
    }

    /// Runs `line` on the node named `host` as ssh would (`sh -c LINE` in the home
    /// directory), through its agent: output as it comes (1 stdout, 2 stderr), then the exit
    /// code (255 and a reason when the node cannot be reached). Returns what kills it.
    func runShell(host: String, line: String, output: @escaping @Sendable (UInt8, Data) -> Void,
                  finish: @escaping @Sendable (String?, Int32) -> Void) -> @Sendable () -> Void {
        guard let node = node(named: host) else {
            finish("cohort-rsh: \(host) is not a node whose agent this controller keeps", 255)
            return {}
        }
        let channel: AgentChannel
        switch ready(node) {
        case .success(let (up, _)): channel = up
        case .failure(let lost):
            finish("cohort-rsh: node \(node.id) is lost: \(lost.reason)", 255)
            return {}
        }
        final class Request: @unchecked Sendable { var id: UInt64 = 0 }
        let request = Request()
        channel.request({ id in
            request.id = id
            return .spawn(id: id, arguments: ["/bin/sh", "-c", line], environment: [:], directory: "", stdout: nil, stderr: nil,
                          statusFile: nil, keepErrors: false, stream: true, relayShell: false)
        }) { event in
            switch event {
            case .message(.output(_, let stream, let data)):
                output(stream == 2 ? 2 : 1, data)
                return false
            case .message(.failedToStart(_, let code)):
                finish("cohort-rsh: cannot start /bin/sh on \(node.id): \(String(cString: strerror(code)))", 127)
            case .message(let message) where message.termination != nil:
                finish(nil, message.termination!.code)
            case .lost(let reason):
                finish("cohort-rsh: node \(node.id) was lost: \(reason)", 255)
            default:
                return false
            }
            return true
        }
        return { [weak channel] in _ = channel?.send(.signal(id: request.id, signal: SIGKILL)) }
    }

    /// A task's cohort-rsh, through its agent `origin`: run the command and answer there.
    private func relay(_ message: FromAgent, from origin: AgentChannel) {
        let key: String
        switch message {
        case .shell(let id, let host, let line):
            key = "\(ObjectIdentifier(origin).hashValue).\(id)"
            let cancel = runShell(host: host, line: line, output: { [weak origin] stream, data in
                _ = origin?.send(.shellOutput(id: id, stream: Int32(stream), data: data))
            }, finish: { [weak self, weak origin] error, code in
                if let error { _ = origin?.send(.shellOutput(id: id, stream: 2, data: Data((error + "\n").utf8))) }
                _ = origin?.send(.shellEnded(id: id, code: code))
                self?.lock.lock(); self?.relayed[key] = nil; self?.lock.unlock()
            })
            lock.lock(); relayed[key] = cancel; lock.unlock()
        case .shellClosed(let id):
            key = "\(ObjectIdentifier(origin).hashValue).\(id)"
            lock.lock(); let cancel = relayed.removeValue(forKey: key); lock.unlock()
            cancel?()
        default:
            return
        }
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
    public func sweep(variable: String, values: [String], sparing: [String] = [], on node: Node) -> Bool {
        guard case .success(let (channel, _)) = ready(node) else { return false }
        return channel.sweep(variable: variable, values: values, sparing: sparing)
    }

    /// Seconds since each ready agent last said anything (a heartbeat comes every half second).
    public func silences() -> [(node: String, seconds: Double)] {
        lock.lock()
        let all = Array(channels.values)
        lock.unlock()
        return all.filter { $0.hello != nil }.map { ($0.node.id, $0.silence) }.sorted { $0.node < $1.node }
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
        let server = shellSocket
        shellSocket = nil
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
