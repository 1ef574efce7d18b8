import CSpawn
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `cohort agent --stdio`: the one process of Cohort on a node, started by the controller
/// over an ssh connection that it keeps. It is the parent of the node's tasks (so it
/// learns their ends at once and writes `exit-status` as cohort-spawner does), runs health
/// scripts and sweeps, says it is alive every half second, and reports what the node has
/// at hello. Reads requests on stdin, writes replies and events on stdout.
public final class NodeAgent: @unchecked Sendable {
    private let input: Int32
    private let output: Int32
    private let writeLock = NSLock()
    private let lock = NSLock()
    /// Children by pid, and the pid of each request's child.
    private var running: [pid_t: Child] = [:]
    private var pids: [UInt64: pid_t] = [:]
    /// One signal per child started: the reaper waits for exactly as many ends.
    private let started = DispatchSemaphore(value: 0)
    private var tasksOutliveChannel = false
    private let allEnded = NSCondition()
    /// The node's own environment (sshd's, for the agent's user); each task gets it plus its variables.
    private let nodeEnvironment = ProcessInfo.processInfo.environment

    struct Child {
        var id: UInt64
        var start: Date
        var statusFile: String?
        var errorsFile: String?
        var keepErrors: Bool
        /// Readers of streamed output; the end is sent once they have sent everything.
        var streams: DispatchGroup?
        /// Whether its start was sent; an end the reaper sees before that waits here, so that
        /// the controller always hears the start first.
        var announced = false
        var ended: (Termination, Date)?
    }
    /// Attempts adopted for a restarted controller, by request id, and their watcher.
    private var adopted: [UInt64: String] = [:]
    private let adoptions = AdoptedAttempts(inThisNamespace: true)
    /// Ends of children reaped before their spawner recorded them.
    private var early: [pid_t: (Termination, Date)] = [:]

    /// Where this node's tasks' cohort-rsh reach the agent (made on first need), and the
    /// commands they asked for, by id, waiting for their output and end from the controller.
    private var socket: ShellSocket?
    private var shells: [UInt64: ShellSocket.Reply] = [:]
    private var nextShell: UInt64 = 0

    private func shellSocket() -> String? {
        lock.lock(); defer { lock.unlock() }
        if socket == nil {
            socket = try? ShellSocket { [weak self] host, line, reply in
                guard let self else { return {} }
                self.lock.lock()
                self.nextShell += 1
                let id = self.nextShell
                self.shells[id] = reply
                self.lock.unlock()
                self.send(.shell(id: id, host: host, line: line))
                return { [weak self] in self?.send(.shellClosed(id: id)) }
            }
        }
        return socket?.path
    }

    /// Frames as lines (`cohort agent --stdio --lines`), for a channel carried by srun.
    private let lines: Bool

    public init(input: Int32 = 0, output: Int32 = 1, lines: Bool = false) {
        self.input = input
        self.output = output
        self.lines = lines
    }

    /// Serves until the channel closes (and, for a served controller, until the tasks end).
    public func serve() -> Int32 {
        signal(SIGPIPE, SIG_IGN)  // a closed channel is a write error, not a death
        Thread { [self] in reap() }.start()
        var decoder = FrameDecoder(lines: lines)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var greeted = false
        reading: while true {
            let got = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            decoder.append(chunk[0..<got])
            do {
                while let body = try decoder.next() {
                    let message = try AgentFrame.decode(ToAgent.self, from: body)
                    if case .hello(let version, let build, let work, let stateId, let outlive) = message {
                        let hello = Self.describeNode(protocolVersion: version, build: build, workDirectory: work, stateId: stateId)
                        send(.hello(node: hello))
                        if hello.refusal != nil { return 3 }
                        lock.lock(); tasksOutliveChannel = outlive; lock.unlock()
                        if !greeted { greeted = true; Thread { [self] in heartbeat() }.start() }
                    } else if greeted {
                        handle(message)
                    }
                }
            } catch {
                FileHandle.standardError.write(Data("cohort agent: \(error); closing the channel\n".utf8))
                break reading
            }
        }
        // The channel is gone: the controller died or let go of this node. Commands asked of
        // it will get no answer.
        lock.lock()
        let orphans = shells.values
        shells.removeAll()
        lock.unlock()
        for reply in orphans { reply.finish(error: "cohort-rsh: the agent's controller is gone", code: 255) }
        socket?.close()
        lock.lock()
        let outlive = tasksOutliveChannel
        let groups = Array(running.keys)
        lock.unlock()
        if outlive {
            allEnded.lock()
            while true {
                lock.lock(); let left = running.count; lock.unlock()
                if left == 0 { break }
                allEnded.wait(until: Date() + 1)
            }
            allEnded.unlock()
        } else {
            for pid in groups { kill(-pid, SIGKILL) }
        }
        return 0
    }

