import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Slurm's own commands (sinfo, scontrol, squeue, scancel), run with the pool's slurm.conf
/// and a time limit: an unreachable slurmctld is an error with Slurm's words, never a hang.
public struct SlurmClient: Sendable {
    public var options: SlurmOptions
    /// Seconds a command may take.
    public var timeout: Double = 20

    public init(options: SlurmOptions) { self.options = options }

    public struct Failed: Error, CustomStringConvertible {
        public var command: String
        public var message: String
        public var description: String { "\(command): \(message)" }
    }

    /// The environment Slurm's commands (and srun) get: the caller's, with the pool's slurm.conf.
    public func environment(_ base: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var environment = base
        if let configuration = options.configuration { environment["SLURM_CONF"] = configuration }
        return environment
    }

    /// Runs `arguments` (the program is looked up on PATH); returns its standard output.
    @discardableResult
    public func run(_ arguments: [String]) throws(Failed) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = environment()
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw Failed(command: arguments[0], message: "cannot start: \(error)") }
        final class Box: @unchecked Sendable { var data = Data() }
        let errorText = Box()
        let reader = DispatchGroup()
        reader.enter()
        DispatchQueue.global().async { errorText.data = errors.fileHandleForReading.readDataToEndOfFile(); reader.leave() }
        let pid = process.processIdentifier
        let timer = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        reader.wait()
        process.waitUntilExit()
        timer.cancel()
        let said = String(decoding: errorText.data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if process.terminationReason == .uncaughtSignal {
            throw Failed(command: arguments[0], message: "no answer within \(Int(timeout)) s (is slurmctld reachable?)\(said.isEmpty ? "" : ": \(said)")")
        }
        guard process.terminationStatus == 0 else {
            throw Failed(command: arguments[0], message: said.isEmpty ? "exit code \(process.terminationStatus)" : said)
        }
        return text
    }

    // MARK: - Nodes

    /// One node as `sinfo` reports it.
    public struct NodeInfo: Sendable, Equatable {
        public var name: String
        public var address: String
        public var cpus: Int
        /// Slurm's long state (`idle`, `mixed`, `drained`, `down*`, …).
        public var state: String
        public var reason: String?
        public var partitions: [String]
        /// Its memory in MiB (`RealMemory`; Slurm says 1 where none is configured) and its GPUs (gres `gpu`).
        public var memoryMiB: Int = 0
        public var gpus: Int = 0
    }

    /// The pool's nodes (those of its partition, or every node): `sinfo -N`, one line a node
    /// and partition.
    public func nodes() throws(Failed) -> [NodeInfo] {
        var arguments = ["sinfo", "--noheader", "--Node", "--format=%N|%o|%c|%T|%P|%m|%G|%E"]
        if let partition = options.partition { arguments.append("--partition=\(partition)") }
        if let allocation = options.allocation {
            // Inside an allocation: its nodes only.
            let list = try run(["squeue", "--noheader", "--jobs=\(allocation)", "--format=%N"]).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !list.isEmpty else { throw Failed(command: "squeue", message: "Slurm job \(allocation) holds no nodes (has it ended?)") }
            arguments.append("--nodes=\(list)")
        }
        return Self.parseNodes(try run(arguments))
    }

    static func parseNodes(_ text: String) -> [NodeInfo] {
        var nodes: [NodeInfo] = []
        var index: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "|", maxSplits: 7, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 8, !fields[0].isEmpty else { continue }
            let partition = fields[4].hasSuffix("*") ? String(fields[4].dropLast()) : fields[4]
            if let at = index[fields[0]] {
                nodes[at].partitions.append(partition)
                continue
            }
            index[fields[0]] = nodes.count
            nodes.append(NodeInfo(name: fields[0], address: fields[1].isEmpty ? fields[0] : fields[1], cpus: Int(fields[2]) ?? 1, state: fields[3],
                                  reason: fields[7].isEmpty || fields[7] == "none" ? nil : fields[7], partitions: [partition],
                                  memoryMiB: Int(fields[5]) ?? 0, gpus: gpuCount(gres: fields[6])))
        }
        return nodes
    }

    /// GPUs in a node's gres: `gpu:4`, `gpu:a100:2(S:0-1),gpu:v100:1`, `(null)` → 4, 3, 0.
    static func gpuCount(gres: String) -> Int {
        gres.split(separator: ",").reduce(0) { total, entry in
            let parts = entry.split(separator: "(")[0].split(separator: ":")
            guard parts.first == "gpu", parts.count >= 2, let count = Int(parts[parts.count - 1]) else { return total }
            return total + count
        }
    }

    /// The CPUs an allocation holds on each of its nodes (`scontrol show job -d`): what its
    /// steps may use there, however many the node has.
    public func allocationCPUs(_ job: String) throws(Failed) -> [String: Int] {
        Self.parseAllocationCPUs(try run(["scontrol", "show", "job", "--details", job]))
    }

    static func parseAllocationCPUs(_ text: String) -> [String: Int] {
        var cpus: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard let nodes = fields.first(where: { $0.hasPrefix("Nodes=") })?.dropFirst(6),
                  let ids = fields.first(where: { $0.hasPrefix("CPU_IDs=") })?.dropFirst(8),
                  let names = try? Hostlist.expand(String(nodes), source: "scontrol") else { continue }
            // 0-1,4 → 3
            let count = ids.split(separator: ",").reduce(0) { total, range in
                let ends = range.split(separator: "-").compactMap { Int($0) }
                return total + (ends.count == 2 ? ends[1] - ends[0] + 1 : 1)
            }
            for name in names { cpus[name] = count }
        }
        return cpus
    }

    /// A Slurm state in Cohort's words: whether the node takes work, and if not, why.
    public static func nodeState(_ info: NodeInfo) -> (state: NodeState, reason: String?) {
        let state = info.state.lowercased()
        let base = String(state.prefix { $0.isLetter || $0 == "_" })
        let reason = info.reason.map { ": \($0)" } ?? ""
        if state.contains("*") { return (.unusable, "Slurm: \(base), not responding\(reason)") }
        switch base {
        case "idle", "mixed", "allocated", "completing", "planned", "reserved":
            return (state.contains("~") ? .unusable : .idle, state.contains("~") ? "Slurm: powered down" : nil)
        case "drained", "draining", "drain":
            return (.offline, "drained in Slurm\(reason)")
        default:
            return (.unusable, "Slurm: \(base)\(reason)")
        }
    }

    /// The pool as Slurm has it now: its nodes, CPUs and states. Cohort's own knowledge of a
    /// node (a start task, pending work) is kept; its state is Slurm's.
    public func current(_ pool: Pool) throws(Failed) -> Pool {
        var updated = pool
        let known = Dictionary(pool.nodes.map { ($0.id, $0) }) { first, _ in first }
        var held: [String: Int]?
        if let allocation = options.allocation { held = try allocationCPUs(allocation) }
        updated.nodes = try nodes().map { info in
            // Named as Slurm names it: a task's own mpirun (launch: raw) finds its hosts in
            // the allocation by these names, and AZ_BATCH_HOST_LIST gives them.
            var node = known[info.name] ?? Node(id: info.name, address: info.name, slots: info.cpus)
            node.address = info.name
            node.attributes["address"] = info.address
            node.slots = max(1, held?[info.name] ?? info.cpus)
            // What Slurm knows of its GPUs and memory is what tasks may ask for there.
            node.gpus = info.gpus > 0 ? Array(0..<min(info.gpus, Allocator.maximumGPUsPerNode)) : nil
            node.memoryMiB = info.memoryMiB > 1 ? info.memoryMiB : nil
            let (state, reason) = Self.nodeState(info)
            if state == .idle {
                // Slurm takes it; Cohort's view (running, or a loss it saw first) stands until Slurm says otherwise.
                if node.state == .offline || node.state == .unusable { node.state = .idle; node.stateReason = nil }
            } else {
                node.state = state
                node.stateReason = reason
            }
            node.attributes["slurmState"] = info.state
            node.attributes["partitions"] = info.partitions.joined(separator: ",")
            return node
        }
        return updated
    }

    /// `pool` with Slurm's states, or with every node unusable and Slurm's error as the reason.
    public func currentOrUnusable(_ pool: Pool) -> Pool {
        do { return try current(pool) } catch {
            var unusable = pool
            for index in unusable.nodes.indices {
                unusable.nodes[index].state = .unusable
                unusable.nodes[index].stateReason = "Slurm cannot be asked: \(error)"
            }
            return unusable
        }
    }

    /// Drains (or resumes) nodes in Slurm itself, all in one request; Slurm's refusal is the error.
    public func drain(_ nodes: [String], reason: String?, resume: Bool = false) throws(Failed) {
        let names = "NodeName=\(nodes.joined(separator: ","))"
        if resume {
            try run(["scontrol", "update", names, "State=RESUME"])
        } else {
            try run(["scontrol", "update", names, "State=DRAIN", "Reason=\(reason ?? "drained by cohort")"])
        }
    }

    // MARK: - Jobs

    /// Slurm jobs whose name starts with `prefix` (id and name), e.g. every attempt of one Cohort job.
    public func jobs(namedWithPrefix prefix: String) throws(Failed) -> [(id: String, name: String)] {
        try run(["squeue", "--noheader", "--format=%i|%j"]).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "|", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[1].hasPrefix(prefix) else { return nil }
            return (parts[0].trimmingCharacters(in: .whitespaces), parts[1])
        }
    }

    /// The id of the Slurm job named `name` that ran last (Slurm keeps ended jobs a while;
    /// inside an allocation, the allocation's own id).
    public func jobId(named name: String) -> String? {
        if let allocation = options.allocation { return allocation }
        let ids = (try? run(["squeue", "--noheader", "--states=all", "--name=\(name)", "--format=%i"]))?.split(separator: "\n") ?? []
        return ids.last.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// Ends the Slurm jobs (or, inside an allocation, the steps) Cohort named `name`.
    public func cancel(jobNamed name: String) throws(Failed) {
        if let allocation = options.allocation {
            let steps = try run(["squeue", "--noheader", "--steps", "--jobs=\(allocation)", "--format=%i|%j"]).split(separator: "\n").compactMap { line -> String? in
                let parts = line.split(separator: "|", maxSplits: 1).map(String.init)
                return parts.count == 2 && parts[1] == name ? parts[0].trimmingCharacters(in: .whitespaces) : nil
            }
            if !steps.isEmpty { try run(["scancel"] + steps) }
        } else {
            try run(["scancel", "--name=\(name)"])
        }
    }

    /// Ends every Slurm job whose name starts with `prefix`: what a dead server's attempts
    /// left running (their srun was killed; Slurm would have kept their allocations).
    public func cancel(jobsNamedWithPrefix prefix: String) throws(Failed) -> Int {
        if options.allocation != nil {
            let steps = try run(["squeue", "--noheader", "--steps", "--jobs=\(options.allocation!)", "--format=%i|%j"]).split(separator: "\n").compactMap { line -> String? in
                let parts = line.split(separator: "|", maxSplits: 1).map(String.init)
                return parts.count == 2 && parts[1].hasPrefix(prefix) ? parts[0].trimmingCharacters(in: .whitespaces) : nil
            }
            if !steps.isEmpty { try run(["scancel"] + steps) }
            return steps.count
        }
        let ids = try jobs(namedWithPrefix: prefix).map(\.id)
        if !ids.isEmpty { try run(["scancel"] + ids) }
        return ids.count
    }
}

extension Pool {
    /// The pool with its nodes' current states: a Slurm pool's from Slurm (one `sinfo`),
    /// any other as stored.
    public func withLiveState() -> Pool {
        kind == .slurm ? SlurmClient(options: slurm ?? SlurmOptions()).currentOrUnusable(self) : self
    }
}
