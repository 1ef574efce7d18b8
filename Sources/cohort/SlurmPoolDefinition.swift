import Foundation
import Launcher

/// `cohort pool add NAME --slurm …`: the pool's nodes as Slurm reports them now; every value
/// checked before it is kept, and Slurm's own refusal is the error.
enum SlurmPoolDefinition {
    static func make(name: String, allocation: String?, partition: String?, account: String?, qos: String?, constraint: String?,
                     exclusive: Bool, configuration: String?) throws -> Pool {
        for (flag, value) in [("--partition", partition), ("--account", account), ("--qos", qos), ("--constraint", constraint)] {
            guard let value else { continue }
            guard !value.isEmpty, !value.hasPrefix("-"), value.allSatisfy({ !$0.isWhitespace && !$0.isNewline && $0.asciiValue.map { $0 >= 0x20 } ?? true }) else {
                throw Exit.badInput("\(flag): '\(value)' is not a Slurm name (empty, begins with '-', or holds spaces or control characters)")
            }
        }
        var options = SlurmOptions(partition: partition, account: account, qos: qos, constraint: constraint, exclusive: exclusive ? true : nil)
        if let configuration {
            let path = URL(fileURLWithPath: configuration).standardizedFileURL.path
            guard FileManager.default.isReadableFile(atPath: path) else { throw Exit.badInput("--slurm-conf: cannot read \(path)") }
            options.configuration = path
        }
        if let allocation {
            let id = allocation == "current" ? ProcessInfo.processInfo.environment["SLURM_JOB_ID"] ?? "" : allocation
            guard !id.isEmpty, id.allSatisfy(\.isNumber) else {
                throw Exit.badInput("--slurm-allocation: expected a Slurm job id (or 'current' inside one, from $SLURM_JOB_ID), found '\(allocation)'")
            }
            guard partition == nil, account == nil, qos == nil, !exclusive else {
                throw Exit.badInput("--slurm-allocation: the allocation already has its partition, account and QOS; give none of them")
            }
            options.allocation = id  // its nodes, with the CPUs it holds on each as their slots
        }
        let client = SlurmClient(options: options)
        var pool = Pool(name: name, kind: .slurm, nodes: [])
        pool.slurm = options
        do {
            pool = try client.current(pool)
        } catch {
            throw Exit.badInput("cannot read the Slurm cluster's nodes: \(error)")
        }
        guard !pool.nodes.isEmpty else {
            throw Exit.badInput(partition.map { "Slurm has no partition '\($0)' (or it has no nodes)" } ?? "Slurm reports no nodes")
        }
        return pool
    }
}
