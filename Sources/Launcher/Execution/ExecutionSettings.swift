import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where and how attempts run on this machine.
public struct ExecutionSettings: Sendable {
    /// Task directories go under here: `<work>/<job>.<incarnation>/<task>[/r<k>]/attempt-<n>`.
    public var workDirectory: String
    /// The `cohort` executable, which ranks run through (`rankWrapper`: `cohort-rank-env` beside it, or its `rank-env`) to get their
    /// per-node variables.
    public var cohortExecutable: String
    public var mpirun: String
    /// Whether mpirun needs `--allow-run-as-root`.
    public var runningAsRoot: Bool
    /// Cores of this machine (the local pool's virtual nodes share them).
    public var localCores: Int
    /// Where progress and decisions are told (transport choice and why).
    public var log: @Sendable (String) -> Void
    /// `cohort serve` starts tasks through its spawner, so that their results outlive a
    /// killed server (`exit-status` in the attempt directory). Nil for `cohort run`, whose
    /// tasks end with it.
    public var spawner: Spawner?
    /// Where resource and output files without a full URL go, and how requests are signed:
    /// the state directory's `storage.json` (`cohort storage set`) under this process's
    /// environment (AWS_*, COHORT_S3_ENDPOINT), unless set.
    public var storage: StorageConfiguration
    /// Where `cohort app add` keeps application packages: `apps/` beside the work tree.
    public var applicationsDirectory: String { ((workDirectory as NSString).deletingLastPathComponent as NSString).appendingPathComponent("apps") }

    public init(workDirectory: String, cohortExecutable: String, mpirun: String = "mpirun", log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.workDirectory = workDirectory
        self.cohortExecutable = cohortExecutable
        self.mpirun = mpirun
        self.runningAsRoot = getuid() == 0
        self.localCores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        self.log = log
        self.storage = StorageConfiguration.configured(stateDirectory: (workDirectory as NSString).deletingLastPathComponent)
    }

    /// This work tree's own id (made once, kept in `<work>/.cohort-id`): every sweep marker
    /// starts with it, so two state directories on one machine (or one set of nodes) never
    /// end each other's processes, whatever job and task ids their users chose.
    public var stateId: String { WorkTreeIdentity.id(of: workDirectory) }

    /// `cohort-spawner` next to `cohortExecutable`, if it was built there.
    public var siblingSpawner: String? {
        let path = URL(fileURLWithPath: cohortExecutable).deletingLastPathComponent().appendingPathComponent("cohort-spawner").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// What every rank of a managed MPI task starts through to get its node's variables:
    /// `cohort-rank-env` next to `cohortExecutable` (C, static: a millisecond a rank), else
    /// `cohort rank-env` (the same rule, with a Swift runtime's start, ~35 ms, per rank).
    public var rankWrapper: [String] {
        let path = URL(fileURLWithPath: cohortExecutable).deletingLastPathComponent().appendingPathComponent("cohort-rank-env").path
        return FileManager.default.isExecutableFile(atPath: path) ? [path] : [cohortExecutable, "rank-env", "--"]
    }

    /// `cohort-rsh` next to `cohortExecutable`, if it was built there (and its path has no
    /// space, which mpirun would split its agent's name at).
    public var siblingRemoteShell: String? {
        let path = URL(fileURLWithPath: cohortExecutable).deletingLastPathComponent().appendingPathComponent("cohort-rsh").path
        return FileManager.default.isExecutableFile(atPath: path) && !path.contains(" ") ? path : nil
    }

    /// The running executable's own path (for `cohortExecutable` when the CLI runs jobs).
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// The random id of a work tree, read once per process.
enum WorkTreeIdentity {
    nonisolated(unsafe) static var known: [String: String] = [:]
    static let lock = NSLock()

    static func id(of workDirectory: String) -> String {
        lock.lock()
        defer { lock.unlock() }
        if let id = known[workDirectory] { return id }
        let path = "\(workDirectory)/.cohort-id"
        var id = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if !ProcessSweeper.isSafe(id) || id.count != 16 {
            var generator = SystemRandomNumberGenerator()
            let fresh = (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
            _ = AttemptExecutor.makeDirectories(workDirectory)
            // O_EXCL: of two processes making it at once, one id wins and both read it.
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if descriptor >= 0 {
                _ = fresh.withCString { write(descriptor, $0, strlen($0)) }
                close(descriptor)
                id = fresh
            } else {
                id = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                // A work tree that cannot hold the file (read-only, or not made): an id of this
                // process, still unique.
                if !ProcessSweeper.isSafe(id) || id.count != 16 { id = fresh }
            }
        }
        known[workDirectory] = id
        return id
    }
}
