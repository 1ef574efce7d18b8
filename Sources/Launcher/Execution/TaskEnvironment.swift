import CSpawn
import Foundation

/// The environment every task gets: Cohort's `COHORT_*` names and Azure Batch's, so that
/// existing Batch scripts run unchanged (see DESIGN.md).
public struct TaskEnvironment: Sendable {
    public var jobId: String
    public var taskId: String
    public var attemptId: String
    public var attempt: Int
    public var replica: Int?
    public var pool: String
    /// The group, in order; the first node is the master (primary).
    public var nodes: [Node]
    public var processesPerNode: Int
    public var attemptDirectory: String
    public var sharedDirectory: String
    public var hostfile: String?
    /// The job's and the task's own variables.
    public var userVariables: [String: String]
    /// `<work>/<job>.<incarnation>/job.preparation`: each node's preparation directory is below it.
    public var preparationRoot: String?
    /// `<state id>.<job id>`: what a restarted server sweeps the job's processes by.
    public var jobKey: String = ""
    /// Where the task starts on every node, when its spec names a directory (a shared one).
    public var startDirectory: String?
    /// Cores of each rank (`cpusPerRank`): OpenMP's threads, unless the job sets its own.
    public var threadsPerRank = 1
    /// Ranks in all when the last nodes hold fewer (Slurm's `-N 2 -n 5`).
    public var totalRanks: Int?
    /// The task's checkpoint directory, kept across its attempts.
    public var persistDirectory: String?
    /// The GPUs it holds on each node of the group (device numbers), if it asked for any.
    public var gpus: [[Int]]?
    /// GPUs of each rank of their own (`gpusPerRank`): `cohort-rank-env` gives each rank its share.
    public var gpusPerRank: Int?

    /// Ranks on node `index` of the group (see `MultiInstance.totalRanks`).
    public func ranks(onNode index: Int) -> Int {
        MultiInstance.ranks(onNode: index, of: nodes.count, total: totalRanks, processesPerNode: processesPerNode)
    }

    /// The working directory of node `index` of the group.
    public func workingDirectory(_ index: Int) -> String { startDirectory ?? nodeDirectory(index) }

    /// The attempt's own directory for node `index` (its coordination output goes there).
    public func nodeDirectory(_ index: Int) -> String {
        nodes.count == 1 && hostfile == nil ? attemptDirectory : "\(attemptDirectory)/node-\(nodes[index].id)"
    }

    /// The variables for node `index` of the group (the Batch and Cohort names together).
    public func variables(forNode index: Int) -> [String: String] {
        var v = userVariables
        let addresses = nodes.map(\.address)
        let node = nodes[index]
        v["COHORT_JOB_ID"] = jobId
        v["COHORT_TASK_ID"] = taskId
        v[ProcessSweeper.marker] = attemptId
        v[ProcessSweeper.jobMarker] = jobKey.isEmpty ? jobId : jobKey
        v["COHORT_ATTEMPT"] = String(attempt)
        v["COHORT_POOL"] = pool
        v["COHORT_NODE_ID"] = node.id
        v["COHORT_NODE_INDEX"] = String(index)
        v["COHORT_NODE_COUNT"] = String(nodes.count)
        v["COHORT_GROUP_NODES"] = nodes.map(\.id).joined(separator: ",")
        v["COHORT_PROCESSES_PER_NODE"] = String(processesPerNode)
        v["COHORT_RANKS"] = String(totalRanks ?? nodes.count * processesPerNode)
        if threadsPerRank > 1 {
            v["COHORT_CPUS_PER_RANK"] = String(threadsPerRank)
            if userVariables["OMP_NUM_THREADS"] == nil { v["OMP_NUM_THREADS"] = String(threadsPerRank) }
        }
        v["COHORT_ATTEMPT_DIR"] = attemptDirectory
        v["COHORT_SHARED_DIR"] = sharedDirectory
        v["COHORT_WORKING_DIR"] = workingDirectory(index)
        if let startDirectory { v["COHORT_START_DIR"] = startDirectory }
        if let persistDirectory { v["COHORT_TASK_PERSIST_DIR"] = persistDirectory }
        if let replica { v["COHORT_REPLICA_INDEX"] = String(replica) }
        if let hostfile { v["COHORT_HOSTFILE"] = hostfile }
        if let gpus, index < gpus.count {
            // Every rank of the node sees the node's GPUs; with gpusPerRank, rank-env narrows
            // that to the rank's own share.
            let devices = gpus[index].map(String.init).joined(separator: ",")
            v["CUDA_VISIBLE_DEVICES"] = devices
            v["COHORT_GPUS"] = devices
            v["COHORT_GROUP_GPUS"] = gpus.map { $0.map(String.init).joined(separator: ",") }.joined(separator: ";")
            if let gpusPerRank { v["COHORT_GPUS_PER_RANK"] = String(gpusPerRank) }
        }
        if let preparationRoot {
            v["COHORT_JOB_PREP_DIR"] = "\(preparationRoot)/\(node.id)"
            v["AZ_BATCH_JOB_PREP_DIR"] = "\(preparationRoot)/\(node.id)"
            v["AZ_BATCH_JOB_PREP_WORKING_DIR"] = "\(preparationRoot)/\(node.id)"
            v["COHORT_JOB_PREP_ROOT"] = preparationRoot  // for `cohort-rank-env`, per rank
        }
        v["AZ_BATCH_JOB_ID"] = jobId
        v["AZ_BATCH_TASK_ID"] = replica.map { "\(taskId)-\($0)" } ?? taskId
        v["AZ_BATCH_NODE_ID"] = node.id
        v["AZ_BATCH_POOL_ID"] = pool
        v["AZ_BATCH_HOST_LIST"] = addresses.joined(separator: ",")
        v["AZ_BATCH_NODE_LIST"] = addresses.joined(separator: ";")
        v["AZ_BATCH_MASTER_NODE"] = "\(addresses[0]):6000"
        v["AZ_BATCH_IS_CURRENT_NODE_MASTER"] = index == 0 ? "true" : "false"
        v["AZ_BATCH_TASK_SHARED_DIR"] = sharedDirectory
        v["AZ_BATCH_TASK_WORKING_DIR"] = workingDirectory(index)
        v["CCP_NODES"] = ([String(nodes.count)] + nodes.indices.flatMap { [nodes[$0].address, String(ranks(onNode: $0))] }).joined(separator: " ")
        return v
    }

