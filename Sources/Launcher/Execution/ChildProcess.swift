import CSpawn
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
public enum Termination: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// The shell convention: the exit code, or 128 + the signal.
    public var code: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exit code \(code)"
        case .signaled(let signal): "signal \(signal) (\(signalName(signal)))"
        }
    }
}

func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGTERM: "SIGTERM"
    case SIGKILL: "SIGKILL"
    case SIGINT: "SIGINT"
    case SIGSEGV: "SIGSEGV"
    case SIGABRT: "SIGABRT"
    case SIGBUS: "SIGBUS"
    case SIGFPE: "SIGFPE"
    case SIGILL: "SIGILL"
    case SIGPIPE: "SIGPIPE"
    case SIGHUP: "SIGHUP"
    default: "signal \(signal)"
    }
}

/// A program started by Cohort in its own process group, so that the whole tree it
/// starts can be signalled at once.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let arguments: [String]

    public struct LaunchError: Error, CustomStringConvertible {
        public let program: String
        public let errno: Int32
        public init(program: String, errno: Int32) {
            self.program = program
            self.errno = errno
        }
        public var description: String { "cannot start \(program): \(String(cString: strerror(errno)))" }
    }

    /// Starts `arguments` (the program, searched on PATH, then its arguments) with exactly
    /// `environment`, in `directory`, appending stdout and stderr to the given files.
    public init(_ arguments: [String], environment: [String: String], directory: String?, stdout: String?, stderr: String?) throws(LaunchError) {
        precondition(!arguments.isEmpty)
        self.arguments = arguments
        var pid: pid_t = 0
        let rc = withCStrings(arguments) { argv in
            withCStrings(environment.map { "\($0.key)=\($0.value)" }.sorted()) { envp in
                cohort_spawn(&pid, arguments[0], argv, envp, directory, stdout, stderr, 1)
            }
        }
        guard rc == 0 else { throw LaunchError(program: arguments[0], errno: rc) }
        self.pid = pid
        waiter = nil
        signaller = nil
    }

    /// How to learn the end of a process this one is not the parent of (see `Spawner`);
    /// nil from it: nobody can tell any more.
    private let waiter: (@Sendable () -> Termination?)?
    /// Set when the process's end could not be learned (its spawner died): it may still
    /// run, and its result is unknown.
    public private(set) var untracked = false

    /// How to signal a process on another node (through its agent); nil: `kill` here.
    private let signaller: (@Sendable (Int32) -> Void)?

    init(pid: pid_t, arguments: [String], waiter: @escaping @Sendable () -> Termination?, signaller: (@Sendable (Int32) -> Void)? = nil) {
        self.pid = pid
        self.arguments = arguments
        self.waiter = waiter
        self.signaller = signaller
    }

    /// Blocks until the process ends.
    public func wait() -> Termination {
        if let waiter {
            if let termination = waiter() { return termination }
            untracked = true
            return .signaled(SIGKILL)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .exited(127) }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }

    /// Sends `signal` to the process group (the child and everything it started there).
    public func signalGroup(_ signal: Int32) {
        if let signaller { return signaller(signal) }
        _ = kill(-pid, signal)
    }

    /// Sends `signal` to the child alone — mpirun or srun, which pass it on to every rank
    /// once (signalling their group too would give the local ranks a second one). Through
    /// an agent, to the group: it runs no launcher there.
    public func signalLeader(_ signal: Int32) {
        if let signaller { return signaller(signal) }
        _ = kill(pid, signal)
    }
}

/// A watchdog that ends a process group at a deadline: SIGTERM, then SIGKILL after a grace
/// period. `fired` says whether it had to.
final class Deadline: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    private(set) var fired = false

    init(after seconds: Double, grace: Double, action: @escaping @Sendable (Int32) -> Void) {
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [self] in
            guard markFired() else { return }
            action(SIGTERM)
            DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [self] in
                if !isCancelled { action(SIGKILL) }
            }
        }
    }

    private func markFired() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if cancelled { return false }
        fired = true
        return true
    }

    private var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }

    var hasFired: Bool { lock.lock(); defer { lock.unlock() }; return fired }

    func cancel() { lock.lock(); cancelled = true; lock.unlock() }
}

/// Calls `body` with a NULL-terminated C array of `strings`.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
