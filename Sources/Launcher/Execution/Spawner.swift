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
    /// The environment variable that marks the helper, valued with the state directory. A
    /// restarted server leaves its predecessor's helper be: it is the parent of the tasks
    /// the new server adopts, and ends once its last task has.
    public static let marker = "COHORT_SPAWNER"
    /// What one request to the helper may hold (id, paths, counts, arguments, variables).
    static let maximumFields = 65_536

    let executable: String
    let owner: String
    private let lock = NSLock()
    private var nextId: UInt64 = 0
    /// The running helper: its request pipe and its generation (1, 2, … after restarts).
    private var requests: FileHandle?
    private var generation = 0
    private var deadGenerations: Set<Int> = []
    /// One request on its way: the helper generation it went to, the pid or errno once
    /// started, the termination once ended. Each has its own semaphores, so an event wakes
    /// the one thread waiting for it, not every attempt's thread.
    final class Pending: @unchecked Sendable {  // fields touched under the spawner's lock
        let generation: Int
        var start: Result<pid_t, ChildProcess.LaunchError>?
        var end: Termination?
        let started = DispatchSemaphore(value: 0)
        let ended = DispatchSemaphore(value: 0)
        init(generation: Int) { self.generation = generation }
    }
    private var pending: [UInt64: Pending] = [:]
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
        _ = brokenPipesAreErrors
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
        // The helper takes at most 65,536 fields a request; more could never start.
        guard arguments.count + environment.count + 7 <= Self.maximumFields else {
            throw ChildProcess.LaunchError(program: arguments[0], errno: E2BIG)
        }
        lock.lock()
        if requests == nil || deadGenerations.contains(generation) {
            guard !closed else { lock.unlock(); throw ChildProcess.LaunchError(program: arguments[0], errno: ECHILD) }
            do { try startHelper() } catch { lock.unlock(); throw ChildProcess.LaunchError(program: arguments[0], errno: ECHILD) }
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
        let request = Pending(generation: mine)
        pending[id] = request
        do { try requests?.write(contentsOf: message) } catch {
            pending[id] = nil
            lock.unlock()
            throw ChildProcess.LaunchError(program: arguments[0], errno: EPIPE)
        }
        lock.unlock()
        request.started.wait()
        lock.lock()
        let result = request.start
        if case .success = result {} else { pending[id] = nil }
        lock.unlock()
        switch result {
        case .success(let pid)?:
            return ChildProcess(pid: pid, arguments: arguments) { [unowned self] in waitForEnd(id, request) }
        case .failure(let error)?:
            throw ChildProcess.LaunchError(program: arguments[0], errno: error.errno)
        case nil:
            throw ChildProcess.LaunchError(program: arguments[0], errno: ECHILD)  // the helper died
        }
    }

    /// The task's end, or nil if the helper watching it died first.
    private func waitForEnd(_ id: UInt64, _ request: Pending) -> Termination? {
        request.ended.wait()
        lock.lock()
        defer { lock.unlock() }
        pending[id] = nil
        return request.end
    }

    /// Reads one helper's event lines until it ends.
    private func readEvents(_ events: FileHandle, generation: Int) {
        var unread = Data()
        while true {
            let chunk = events.availableData
            if chunk.isEmpty { break }
            unread.append(chunk)
            while let newline = unread.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: unread[unread.startIndex..<newline], as: UTF8.self)
                unread.removeSubrange(unread.startIndex...newline)
                handle(line)
            }
        }
        // Whatever it was starting or watching is untracked now.
        lock.lock()
        deadGenerations.insert(generation)
        let orphans = pending.values.filter { $0.generation == generation && $0.end == nil }
        lock.unlock()
        for request in orphans { request.started.signal(); request.ended.signal() }
    }

    private func handle(_ line: String) {
        let words = line.split(separator: " ")
        guard words.count >= 3, let id = UInt64(words[1]) else { return }
        lock.lock()
        guard let request = pending[id] else { lock.unlock(); return }
        switch words[0] {
        case "S":
            request.start = Int32(words[2]).map { .success($0) } ?? .failure(ChildProcess.LaunchError(program: "?", errno: EINVAL))
            lock.unlock()
            request.started.signal()
        case "F":
            request.start = .failure(ChildProcess.LaunchError(program: "?", errno: Int32(words[2]) ?? EINVAL))
            lock.unlock()
            request.started.signal()
        case "X" where words.count == 4:
            let value = Int32(words[3]) ?? 0
            request.end = words[2] == "signaled" ? .signaled(value) : .exited(value)
            lock.unlock()
            request.ended.signal()
        default:
            lock.unlock()
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
