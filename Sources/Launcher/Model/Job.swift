import CSpawn
#if canImport(Glibc)
import Glibc
#endif

/// How MPI traffic of a multi-instance task travels.
public enum Transport: String, Codable, Sendable, CaseIterable {
    /// RDMA if every node of the group has an active verbs port, else shm (one host) or tcp.
    case auto
    /// Shared memory only: every rank on one host.
    case shm
    /// TCP between hosts, shared memory within one.
    case tcp
    /// UCX over InfiniBand/RoCE verbs; an error before launch where there is none.
    case rdma
    /// UCX on whatever devices it finds (shared memory, TCP or verbs), without requiring verbs.
    case ucx
}

/// Who starts the MPI processes of a multi-instance task.
public enum LaunchMode: String, Codable, Sendable {
    /// Cohort runs the command under mpirun with the group's hostfile and transport.
    case mpirun
    /// The command calls mpirun itself (Azure's style) with `$COHORT_HOSTFILE` or
    /// `$AZ_BATCH_HOST_LIST`; Cohort allocates, sets the environment and supervises.
    case raw
}

/// Settings of a tightly coupled task: Azure's multiInstanceSettings, plus replicas.
public struct MultiInstance: Codable, Sendable, Equatable {
    /// The most replicas of one task. Replicas beyond what the pool runs at once queue (a
    /// sweep of 100 replicas on 8 nodes is fine), so the pool's size is no bound; this is.
    public static let maximumReplicas = 10_000
    /// Nodes in the group.
    public var instances: Int
    /// Ranks on each node.
    public var processesPerNode: Int
    /// Runs on every node before the application starts; all must succeed.
    public var coordinationCommandLine: [String]?
    public var transport: Transport
    /// Disjoint groups running the same task at once.
    public var replicas: Int
    public var launch: LaunchMode
    /// Extra mpirun options, passed as given (no shell).
    public var mpirunOptions: [String]
    /// Downloaded into the group's shared directory before the coordination command.
    public var commonResourceFiles: [ResourceFile]?
    /// Cores (threads) of each rank: a hybrid MPI+OpenMP run. Each rank takes this many
    /// slots, is bound to as many cores (`--map-by ppr:P:node:PE=T`) and gets `OMP_NUM_THREADS`.
    public var cpusPerRank: Int?
    /// No other task on the group's nodes while it runs: it takes every slot of each.
    public var exclusive: Bool?
    /// Ranks in all when they do not fill every node alike (Slurm's `-N 3 -n 4`): spread as
    /// Slurm does, the first nodes one more (2, 1, 1), ranks numbered node by node (block);
    /// `processesPerNode` is then the most on a node, the slots each node is given.
    public var totalRanks: Int?
    /// Each line of output labelled with its rank (`3: …`), as srun's `--label` (mpirun
    /// `--tag-output`, whose tags the CLI shows as srun's).
    public var labelRanks: Bool?

    public init(instances: Int, processesPerNode: Int = 1, coordinationCommandLine: [String]? = nil, transport: Transport = .auto, replicas: Int = 1, launch: LaunchMode = .mpirun, mpirunOptions: [String] = []) {
        self.instances = instances
        self.processesPerNode = processesPerNode
        self.coordinationCommandLine = coordinationCommandLine
        self.transport = transport
        self.replicas = replicas
        self.launch = launch
        self.mpirunOptions = mpirunOptions
    }

    public var ranks: Int { totalRanks ?? instances * processesPerNode }

    /// `ranks` ranks over `nodes` nodes as Slurm spreads them: as evenly as can be, the first
    /// `ranks % nodes` nodes one more; the most on a node. Nil if a node would get none.
    public static func spread(ranks: Int, nodes: Int) -> (processesPerNode: Int, perNode: [Int])? {
        guard nodes >= 1, ranks >= nodes else { return nil }
        let perNode = (0..<nodes).map { ranks / nodes + ($0 < ranks % nodes ? 1 : 0) }
        return (perNode[0], perNode)
    }

    /// Ranks on node `index` of the group.
    public func ranks(onNode index: Int) -> Int {
        Self.ranks(onNode: index, of: instances, total: totalRanks, processesPerNode: processesPerNode)
    }

