/// A task's GPUs and memory per node, checked the same way from a job file and from
/// `cohort run`'s flags: `gpusPerNode` (the node's ranks share them) or `gpusPerRank`
/// (each rank its own), and `memoryPerNode` (`4G`, `512M`, or MiB as Slurm's `--mem`).
public enum TaskResources {
    /// What is wrong, and with which of the three fields.
    public struct Problem: Error, Sendable {
        public enum Field: String, Sendable { case gpusPerNode, gpusPerRank, memoryPerNode }
        public var field: Field
        public var message: String
    }

    public static func apply(gpusPerNode: Int?, gpusPerRank: Int?, memory: String?, to task: inout TaskSpec) throws(Problem) {
        let limit = Allocator.maximumGPUsPerNode
        if gpusPerNode != nil && gpusPerRank != nil {
            throw Problem(field: .gpusPerRank, message: "give gpusPerNode (the node's ranks share them) or gpusPerRank (each rank its own), not both")
        }
        for (field, value) in [(Problem.Field.gpusPerNode, gpusPerNode), (.gpusPerRank, gpusPerRank)] {
            guard let value else { continue }
            guard value >= 1, value <= limit else { throw Problem(field: field, message: "must be 1 to \(limit), found \(value)") }
        }
        task.gpusPerNode = gpusPerNode
        if let share = gpusPerRank {
            let ranks = task.multiInstance?.processesPerNode ?? 1
            guard share * ranks <= limit else {
                throw Problem(field: .gpusPerRank, message: "\(share) GPUs for each of \(ranks) ranks per node is \(share * ranks) on a node, more than any node has (at most \(limit))")
            }
            if task.multiInstance?.launch == .raw {
                throw Problem(field: .gpusPerRank, message: "a task with launch raw starts its own ranks, so Cohort cannot give each its GPUs: use gpusPerNode (each node's list is in CUDA_VISIBLE_DEVICES and COHORT_GROUP_GPUS)")
            }
            task.gpusPerRank = share
        }
        if let memory {
            guard let mebibytes = MemorySizes.mebibytes(memory) else {
                throw Problem(field: .memoryPerNode, message: "expected a size such as 4G, 512M or 2048 (MiB), at most 64T; found '\(memory.prefix(40))'")
            }
            task.memoryPerNode = mebibytes
        }
    }
}
