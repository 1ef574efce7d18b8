import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An attempt's processes on one machine and the CPU each has used: what tells a task that
/// waits for ever (a read that never returns, a lock never released) from one that works.
public enum ProcessProbe {
    public struct Sample: Equatable, Sendable {
        public var pid: pid_t
        /// utime + stime, in clock ticks.
        public var ticks: UInt64
        public var name: String
    }

    /// Launchers poll on their own; their CPU is not the task's progress.
    static let launchers: Set<String> = ["mpirun", "mpiexec", "orterun", "orted", "prterun", "prted", "srun", "slurmstepd", "cohort-spawner"]

    /// The attempt's processes here (marked with its id), launchers left out. Only this
    /// network namespace's, as the sweeps: the virtual cluster's nodes share one /proc.
    public static func sample(attemptId: String) -> [Sample] {
        let mine = namespace("self")
        return ProcessSweeper.localProcesses(attemptId: attemptId).compactMap { pid in
            guard namespace(String(pid)) == mine, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let (name, ticks) = parse(stat: text),
                  !launchers.contains(name) else { return nil }
            return Sample(pid: pid, ticks: ticks, name: name)
        }.sorted { $0.pid < $1.pid }
    }

    private static func namespace(_ pid: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")
    }

    /// `/proc/PID/stat`: the name in parentheses (it may hold spaces or parentheses), then
    /// utime and stime as the 14th and 15th fields.
    static func parse(stat text: String) -> (name: String, ticks: UInt64)? {
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so utime (14) and stime (15) are fields[11] and [12].
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return (String(text[text.index(after: open)..<close]), user + system)
    }

    /// `PID TICKS NAME` a line: what `cohort node-probe` prints for a controller elsewhere.
    public static func lines(_ samples: [Sample]) -> String {
        samples.map { "\($0.pid) \($0.ticks) \($0.name)\n" }.joined()
    }

    public static func samples(fromLines text: String) -> [Sample] {
        text.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ", maxSplits: 2)
            guard words.count == 3, let pid = pid_t(words[0]), let ticks = UInt64(words[1]) else { return nil }
            return Sample(pid: pid, ticks: ticks, name: String(words[2]))
        }
    }

    /// Every thread's stack of each process (`gdb -batch`, a minute at most each, all at
    /// once) into `directory/NODE-PID-NAME.txt`; how many were written.
    @discardableResult
    public static func saveStacks(_ samples: [Sample], node: String, directory: String) -> Int {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let saved = concurrentMap(samples) { sample -> Bool in
            let safeName = String(sample.name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
            let file = "\(directory)/\(node)-\(sample.pid)-\(safeName).txt"
            guard let gdb = try? ChildProcess(["gdb", "-batch", "-nx", "-p", String(sample.pid), "-ex", "thread apply all bt"],
                                              environment: ["PATH": "/usr/bin:/bin:/usr/local/bin"], directory: "/", stdout: file, stderr: file) else {
                try? "gdb could not be started: is it installed on \(node)?\n".write(toFile: file, atomically: true, encoding: .utf8)
                return false
            }
            let deadline = Deadline(after: 60, grace: 2) { gdb.signalGroup($0) }
            let ended = gdb.wait()
            deadline.cancel()
            return ended == .exited(0)
        }
        return saved.filter { $0 }.count
    }
}

/// `idleTimeout`: ends an attempt whose processes printed nothing and used no CPU for that
/// long, after saving every process's stacks. Checks a few times per timeout, on a thread
/// of its own; `probe` samples every node of the group at once.
final class HangWatch: @unchecked Sendable {
    private let condition = NSCondition()
    private var stopped = false
    private(set) var verdict: String?

    /// `probe(stacks)`: the group's samples (nil where a node could not say); with a
    /// directory, stacks are saved there too. `end`: ends the attempt.
    init(timeout: Double, output: String, probe: @escaping @Sendable (_ stacks: String?) -> [[ProcessProbe.Sample]?],
         end: @escaping @Sendable () -> Void) {
        let interval = min(max(timeout / 5, 0.2), 30)
        let files = ["\(output)/stdout.txt", "\(output)/stderr.txt"]
        let thread = Thread { [self] in
            var last: (sizes: [Int64], samples: [[ProcessProbe.Sample]?])?
            var quietSince = Date()
            while !waitStopped(interval) {
                let sizes = files.map { path -> Int64 in
                    var info = stat()
                    return stat(path, &info) == 0 ? Int64(info.st_size) : -1
                }
                let samples = probe(nil)
                // A node that could not say is no evidence of a hang, nor is a launcher whose
                // processes have not started yet (mpirun reaching its daemons).
                let none = samples.allSatisfy { $0?.isEmpty ?? true }
                if none || samples.contains(where: { $0 == nil }) || last.map({ $0.sizes != sizes || $0.samples != samples }) ?? true {
                    quietSince = Date()
                }
                last = (sizes, samples)
                let quiet = Date().timeIntervalSince(quietSince)
                if quiet >= timeout {
                    let stacks = "\(output)/stacks"
                    let found = probe(stacks).compactMap { $0 }.reduce(0) { $0 + $1.count }
                    condition.lock()
                    if !stopped {
                        verdict = "no output and no CPU time for \(Durations.format(quiet.rounded())) (idleTimeout \(Durations.format(timeout))): hung; "
                            + "the stacks of its \(found) process\(found == 1 ? "" : "es") are in \(stacks)"
                    }
                    let ending = !stopped
                    condition.unlock()
                    if ending { end() }
                    return
                }
            }
        }
        thread.stackSize = 512 << 10
        thread.start()
    }

    private func waitStopped(_ seconds: Double) -> Bool {
        condition.lock(); defer { condition.unlock() }
        let until = Date() + seconds
        while !stopped && condition.wait(until: until) {}
        return stopped
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    var hung: Bool { condition.lock(); defer { condition.unlock() }; return verdict != nil }
}
