import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where and how attempts run on this machine.
public struct ExecutionSettings: Sendable {
    /// Task directories go under here: `<work>/<job>/<task>[/r<k>]/attempt-<n>`.
    public var workDirectory: String
    /// The `cohort` executable, which ranks run through (`cohort rank-env`) to get their
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

    public init(workDirectory: String, cohortExecutable: String, mpirun: String = "mpirun", log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.workDirectory = workDirectory
        self.cohortExecutable = cohortExecutable
        self.mpirun = mpirun
        self.runningAsRoot = getuid() == 0
        self.localCores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        self.log = log
    }

    /// `cohort-spawner` next to `cohortExecutable`, if it was built there.
    public var siblingSpawner: String? {
        let path = URL(fileURLWithPath: cohortExecutable).deletingLastPathComponent().appendingPathComponent("cohort-spawner").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// The running executable's own path (for `cohortExecutable` when the CLI runs jobs).
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
