import Foundation

/// Where a task's output is: always a fixed file name inside the chosen attempt's own
/// directory (recorded by the store), so no request can name a path outside it.
public enum TaskLogs {
    public enum Stream: String, CaseIterable, Sendable { case stdout, stderr }

    public struct NotFound: Error, CustomStringConvertible {
        public var description: String
    }

    /// The task (`id`, or `id[K]` for a replica) among `tasks`.
    public static func task(_ display: String, in tasks: [JobStore.TaskRecord], job: String) throws(NotFound) -> JobStore.TaskRecord {
        guard let record = tasks.first(where: { $0.displayId == display }) else {
            let known = tasks.prefix(20).map(\.displayId).joined(separator: ", ") + (tasks.count > 20 ? ", …" : "")
            throw NotFound(description: "job \(job) has no task '\(display)' (tasks: \(known))")
        }
        return record
    }

    /// The output file of `attempt` (default: the last) of `record`; with `node`, the
    /// coordination command's output on that node of the group.
    public static func file(_ record: JobStore.TaskRecord, attempt: Int?, stream: Stream, node: String?) throws(NotFound) -> String {
        guard let chosen = attempt.map({ n in record.attempts.first { $0.number == n } }) ?? record.attempts.last else {
            throw NotFound(description: attempt.map { "task \(record.displayId) has no attempt \($0)" } ?? "task \(record.displayId) has not run yet")
        }
        guard let node else { return "\(chosen.directory)/\(stream.rawValue).txt" }
        guard chosen.nodes.contains(node) else {
            throw NotFound(description: "node \(node) is not in the group of attempt \(chosen.number) (\(Hostlist.compress(chosen.nodes)))")
        }
        return "\(chosen.directory)/node-\(node)/coordination-\(stream.rawValue).txt"
    }
}
