import Foundation

/// Queues a job for the service after the checks `cohort run` makes up front: its pool
/// exists and every task can fit it. Shared by `cohort submit` (no server) and the API.
public enum Submission {
    /// A well-formed job that cannot run: its pool is unknown, or a task can never fit it.
    public struct Refused: Error, CustomStringConvertible {
        public var description: String
        /// `pool` or `tasks`.
        public var field: String
    }

    /// Returns the id the job got (its own, or id-2, id-3… if taken).
    public static func submit(_ job: JobSpec, store: JobStore, pools: PoolStore, held: Bool = false) throws -> String {
        try checkDependencies(job, store: store)
        return try store.submit(job, units: check(job, pools: pools), held: held)
    }

    /// The same through the store's group-commit queue (the API).
    public static func submit(_ job: JobSpec, store: JobStore, pools: PoolStore, held: Bool = false) async throws -> String {
        try checkDependencies(job, store: store)
        let units = try check(job, pools: pools)
        return try await store.submissions.submit(job, units: units, held: held)
    }

    /// A job waits only for jobs that are stored.
    static func checkDependencies(_ job: JobSpec, store: JobStore) throws {
        guard let after = job.afterJobs, !after.isEmpty else { return }
        let missing = try store.missingJobs(after)
        guard missing.isEmpty else { throw Refused(description: "no job '\(missing[0])' is stored to wait for", field: "dependsOn") }
    }

    /// The job's units, once its pool exists and every task can fit it.
    static func check(_ job: JobSpec, pools: PoolStore) throws -> [(task: String, replica: Int?)] {
        let pool: Pool
        do { pool = try pools.load(job.pool) } catch { throw Refused(description: "\(error)", field: "pool") }
        do {
            return try JobRunner(job: job, pool: pool, settings: ExecutionSettings(workDirectory: "/nonexistent", cohortExecutable: "")).unitList
        } catch { throw Refused(description: "\(error)", field: "tasks") }
    }
}
