import Foundation

/// The pool's start task on each node, once per joining: before a node first takes work
/// for this controller, unless the store says it already succeeded there since the node
/// last came back (a node lost or made unusable runs it again). With waitForSuccess the
/// node takes no work until it succeeds; without, work may start while it runs.
final class StartTasks: @unchecked Sendable {
    private let condition = NSCondition()
    private var done: Set<String> = []
    private var running: Set<String> = []

    /// Runs the start task on `node` if it is due; returns why the node may not take work.
    func ensure(_ node: Node, pool: Pool, executor: AttemptExecutor, record: @escaping @Sendable (NodeTaskRun) -> Void) -> String? {
        guard let spec = pool.startTask else { return nil }
        condition.lock()
        while running.contains(node.id) { condition.wait() }  // another group's check runs it
        if done.contains(node.id) || node.startTask?.succeeded == true {
            done.insert(node.id)
            condition.unlock()
            return nil
        }
        running.insert(node.id)
        condition.unlock()
        let run: @Sendable () -> NodeTaskRun = {
            executor.runNodeTask(spec, kind: .start, jobId: "pool-\(pool.name)", jobEnvironment: [:], node: node, cancellation: Cancellation())
        }
        if !spec.waitForSuccess {
            finish(node.id, succeeded: true)
            Thread { record(run()) }.start()
            return nil
        }
        let result = run()
        record(result)
        finish(node.id, succeeded: result.succeeded)
        return result.succeeded ? nil : "its start task failed: \(result.failure?.message ?? "exit code \(result.exitCode.map(String.init) ?? "?")") (cohort node list --output json shows its run)"
    }

    private func finish(_ id: String, succeeded: Bool) {
        condition.lock()
        running.remove(id)
        if succeeded { done.insert(id) }
        condition.broadcast()
        condition.unlock()
    }

    /// The node was lost or made unusable: when it comes back, the start task runs again.
    func forget(_ id: String) {
        condition.lock(); done.remove(id); condition.unlock()
    }
}