    /// Ranks on node `index` of `nodes`: `processesPerNode` each, or `total` spread as Slurm does.
    /// (The rule is C's, `cohort_ranks_on_node`, which every rank's `cohort-rank-env` runs too.)
    public static func ranks(onNode index: Int, of nodes: Int, total: Int?, processesPerNode: Int) -> Int {
        cohort_ranks_on_node(index, nodes, total ?? -1, processesPerNode)
    }

    /// The node (index in the group) that holds `rank`, ranks numbered node by node.
    public func node(ofRank rank: Int) -> Int {
        Self.node(ofRank: rank, of: instances, total: totalRanks, processesPerNode: processesPerNode)
    }

    public static func node(ofRank rank: Int, of nodes: Int, total: Int?, processesPerNode: Int) -> Int {
        cohort_node_of_rank(rank, nodes, total ?? -1, processesPerNode)
    }
    /// Threads of each rank (1 unless `cpusPerRank` says).
    public var threadsPerRank: Int { cpusPerRank ?? 1 }
    /// Slots the task takes on each node of its group: a slot per core its ranks use.
    public var slotsPerNode: Int { processesPerNode * threadsPerRank }
}

/// Limits on a task's run.
public struct Constraints: Codable, Sendable, Equatable {
    /// Wall-clock limit of one attempt, in seconds; nil for none.
    public var maxWallClockTime: Double?
    /// Retries after a failed attempt (0: run once).
    public var maxTaskRetryCount: Int
    /// Seconds between SIGTERM and SIGKILL when a limit is hit or the task is cancelled.
    public var killGracePeriod: Double

    /// A signal the application gets this long before `maxWallClockTime` ends it (Slurm's
    /// `--signal=USR1@300`): time to write a checkpoint that the next attempt resumes from.
    public var signalBeforeTimeLimit: WarningSignal?
    /// An attempt whose processes print nothing and use no CPU this long is `hung`: its
    /// stacks are saved (gdb) and it is ended.
    public var idleTimeout: Double?

    public init(maxWallClockTime: Double? = nil, maxTaskRetryCount: Int = 0, killGracePeriod: Double = 5, signalBeforeTimeLimit: WarningSignal? = nil) {
        self.maxWallClockTime = maxWallClockTime
        self.maxTaskRetryCount = maxTaskRetryCount
        self.killGracePeriod = killGracePeriod
        self.signalBeforeTimeLimit = signalBeforeTimeLimit
    }

    /// When the warning is due, counted from the start of a run limited to `limit` seconds.
    public func warningDue(limit: Double?) -> Double? {
        guard let limit, let warning = signalBeforeTimeLimit else { return nil }
        return max(0, limit - warning.seconds)
    }
}

/// A signal sent before a time limit: its number and how many seconds early.
public struct WarningSignal: Codable, Sendable, Equatable {
    public var signal: Int32
    public var seconds: Double

    public init(signal: Int32, seconds: Double) {
        self.signal = signal
        self.seconds = seconds
    }

    /// Signals a task may be warned with, by name (with or without `SIG`).
    public static let names: [String: Int32] = ["USR1": SIGUSR1, "USR2": SIGUSR2, "TERM": SIGTERM, "INT": SIGINT, "HUP": SIGHUP,
                                                "QUIT": SIGQUIT, "ALRM": SIGALRM, "URG": SIGURG, "CONT": SIGCONT, "XCPU": SIGXCPU]

    /// `USR1`, `SIGUSR1` or a number 1-64 (not KILL or STOP, which cannot be caught).
    public static func signal(named text: String) -> Int32? {
        let upper = text.uppercased()
        if let number = Int32(text) { return (1...64).contains(number) && number != SIGKILL && number != SIGSTOP ? number : nil }
        return names[upper.hasPrefix("SIG") ? String(upper.dropFirst(3)) : upper]
    }

    /// Slurm's `--signal` form, `SIG[@SECONDS]` (60 s early when no time is given).
    public static func parse(slurm text: String) -> WarningSignal? {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let signal = signal(named: parts[0]) else { return nil }
        guard parts.count == 2 else { return WarningSignal(signal: signal, seconds: 60) }
        guard let seconds = Int(parts[1]), seconds > 0, seconds <= 65_535 else { return nil }
        return WarningSignal(signal: signal, seconds: Double(seconds))
    }
}

