import Foundation

/// What the scheduling core decided: work for the controller's workers (real processes
/// and ssh in `JobRunner`, simulated ones in `Simulation`), and changes to record. The core
/// never does I/O itself; its workers answer with `SchedulingEvent`s.
public enum SchedulingEffect: @unchecked Sendable {
    /// Check these nodes (indices in the pool) before the unit's group takes work.
    case checkHealth(SchedulingCore.Unit, nodes: [Int])
    /// An attempt took its node group (to record: running work is visible at once).
    case attemptStarted(SchedulingCore.Unit, group: [Int], number: Int)
    /// Run the job's preparation task on this node.
    case prepare(SchedulingCore.Job, node: Int)
    /// Start the attempt on its group.
    case launch(SchedulingCore.Unit, group: [Int], number: Int)
    /// Watch to its end an attempt a killed server left running on its group (see `Recovery`).
    case adopt(SchedulingCore.Unit, group: [Int], attempt: Attempt)
    /// The attempt ends before it starts (its job preparation failed there).
    case failBeforeLaunch(SchedulingCore.Unit, group: [Int], number: Int, failure: Failure)
    /// An attempt ended, and the task's state after it (to record).
    case attemptFinished(jobId: String, task: TaskSpec, replica: Int?, attempt: Attempt, state: TaskState)
    /// End the job's running attempts (cancelled, or its maxWallClockTime ran out).
    case endAttempts(SchedulingCore.Job, grace: Double)
    /// End every running attempt (the whole run was cancelled).
    case endAllAttempts
    /// Run the job's release task on these nodes; the job ends after it.
    case release(SchedulingCore.Job, nodes: [Int])
    /// Every task of the job has ended.
    case jobEnded(SchedulingCore.Job, JobRun)
    /// Something learned of a node (to record field by field).
    case nodeChanged(String, JobRunner.NodeChange)
    /// Kill what lost attempts left on these nodes: node index and attempt ids.
    case sweep([(node: Int, attemptIds: [String])])
    /// A task's exit conditions disabled the job (to record: it stays disabled until enabled).
    case jobDisabled(jobId: String, reason: String)
    case log(String)
}

/// What the controller's workers and front doors tell the core.
public enum SchedulingEvent: @unchecked Sendable {
    /// The health of a group's nodes: node index and the reason it failed, for those that did.
    case healthChecked(SchedulingCore.Unit, failed: [(node: Int, reason: String)])
    case prepared(SchedulingCore.Job, node: Int, NodeTaskRun)
    case attemptEnded(SchedulingCore.Unit, Attempt)
    case released(SchedulingCore.Job, [NodeTaskRun])
    case swept([(node: Int, attemptIds: [String])])
    /// The pool's stored node states (drains an admin made).
    case nodesStored([Node])
    case cancel(jobId: String)
    case cancelAll
    case hold(jobId: String, Bool)
}
