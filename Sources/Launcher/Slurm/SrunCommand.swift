import Foundation

/// One `srun` that asks Slurm for an attempt's nodes and starts its processes there: the
/// ranks of an MPI task (`--mpi=pmix`, Slurm's PMIx server wires them up, no mpirun), or
/// an independent task's one process. Their output comes back through srun (its stdout and
/// stderr are the attempt's files, with srun's own errors among the latter): Slurm's
/// `--output`/`--error` files lost lines here when several nodes wrote one file.
public struct SrunCommand: Sendable {
    public var options: SlurmOptions
    /// Unique per attempt: what names it in `squeue` and ends it with `scancel --name`.
    public var jobName: String
    /// Slurm node names, in the group's order.
    public var nodes: [String]
    public var tasksPerNode: Int
    /// MPI ranks (PMIx) or plain processes.
    public var mpi: Bool
    /// maxWallClockTime: Slurm's own limit, behind Cohort's exact one.
    public var timeLimit: Double?
    public var workingDirectory: String
    /// Each line of output prefixed with its task's number (`--label`).
    public var label = false
    /// Cores of each task (`--cpus-per-task`, bound by Slurm): a hybrid rank's threads.
    public var cpusPerTask = 1
    /// Tasks in all when the last nodes hold fewer (`-N 2 -n 5`: Slurm's block distribution).
    public var totalTasks: Int?
    /// The task's GPUs and memory, asked of Slurm (which then sets CUDA_VISIBLE_DEVICES).
    public var resources = SlurmResources()
    public var program: [String]

    public init(options: SlurmOptions, jobName: String, nodes: [String], tasksPerNode: Int, mpi: Bool, timeLimit: Double?,
                workingDirectory: String, label: Bool = false, program: [String]) {
        self.options = options
        self.jobName = jobName
        self.nodes = nodes
        self.tasksPerNode = tasksPerNode
        self.mpi = mpi
        self.timeLimit = timeLimit
        self.workingDirectory = workingDirectory
        self.label = label
        self.program = program
    }

    /// `srun`'s argument list; every value is one argument, none passes through a shell.
    public var arguments: [String] {
        // Uneven shares (-N 3 -n 4): Slurm spreads them itself, the first nodes one more.
        var a = ["srun", "--job-name=\(jobName)", "--nodes=\(nodes.count)", "--ntasks=\(totalTasks ?? nodes.count * tasksPerNode)"]
            + (totalTasks == nil ? ["--ntasks-per-node=\(tasksPerNode)"] : [])
            + ["--nodelist=\(nodes.joined(separator: ","))", "--chdir=\(workingDirectory)",
                 "--kill-on-bad-exit=1", "--mpi=\(mpi ? "pmix" : "none")"]
        if cpusPerTask > 1 { a += ["--cpus-per-task=\(cpusPerTask)", "--cpu-bind=cores"] }
        a += resources.arguments
        if label { a.append("--label") }
        if let timeLimit { a.append("--time=\(Self.slurmTime(timeLimit))") }
        a += options.requestArguments
        return a + ["--"] + program
    }

    /// Slurm's `minutes:seconds`, rounded up to a whole second.
    public static func slurmTime(_ seconds: Double) -> String {
        let whole = max(1, Int(seconds.rounded(.up)))
        return "\(whole / 60):\(String(format: "%02d", whole % 60))"
    }
}

/// What srun and slurmstepd said about an attempt, among the lines of its stderr.txt: the
/// Slurm job id (when srun named it), the node that failed, why it ended.
public struct SrunReport: Sendable, Equatable {
    public var jobId: String?
    /// "Node failure on NODE": Slurm counted the node lost.
    public var failedNode: String?
    /// Ended by Slurm's time limit, or by preemption.
    public var timeLimit = false
    public var preempted = false
    /// Slurm refused or could not make the allocation (its own words).
    public var allocationError: String?
    /// The program could not be started (execve failed on a node).
    public var startError: String?
    /// The first task that ended badly: its node, its rank, its exit code (or signal name).
    public var failingTask: (node: String, rank: Int, code: Int32?, how: String)?

