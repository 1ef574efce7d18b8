import Foundation
import Launcher

/// The end-of-run report: a table people read, or JSON scripts read.
enum Summary {
    static func table(_ run: JobRun) -> String {
        var rows: [[String]] = [["TASK", "RESULT", "ATTEMPTS", "NODES", "EXIT", "TIME", "REASON"]]
        for task in run.tasks {
            let last = task.attempts.last
            let result = task.succeeded ? "success" : (task.skippedBecause != nil ? "skipped" : "failure")
            let nodes = last.map { Hostlist.compress($0.nodes) } ?? "-"
            let exit = last?.exitCode.map(String.init) ?? "-"
            let time = last.map { String(format: "%.2fs", $0.seconds) } ?? "-"
            let reason = task.failure.map { "\($0.category.rawValue): \($0.message)" } ?? ""
            rows.append([task.displayId, result, String(task.attempts.count), nodes, exit, time, reason])
        }
        var text = tableText(rows)
        // Earlier attempts of retried tasks, so no failure goes unseen.
        for task in run.tasks where task.attempts.count > 1 {
            for attempt in task.attempts.dropLast() {
                text += "  \(task.displayId) attempt \(attempt.number) on \(Hostlist.compress(attempt.nodes)): \(attempt.failure.map { "\($0.category.rawValue): \($0.message)" } ?? "exit \(attempt.exitCode ?? -1)")\n"
            }
        }
        let (ok, failed) = run.counts
        text += "job \(run.jobId) on pool \(run.pool): \(ok) succeeded, \(failed) failed in \(String(format: "%.2f", run.end.timeIntervalSince(run.start))) s\n"
        return text
    }

    static func json(_ run: JobRun) -> String {
        encode(run)
    }
}
