import ArgumentParser
import Foundation
import Launcher
#if canImport(Glibc)
import Glibc
#endif

/// Reading what ran: jobs, tasks with every attempt, logs, usage and cost.
enum Stored {
    static func jobs() throws -> JobStore {
        do { return try JobStore(stateDirectory: PoolStore.defaultStateDirectory) } catch {
            throw Exit.badInput("cannot open the job store: \(error)")
        }
    }


    static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }
}

struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "job", abstract: "Jobs that ran: list, show, delete.",
                                                    subcommands: [List.self, Show.self, Cancel.self, Disable.self, Enable.self, Delete.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List stored jobs.")
        @Option(help: "table or json") var output: OutputFormat = .table

        func run() throws {
            let jobs: [JobStore.JobSummary]
            jobs = try Source.jobs()
            if output == .json { return print(encode(jobs)) }
            print(tableText([["JOB", "POOL", "STATE", "TASKS", "SUCCEEDED", "FAILED", "SUBMITTED", "FINISHED"]]
                + jobs.map { [$0.id, $0.pool, $0.state.rawValue, String($0.tasks), String($0.succeeded), String($0.failed), Stored.time($0.submitted), Stored.time($0.finished)] }),
                  terminator: "")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a job's tasks, attempts, node groups and failure reasons.")
        @Argument var job: String
        @Option(help: "table or json") var output: OutputFormat = .table

        func run() throws {
            let tasks = try Source.tasks(job)
            if output == .json { return print(encode(tasks)) }
            var rows = [["TASK", "RESULT", "ATTEMPT", "NODES", "EXIT", "TIME", "REASON"]]
            for task in tasks {
                if task.attempts.isEmpty {
                    rows.append([task.displayId, task.result?.rawValue ?? task.state.rawValue, "-", "-", "-", "-", task.failure.map { "\($0.category.rawValue): \($0.message)" } ?? ""])
                }
                for attempt in task.attempts {
                    rows.append([task.displayId, attempt.succeeded ? "success" : "failure", String(attempt.number), Hostlist.compress(attempt.nodes),
                                 attempt.exitCode.map(String.init) ?? "-", String(format: "%.2fs", attempt.seconds),
                                 attempt.failure.map { "\($0.category.rawValue): \($0.message)" } ?? ""])
                }
            }
            print(tableText(rows), terminator: "")
            // What happened to the job as a whole: submitted, recovered, preparation and
            // release on each node, cancelled, completed.
            let events = (try? Source.events(job)) ?? []
            if !events.isEmpty {
                print("")
                print(tableText([["TIME", "EVENT", "MESSAGE"]] + events.map { [Stored.time($0.time), $0.kind.rawValue, $0.message] }), terminator: "")
            }
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a running job: every process of it ends, on every node.")
        @Argument var job: String
        @Option(help: "Seconds to wait for the job to end.") var timeout: Double = 60

        func run() throws {
            let store = try Stored.jobs()
            // A queued job no server has taken: it simply never runs.
            if (try? store.cancelQueued(jobId: job)) == true { return print("job \(job) cancelled before it started") }
            let pid: Int32?
            do { pid = try store.runnerPid(jobId: job) } catch { throw Exit.badInput(error) }
            guard let pid else { throw Exit.badInput("job \(job) is not running") }
            if (try? store.origin(jobId: job)) == "submit" {
                // Run by the server: it ends this job only, not itself.
                guard let client = try Client.discover() else { throw Exit.badInput("job \(job) belongs to cohort serve (pid \(pid)), whose API cannot be found") }
                do { _ = try client.call("POST", "/v1/jobs/\(job)/cancel") } catch { throw Exit.badInput(error) }
                return try waitForEnd(store)
            }
            // Only a cohort process: the pid may have been reused since the job started.
            let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            guard command.contains("cohort") else { throw Exit.badInput("the process that ran job \(job) (pid \(pid)) is gone; the job did not finish") }
            kill(pid, SIGTERM)  // its runner ends the job's processes on every node and records the end
            try waitForEnd(store)
        }

        func waitForEnd(_ store: JobStore) throws {
            let deadline = Date() + timeout
            while Date() < deadline {
                if (try? store.progress(jobId: job).state) == .completed {
                    print("job \(job) cancelled")
                    return
                }
                usleep(100_000)
            }
            throw Exit.badInput("job \(job) did not end within \(Int(timeout)) s")
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable a job: its waiting tasks do not start (running ones finish) until it is enabled.")
        @Argument var job: String
        func run() throws { try setHeld(job, true) }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "enable", abstract: "Enable a disabled job: its tasks start again.")
        @Argument var job: String
        func run() throws { try setHeld(job, false) }
    }

    /// Through the server when one runs (it holds the job's runner), else in the store.
    static func setHeld(_ job: String, _ held: Bool) throws {
        if let client = try Client.discover() {
            do {
                let data = try client.call("POST", "/v1/jobs/\(job)/\(held ? "disable" : "enable")")
                let answer = (try? JSONDecoder().decode([String: String].self, from: data)) ?? [:]
                return print("job \(job) is \(answer["state"] ?? "?")")
            } catch { throw Exit.badInput(error) }
        }
        let store = try Stored.jobs()
        if (try? store.origin(jobId: job)) == "run", (try? store.runnerPid(jobId: job)) != nil {
            throw Exit.badInput("job \(job) is run by `cohort run`, which cannot disable it")
        }
        do { print("job \(job) is \(try store.setHeld(jobId: job, held))") } catch { throw Exit.badInput(error) }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Forget a job (its task directories stay on disk).")
        @Argument var job: String

        func run() throws {
            do { try Stored.jobs().delete(jobId: job) } catch let error as ExitCode { throw error } catch { throw Exit.badInput(error) }
            print("job \(job) deleted")
        }
    }
}

struct TaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "task", abstract: "A job's tasks.", subcommands: [List.self, Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one task: every attempt with its nodes, command, exit codes and why it failed.")
        @Argument var job: String
        @Argument(help: "The task id, with [K] for a replica: solve[1].") var task: String
        @Option(help: "table or json") var output: OutputFormat = .table

        func run() throws {
            let record: JobStore.TaskRecord
            do { record = try TaskLogs.task(task, in: Source.tasks(job), job: job) } catch let error as ExitCode { throw error } catch { throw Exit.badInput(error) }
            if output == .json { return print(encode(record)) }
            print("task \(record.displayId) of job \(job): \(record.state.rawValue)\(record.result.map { ", \($0.rawValue)" } ?? "")")
            if let failure = record.failure, record.attempts.isEmpty { print("  \(failure.category.rawValue): \(failure.message)") }
            for attempt in record.attempts {
                print("attempt \(attempt.number): \(attempt.succeeded ? "success" : "failure") on \(Hostlist.compress(attempt.nodes)), "
                      + "\(Stored.time(attempt.start)), \(String(format: "%.2f", attempt.seconds)) s")
                if let code = attempt.exitCode { print("  exit code: \(code)") }
                let perNode = attempt.nodeExitCodes.filter { $0.value != 0 }.sorted { $0.key < $1.key }
                if !perNode.isEmpty { print("  non-zero on: " + perNode.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) }
                if let transport = attempt.transport { print("  transport: \(transport.rawValue)") }
                if let id = attempt.slurmJobId { print("  slurm job: \(id)") }
                if let gpus = attempt.gpus, !gpus.isEmpty {
                    print("  gpus: " + zip(attempt.nodes, gpus).map { "\($0)=\($1.map(String.init).joined(separator: ","))" }.joined(separator: " "))
                }
                if let phases = attempt.phases, !phases.isEmpty { print("  phases: \(AttemptPhase.line(phases))") }
                if !attempt.launchedCommand.isEmpty { print("  command: \(CommandLineWords.shellJoin(attempt.launchedCommand))") }
                print("  directory: \(attempt.directory)")
                if let failure = attempt.failure {
                    print("  \(failure.category.rawValue): \(failure.message)")
                    for line in failure.details { print("    | \(line)") }
                }
                if let unswept = attempt.unsweptNodes, !unswept.isEmpty { print("  not swept (unreachable): \(Hostlist.compress(unswept))") }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List a job's tasks with their states.")
        @Argument var job: String
        @Option(help: "table or json") var output: OutputFormat = .table

        func run() throws {
            let tasks = try Source.tasks(job)
            if output == .json { return print(encode(tasks)) }
            let rows = tasks.map { task -> [String] in
                [task.displayId, task.state.rawValue, task.result?.rawValue ?? "-", String(task.attempts.count),
                 task.attempts.last.map { Hostlist.compress($0.nodes) } ?? "-", task.waiting ?? "-"]
            }
            print(tableText([["TASK", "STATE", "RESULT", "ATTEMPTS", "NODES", "WAITING"]] + rows), terminator: "")
        }
    }
}

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print a task's output (its last attempt, or --attempt N), or with --all every task's.")
    @Argument var job: String
    @Argument(help: "The task id: solve, an array's element pi[3], a replica solve[1] (quote brackets for the shell).") var task: String?
    @Option(help: "The attempt number (default: the last).") var attempt: Int?
    @Flag(help: "Print stderr.txt instead of stdout.txt.") var stderr = false
    @Option(help: "For MPI tasks: the coordination command's output on this node.") var node: String?
    @Flag(help: "Keep printing what the task writes until it has ended (like tail -f).") var follow = false
    @Flag(help: "Every task's output (its last attempt), in the job's order, each line labelled with its task (pi[3]: …).") var all = false

    func run() throws {
        let stream: TaskLogs.Stream = stderr ? .stderr : .stdout
        if all {
            guard task == nil, attempt == nil, node == nil, !follow else {
                throw Exit.badInput("--all prints every task's last attempt: give it without a task, --attempt, --node or --follow")
            }
            for record in try Source.tasks(job) where !record.attempts.isEmpty {
                let (data, _) = try Source.log(job: job, record: record, attempt: nil, stream: stream, node: nil, offset: 0)
                guard !data.isEmpty else { continue }
                var text = String(decoding: data, as: UTF8.self)
                if !text.hasSuffix("\n") { text += "\n" }
                FileHandle.standardOutput.write(Data(text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                    .map { "\(record.displayId): \($0)\n" }.joined().utf8))
            }
            return
        }
        guard let task else { throw Exit.badInput("give a task (cohort task list \(job) names them), or --all") }
        guard follow else {
            let (data, _) = try Source.log(job: job, task: task, attempt: attempt, stream: stream, node: node, offset: 0)
            return FileHandle.standardOutput.write(data)
        }
        // Follow: wait for the task to start, then print what is new until it has ended
        // (one more read after the end, so nothing written last is lost).
        var offset: UInt64 = 0
        while true {
            let record: JobStore.TaskRecord
            do { record = try TaskLogs.task(task, in: Source.tasks(job), job: job) } catch let error as ExitCode { throw error } catch { throw Exit.badInput(error) }
            let ended = record.state == .completed
            if !record.attempts.isEmpty, let (data, size) = try? Source.log(job: job, record: record, attempt: attempt, stream: stream, node: node, offset: offset) {
                FileHandle.standardOutput.write(data)
                offset = size
            } else if ended {
                throw Exit.badInput("task \(task) ended without running")
            }
            if ended { return }
            usleep(250_000)
        }
    }
}

struct Usage: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "usage", abstract: "Node-hours, core-hours and cost of what ran, like sacct.")
    @Option(help: "Only attempts that started since: 2026-11-01, or an age such as 7d or 12h.") var since: String?
    @Option(help: "Group by job, pool, task or day (per UTC day and pool).") var by: String = "job"
    @Option(help: "table or json") var output: OutputFormat = .table

    func run() throws {
        guard let grouping = JobStore.Grouping(rawValue: by) else { throw Exit.badInput("--by: expected job, pool, task or day, found '\(by)'") }
        if let since, UsagePeriod.start(since) == nil { throw Exit.badInput("--since: expected YYYY-MM-DD or an age such as 7d, found '\(since)'") }
        let rows = try Source.usage(since: since, by: grouping)
        if output == .json { return print(encode(rows)) }
        print(tableText([[by.uppercased(), "ATTEMPTS", "NODE-HOURS", "CORE-HOURS", "COST"]] + rows.map {
            [$0.key, String($0.attempts), String(format: "%.4f", $0.nodeSeconds / 3600), String(format: "%.4f", $0.coreSeconds / 3600),
             $0.cost.map { String(format: "%.4f", $0) } ?? "-"]
        }), terminator: "")
    }
}

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait", abstract: "Wait for a job to finish, with a progress bar; exit 0 if every task succeeded, 1 if not.")
    @Argument var job: String
    @Option(help: "Give up after this many seconds (exit 3).") var timeout: Double?
    @Option(help: "table or json (the job's summary)") var output: OutputFormat = .table

    func run() throws {
        let live = isatty(STDERR_FILENO) != 0
        let deadline = timeout.map { Date() + $0 }
        while true {
            let summary = try Source.job(job)
            let progress = (state: summary.state, done: summary.succeeded + summary.failed, failed: summary.failed, total: summary.tasks)
            if live {
                let width = 30, filled = progress.total == 0 ? width : width * progress.done / progress.total
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                FileHandle.standardError.write(Data("\r[\(bar)] \(progress.done)/\(progress.total) done, \(progress.failed) failed   ".utf8))
            }
            if progress.state == .completed {
                if live { FileHandle.standardError.write(Data("\n".utf8)) }
                if output == .json { print(encode(summary)) } else {
                    print("job \(job): \(progress.done - progress.failed) succeeded, \(progress.failed) failed")
                }
                if progress.failed > 0 { throw Exit.taskFailed }
                return
            }
            // A job whose runner died without recording its end will never complete (a
            // server's jobs are taken back by its next start).
            if try Source.server() == nil, let store = try? Stored.jobs(), (try? store.origin(jobId: job)) == "run",
               let pid = try? store.runnerPid(jobId: job), kill(pid, 0) != 0, errno == ESRCH {
                throw Exit.badInput("the process running job \(job) (pid \(pid)) is gone; the job will not finish")
            }
            if let deadline, Date() > deadline { throw ExitCode(3) }
            usleep(200_000)
        }
    }
}

/// What runs now, like squeue: one line per running attempt.
struct Ps: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "Show what runs now: job, task, attempt, nodes, elapsed time, state.")
    @Option(help: "Only this pool.") var pool: String?
    @Option(help: "table or json") var output: OutputFormat = .table

    func run() throws {
        let running: [JobStore.RunningAttempt]
        do { running = try Stored.jobs().runningAttempts(pool: pool) } catch let error as ExitCode { throw error } catch { throw Exit.badInput(error) }
        if output == .json { return print(encode(running)) }
        printTable([["JOB", "TASK", "ATTEMPT", "POOL", "NODES", "ELAPSED", "STATE"]] + running.map { attempt in
            let elapsed = Int(Date().timeIntervalSince(attempt.start))
            let state = attempt.runnerAlive ? "running" : "runner gone (pid \(attempt.runnerPid.map(String.init) ?? "?"))"
            return [attempt.jobId, attempt.displayTaskId, String(attempt.attempt), attempt.pool, Hostlist.compress(attempt.nodes),
                    String(format: "%d:%02d:%02d", elapsed / 3600, elapsed / 60 % 60, elapsed % 60), state]
        })
    }
}
