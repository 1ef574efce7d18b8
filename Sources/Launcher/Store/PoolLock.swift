import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One allocator per pool across processes: whoever places work on a pool (a `cohort run`
/// without a server, or the server's runner for that pool) holds the pool's lock file in
/// the state directory for as long as it does, so two processes never book the same slots.
/// The kernel lets go of it when the holder exits, however it exits.
public final class PoolLock: @unchecked Sendable {
    let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }
    deinit { close(descriptor) }

    public static func path(stateDirectory: String, pool: String) -> String { "\(stateDirectory)/pool-\(pool).lock" }

    /// Takes the lock if it is free; else nil and the pid of the holder, if known.
    public static func take(stateDirectory: String, pool: String) throws -> (lock: PoolLock?, holder: Int32?) {
        try PoolStore.validateName(pool)
        let path = path(stateDirectory: stateDirectory, pool: pool)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { throw JobStore.StoreError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            close(descriptor)
            return (nil, holder)
        }
        ftruncate(descriptor, 0)
        let text = "\(getpid())\n"
        _ = text.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        return (PoolLock(descriptor: descriptor), nil)
    }

    /// Takes the lock, waiting for it; `waiting` is told the holder's pid once, if it must wait.
    public static func wait(stateDirectory: String, pool: String, waiting: (Int32?) -> Void) throws -> PoolLock {
        var told = false
        while true {
            let (lock, holder) = try take(stateDirectory: stateDirectory, pool: pool)
            if let lock { return lock }
            if !told { waiting(holder); told = true }
            usleep(100_000)
        }
    }
}
