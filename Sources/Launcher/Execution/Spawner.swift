import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `cohort serve`'s way to start tasks: through `cohort-spawner`, one helper process per
/// server that is the parent of every task. It writes each task's end to `exit-status` in
/// the attempt directory and outlives a killed server, so a restarted server reads what
/// finished meanwhile instead of running it again. A task costs one posix_spawn, as it does
/// without the helper (a wrapper process per task doubled the cost of short tasks).
///
/// If the helper itself dies, the next task starts a new one; the tasks the dead one was
/// watching are reported `untracked` (their ends can no longer be known), and the executor
/// ends and reruns them.
public final class Spawner: @unchecked Sendable {
    /// The environment variable that marks the helper, valued with the state directory: a
    /// restarted server ends its predecessor's helper before it reconciles.
    public static let marker = "COHORT_SPAWNER"

    let executable: String
    let owner: String
    private let lock = NSCondition()
    private var nextId: UInt64 = 0
    /// The running helper: its request pipe and its generation (1, 2, … after restarts).
    private var requests: FileHandle?
    private var generation = 0
    private var deadGenerations: Set<Int> = []
    /// Per request: the helper generation it went to, the pid or errno once started, the
    /// termination once ended.
    private var generationOf: [UInt64: Int] = [:]
    private var started: [UInt64: Result<pid_t, ChildProcess.LaunchError>] = [:]
    private var ended: [UInt64: Termination] = [:]
    private var closed = false
    private var helpers: [Process] = []
    public var log: @Sendable (String) -> Void = { _ in }

    /// Starts the helper `executable` for the state directory `owner`.
    public init(executable: String, owner: String) throws {
        self.executable = executable
        self.owner = owner
        lock.lock()
        defer { lock.unlock() }
        try startHelper()
    }

    /// The pid of the running helper (for tests that kill it).
    public private(set) var helperPid: pid_t = 0

    private func startHelper() throws {  // under lock
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        var environment = ProcessInfo.processInfo.environment
        environment[Self.marker] = owner
        process.environment = environment
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        helpers.append(process)  // kept: Foundation watches (and reaps) the helper through it
        generation += 1
        requests = input.fileHandleForWriting
        helperPid = process.processIdentifier
        let events = output.fileHandleForReading, mine = generation
        let thread = Thread { [unowned self] in self.readEvents(events, generation: mine) }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Starts `arguments` as `ChildProcess` would; `statusFile` gets how it ended.
    public func spawn(_ arguments: [String], environment: [String: String], directory: String?, stdout: String?, stderr: String?,
                      statusFile: String) throws(ChildProcess.LaunchError) -> ChildProcess {
        var payload = Data()
        func field(_ text: String) { payload.append(contentsOf: Array(text.utf8)); payload.append(0) }
        lock.lock()
        defer { lock.unlock() }
        if requests == nil || deadGenerations.contains(generation) {
            guard !closed else { throw ChildProcess.LaunchError(program: arguments[0], errno: ECHILD) }
            do { try startHelper() } catch { throw ChildProcess.LaunchError(program: arguments[0], errno: ECHILD) }
            log("cohort-spawner died; started a new one (pid \(helperPid))")
        }
        nextId += 1
        let id = nextId, mine = generation
        field(String(id)); field(directory ?? ""); field(stdout ?? ""); field(stderr ?? ""); field(statusFile)
        field(String(arguments.count)); arguments.forEach(field)
        let entries = environment.map { "\($0.key)=\($0.value)" }.sorted()
        field(String(entries.count)); entries.forEach(field)
        var length = UInt32(payload.count).littleEndian
        var message = Data(bytes: &length, count: 4)
        message.append(payload)
        generationOf[id] = mine
        do { try requests?.write(contentsOf: message) } catch {
            generationOf[id] = nil
            throw ChildProcess.LaunchError(program: arguments[0], errno: EPIPE)
        }
        while started[id] == nil && !deadGenerations.contains(mine) { lock.wait() }
        guard let result = started.removeValue(forKey: id) else {
            generationOf[id] = nil
            throw ChildProcess.LaunchError(program: arguments[0], errno: ECHILD)  // the helper died
        }
        switch result {
        case .success(let pid):
            let child = ChildProcess(pid: pid, arguments: arguments) { [unowned self] in waitForEnd(id) }
            return child
        case .failure(let error):
            generationOf[id] = nil
            throw ChildProcess.LaunchError(program: arguments[0], errno: error.errno)
        }
    }

    /// The task's end, or nil if the helper watching it died first.
    private func waitForEnd(_ id: UInt64) -> Termination? {
        lock.lock()
        defer { lock.unlock() }
        while ended[id] == nil {
            if let mine = generationOf[id], deadGenerations.contains(mine) {
                generationOf[id] = nil
                return nil
            }
            lock.wait()
        }
        generationOf[id] = nil
        return ended.removeValue(forKey: id)!
    }

    /// Reads one helper's event lines until it ends.
    private func readEvents(_ events: FileHandle, generation: Int) {
        var pending = Data()
        while true {
            let chunk = events.availableData
            if chunk.isEmpty { break }
            pending.append(chunk)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                handle(line)
            }
        }
        lock.lock()
        deadGenerations.insert(generation)
        lock.broadcast()  // whatever it was starting or watching is untracked now
        lock.unlock()
    }

    private func handle(_ line: String) {
        let words = line.split(separator: " ")
        guard words.count >= 3, let id = UInt64(words[1]) else { return }
        lock.lock()
        defer { lock.broadcast(); lock.unlock() }
        switch words[0] {
        case "S": started[id] = Int32(words[2]).map { .success($0) } ?? .failure(ChildProcess.LaunchError(program: "?", errno: EINVAL))
        case "F": started[id] = .failure(ChildProcess.LaunchError(program: "?", errno: Int32(words[2]) ?? EINVAL))
        case "X" where words.count == 4:
            let value = Int32(words[3]) ?? 0
            ended[id] = words[2] == "signaled" ? .signaled(value) : .exited(value)
        default: break
        }
    }

    /// Stops taking tasks; the helper leaves once its running tasks have ended.
    public func close() {
        lock.lock()
        closed = true
        try? requests?.close()
        requests = nil
        lock.unlock()
    }
}
