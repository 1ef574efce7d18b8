import Foundation
import CSpawn
#if canImport(Glibc)
import Glibc
#endif

/// Finds and ends every process that carries an attempt's id in its environment: what is
/// left of a task after its process group was signalled (daemons that called setsid, ranks
/// started by remote daemons). On remote nodes the same scan runs over ssh.
public enum ProcessSweeper {
    /// The environment variable that marks every process of an attempt.
    public static let marker = "COHORT_ATTEMPT_ID"
    /// The variable that marks every process of a job from one work tree (`<state id>.<job>`).
    public static let jobMarker = "COHORT_JOB_KEY"

    /// Ids are Cohort's own (`job.task.r0.a1`); nothing else may reach the remote shell.
    static func isSafe(_ id: String) -> Bool {
        !id.isEmpty && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// Pids on this machine whose environment holds `marker=id`.
    public static func localProcesses(attemptId id: String) -> [pid_t] {
        localProcesses(variable: marker, value: id)
    }

    /// Pids on this machine (every network namespace shares its process table) whose
    /// environment holds `variable=value`.
    public static func localProcesses(variable: String, value: String) -> [pid_t] {
        let needle = Array("\(variable)=\(value)".utf8)
        let me = getpid()
        var found: [pid_t] = []
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        for entry in entries {
            guard let pid = pid_t(entry), pid != me,
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            // environ is NUL-separated NAME=VALUE entries.
            for variable in data.split(separator: 0) where variable.elementsEqual(needle) {
                found.append(pid)
                break
            }
        }
        return found
    }

    /// Kills (SIGKILL) every local process of the attempt; returns how many there were.
    @discardableResult
    public static func killLocal(attemptId id: String, newerThan: pid_t = 0) -> Int {
        killLocal(variable: marker, value: id, newerThan: newerThan)
    }

    /// Every process an attempt starts gets a pid above the last one handed out before it
    /// began, until pids wrap (pid_max is 32,768 on many systems): so the sweep after a short
    /// attempt need not open the environment of any older process. `floor` is 0 (look at
    /// every process) when the pids wrapped meanwhile, or the attempt ran long enough for a
    /// whole wrap, or the counter cannot be read.
    public struct PidWindow {
        let lastBefore: pid_t
        let started = Date()

        public init() { lastBefore = cohort_last_pid() }

        public var floor: pid_t {
            let now = cohort_last_pid()
            guard lastBefore > 0, now >= lastBefore, Date().timeIntervalSince(started) < 1 else { return 0 }
            return lastBefore
        }
    }

    /// Kills (SIGKILL) every local process whose environment holds `variable=value`; with
    /// `newerThan`, only processes whose pid is above it (see `PidWindow`).
    /// `inThisNamespace`: only processes of this machine's own network namespace (what
    /// mpirun left here, and never a virtual cluster node's, which share this /proc).
    @discardableResult
    public static func killLocal(variable: String, value: String, newerThan: pid_t = 0, inThisNamespace: Bool = false) -> Int {
        killLocal(variable: variable, values: [value], newerThan: newerThan, inThisNamespace: inThisNamespace)
    }

    /// The same for any of `values`, in one scan of /proc a round (a node agent's gathered
    /// sweeps). `sparing`: attempt ids whose processes are left alone, though marked (the
    /// attempts a restarted controller adopts while it ends the rest of their job).
    @discardableResult
    public static func killLocal(variable: String, values: [String], newerThan: pid_t = 0, inThisNamespace: Bool = false,
                                 sparing: [String] = []) -> Int {
        var total = 0
        // Twice: a dying parent may have forked once more between scan and kill.
        for _ in 0..<2 {
            let killed = scan(values.map { "\(variable)=\($0)" }, sparing: sparing.map { "\(marker)=\($0)" }, newerThan: newerThan,
                              inThisNamespace: inThisNamespace, signal: SIGKILL).matched
            total += killed
            if killed == 0 { break }
            usleep(20_000)
        }
        return total
    }

    /// How many live processes carry each of these attempt ids, in one scan of /proc.
    public static func countLocal(attemptIds: [String], inThisNamespace: Bool = false) -> [Int] {
        scan(attemptIds.map { "\(marker)=\($0)" }, inThisNamespace: inThisNamespace, signal: 0).found
    }

    /// Sends `signal` to every live process of the attempt; how many it reached.
    @discardableResult
    public static func signalLocal(attemptId: String, _ signal: Int32, inThisNamespace: Bool = false) -> Int {
        scan(["\(marker)=\(attemptId)"], inThisNamespace: inThisNamespace, signal: signal).matched
    }

    static func scan(_ needles: [String], sparing spared: [String] = [], newerThan: pid_t = 0, inThisNamespace: Bool,
                     signal: Int32) -> (matched: Int, found: [Int]) {
        guard !needles.isEmpty else { return (0, []) }
        let count = Int32(needles.count), sparedCount = Int32(spared.count)
        var found = [Int32](repeating: 0, count: needles.count)
        let matched = withCStrings(needles) { entries in
            withCStrings(spared) { sparedEntries in
                cohort_signal_marked(UnsafeRawPointer(entries).assumingMemoryBound(to: UnsafePointer<CChar>?.self), count,
                                     UnsafeRawPointer(sparedEntries).assumingMemoryBound(to: UnsafePointer<CChar>?.self), sparedCount,
                                     newerThan > 0 ? newerThan + 1 : 0, inThisNamespace ? 1 : 0, signal, &found)
            }
        }
        return (Int(matched), found.map(Int.init))
    }
}
