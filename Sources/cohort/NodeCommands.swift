import ArgumentParser
import Foundation
import Launcher

struct NodeCommandGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Inspect, check, drain and undrain a pool's nodes.",
        subcommands: [List.self, Show.self, Check.self, Drain.self, Undrain.self])

    struct PoolOption: ParsableArguments {
        @Option(help: "The pool (default: local).") var pool: String = "local"
    }

    static var store: PoolStore { PoolStore(stateDirectory: PoolStore.defaultStateDirectory) }

    /// Changes the named nodes of a pool under the store's lock; unknown names are an error.
    static func change(_ pool: String, _ names: [String], _ body: @escaping (inout Node) -> Void) throws {
        do {
            try store.update(pool) { stored in
                let unknown = names.filter { name in !stored.nodes.contains { $0.id == name } }
                guard unknown.isEmpty else {
                    throw PoolStore.StoreError(description: "pool \(pool) has no node \(unknown.joined(separator: ", ")) (nodes: \(Hostlist.compress(stored.nodes.map(\.id))))")
                }
                for index in stored.nodes.indices where names.contains(stored.nodes[index].id) { body(&stored.nodes[index]) }
            }
        } catch {
            throw Exit.badInput(error)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one node: its state and reason, and its pool's start task's last run there.")
        @Argument(help: "The node's id.") var node: String
        @OptionGroup var options: PoolOption
        @Option(help: "table or json") var output: OutputFormat = .table

        func run() throws {
            let pool: Pool
            do { pool = try NodeCommandGroup.store.load(options.pool).withLiveState() } catch { throw Exit.badInput(error) }
            guard let found = pool.nodes.first(where: { $0.id == node }) else {
                throw Exit.badInput("pool \(pool.name) has no node \(node) (nodes: \(Hostlist.compress(pool.nodes.map(\.id))))")
            }
            if output == .json { return print(encode(found)) }
            print("node \(found.id) of pool \(pool.name): \(found.address), \(plural(found.slots, "slot")), \(found.state.rawValue)\(found.stateReason.map { " (\($0))" } ?? "")")
            guard pool.startTask != nil else { return }
            guard let run = found.startTask else { return print("start task: not run yet") }
            let outcome = run.succeeded ? "succeeded" : (run.failure?.message ?? "exit code \(run.exitCode.map(String.init) ?? "?")")
            print("start task: \(outcome), \(ISO8601DateFormatter().string(from: run.end)); output in \(run.directory)")
            for (name, label) in [("stdout.txt", "stdout"), ("stderr.txt", "stderr")] {
                let lines = ((try? String(contentsOfFile: "\(run.directory)/\(name)", encoding: .utf8)) ?? "").split(separator: "\n").suffix(5)
                for line in lines { print("  \(label): \(line)") }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the nodes of a pool with their states and reasons.")
        @OptionGroup var options: PoolOption
        @Option(help: "table or json") var output: OutputFormat = .table

        func run() throws {
            let pool: Pool
            do { pool = try NodeCommandGroup.store.load(options.pool).withLiveState() } catch { throw Exit.badInput(error) }
            // What runs on each node now, from the attempts recorded as started.
            let running = ((try? Stored.jobs().runningAttempts(pool: pool.name)) ?? []).filter(\.runnerAlive)
            var used: [String: Int] = [:], tasks: [String: [String]] = [:]
            for attempt in running {
                for node in attempt.nodes {
                    used[node, default: 0] += attempt.slotsPerNode
                    tasks[node, default: []].append("\(attempt.jobId)/\(attempt.displayTaskId)")
                }
            }
            if output == .json {
                struct Row: Encodable { var node: Node; var slotsUsed: Int; var running: [String] }
                return print(encode(pool.nodes.map { Row(node: $0, slotsUsed: used[$0.id] ?? 0, running: tasks[$0.id] ?? []) }))
            }
            printTable([["NODE", "ADDRESS", "SLOTS", "USED", "STATE", "REASON", "RUNNING"]] + pool.nodes.map { node in
                let pending = (node.pendingSweeps ?? []).isEmpty ? "" : " [stale processes of \(node.pendingSweeps!.joined(separator: ", ")) to kill]"
                let state = node.state == .idle && used[node.id, default: 0] > 0 ? "running" : node.state.rawValue
                return [node.id, node.address, String(node.slots), String(used[node.id] ?? 0), state, (node.stateReason ?? "-") + pending,
                        (tasks[node.id] ?? []).joined(separator: ",")]
            })
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "check", 
            abstract: "Health-check nodes now: unreachable or failing nodes become unusable, healthy unusable ones idle again.")
        @OptionGroup var options: PoolOption
        @Argument(help: "Nodes to check (default: all).") var nodes: [String] = []

        func run() throws {
            let store = NodeCommandGroup.store
            let pool: Pool
            do { pool = try store.load(options.pool) } catch { throw Exit.badInput(error) }
            guard pool.kind != .slurm else {
                throw Exit.badInput("pool \(pool.name) is a Slurm pool: Slurm checks its nodes (sinfo -N shows their states; cohort node list shows them too)")
            }
            let chosen = nodes.isEmpty ? pool.nodes : pool.nodes.filter { nodes.contains($0.id) }
            guard chosen.count == Set(nodes).count || nodes.isEmpty else { throw Exit.badInput("pool \(pool.name) has no such node among \(nodes.joined(separator: ", "))") }
            // The agents are asked to serve this state directory's work tree: a node that does
            // not see it is unhealthy, as it could run none of its tasks.
            let settings = ExecutionSettings(workDirectory: "\(PoolStore.defaultStateDirectory)/work", cohortExecutable: ExecutionSettings.currentExecutable)
            let executor = AttemptExecutor(settings: settings, pool: pool)
            let health = NodeHealth(pool: pool, agents: executor.agents)
            // Every node at once (agents come up together); the store is changed and results printed in order.
            let checked = concurrentMap(chosen) { node -> (NodeHealth.Report, [String]) in
                let report = health.check(node)
                // A node that answers again gets its stale processes killed first.
                let swept = report.healthy ? (node.pendingSweeps ?? []).filter { executor.sweepRemote(attemptId: $0, node: node) } : []
                return (report, swept)
            }
            let reports = checked.map(\.0)
            for (node, (report, swept)) in zip(chosen, checked) {
                try NodeCommandGroup.change(pool.name, [node.id]) { stored in
                    stored.pendingSweeps = (stored.pendingSweeps ?? []).filter { !swept.contains($0) }
                    if report.healthy, stored.state == .unusable { stored.state = .idle; stored.stateReason = nil }
                    if !report.healthy, stored.state != .offline { stored.state = .unusable; stored.stateReason = report.reason }
                }
                print("\(node.id)  \(report.healthy ? "healthy" : "UNHEALTHY")  \(String(format: "%.2f", report.seconds)) s\(report.reason.map { "  \($0)" } ?? "")\(swept.isEmpty ? "" : "  (killed stale processes of \(swept.joined(separator: ", ")))")")
            }
            if reports.contains(where: { !$0.healthy }) { throw Exit.taskFailed }
        }
    }

    struct Drain: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "drain", abstract: "Take nodes offline: they finish their work and take no more.")
        @OptionGroup var options: PoolOption
        @Argument(help: "Nodes to drain.") var nodes: [String]
        @Option(help: "Why (shown in node list).") var reason: String = "drained by an admin"

        func run() throws {
            guard !nodes.isEmpty else { throw Exit.badInput("name the nodes to drain") }
            if try SlurmNodes.change(options.pool, nodes, drain: true, reason: reason) { return print("drained \(nodes.joined(separator: ", ")) in Slurm (pool \(options.pool))") }
            try NodeCommandGroup.change(options.pool, nodes) { node in
                node.state = .offline
                node.stateReason = reason
            }
            print("drained \(nodes.joined(separator: ", ")) in pool \(options.pool)")
        }
    }

    struct Undrain: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "undrain", abstract: "Return offline or unusable nodes to service.")
        @OptionGroup var options: PoolOption
        @Argument(help: "Nodes to return.") var nodes: [String]

        func run() throws {
            guard !nodes.isEmpty else { throw Exit.badInput("name the nodes to undrain") }
            if try SlurmNodes.change(options.pool, nodes, drain: false, reason: nil) { return print("resumed \(nodes.joined(separator: ", ")) in Slurm (pool \(options.pool))") }
            try NodeCommandGroup.change(options.pool, nodes) { node in
                node.state = .idle
                node.stateReason = nil
            }
            print("returned \(nodes.joined(separator: ", ")) to pool \(options.pool)")
        }
    }
}

/// Drains and resumes on a Slurm pool are Slurm's own (`scontrol update`), so that every
/// Slurm user sees them; Slurm's refusal (not an operator, say) is the error.
enum SlurmNodes {
    /// Whether the pool is a Slurm pool (and the change was made there).
    static func change(_ poolName: String, _ nodes: [String], drain: Bool, reason: String?) throws -> Bool {
        let pool: Pool
        do { pool = try NodeCommandGroup.store.load(poolName) } catch { throw Exit.badInput(error) }
        guard pool.kind == .slurm else { return false }
        let known = Set(pool.withLiveState().nodes.map(\.id))
        if let unknown = nodes.first(where: { !known.contains($0) }) {
            throw Exit.badInput("pool \(pool.name) has no node \(unknown) (nodes: \(Hostlist.compress(known.sorted())))")
        }
        let client = SlurmClient(options: pool.slurm ?? SlurmOptions())
        do { try client.drain(nodes, reason: reason, resume: !drain) } catch {
            FileHandle.standardError.write(Data("cohort: error: Slurm refused to \(drain ? "drain" : "resume") \(nodes.joined(separator: ", ")): \(error.message)\n".utf8))
            throw Exit.taskFailed
        }
        return true
    }
}
