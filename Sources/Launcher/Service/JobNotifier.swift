import Foundation

/// A job's `notify` webhook: when the service has recorded the job's end, it POSTs the
/// outcome there as JSON, off the controller's threads. An answer below 500 is the
/// receiver's word and is not repeated; a 5xx or no answer is tried 3 times in all, a second
/// then two apart. What came of it goes to the server's log and event stream.
public enum JobNotifier {
    public struct Outcome: Codable, Sendable, Equatable {
        public var id: String
        public var pool: String
        public var state: String
        /// `success` if every task succeeded, else `failure`.
        public var result: String
        public var succeeded: Int
        public var failed: Int
        /// ISO 8601, as the API gives times; no `started` for a job that never ran.
        public var started: Date?
        public var finished: Date
    }

    /// The outcome of a job that ended before it ran: every task failed, none started.
    static func outcome(ofUnrun job: JobStore.JobSummary) -> Outcome {
        Outcome(id: job.id, pool: job.pool, state: JobState.completed.rawValue, result: "failure", succeeded: 0, failed: job.tasks,
                started: nil, finished: job.finished ?? Date())
    }

    static func outcome(of run: JobRun) -> Outcome {
        let (succeeded, failed) = run.counts
        return Outcome(id: run.jobId, pool: run.pool, state: JobState.completed.rawValue, result: failed == 0 ? "success" : "failure",
                       succeeded: succeeded, failed: failed, started: run.start, finished: run.end)
    }

    /// Posts `outcome` to `url` on a thread of its own; `done` is told what came of it.
    static func post(_ outcome: Outcome, to url: String, done: @escaping @Sendable (String) -> Void) {
        DispatchQueue.global().async {
            let encoder = JSONStyle.encoder()
            guard let body = try? encoder.encode(outcome) else { return done("not sent: the outcome could not be encoded") }
            var pause = 1.0
            for attempt in 1...3 {
                do {
                    let answer = try HTTPTransfer.send(.POST, url, headers: [("Content-Type", "application/json"), ("User-Agent", "cohort")], body: body, limit: 64 << 10)
                    if answer.status < 500 { return done("HTTP \(answer.status)") }
                    if attempt == 3 { return done("HTTP \(answer.status), 3 tries") }
                } catch {
                    if attempt == 3 { return done("not delivered: \(error)") }
                }
                Thread.sleep(forTimeInterval: pause)
                pause *= 2
            }
        }
    }
}
