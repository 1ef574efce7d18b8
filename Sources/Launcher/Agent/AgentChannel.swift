import CSpawn
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The controller's end of one node's agent: the ssh process that carries the channel
/// (`ssh node cohort agent --stdio`: ssh is the transport and the authentication), a thread
/// that reads what the agent says, and the requests waiting for an answer. Made once per
/// node and kept; when it is lost it stays lost, and the fleet makes a new one.
public final class AgentChannel: @unchecked Sendable {
    public enum State: Sendable {
        case connecting
        case ready(AgentHello)
        case lost(String)
    }

    /// The agent's channel is gone (or never came up); `reason` says why.
    public struct Lost: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public let node: Node
    private let condition = NSCondition()  // guards everything below but the write end
    private var state: State = .connecting
    private var handlers: [UInt64: @Sendable (Event) -> Bool] = [:]
    private var watchers: [Int: @Sendable (String) -> Void] = [:]
    /// Where a task's requests to run commands on other nodes go (the fleet).
    var shellHandler: (@Sendable (FromAgent) -> Void)? {
        get { condition.lock(); defer { condition.unlock() }; return handlerForShells }
        set { condition.lock(); handlerForShells = newValue; condition.unlock() }
    }
    private var handlerForShells: (@Sendable (FromAgent) -> Void)?
    private var nextId: UInt64 = 0
    private var nextWatcher = 0
    /// When the agent last said anything (monotonic nanoseconds).
    private var lastHeard: UInt64 = DispatchTime.now().uptimeNanoseconds
    private let begun = DispatchTime.now().uptimeNanoseconds
    private let writeLock = NSLock()
    private var toAgent: Int32 = -1
    private var sshPid: pid_t = 0
    private let errorsFile: String

    enum Event { case message(FromAgent), lost(String) }

    private let command: [String]
    private let greeting: ToAgent

    /// A channel that `start()` opens: `command` (ssh to the node running the agent; the
    /// agent itself in tests), then the hello. `startingNow`: open it here (the fleet opens
    /// it after letting go of its lock, as it is a process spawn).
    /// Frames as lines: the carrier (srun) passes only whole lines along at once.
    let lines: Bool

    init(node: Node, command: [String], hello: ToAgent, startingNow: Bool = true, lines: Bool = false) {
        self.node = node
        self.command = command
        self.lines = lines
        greeting = hello
        errorsFile = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-agent-\(UUID().uuidString).err").path
        if startingNow { start() }
    }