    private func handle(_ message: ToAgent) {
        switch message {
        case .hello:
            break
        case .spawn(let id, let arguments, var environment, let directory, let stdout, let stderr, let statusFile, let keepErrors, let stream, let relayShell):
            if relayShell {
                guard let socket = shellSocket() else { send(.failedToStart(id: id, errno: EADDRNOTAVAIL)); return }
                environment["COHORT_AGENT_SOCKET"] = socket
            }
            spawn(id: id, arguments: arguments, environment: environment, directory: directory, stdout: stdout, stderr: stderr,
                  statusFile: statusFile, keepErrors: keepErrors, stream: stream)
        case .shellOutput(let id, let stream, let data):
            lock.lock(); let reply = shells[id]; lock.unlock()
            reply?.send(kind: stream == 2 ? 2 : 1, data)
        case .shellEnded(let id, let code):
            lock.lock(); let reply = shells.removeValue(forKey: id); lock.unlock()
            reply?.finish(error: nil, code: code)
        case .signal(let id, let signal):
            lock.lock(); let pid = pids[id], attemptId = adopted[id]; lock.unlock()
            if let pid { kill(-pid, signal) } else if let attemptId { adoptions.signal(attemptId: attemptId, signal) }
        case .sweep(let id, let variable, let values, let sparing):
            // Off the reading thread: a scan of /proc takes milliseconds on a busy node.
            // Its own network namespace only: on a virtual cluster every node shares this /proc.
            DispatchQueue.global().async { [self] in
                send(.swept(id: id, killed: ProcessSweeper.killLocal(variable: variable, values: values, inThisNamespace: true, sparing: sparing ?? [])))
            }
        case .adopt(let id, let attemptId, let statusFile):
            lock.lock(); adopted[id] = attemptId; lock.unlock()
            adoptions.watch(attemptId: attemptId, statusFile: statusFile) { [self] status in
                lock.lock(); adopted[id] = nil; lock.unlock()
                send(.adoptedEnded(id: id, status: status?.line))
            }
        case .ping(let id):
            send(.pong(id: id))
        }
    }