/// One command line of a job.
public struct TaskSpec: Codable, Sendable, Equatable {
    public var id: String
    /// The program and its arguments, split like a shell would but never run by one.
    public var commandLine: [String]
    public var dependsOn: [String]
    public var multiInstance: MultiInstance?
    public var constraints: Constraints
    public var environment: [String: String]
    /// Put in the task's working directory before it starts (on a multi-instance task's
    /// primary node).
    public var resourceFiles: [ResourceFile]?
    /// Uploaded from the task's working directory once it ends.
    public var outputFiles: [OutputFile]?
    /// What its end does to the job and its dependents (Azure's exitConditions).
    public var exitConditions: ExitConditions?
    /// Slots an independent task takes on its node (Azure's requiredSlots; default 1).
    public var requiredSlots: Int?
    /// Where it starts (its ranks too) instead of its attempt's directory: an absolute path
    /// that exists on its nodes. `cohort run`'s quick form on the local pool starts where it
    /// is run; `--chdir` chooses.
    public var workingDirectory: String?
    /// Packages extracted before it starts (`cohort app add`).
    public var applicationPackageReferences: [ApplicationPackageReference]?
    /// Set on each task an array or a sweep became: which element it is.
    public var array: ArrayElement?
    /// How it waits for each task it depends on, where not `afterok` (Slurm's kinds: `afterany`
    /// once it ended however, `afternotok` once it ended without succeeding), by task id.
    /// (`aftercorr` between two arrays becomes one afterok dependency per element.)
    public var dependencyConditions: [String: JobDependency.Condition]?

    /// How it waits for task `id`.
    public func condition(on id: String) -> JobDependency.Condition { dependencyConditions?[id] ?? .afterok }

    /// GPUs it takes on each node of its group, shared by the ranks there (Slurm's
    /// `--gpus-per-node`): `CUDA_VISIBLE_DEVICES` lists them.
    public var gpusPerNode: Int?
    /// GPUs each rank takes for its own (Slurm's `--gpus-per-task`): every rank sees only
    /// its own in `CUDA_VISIBLE_DEVICES`.
    public var gpusPerRank: Int?
    /// Memory it takes on each node of its group, in MiB (Slurm's `--mem`): it waits until
    /// that much of the node's stated memory is not held by other tasks.
    public var memoryPerNode: Int?

    /// GPUs and memory it takes on each node of its group.
    public var nodeExtras: Allocator.Extras {
        Allocator.Extras(gpus: gpusPerNode ?? (gpusPerRank ?? 0) * (multiInstance?.processesPerNode ?? 1), memory: memoryPerNode ?? 0)
    }

    public init(id: String, commandLine: [String], dependsOn: [String] = [], multiInstance: MultiInstance? = nil, constraints: Constraints = Constraints(), environment: [String: String] = [:]) {
        self.id = id
        self.commandLine = commandLine
        self.dependsOn = dependsOn
        self.multiInstance = multiInstance
        self.constraints = constraints
        self.environment = environment
    }
}

/// A named collection of tasks bound to a pool.
public struct JobSpec: Codable, Sendable, Equatable {
    public var id: String
    public var pool: String
    public var priority: Int
    public var tasks: [TaskSpec]
    /// Environment for every task of the job.
    public var environment: [String: String]
    /// Wall-clock limit of the whole job in seconds, from when it starts running (Azure's
    /// job constraints.maxWallClockTime): then its attempts end and the rest never starts.
    public var maxWallClockTime: Double?
    /// Runs once on each node before the job's first task there (Azure's
    /// jobPreparationTask): staging inputs, warming caches.
    public var preparation: NodeTaskSpec?
    /// Runs on each node that ran the job's tasks once the job has ended (Azure's
    /// jobReleaseTask): cleaning up what preparation left.
    public var release: NodeTaskSpec?
    /// Set by the store when the job is recorded, unique to this submission: a job deleted
    /// and submitted again under the same id is another incarnation, and nothing of the
    /// first (its directories, exit statuses, process markers) is ever taken for it.
    public var incarnation: String?
    /// What a failed task does to the job (Azure's onTaskFailure; default noaction).
    public var onTaskFailure: TaskFailureAction?
    /// Jobs this one waits for (Slurm's --dependency): the service starts it once they have
    /// ended as it asks, and ends it unrun if they ended otherwise.
    public var afterJobs: [JobDependency]?
    /// An http(s) URL the service POSTs the job's outcome to when it completes (a webhook).
    public var notify: String?

