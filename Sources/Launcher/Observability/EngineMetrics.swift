import Foundation
import Metrics

/// What the engine counts and times, through swift-metrics: nothing is kept until a backend
/// is bootstrapped (`cohort serve` bootstraps Prometheus and serves `/metrics`), so
/// `cohort run` and the tests pay a no-op. Names and labels follow Prometheus's conventions
/// (`_total` counters, `_seconds` histograms); each name always has the same label names.
public enum EngineMetrics {
    public static let attemptsStarted = "cohort_attempts_started_total"
    public static let attemptsEnded = "cohort_attempts_ended_total"
    public static let queueWait = "cohort_task_queue_wait_seconds"
    public static let runTime = "cohort_attempt_run_seconds"
    public static let phaseDuration = "cohort_attempt_phase_seconds"
    public static let schedulingPass = "cohort_scheduling_pass_seconds"
    public static let storeWrite = "cohort_store_write_seconds"

    /// Histograms whose values run from milliseconds to days (queue waits, run times), and
    /// those of the controller's own work (a pass, a write: microseconds to a second).
    public static let longBuckets: [Double] = [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600]
    public static let shortBuckets: [Double] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]
    public static let bucketsByName: [String: [Double]] = [
        queueWait: longBuckets, runTime: longBuckets, phaseDuration: longBuckets,
        schedulingPass: shortBuckets, storeWrite: shortBuckets,
    ]

    static func attemptStarted(pool: String) {
        Counter(label: attemptsStarted, dimensions: [("pool", pool)]).increment()
    }

    /// An attempt's end: counted by how it ended, and its phases timed (the time from each
    /// step to the next, named by the step reached), its wait in the queue and its run.
    static func attemptEnded(pool: String, _ attempt: Attempt) {
        Counter(label: attemptsEnded, dimensions: [("pool", pool), ("result", attempt.failure?.category.rawValue ?? "success")]).increment()
        guard let phases = attempt.phases, !phases.isEmpty else { return }
        for (previous, phase) in zip(phases, phases.dropFirst()) {
            Timer(label: phaseDuration, dimensions: [("pool", pool), ("phase", phase.name.rawValue)], preferredDisplayUnit: .seconds)
                .recordSeconds(max(0, phase.at.timeIntervalSince(previous.at)))
        }
        func at(_ name: AttemptPhase.Name) -> Date? { phases.first { $0.name == name }?.at }
        if let queued = at(.queued), let allocated = at(.allocated) {
            Timer(label: queueWait, dimensions: [("pool", pool)], preferredDisplayUnit: .seconds).recordSeconds(max(0, allocated.timeIntervalSince(queued)))
        }
        if let launched = at(.launched), let ended = at(.ended) {
            Timer(label: runTime, dimensions: [("pool", pool)], preferredDisplayUnit: .seconds).recordSeconds(max(0, ended.timeIntervalSince(launched)))
        }
    }

    static func schedulingPassTook(pool: String, seconds: Double) {
        Timer(label: schedulingPass, dimensions: [("pool", pool)], preferredDisplayUnit: .seconds).recordSeconds(seconds)
    }

    static func storeWriteTook(seconds: Double) {
        Timer(label: storeWrite, dimensions: [], preferredDisplayUnit: .seconds).recordSeconds(seconds)
    }
}

extension Timer {
    func recordSeconds(_ seconds: Double) { recordNanoseconds(Int64(seconds * 1e9)) }
}