    private func spawn(id: UInt64, arguments: [String], environment: [String: String], directory: String, stdout: String?, stderr: String?,
                       statusFile: String?, keepErrors: Bool, stream: Bool) {
        guard !arguments.isEmpty else { send(.failedToStart(id: id, errno: EINVAL)); return }
        // No directory: the user's home, where ssh would have started it.
        let directory = directory.isEmpty ? (nodeEnvironment["HOME"] ?? "/") : directory
        let variables = nodeEnvironment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }.sorted()
        var errorsFile = stderr
        var keptFile: String?
        if keepErrors && stderr == nil {
            keptFile = "/tmp/cohort-agent-\(getpid())-\(id).err"
            errorsFile = keptFile
        }
        // Never the agent's own stdout or stderr: a task holding the channel open would hide
        // the agent's death from the controller (and could write into the channel).
        var pid: pid_t = 0
        var child = Child(id: id, start: Date(), statusFile: statusFile, errorsFile: keepErrors ? errorsFile : nil, keepErrors: keepErrors)
        var pipes: [(read: Int32, write: Int32)] = []
        if stream {
            for _ in 0..<2 {
                var ends: [Int32] = [0, 0]
                guard cohort_pipe(&ends) == 0 else { send(.failedToStart(id: id, errno: errno)); pipes.forEach { close($0.read); close($0.write) }; return }
                pipes.append((ends[0], ends[1]))
            }
        }
        let rc = withCStrings(arguments) { argv in
            withCStrings(variables) { envp in
                stream ? cohort_spawn_fds(&pid, arguments[0], argv, envp, directory, -1, pipes[0].write, pipes[1].write, 1)
                       : cohort_spawn(&pid, arguments[0], argv, envp, directory, stdout ?? "/dev/null", errorsFile ?? "/dev/null", 1)
            }
        }
        for ends in pipes { close(ends.write) }
        if rc != 0 {
            for ends in pipes { close(ends.read) }
            if let keptFile { unlink(keptFile) }
            send(.failedToStart(id: id, errno: rc))
            return
        }
        if stream {
            let group = DispatchGroup()
            for (index, ends) in pipes.enumerated() {
                group.enter()
                let thread = Thread { [self] in
                    relay(ends.read, id: id, stream: Int32(index + 1))
                    group.leave()
                }
                thread.stackSize = 256 << 10
                thread.start()
            }
            child.streams = group
        }
        started.signal()  // the reaper may wait for it now; it may even have ended already
        lock.lock()
        var ended = early.removeValue(forKey: pid)
        running[pid] = child
        pids[id] = pid
        lock.unlock()
        send(.started(id: id, pid: pid))
        lock.lock()
        ended = ended ?? running[pid]?.ended
        if ended == nil { running[pid]?.announced = true }
        lock.unlock()
        if let (termination, end) = ended { complete(pid, child, termination, end) }
    }

    private func relay(_ descriptor: Int32, id: UInt64, stream: Int32) {
        var chunk = [UInt8](repeating: 0, count: 1 << 15)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            send(.output(id: id, stream: stream, data: Data(chunk[0..<got])))
        }
        close(descriptor)
    }

    /// Waits for every child's end, writes it down and reports it.
    private func reap() {
        while true {
            started.wait()
            var status: Int32 = 0
            var reaped: pid_t
            repeat { reaped = waitpid(-1, &status, 0) } while reaped < 0 && errno == EINTR
            guard reaped > 0 else { continue }
            let pid = reaped
            let end = Date()
            let signal = status & 0x7f
            let termination: Termination = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
            // Reported here only if its start was; else its spawner reports it after the start.
            lock.lock()
            let child = running[pid]
            if child == nil { early[pid] = (termination, end) } else if child?.announced == false { running[pid]?.ended = (termination, end) }
            lock.unlock()
            if let child, child.announced { complete(pid, child, termination, end) }
        }
    }

    /// Writes a child's end down (when serving) and reports it, after its streamed output.
    private func complete(_ pid: pid_t, _ child: Child, _ termination: Termination, _ end: Date) {
        if let statusFile = child.statusFile {
            let (how, value) = switch termination { case .exited(let code): ("exited", code); case .signaled(let signal): ("signaled", signal) }
            let line = String(format: "%@ %d %.6f %.6f\n", how, value, child.start.timeIntervalSince1970, end.timeIntervalSince1970)
            let descriptor = open(statusFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            if descriptor >= 0 { _ = line.withCString { write(descriptor, $0, strlen($0)) }; close(descriptor) }
        }
        let finish: @Sendable () -> Void = { [self] in
            var errors: [String]?
            if child.keepErrors, let file = child.errorsFile {
                errors = MPIRunReport.lastLines(of: file, count: 2)
                if file.hasPrefix("/tmp/cohort-agent-") { unlink(file) }
            }
            lock.lock()
            running[pid] = nil
            pids[child.id] = nil
            lock.unlock()
            switch termination {
            case .exited(let code): send(.exited(id: child.id, code: code, signal: nil, errors: errors))
            case .signaled(let signal): send(.exited(id: child.id, code: nil, signal: signal, errors: errors))
            }
            allEnded.lock(); allEnded.broadcast(); allEnded.unlock()
        }
        if let streams = child.streams {
            // Its output first; a daemon it left holding the pipe is not waited for long.
            DispatchQueue.global().async { _ = streams.wait(timeout: .now() + 1); finish() }
        } else {
            finish()
        }
    }

    private func heartbeat() {
        while true {
            usleep(useconds_t(AgentProtocol.heartbeatInterval * 1e6))
            lock.lock(); let count = running.count; lock.unlock()
            send(.heartbeat(load: Self.load(), running: count))
        }
    }

    private func send(_ message: FromAgent) {
        let frame = AgentFrame.encode(message, lines: lines)
        writeLock.lock()
        defer { writeLock.unlock() }
        AgentFrame.write(frame, to: output)  // if the channel is gone, the read loop sees it
    }

    // MARK: - What the node has

    static func describeNode(protocolVersion: Int, build: String, workDirectory: String, stateId: String) -> AgentHello {
        let memory = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { UInt64($0.split(separator: " ").dropFirst().first ?? "") }.map { $0 * 1024 } ?? 0
        let gpus = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? [])
            .filter { $0.hasPrefix("nvidia") && $0.dropFirst(6).allSatisfy(\.isNumber) && $0.count > 6 }.count
        let seen = (try? String(contentsOfFile: "\(workDirectory)/.cohort-id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "cohort"
        let own = AgentProtocol.build(of: "/proc/self/exe")
        var hello = AgentHello(protocolVersion: AgentProtocol.version, build: own, hostname: Node.thisMachineName, pid: getpid(),
                               cores: max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))), memoryBytes: memory, gpus: gpus,
                               rdma: RDMAProbe.localDevices(), load: load(), sharesWorkDirectory: seen == stateId, refusal: nil)
        if protocolVersion != AgentProtocol.version {
            hello.refusal = "the agent speaks protocol \(AgentProtocol.version), the controller \(protocolVersion): install the same Cohort on the node"
        } else if !build.isEmpty && !own.isEmpty && build != own {
            hello.refusal = "the node's \(path) is build \(own.prefix(12)), the controller's is \(build.prefix(12)): install the same Cohort on every node (or restart the controller after an upgrade)"
        } else if !hello.sharesWorkDirectory {
            hello.refusal = "the node does not see the work directory \(workDirectory) (Cohort's work directory must be on a filesystem every node mounts at the same path)"
        }
        return hello
    }

    static func load() -> Double {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)).flatMap { Double($0.split(separator: " ").first ?? "") } ?? 0
    }
}
