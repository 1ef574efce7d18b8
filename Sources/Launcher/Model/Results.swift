import Foundation

/// Why an attempt failed.
public enum FailureCategory: String, Codable, Sendable {
    /// The application (or a rank) exited non-zero.
    case exitCode
    /// Killed by a signal it did not ask for.
    case signal
    /// maxWallClockTime ran out.
    case timeout
    /// Printed nothing and used no CPU for its idleTimeout; its stacks were saved.
    case hung
    /// A node stopped answering.
    case nodeLost
    /// The program could not be started (not found, not executable, mpirun refused).
    case launchFailed
    /// The coordination command failed on a node.
    case coordinationFailed
    /// A task it depends on did not succeed.
    case dependencyFailed
    /// The transport asked for is not available on the group.
    case transportUnavailable
    /// Cancelled by the user.
    case cancelled
    /// The job could never run on its pool (found when a service took it), or Slurm refused
    /// the attempt's request as invalid (partition, account, QOS): not retried.
    case rejected
    /// The job's preparation task failed on the node (the task runs elsewhere).
    case preparationFailed
    /// The server stopped (killed, crashed) while the attempt ran; a restarted server ended
    /// what was left of it and runs it again. Not counted against maxTaskRetryCount.
    case interrupted
    /// A resource file could not be put in place (Azure's preProcessingError): the URL and
    /// the HTTP status or error are named.
    case preProcessingError
    /// An output file could not be uploaded (Azure's fileUploadError).
    case fileUploadError
}

/// What went wrong, naming the node and the cause.
public struct Failure: Codable, Sendable, Equatable {
    public var category: FailureCategory
    /// The node where it happened, when one is to blame.
    public var node: String?
    public var message: String
    /// The last lines of mpirun's or the task's error output.
    public var details: [String]

    public init(category: FailureCategory, node: String? = nil, message: String, details: [String] = []) {
        self.category = category
        self.node = node
        self.message = message
        self.details = details
    }
}

/// One try at running a task (or one replica of it).
public struct Attempt: Codable, Sendable {
    public var number: Int
    /// The node group (one node for an independent task).
    public var nodes: [String]
    /// Exit code per node, where known (coordination command, or the application).
    public var nodeExitCodes: [String: Int32]
    public var exitCode: Int32?
    public var start: Date
    public var end: Date?
    public var transport: Transport?
    /// The command Cohort ran (mpirun's full argument list for managed MPI tasks).
    public var launchedCommand: [String]
    /// Where stdout.txt and stderr.txt are.
    public var directory: String
    public var failure: Failure?
    /// Nodes that could not be swept of the attempt's processes (unreachable then).
    public var unsweptNodes: [String]?
    /// The id that marks its processes (`COHORT_ATTEMPT_ID`: `<state id>.job.task.a1`).
    public var markerId: String?
    /// The Slurm job that held the attempt's nodes, on a Slurm pool (`squeue`, `scancel`).
    public var slurmJobId: String?
    /// Where its time went: each step of its way as it was reached, in order.
    public var phases: [AttemptPhase]?
    /// The GPUs it holds on each of its nodes (device numbers, in the order of `nodes`): a
    /// restarted server takes them back with the attempt.
    public var gpus: [[Int]]?

    /// Notes that the attempt reached `phase` now.
    public mutating func reached(_ phase: AttemptPhase.Name, at time: Date = Date()) {
        phases = (phases ?? []) + [AttemptPhase(name: phase, at: time)]
    }

    public var succeeded: Bool { failure == nil && exitCode == 0 }
    public var seconds: Double { (end ?? Date()).timeIntervalSince(start) }
}

/// A step of an attempt's way and when it was reached: queued (ready to run) → allocated
/// (a node group taken) → nodesReady (health checks and job preparation done) → staged
/// (resource files and packages in place) → coordinated (the coordination command done on
/// every node) → launched (the application started) → [adopted: a restarted server took
/// over watching it] → ended → uploaded (output files) → swept (nothing of it left on its nodes).
public struct AttemptPhase: Codable, Sendable, Equatable {
    public enum Name: String, Codable, Sendable, CaseIterable {
        case queued, allocated, nodesReady, staged, coordinated, launched, adopted, ended, uploaded, swept
    }
    public var name: Name
    public var at: Date

    public init(name: Name, at: Date) {
        self.name = name
        self.at = at
    }

    /// `queued → allocated +0.01 s → … → swept +0.00 s`: each step with the time since the one before.
    public static func line(_ phases: [AttemptPhase]) -> String {
        zip(phases.indices, phases).map { index, phase in
            index == 0 ? phase.name.rawValue : "\(phase.name.rawValue) +\(String(format: "%.3f", phase.at.timeIntervalSince(phases[index - 1].at))) s"
        }.joined(separator: " → ")
    }
}

