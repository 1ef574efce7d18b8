import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Attempts a restarted controller adopts: tasks that outlived the server that started them
/// under a parent that outlived it too (cohort-spawner here, a node's agent there), which
/// writes each end to the attempt's `exit-status`. Nobody here is their parent, so their
/// ends are watched: one scan of /proc for all of them every half second; when an
/// attempt's last process is gone, its end is read from `exit-status`. Used by the
/// controller for its own machine and by each node's agent for its node.
final class AdoptedAttempts: @unchecked Sendable {
    /// Only this network namespace's processes (an agent on a virtual cluster node, whose
    /// /proc shows every node's).
    let inThisNamespace: Bool
    let interval: Double
    private let lock = NSLock()
    private var watched: [String: Watch] = [:]
    private var scanning = false

    struct Watch {
        var statusFile: String
        var ended: @Sendable (ExitStatus?) -> Void
    }

    init(inThisNamespace: Bool = false, interval: Double = 0.5) {
        self.inThisNamespace = inThisNamespace
        self.interval = interval
    }

    /// Calls `ended` once, with the attempt's end as its parent wrote it, or nil if its
    /// processes are gone and no end was written (its parent died too).
    func watch(attemptId: String, statusFile: String, ended: @escaping @Sendable (ExitStatus?) -> Void) {
        lock.lock()
        watched[attemptId] = Watch(statusFile: statusFile, ended: ended)
        let start = !scanning
        scanning = true
        lock.unlock()
        if start {
            let thread = Thread { [self] in scan() }
            thread.stackSize = 256 << 10
            thread.start()
        }
    }

    /// The adopted attempt as a child to supervise: its wait returns the end its parent
    /// wrote (nil: nobody can tell), its signals reach every process of the attempt.
    func child(attemptId: String, statusFile: String) -> ChildProcess {
        final class Outcome: @unchecked Sendable { let ended = DispatchSemaphore(value: 0); var status: ExitStatus? }
        let outcome = Outcome()
        watch(attemptId: attemptId, statusFile: statusFile) { status in
            outcome.status = status
            outcome.ended.signal()
        }
        return ChildProcess(pid: 0, arguments: [], waiter: {
            outcome.ended.wait()
            return outcome.status?.termination
        }, signaller: { [self] signal in self.signal(attemptId: attemptId, signal) })
    }

    /// Sends `signal` to every process of the attempt (all of them carry its id).
    func signal(attemptId: String, _ signal: Int32) {
        ProcessSweeper.signalLocal(attemptId: attemptId, signal, inThisNamespace: inThisNamespace)
    }

    private func scan() {
        while true {
            usleep(useconds_t(interval * 1e6))
            lock.lock()
            let ids = Array(watched.keys)
            if ids.isEmpty { scanning = false; lock.unlock(); return }
            lock.unlock()
            let counts = ProcessSweeper.countLocal(attemptIds: ids, inThisNamespace: inThisNamespace)
            for (id, count) in zip(ids, counts) where count == 0 {
                lock.lock(); let watch = watched.removeValue(forKey: id); lock.unlock()
                guard let watch else { continue }
                DispatchQueue.global().async { watch.ended(Self.end(in: watch.statusFile)) }
            }
        }
    }

    /// The end its parent writes just after reaping it (when the last process may already
    /// be gone from /proc): waited for a moment.
    static func end(in statusFile: String, waiting: Double = 2) -> ExitStatus? {
        let deadline = Date() + waiting
        while true {
            if let status = ExitStatus(contentsOf: statusFile) { return status }
            if Date() >= deadline { return nil }
            usleep(50_000)
        }
    }
}