    /// The job's name in the work tree and in process markers: `<id>.<incarnation>`.
    public var workKey: String { incarnation.map { "\(id).\($0)" } ?? id }

    /// A new incarnation: 8 random hex digits.
    public static func newIncarnation() -> String {
        String(format: "%08x", UInt32.random(in: 0...UInt32.max))
    }

    public init(id: String, pool: String = "local", priority: Int = 0, tasks: [TaskSpec], environment: [String: String] = [:], maxWallClockTime: Double? = nil) {
        self.id = id
        self.pool = pool
        self.priority = priority
        self.tasks = tasks
        self.environment = environment
        self.maxWallClockTime = maxWallClockTime
    }
}

/// A job's preparation or release task: one command per node, not per task.
public struct NodeTaskSpec: Codable, Sendable, Equatable {
    public var commandLine: [String]
    public var environment: [String: String]
    /// Seconds it may take on one node.
    public var maxWallClockTime: Double?
    /// Preparation only: whether the job's tasks wait for it to succeed on a node (Azure's
    /// default); if it fails there, they run elsewhere.
    public var waitForSuccess: Bool
    /// Put in its directory before it starts.
    public var resourceFiles: [ResourceFile]?

    public init(commandLine: [String], environment: [String: String] = [:], maxWallClockTime: Double? = nil, waitForSuccess: Bool = true) {
        self.commandLine = commandLine
        self.environment = environment
        self.maxWallClockTime = maxWallClockTime
        self.waitForSuccess = waitForSuccess
    }
}

/// How much environment a task may be given: the kernel takes at most ARG_MAX (2 MiB here)
/// of arguments and variables together, and the spawner 65,536 fields a request.
public enum TaskEnvironmentLimits {
    public static let maximumVariables = 4096
    public static let maximumBytes = 256 << 10

    /// Why `variables` are too many for one task ("N variables and B bytes; at most …"), or nil.
    public static func excess(_ variables: [String: String]) -> String? {
        let bytes = variables.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 }
        guard variables.count > maximumVariables || bytes > maximumBytes else { return nil }
        return "\(variables.count) variables and \(bytes) bytes; at most \(maximumVariables) and \(maximumBytes) are allowed"
    }
}

/// A job another waits for, and how it must have ended: Slurm's dependency kinds.
public struct JobDependency: Codable, Sendable, Equatable {
    public enum Condition: String, Codable, Sendable, CaseIterable {
        /// Every task of it succeeded.
        case afterok
        /// It ended, however.
        case afterany
        /// A task of it did not succeed.
        case afternotok
        /// Between the tasks of one job only: each element of an array waits for the element
        /// of another array with its index to succeed (Slurm's aftercorr).
        case aftercorr
    }
    public var job: String
    public var condition: Condition

    public init(job: String, condition: Condition = .afterok) {
        self.job = job
        self.condition = condition
    }

    /// Whether a job that ended, every task succeeding or not, lets the waiting one run.
    public func isSatisfied(succeeded: Bool) -> Bool {
        switch condition {
        case .afterok, .aftercorr: succeeded
        case .afterany: true
        case .afternotok: !succeeded
        }
    }

    /// `JOB`, `JOB:ok`, `JOB:any` or `JOB:notok` (`cohort submit --after`).
    public static func parse(_ text: String) -> JobDependency? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2, let job = parts.first, !job.isEmpty else { return nil }
        guard parts.count == 2 else { return JobDependency(job: job) }
        guard let condition = Condition(rawValue: "after" + parts[1]) ?? Condition(rawValue: parts[1]), condition != .aftercorr else { return nil }
        return JobDependency(job: job, condition: condition)
    }
}