    /// Starts the command and says hello; the state turns ready or lost as the answer comes back or not.
    func start() {
        _ = brokenPipesAreErrors
        let arguments = command
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        guard cohort_pipe(&input) == 0 else { return lose("cannot make a pipe: \(String(cString: strerror(errno)))") }
        guard cohort_pipe(&output) == 0 else {
            close(input[0]); close(input[1])
            return lose("cannot make a pipe: \(String(cString: strerror(errno)))")
        }
        let errors = open(errorsFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        var pid: pid_t = 0
        let rc = withCStrings(arguments) { argv in
            withCStrings(ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }) { envp in
                // Its own process group: a Ctrl-C at the terminal reaches `cohort run`, which
                // ends its tasks in order, not the channels first.
                cohort_spawn_fds(&pid, arguments[0], argv, envp, nil, input[0], output[1], errors >= 0 ? errors : 2, 1)
            }
        }
        close(input[0]); close(output[1])
        if errors >= 0 { close(errors) }
        guard rc == 0 else {
            close(input[1]); close(output[0])
            return lose("cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        sshPid = pid
        writeLock.lock(); toAgent = input[1]; writeLock.unlock()
        let reading = output[0]
        let thread = Thread { [self] in read(from: reading) }
        thread.stackSize = 512 << 10
        thread.start()
        _ = send(greeting)
    }

    deinit { try? FileManager.default.removeItem(atPath: errorsFile) }

    public var currentState: State { condition.lock(); defer { condition.unlock() }; return state }

    public var hello: AgentHello? { if case .ready(let hello) = currentState { hello } else { nil } }

    public var lostReason: String? { if case .lost(let reason) = currentState { reason } else { nil } }

    /// Waits until the hello came back or the channel was lost.
    public func waitUntilSettled(timeout: Double) -> State {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date() + timeout
        while case .connecting = state, Date() < deadline { condition.wait(until: deadline) }
        return state
    }

    /// Seconds since the agent last said anything.
    var silence: Double {
        condition.lock(); defer { condition.unlock() }
        return Double(DispatchTime.now().uptimeNanoseconds - lastHeard) / 1e9
    }

    var age: Double { Double(DispatchTime.now().uptimeNanoseconds - begun) / 1e9 }

    // MARK: - Requests

    /// Sends a request built from a fresh id; `handler` gets every answer to it (and the loss
    /// of the channel) until it returns true. False if the channel is already lost.
    @discardableResult
    func request(_ build: (UInt64) -> ToAgent, handler: @escaping @Sendable (Event) -> Bool) -> Bool {
        condition.lock()
        if case .lost(let reason) = state {
            condition.unlock()
            _ = handler(.lost(reason))
            return false
        }
        nextId += 1
        let id = nextId
        handlers[id] = handler
        condition.unlock()
        return send(build(id))
    }

    /// Starts `words` on the node as the agent's child; its end comes through `wait()`.
    func spawn(_ words: [String], variables: [String: String], directory: String, stdout: String?, stderr: String?,
               statusFile: String?, relayShell: Bool = false) throws -> ChildProcess {
        final class Progress: @unchecked Sendable {
            let started = DispatchSemaphore(value: 0), ended = DispatchSemaphore(value: 0)
            var pid: pid_t = 0, launchErrno: Int32 = 0, termination: Termination?, lost: String?, id: UInt64 = 0
        }
        let progress = Progress()
        request({ id in
            progress.id = id
            return .spawn(id: id, arguments: words, environment: variables, directory: directory, stdout: stdout, stderr: stderr,
                          statusFile: statusFile, keepErrors: false, stream: false, relayShell: relayShell)
        }) { event in
            switch event {
            case .message(.started(_, let pid)): progress.pid = pid; progress.started.signal(); return false
            case .message(.failedToStart(_, let code)): progress.launchErrno = code; progress.started.signal(); return true
            case .message(let message) where message.termination != nil:
                // An end before the start (an agent of another build may order them so) still
                // releases the starter.
                if progress.pid == 0 { progress.pid = -1; progress.started.signal() }
                progress.termination = message.termination; progress.ended.signal(); return true
            case .lost(let reason): progress.lost = reason; progress.started.signal(); progress.ended.signal(); return true
            default: return false
            }
        }
        progress.started.wait()
        if progress.launchErrno != 0 { throw ChildProcess.LaunchError(program: words[0], errno: progress.launchErrno) }
        if progress.pid == 0 { throw Lost(reason: progress.lost ?? "the channel closed") }
        let id = progress.id
        return ChildProcess(pid: progress.pid, arguments: words, waiter: {
            progress.ended.wait()
            return progress.termination
        }, signaller: { [weak self] signal in _ = self?.send(.signal(id: id, signal: signal)) })
    }

    /// Runs `words` to its end (at most `timeout` seconds); the termination and stderr's last
    /// lines, or nil if the channel was lost or the time ran out.
    func run(_ words: [String], variables: [String: String], directory: String, timeout: Double) -> (Termination, [String])? {
        final class Outcome: @unchecked Sendable { var value: (Termination, [String])?; let done = DispatchSemaphore(value: 0); var id: UInt64 = 0 }
        let outcome = Outcome()
        request({ id in
            outcome.id = id
            return .spawn(id: id, arguments: words, environment: variables, directory: directory, stdout: nil, stderr: nil,
                          statusFile: nil, keepErrors: true, stream: false, relayShell: false)
        }) { event in
            switch event {
            case .message(.failedToStart(_, let code)):
                outcome.value = (.exited(127), ["cannot start \(words[0]): \(String(cString: strerror(code)))"]); outcome.done.signal(); return true
            case .message(.exited(_, _, _, let errors)) :
                if case .message(let message) = event { outcome.value = (message.termination!, errors ?? []) }
                outcome.done.signal(); return true
            case .lost: outcome.done.signal(); return true
            default: return false
            }
        }
        if outcome.done.wait(timeout: .now() + timeout) == .timedOut {
            _ = send(.signal(id: outcome.id, signal: SIGKILL))
            return nil
        }
        return outcome.value
    }

    /// Runs `words` to its end (at most `timeout` seconds) and returns what it wrote to
    /// stdout, or nil if it failed, the channel was lost or the time ran out.
    func capture(_ words: [String], timeout: Double) -> Data? {
        final class Outcome: @unchecked Sendable { var output = Data(); var ok = false; let done = DispatchSemaphore(value: 0); var id: UInt64 = 0 }
        let outcome = Outcome()
        request({ id in
            outcome.id = id
            return .spawn(id: id, arguments: words, environment: [:], directory: "/", stdout: nil, stderr: nil,
                          statusFile: nil, keepErrors: false, stream: true, relayShell: false)
        }) { event in
            switch event {
            case .message(.output(_, let stream, let data)):
                if stream == 1 { outcome.output.append(data) }
                return false
            case .message(let message) where message.termination != nil:
                outcome.ok = message.termination == .exited(0); outcome.done.signal(); return true
            case .message(.failedToStart), .lost: outcome.done.signal(); return true
            default: return false
            }
        }
        if outcome.done.wait(timeout: .now() + timeout) == .timedOut {
            _ = send(.signal(id: outcome.id, signal: SIGKILL))
            return nil
        }
        return outcome.ok ? outcome.output : nil
    }

    /// Kills the node's processes marked `variable=value` for any of `values`, but those of
    /// the attempts in `sparing`; false if the agent did not answer within `timeout`.
    func sweep(variable: String, values: [String], sparing: [String] = [], timeout: Double = 10) -> Bool {
        answered({ .sweep(id: $0, variable: variable, values: values, sparing: sparing.isEmpty ? nil : sparing) }, within: timeout) {
            if case .swept = $0 { true } else { false }
        }
    }

    /// An attempt a killed controller left running on this node, as a child to supervise:
    /// the agent watches its processes (see `AdoptedAttempts`); the wait returns the end its
    /// first agent wrote down, or nil (untracked) if none was, or the channel was lost.
    func adopt(attemptId: String, statusFile: String) -> ChildProcess {
        final class Outcome: @unchecked Sendable { let ended = DispatchSemaphore(value: 0); var status: ExitStatus?; var id: UInt64 = 0 }
        let outcome = Outcome()
        request({ id in
            outcome.id = id
            return .adopt(id: id, attemptId: attemptId, statusFile: statusFile)
        }) { event in
            switch event {
            case .message(.adoptedEnded(_, let line)): outcome.status = line.flatMap(ExitStatus.init(line:))
            case .lost: break
            default: return false
            }
            outcome.ended.signal()
            return true
        }
        let id = outcome.id
        return ChildProcess(pid: 0, arguments: [], waiter: {
            outcome.ended.wait()
            return outcome.status?.termination
        }, signaller: { [weak self] signal in _ = self?.send(.signal(id: id, signal: signal)) })
    }

    /// Whether the agent answers within `timeout`.
    func ping(timeout: Double) -> Bool {
        answered({ .ping(id: $0) }, within: timeout) { if case .pong = $0 { true } else { false } }
    }

    /// Sends a request with one answer; whether `expected` came within `timeout`.
    private func answered(_ build: (UInt64) -> ToAgent, within timeout: Double, expected: @escaping @Sendable (FromAgent) -> Bool) -> Bool {
        final class Answer: @unchecked Sendable { var came = false; let done = DispatchSemaphore(value: 0) }
        let answer = Answer()
        request(build) { event in
            if case .message(let message) = event { answer.came = expected(message) }
            answer.done.signal()
            return true
        }
        return answer.done.wait(timeout: .now() + timeout) == .success && answer.came
    }

    /// Calls `onLost` once when the channel is lost (at once if it is); returns a token for `unwatch`.
    func watch(_ onLost: @escaping @Sendable (String) -> Void) -> Int {
        condition.lock()
        if case .lost(let reason) = state { condition.unlock(); onLost(reason); return -1 }
        nextWatcher += 1
        watchers[nextWatcher] = onLost
        condition.unlock()
        return nextWatcher
    }

    func unwatch(_ token: Int) { condition.lock(); watchers[token] = nil; condition.unlock() }

    // MARK: - The channel

    @discardableResult
    func send(_ message: ToAgent) -> Bool {
        let frame = AgentFrame.encode(message, lines: lines)
        writeLock.lock()
        defer { writeLock.unlock() }
        return toAgent >= 0 && AgentFrame.write(frame, to: toAgent)
    }

    private func read(from descriptor: Int32) {
        var decoder = FrameDecoder(lines: lines)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var problem: String?
        reading: while true {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            decoder.append(chunk[0..<got])
            do {
                while let body = try decoder.next() {
                    // Heartbeats are most of the traffic of an idle pool: counted, not parsed
                    // (a JSON decode each was most of an idle server's CPU).
                    if body.starts(with: Self.heartbeatPrefix) { heard(); continue }
                    deliver(try AgentFrame.decode(FromAgent.self, from: body))
                }
            } catch {
                // A broken or hostile agent: cut it off, never trust the rest of the stream.
                problem = "its agent sent \(error); the channel was closed"
                break reading
            }
        }
        if problem != nil { kill(-sshPid, SIGKILL) }
        close(descriptor)
        var status: Int32 = 0
        while waitpid(sshPid, &status, 0) < 0 && errno == EINTR {}
        let said = MPIRunReport.lastLines(of: errorsFile, count: 2).map { $0.trimmingWhitespace() }.joined(separator: " ")
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let reason: String
        if let problem {
            reason = problem
        } else if case .connecting = currentState {
            reason = code == 255 ? "unreachable over ssh\(said.isEmpty ? "" : ": \(said)")"
                : "cohort agent could not start (exit code \(code))\(said.isEmpty ? "" : ": \(said)")"
        } else {
            reason = "its agent's channel closed\(said.isEmpty ? " (exit code \(code))" : ": \(said)")"
        }
        lose(reason)
    }

    private static let heartbeatPrefix = Array(#"{"heartbeat":"#.utf8)

    private func heard() {
        condition.lock()
        lastHeard = DispatchTime.now().uptimeNanoseconds
        condition.unlock()
    }

    private func deliver(_ message: FromAgent) {
        condition.lock()
        lastHeard = DispatchTime.now().uptimeNanoseconds
        let id: UInt64?
        switch message {
        case .hello(node: let hello):
            if case .connecting = state {
                if let refusal = hello.refusal {
                    // Lost the whole way (ssh ended, the write end closed, waiters told).
                    condition.unlock()
                    return lose("the agent refused: \(refusal)")
                }
                state = .ready(hello)
                condition.broadcast()
            }
            id = nil
        case .heartbeat: id = nil
        case .shell, .shellClosed:
            let handler = handlerForShells
            condition.unlock()
            handler?(message)
            return
        case .started(let requestId, _), .failedToStart(let requestId, _), .exited(let requestId, _, _, _), .output(let requestId, _, _),
             .swept(let requestId, _), .pong(let requestId), .adoptedEnded(let requestId, _):
            id = requestId
        }
        let handler = id.flatMap { handlers[$0] }
        condition.unlock()
        if let id, let handler, handler(.message(message)) {
            condition.lock(); handlers[id] = nil; condition.unlock()
        }
    }

    /// Marks the channel lost (once), ends ssh and tells everyone waiting.
    func lose(_ reason: String, endingSSH: Bool = true) {
        condition.lock()
        if case .lost = state { condition.unlock(); return }
        state = .lost(reason)
        let waiting = Array(handlers.values), watching = Array(watchers.values)
        handlers.removeAll()
        watchers.removeAll()
        condition.broadcast()
        condition.unlock()
        if endingSSH && sshPid > 0 { kill(-sshPid, SIGKILL) }  // a stalled link: the write end unblocks, the reader sees the end
        writeLock.lock()
        if toAgent >= 0 { close(toAgent); toAgent = -1 }
        writeLock.unlock()
        // Watchers first: a task's waiter, woken by its handler, must find its node already
        // marked lost (else a lost node reads as a task that lost its watcher).
        for watcher in watching { watcher(reason) }
        for handler in waiting { _ = handler(.lost(reason)) }
    }

    /// Lets go of the agent: it ends (and, for a served controller, its tasks run on).
    func release() { lose("the controller let go of the agent", endingSSH: false) }
}