/// Azure's task states.
public enum TaskState: String, Codable, Sendable {
    case active, preparing, running, completed
}

/// What a job's history (`cohort job show`'s events, the API's `events`) records, as stored.
public enum JobEventKind: String, Codable, Sendable {
    case submitted, started, waiting, disabled, enabled, recovered, terminating, cancelled, completed
    /// Ended unrun: the jobs it waits for ended otherwise than it asks; the service refused it.
    case dependency, rejected
    /// A job preparation or release task ran on a node (or a pool's start task).
    case preparation, release, start

    init(_ nodeTask: NodeTaskRun.Kind) {
        switch nodeTask {
        case .preparation: self = .preparation
        case .release: self = .release
        case .start: self = .start
        }
    }
}

/// How a completed task ended (Azure's executionInfo.result).
public enum TaskResult: String, Codable, Sendable {
    case success, failure

    public init(succeeded: Bool) { self = succeeded ? .success : .failure }
}

/// A job's state as the store, the API and the CLI show it (Azure's names, and `disabled`
/// for a held job): its rules are here, not in each front door.
public enum JobState: String, Codable, Sendable, CaseIterable {
    /// Queued: no runner has taken it.
    case active
    case running
    /// Held: its waiting tasks do not start (running ones go on).
    case disabled
    /// Being cancelled: its runner is ending its attempts.
    case terminating
    case completed

    /// Whether it may be disabled or enabled now.
    public var canBeHeld: Bool { self == .active || self == .running || self == .disabled }
    /// Whether a runner may be running it now.
    public var mayRun: Bool { self == .running || self == .disabled }
}

/// A task's (or one replica's) outcome with every attempt kept.
public struct TaskRun: Codable, Sendable {
    public var taskId: String
    /// The replica index, for tasks with replicas.
    public var replica: Int?
    public var state: TaskState
    public var attempts: [Attempt]
    /// Set when the task never ran (a failed dependency).
    public var skippedBecause: Failure?

    public init(taskId: String, replica: Int?, state: TaskState, attempts: [Attempt], skippedBecause: Failure?) {
        self.taskId = taskId
        self.replica = replica
        self.state = state
        self.attempts = attempts
        self.skippedBecause = skippedBecause
    }

    public var displayId: String { replica.map { "\(taskId)[\($0)]" } ?? taskId }
    public var succeeded: Bool { state == .completed && attempts.last?.succeeded == true }
    public var failure: Failure? { skippedBecause ?? attempts.last?.failure }

    // A task has one shape wherever it appears: `cohort run --output json` writes it as `job
    // show --output json` and the API do (result and failure, not skippedBecause).
    enum CodingKeys: String, CodingKey { case taskId, replica, state, result, failure, attempts, skippedBecause }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(taskId, forKey: .taskId)
        try container.encodeIfPresent(replica, forKey: .replica)
        try container.encode(state, forKey: .state)
        if state == .completed { try container.encode(TaskResult(succeeded: succeeded), forKey: .result) }
        try container.encodeIfPresent(failure, forKey: .failure)
        try container.encode(attempts, forKey: .attempts)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        taskId = try container.decode(String.self, forKey: .taskId)
        replica = try container.decodeIfPresent(Int.self, forKey: .replica)
        state = try container.decode(TaskState.self, forKey: .state)
        attempts = try container.decode([Attempt].self, forKey: .attempts)
        skippedBecause = try container.decodeIfPresent(Failure.self, forKey: .skippedBecause)
            ?? (attempts.isEmpty ? container.decodeIfPresent(Failure.self, forKey: .failure) : nil)
    }
}

/// One run of a job's preparation or release task on one node.
public struct NodeTaskRun: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case preparation, release, start }
    public var kind: Kind
    public var node: String
    public var exitCode: Int32?
    public var start: Date
    public var end: Date
    /// Where its stdout.txt and stderr.txt are.
    public var directory: String
    public var failure: Failure?
    public var succeeded: Bool { failure == nil && exitCode == 0 }
}

/// The outcome of a whole job run.
public struct JobRun: Codable, Sendable {
    public var jobId: String
    public var pool: String
    public var start: Date
    public var end: Date
    public var tasks: [TaskRun]
    /// Its preparation and release tasks, per node, in the order they ran.
    public var nodeTasks: [NodeTaskRun] = []

    public init(jobId: String, pool: String, start: Date, end: Date, tasks: [TaskRun], nodeTasks: [NodeTaskRun] = []) {
        self.jobId = jobId
        self.pool = pool
        self.start = start
        self.end = end
        self.tasks = tasks
        self.nodeTasks = nodeTasks
    }

    public var succeeded: Bool { tasks.allSatisfy(\.succeeded) }
    public var counts: (succeeded: Int, failed: Int) {
        let ok = tasks.filter(\.succeeded).count
        return (ok, tasks.count - ok)
    }
}
extension Failure: Error {}
