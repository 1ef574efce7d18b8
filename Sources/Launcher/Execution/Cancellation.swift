import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Lets a whole run be cancelled (Ctrl-C, SIGTERM): every process group started under it
/// gets SIGTERM, then SIGKILL after a grace period, and nothing new starts.
public final class Cancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    /// By identity, not pid: tasks on different nodes (and adopted ones, which have none
    /// here) may share a pid.
    private var children: [ObjectIdentifier: ChildProcess] = [:]

    public init() {}

    public var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }

    /// Tracks `child` until `finished`; returns false (and ends it) if already cancelled.
    func started(_ child: ChildProcess) -> Bool {
        lock.lock()
        if cancelled {
            lock.unlock()
            child.signalGroup(SIGKILL)
            return false
        }
        children[ObjectIdentifier(child)] = child
        lock.unlock()
        return true
    }

    func finished(_ child: ChildProcess) {
        lock.lock(); children[ObjectIdentifier(child)] = nil; lock.unlock()
    }

    /// Ends everything running under this token.
    public func cancel(grace: Double = 3) {
        lock.lock()
        cancelled = true
        let running = Array(children.values)
        lock.unlock()
        for child in running { child.signalGroup(SIGTERM) }
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) {
            for child in running { child.signalGroup(SIGKILL) }
        }
    }
}