    /// The names whose values differ from node to node; `cohort-rank-env` sets them per rank.
    public static let perNodeNames = ["COHORT_NODE_ID", "COHORT_NODE_INDEX", "COHORT_WORKING_DIR", "AZ_BATCH_NODE_ID",
                                      "AZ_BATCH_IS_CURRENT_NODE_MASTER", "AZ_BATCH_TASK_WORKING_DIR",
                                      "COHORT_JOB_PREP_DIR", "AZ_BATCH_JOB_PREP_DIR", "AZ_BATCH_JOB_PREP_WORKING_DIR",
                                      "CUDA_VISIBLE_DEVICES", "COHORT_GPUS"]

    /// Sets the per-node names of `environment` for the rank `rank`, from the group's list and
    /// the ranks-per-node count (ranks fill node 0 first, as `--map-by ppr:P:node` places
    /// them); with gpusPerRank, narrows the node's GPUs to the rank's own share. The rule is
    /// C's (`cohort_rank_environment`), which every rank runs through `cohort-rank-env`.
    public static func applyRank(_ rank: Int, to environment: inout [String: String]) {
        applyPerNode(rank: rank, node: nil, to: &environment)
    }

    /// The same for a process started on the group's node named `node` (srun names it).
    public static func applyNode(_ node: String, to environment: inout [String: String]) {
        applyPerNode(rank: -1, node: node, to: &environment)
    }

    /// A dictionary seen through the C rule's get and set callbacks.
    private final class CallbackEnvironment {
        var values: [String: String]
        var handedOut: [UnsafeMutablePointer<CChar>] = []
        init(_ values: [String: String]) { self.values = values }
        deinit { handedOut.forEach { free($0) } }
    }

    private static func applyPerNode(rank: Int, node: String?, to environment: inout [String: String]) {
        let box = CallbackEnvironment(environment)
        withExtendedLifetime(box) {
            _ = cohort_rank_environment(rank, node, { context, name in
                let box = Unmanaged<CallbackEnvironment>.fromOpaque(context!).takeUnretainedValue()
                guard let value = box.values[String(cString: name!)], let copy = strdup(value) else { return nil }
                box.handedOut.append(copy)
                return UnsafePointer(copy)
            }, { context, name, value in
                let box = Unmanaged<CallbackEnvironment>.fromOpaque(context!).takeUnretainedValue()
                box.values[String(cString: name!)] = String(cString: value!)
            }, Unmanaged.passUnretained(box).toOpaque())
        }
        environment = box.values
    }
}