    public static func == (a: SrunReport, b: SrunReport) -> Bool {
        a.jobId == b.jobId && a.failedNode == b.failedNode && a.timeLimit == b.timeLimit && a.preempted == b.preempted
            && a.allocationError == b.allocationError && a.startError == b.startError
            && a.failingTask?.node == b.failingTask?.node && a.failingTask?.rank == b.failingTask?.rank && a.failingTask?.code == b.failingTask?.code
    }

    public init() {}

    public init(_ errors: String) {
        for raw in errors.split(separator: "\n") {
            let line = String(raw)
            if jobId == nil, let id = Self.number(after: "srun: jobid ", in: line) ?? Self.number(after: "srun: job ", in: line)
                ?? Self.number(after: "srun: Granted job allocation ", in: line) {
                jobId = id
            }
            if jobId == nil, let range = line.range(of: "*** STEP ") ?? line.range(of: "*** JOB ") {
                let digits = line[range.upperBound...].prefix { $0.isNumber }
                if !digits.isEmpty { jobId = String(digits) }
            }
            if failedNode == nil, let range = line.range(of: "Node failure on ") {
                failedNode = line[range.upperBound...].split(separator: " ").first.map(String.init)
            }
            if allocationError == nil, let range = line.range(of: "srun: error: Unable to allocate resources: ") {
                allocationError = String(line[range.upperBound...])
            }
            if failingTask == nil, line.hasPrefix("srun: error: "), let task = Self.task(in: String(line.dropFirst("srun: error: ".count))) {
                failingTask = task
            }
            if line.contains("DUE TO TIME LIMIT") { timeLimit = true }
            if line.contains("DUE TO PREEMPTION") { preempted = true }
            if startError == nil, let range = line.range(of: "execve(): ") { startError = String(line[range.upperBound...]) }
        }
    }

    static func number(after prefix: String, in line: String) -> String? {
        guard line.hasPrefix(prefix) else { return nil }
        let digits = line.dropFirst(prefix.count).prefix { $0.isNumber }
        return digits.isEmpty ? nil : String(digits)
    }

    /// `node2: task 1: Exited with exit code 3`, `node1: tasks 0-3: Killed`.
    static func task(in text: String) -> (node: String, rank: Int, code: Int32?, how: String)? {
        let parts = text.components(separatedBy: ": ")
        guard parts.count >= 3, parts[1].hasPrefix("task") else { return nil }
        let ranks = parts[1].split(separator: " ").dropFirst().first ?? ""
        let rank = Int(ranks.prefix { $0.isNumber }) ?? 0
        let how = parts[2...].joined(separator: ": ")
        if let range = how.range(of: "Exited with exit code ") { return (parts[0], rank, Int32(how[range.upperBound...].prefix { $0.isNumber }), how) }
        return (parts[0], rank, nil, how)
    }
}

/// A task's GPUs and memory per node in Slurm's words: Slurm's gres plugin picks the GPUs
/// and sets CUDA_VISIBLE_DEVICES itself, and its cgroups hold the task to its memory.
public struct SlurmResources: Sendable, Equatable {
    public var gpusPerNode: Int?
    public var gpusPerTask: Int?
    public var memoryMiB: Int?

    public init(task: TaskSpec? = nil) {
        gpusPerNode = task?.gpusPerNode
        gpusPerTask = task?.gpusPerRank
        memoryMiB = task?.memoryPerNode
    }

    public var arguments: [String] {
        var a: [String] = []
        if let gpusPerNode { a.append("--gpus-per-node=\(gpusPerNode)") }
        if let gpusPerTask { a.append("--gpus-per-task=\(gpusPerTask)") }
        if let memoryMiB { a.append("--mem=\(memoryMiB)M") }
        return a
    }
}
