import Foundation

/// Queues a job for the service after the checks `cohort run` makes up front: its pool
/// exists and every task can fit it. Shared by `cohort submit` (no server) and the API.
public enum Submission {
    public struct Refused: Error, CustomStringConvertible {
        public var description: String
    }

    /// Returns the id the job got (its own, or id-2, id-3… if taken).
    public static func submit(_ job: JobSpec, store: JobStore, pools: PoolStore, held: Bool = false) throws -> String {
        let pool: Pool
        do { pool = try pools.load(job.pool) } catch { throw Refused(description: "\(error)") }
        let check: JobRunner
        do {
            check = try JobRunner(job: job, pool: pool, settings: ExecutionSettings(workDirectory: "/nonexistent", cohortExecutable: ""))
        } catch { throw Refused(description: "\(error)") }
        return try store.submit(job, units: check.unitList, held: held)
    }
}
