import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `cohort serve`'s way to start tasks: through `cohort-spawner`, one helper process per
/// server that is the parent of every task. It writes each task's end to `exit-status` in
/// the attempt directory and outlives a killed server, so a restarted server reads what
/// finished meanwhile instead of running it again. A task costs one posix_spawn, as it does
/// without the helper (a wrapper process per task doubled the cost of short tasks).
public final class Spawner: @unchecked Sendable {
    /// The environment variable that marks the helper, valued with the state directory: a
    /// restarted server ends its predecessor's helper before it reconciles.
    public static let marker = "COHORT_SPAWNER"

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private let process: Process
    private let requests: FileHandle
    private let lock = NSCondition()
    private var nextId: UInt64 = 0
    /// Per request: the pid or errno once started, the termination once ended.
    private var started: [UInt64: Result<pid_t, Failure>] = [:]
    private var ended: [UInt64: Termination] = [:]
    private var alive = true

    /// Starts the helper `executable` for the state directory `owner`.
    public init(executable: String, owner: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        var environment = ProcessInfo.processInfo.environment
        environment[Self.marker] = owner
        process.environment = environment
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        requests = input.fileHandleForWriting
        let events = output.fileHandleForReading
        let thread = Thread { [unowned self] in self.readEvents(events) }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Starts `arguments` as `ChildProcess` would; `statusFile` gets how it ended.
    public func spawn(_ arguments: [String], environment: [String: String], directory: String?, stdout: String?, stderr: String?,
                      statusFile: String) throws(ChildProcess.LaunchError) -> ChildProcess {
        lock.lock()
        nextId += 1
        let id = nextId
        let isAlive = alive
        lock.unlock()
        guard isAlive else { throw ChildProcess.LaunchError(program: arguments[0], errno: ECHILD) }
        var payload = Data()
        func field(_ text: String) { payload.append(contentsOf: Array(text.utf8)); payload.append(0) }
        field(String(id)); field(directory ?? ""); field(stdout ?? ""); field(stderr ?? ""); field(statusFile)
        field(String(arguments.count)); arguments.forEach(field)
        let entries = environment.map { "\($0.key)=\($0.value)" }.sorted()
        field(String(entries.count)); entries.forEach(field)
        var length = UInt32(payload.count).littleEndian
        var message = Data(bytes: &length, count: 4)
        message.append(payload)
        lock.lock()
        do { try requests.write(contentsOf: message) } catch {
            alive = false
            lock.unlock()
            throw ChildProcess.LaunchError(program: arguments[0], errno: EPIPE)
        }
        while started[id] == nil && alive { lock.wait() }
        guard let result = started.removeValue(forKey: id) else {
            lock.unlock()
            throw ChildProcess.LaunchError(program: arguments[0], errno: ECHILD)  // the helper died
        }
        lock.unlock()
        switch result {
        case .success(let pid):
            return ChildProcess(pid: pid, arguments: arguments) { [self] in waitForEnd(id) }
        case .failure:
            if case .failure(let failure) = result, let code = Int32(failure.description) {
                throw ChildProcess.LaunchError(program: arguments[0], errno: code)
            }
            throw ChildProcess.LaunchError(program: arguments[0], errno: EINVAL)
        }
    }

    private func waitForEnd(_ id: UInt64) -> Termination {
        lock.lock()
        defer { lock.unlock() }
        while ended[id] == nil {
            if !alive { return .signaled(SIGKILL) }
            lock.wait()
        }
        return ended.removeValue(forKey: id)!
    }

    /// Reads the helper's event lines until it ends.
    private func readEvents(_ events: FileHandle) {
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
        alive = false
        // Whatever was still starting never will.
        lock.broadcast()
        lock.unlock()
    }

    private func handle(_ line: String) {
        let words = line.split(separator: " ")
        guard words.count >= 3, let id = UInt64(words[1]) else { return }
        lock.lock()
        defer { lock.broadcast(); lock.unlock() }
        switch words[0] {
        case "S": started[id] = Int32(words[2]).map { .success($0) } ?? .failure(Failure(description: "\(EINVAL)"))
        case "F": started[id] = .failure(Failure(description: String(words[2])))
        case "X" where words.count == 4:
            let value = Int32(words[3]) ?? 0
            ended[id] = words[2] == "signaled" ? .signaled(value) : .exited(value)
        default: break
        }
    }

    /// Stops taking tasks; the helper leaves once its running tasks have ended.
    public func close() {
        try? requests.close()
    }
}
