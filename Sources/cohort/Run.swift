import ArgumentParser
import Foundation
import Launcher
#if canImport(Glibc)
import Glibc
#endif

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", 
        abstract: "Run a job file, or one command, to completion on a pool.",
        discussion: """
            cohort run JOB.yaml
            cohort run -N 2 -n 4 -- ./solver input.dat        (an MPI task: 2 nodes, 4 ranks)
            cohort run -N 2 -n 4 --replicas 3 -- ./solver      (three disjoint groups at once)
            cohort run -- ./render frame1                      (one independent task)
            cohort run --array 1-20%4 -- ./pi --seed {index}   (20 tasks, at most 4 at once)
            Exit code: 0 if every task succeeded, 1 if one failed, 2 for bad input.
            """
    )

    @Argument(help: "A job file (YAML or JSON), or with -N/-n/--, the program and its arguments.")
    var words: [String] = []

    @Option(name: .customShort("N"), help: "Nodes of the MPI task's group.")
    var nodes: Int?

    @Option(name: .customShort("n"), help: "Ranks of the MPI task in all (spread evenly over the nodes).")
    var ranks: Int?

    @Option(help: "Run K copies of the MPI task at once, each on its own node group.")
    var replicas: Int = 1

    @Option(name: [.customShort("c"), .customLong("cpus-per-task")],
            help: "Cores of each rank, as Slurm's -c: a slot each, the rank bound to them, OMP_NUM_THREADS set (a hybrid MPI+OpenMP run).")
    var cpusPerTask: Int?

    @Flag(help: "Whole nodes: no other task on the group's nodes while it runs (as Slurm's --exclusive).")
    var exclusive = false

    @Option(help: "GPUs on each node of the task's group, shared by the ranks there (as Slurm's --gpus-per-node); CUDA_VISIBLE_DEVICES lists them.")
    var gpusPerNode: Int?

    @Option(name: [.customLong("gpus-per-task"), .customLong("gpus-per-rank")],
            help: "GPUs of each rank for its own (as Slurm's --gpus-per-task): each rank's CUDA_VISIBLE_DEVICES lists only its own.")
    var gpusPerTask: Int?

    @Option(name: [.customLong("mem"), .customLong("memory-per-node")],
            help: "Memory the task takes on each node, as Slurm's --mem: 512M, 4G, or MiB. It waits while other tasks hold the node's memory (pool add --memory-per-node).")
    var memory: String?

    @Flag(help: "Label each line of output with its rank (as srun's --label; every MPI task of a job file too), and with its task when there are several.")
    var label = false

    @Option(help: "MPI transport: auto, shm, tcp, rdma or ucx.")
    var transport: String = "auto"

    @Option(help: "The pool to run on (default: the job file's, else local).")
    var pool: String?

    @Option(help: "Wall-clock limit per attempt of a quick run, as Slurm's --time: minutes, M:S, H:M:S, D-H[:M[:S]], or with units (90s, 10m, PT1H).")
    var time: String?

    @Option(name: .customLong("signal"), help: "Warn the program with a signal before --time ends it, as Slurm's --signal: SIG[@SECONDS] (USR1@300; 60 s early when no time is given). mpirun passes it on to every rank; the next attempt finds what it saved in COHORT_TASK_PERSIST_DIR.")
    var warningSignal: String?

    @Option(name: .customLong("idle-timeout"), help: "End an attempt as hung when its processes print nothing and use no CPU this long (90s, 10m), after saving every process's stacks (gdb) in the attempt's stacks/ folder.")
    var idleTimeout: String?

    @Option(help: "Run the command once per index, as Slurm's --array: 1-20, 0,6,16-32, 0-15:4, with %N for at most N at once; {index} in the command becomes each one's index (also in COHORT_ARRAY_INDEX).")
    var array: String?

    @Option(help: "Retries of a failed attempt of a quick run.")
    var retries: Int = 0

    @Option(help: "Let the command call mpirun itself (raw) or run it under mpirun (mpirun).")
    var launch: String = "mpirun"

    @Option(help: "Where a quick run's task and ranks start: a directory that exists on the pool's nodes (default on the local pool: the current directory; elsewhere: the attempt's own).")
    var chdir: String?

    @Option(help: "Upload PATH (a file, a folder, or . for this folder's contents) to the object store and put it in each task's working directory first (repeatable; hidden files left out).")
    var stage: [String] = []

    @Option(help: "The bucket --stage uploads to.")
    var stageBucket: String = "cohort-staging"

    @Option(help: "Placement of node groups: pack or spread.")
    var policy: String = "pack"

    @Option(help: "Summary format: table or json.")
    var output: OutputFormat = .table

    @Flag(help: "Print only the summary: neither what the tasks write (streamed as they run, labelled with their task when there are several) nor the progress line.")
    var quiet = false

    /// What the tasks write is printed as they run (as srun does), unless --quiet or JSON.
    var streamsOutput: Bool { !quiet && output == .table }

    func run() throws {
        let store = PoolStore(stateDirectory: PoolStore.defaultStateDirectory)
        var job: JobSpec
        do {
            job = try makeJob()
        } catch let error as SpecError {
            throw Exit.badInput(error)
        }
        if label {
            // Ranks label their lines through mpirun (--tag-output) or srun (--label).
            for index in job.tasks.indices where job.tasks[index].multiInstance != nil { job.tasks[index].multiInstance?.labelRanks = true }
        }
        try Staging.apply(stage, bucket: stageBucket, to: &job)
        guard let placement = PlacementPolicy(rawValue: policy) else { throw Exit.badInput("--policy: expected pack or spread, found '\(policy)'") }
        let poolDefinition: Pool
        do {
            poolDefinition = try store.load(pool ?? job.pool).withLiveState()
        } catch {
            throw Exit.badInput(error)
        }
        job.pool = poolDefinition.name  // --pool over the file's: the job is recorded where it ran
        if nodes == nil, let ranks, var multi = job.tasks[0].multiInstance {
            // -n alone: as few nodes as hold the ranks evenly, like srun.
            guard let count = Self.nodeCount(ranks: ranks, pool: poolDefinition) else {
                throw Exit.badInput("-n: \(ranks) ranks do not fit evenly on the nodes of pool \(poolDefinition.name); give -N")
            }
            multi.instances = count
            multi.processesPerNode = ranks / count
            for index in job.tasks.indices { job.tasks[index].multiInstance = multi }  // every element of an --array
        }
        let settings = ExecutionSettings(
            workDirectory: "\(PoolStore.defaultStateDirectory)/work",
            cohortExecutable: ExecutionSettings.currentExecutable,
            log: { message in if !quiet { FileHandle.standardError.write(Data("cohort: \(message)\n".utf8)) } })
        let jobs: JobStore
        do {
            jobs = try JobStore(stateDirectory: PoolStore.defaultStateDirectory)
            // A job file run again gets id-2, id-3…: runs never overwrite each other.
            job.id = try jobs.availableId(job.id)
        } catch {
            throw Exit.badInput("cannot open the job store: \(error)")
        }
        job.incarnation = JobSpec.newIncarnation()
        let live = !quiet && output == .table && isatty(STDERR_FILENO) != 0
        // One allocator per pool across processes: a server of this state directory places
        // the job with its own; else this run holds the pool's lock (a second run waits).
        if BatchService.isServing(stateDirectory: PoolStore.defaultStateDirectory) {
            return try runThroughServer(job, jobs: jobs, pools: store, live: live)
        }
        // Without a server nothing would wait for the jobs it depends on: they must have ended as it asks.
        if let after = job.afterJobs, !after.isEmpty {
            do {
                if let missing = try jobs.missingJobs(after).first { throw Exit.badInput("dependsOn: no job '\(missing)' is stored to wait for") }
                if let problem = try jobs.unmetDependency(after) {
                    throw Exit.badInput("dependsOn: \(problem); cohort run starts at once — cohort submit queues the job for the server, which starts it when it may")
                }
            } catch let error as ExitCode { throw error } catch { throw Exit.badInput(error) }
        }
        let poolLock: PoolLock
        do {
            poolLock = try PoolLock.wait(stateDirectory: PoolStore.defaultStateDirectory, pool: poolDefinition.name) { holder in
                if !quiet { FileHandle.standardError.write(Data("cohort: pool \(poolDefinition.name) is in use by another cohort run\(holder.map { " (pid \($0))" } ?? ""); waiting for it\n".utf8)) }
            }
        } catch {
            throw Exit.badInput(error)
        }
        defer { withExtendedLifetime(poolLock) {} }
        let runner: JobRunner
        do {
            runner = try JobRunner(job: job, pool: poolDefinition, settings: settings, policy: placement) { progress in
                guard live else { return }
                let line = "\r\(progress.succeeded) done, \(progress.running) running, \(progress.failed) failed, \(progress.waiting) waiting — \(String(format: "%.1f", progress.elapsed)) s   "
                FileHandle.standardError.write(Data(line.utf8))
            }
        } catch {
            throw Exit.badInput(error)
        }
        let poolName = poolDefinition.name
        // Node states this run learns (lost, unhealthy, swept) are kept, field by field; drains
        // made meanwhile apply (also to the built-in local pool, stored at its first drain).
        runner.onNodeChange = { id, change in try? store.apply(change, node: id, pool: poolName) }
        runner.refreshNodes = { try? store.load(poolName).withLiveState().nodes }
        do {
            job.id = try jobs.begin(job, units: runner.unitList)
        } catch {
            throw Exit.badInput("cannot record the job: \(error)")
        }
        let recorder = JobStore.Recorder(store: jobs, jobId: job.id)
        let follower = streamsOutput ? LiveOutput(labelled: runner.unitList.count > 1, clearsProgress: live) : nil
        runner.onAttemptStarted = { _, task, replica, attempt in
            recorder.add(task, replica, attempt, .running)
            follower?.started(label: replica.map { "\(task.id)[\($0)]" } ?? task.id, directory: attempt.directory)
        }
        runner.onAttemptFinished = { _, task, replica, attempt, state in
            recorder.add(task, replica, attempt, state)
            follower?.ended(directory: attempt.directory)
        }
        // Ctrl-C or SIGTERM ends the run's processes on every node instead of orphaning them.
        let sources = Self.onInterrupt("cancelling: ending the job's processes") { runner.cancel() }
        let result = runner.run()
        sources.forEach { $0.cancel() }
        follower?.finish()
        try report(result, live: live) {
            recorder.drain()
            if let error = recorder.lastError {
                FileHandle.standardError.write(Data("cohort: warning: some attempts were not recorded: \(error)\n".utf8))
            }
            do { try jobs.finish(result) } catch {
                FileHandle.standardError.write(Data("cohort: warning: the job's end was not recorded: \(error)\n".utf8))
            }
        }
    }

    /// Runs `cancel` (after saying `message`) on Ctrl-C or SIGTERM, until the sources are cancelled.
    static func onInterrupt(_ message: String, _ cancel: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                FileHandle.standardError.write(Data("\ncohort: \(message)\n".utf8))
                cancel()
            }
            source.resume()
            return source
        }
    }

    /// Prints the job's summary and exits as its tasks say; `record` runs first.
    func report(_ result: JobRun, live: Bool, record: () -> Void = {}) throws {
        record()
        if live { FileHandle.standardError.write(Data("\n".utf8)) }
        switch output {
        case .table: print(Summary.table(result), terminator: "")
        case .json: print(Summary.json(result))
        }
        if result.tasks.contains(where: { $0.failure?.category == .cancelled }) { throw ExitCode(130) }
        if !result.succeeded { throw Exit.taskFailed }
    }

    /// Queues the job on the server of this state directory and follows it to its end: the
    /// server's allocator places it beside its other jobs, never on the same slots.
    func runThroughServer(_ job: JobSpec, jobs: JobStore, pools: PoolStore, live: Bool) throws {
        // Run alone, a job's local tasks start with this command's environment: through the
        // server they get it too (as srun's --export=ALL), not the server's own.
        var job = job
        do { try ExportedEnvironment.everything.apply(to: &job, from: ProcessInfo.processInfo.environment) } catch { throw Exit.badInput(error) }
        let id: String
        do { id = try Submission.submit(job, store: jobs, pools: pools) } catch { throw Exit.badInput(error) }
        if !quiet { FileHandle.standardError.write(Data("cohort: a server runs for this state directory: job \(id) is queued there\n".utf8)) }
        let sources = Self.onInterrupt("cancelling job \(id) on the server") { _ = try? Client.discover()?.call("POST", "/v1/jobs/\(id)/cancel") }
        defer { sources.forEach { $0.cancel() } }
        let start = Date()
        // The server records each attempt as it starts: its output is followed from there.
        let follower = streamsOutput ? LiveOutput(labelled: job.tasks.count > 1 || job.tasks.contains { ($0.multiInstance?.replicas ?? 1) > 1 }, clearsProgress: live) : nil
        var announced = Set<String>(), closed = Set<String>()
        var polls = 0
        while true {
            let summary: JobStore.JobSummary
            do {
                guard let found = try jobs.job(id) else { throw Exit.badInput("job \(id) was deleted before it finished") }
                summary = found
            } catch let error as ExitCode { throw error } catch { throw Exit.badInput(error) }
            polls += 1
            if let follower, polls % 3 == 0 || summary.state == .completed, let records = try? jobs.tasks(jobId: id) {
                for record in records {
                    for attempt in record.attempts where !closed.contains(attempt.directory) {
                        if announced.insert(attempt.directory).inserted { follower.started(label: record.displayId, directory: attempt.directory) }
                        if attempt.end != nil {
                            follower.ended(directory: attempt.directory)
                            closed.insert(attempt.directory)
                        }
                    }
                }
            }
            if live {
                let line = "\r\(summary.succeeded) done, \(summary.failed) failed of \(summary.tasks) (\(summary.state.rawValue)) — \(String(format: "%.1f", Date().timeIntervalSince(start))) s   "
                FileHandle.standardError.write(Data(line.utf8))
            }
            if summary.state == .completed { break }
            if !BatchService.isServing(stateDirectory: PoolStore.defaultStateDirectory) {
                throw Exit.badInput("the server stopped before job \(id) finished; it stays queued for the server's next start (cohort wait \(id))")
            }
            usleep(100_000)
        }
        follower?.finish()
        let records: [JobStore.TaskRecord]
        let summary: JobStore.JobSummary?
        do { records = try jobs.tasks(jobId: id); summary = try jobs.job(id) } catch { throw Exit.badInput(error) }
        let tasks = records.map { record in
            TaskRun(taskId: record.taskId, replica: record.replica, state: .completed, attempts: record.attempts,
                    skippedBecause: record.attempts.isEmpty ? record.failure : nil)
        }
        try report(JobRun(jobId: id, pool: job.pool, start: summary?.submitted ?? start, end: summary?.finished ?? Date(), tasks: tasks), live: live)
    }

    /// The fewest nodes of `pool` that hold `ranks` ranks spread evenly.
    static func nodeCount(ranks: Int, pool: Pool) -> Int? {
        let usable = pool.nodes.filter(\.state.acceptsWork)
        guard let largest = usable.map(\.slots).max(), largest > 0 else { return nil }
        let fewest = (ranks + largest - 1) / largest
        for count in fewest...max(fewest, usable.count) where ranks % count == 0 {
            let perNode = ranks / count
            if usable.filter({ $0.slots >= perNode }).count >= count { return count }
        }
        return nil
    }

    /// A job from the file, or one task from the command line.
    func makeJob() throws -> JobSpec {
        let quick = nodes != nil || ranks != nil || replicas != 1 || cpusPerTask != nil || exclusive
        // One word that names a job file: by its ending, or a file that is not a program.
        let isJobFile = words.count == 1 && (["yaml", "yml", "json"].contains(URL(fileURLWithPath: words[0]).pathExtension)
            || (FileManager.default.fileExists(atPath: words[0]) && !FileManager.default.isExecutableFile(atPath: words[0])))
        if isJobFile && !words[0].hasPrefix("-") {
            // A flag of the quick form beside a job file would be silently ignored (or, for
            // -N/-n/--replicas, run the file as a program): say so instead.
            let given: [(String, Bool, String)] = [
                ("-N", nodes != nil, "multiInstance.instances"), ("-n", ranks != nil, "multiInstance.processesPerNode"),
                ("--replicas", replicas != 1, "multiInstance.replicas"), ("--time", time != nil, "constraints.maxWallClockTime"),
                ("--retries", retries != 0, "constraints.maxTaskRetryCount"), ("--transport", transport != "auto", "multiInstance.transport"),
                ("--launch", launch != "mpirun", "multiInstance.launch"), ("--chdir", chdir != nil, "workingDirectory"),
                ("--array", array != nil, "array"), ("--cpus-per-task", cpusPerTask != nil, "multiInstance.cpusPerRank"),
                ("--exclusive", exclusive, "multiInstance.exclusive"), ("--signal", warningSignal != nil, "constraints.signalBeforeTimeLimit"),
                ("--idle-timeout", idleTimeout != nil, "constraints.idleTimeout"), ("--gpus-per-node", gpusPerNode != nil, "gpusPerNode"),
                ("--gpus-per-task", gpusPerTask != nil, "gpusPerRank"), ("--mem", memory != nil, "memoryPerNode"),
            ]
            if let (flag, _, field) = given.first(where: { $0.1 }) {
                throw SpecError(file: "command line", field: flag, message: "\(flag) is for quick runs (-- PROGRAM …); in the job file \(words[0]) each task gives \(field)")
            }
            return try JobFile.load(path: words[0])
        }
        guard !words.isEmpty else {
            throw SpecError(file: "command line", field: "", message: "give a job file, or -- and the program to run")
        }
        func flag(_ name: String, _ message: String) -> SpecError { SpecError(file: "command line", field: name, message: message) }
        var constraints = Constraints(maxTaskRetryCount: retries)
        if retries < 0 { throw flag("--retries", "must be ≥ 0") }
        if let time {
            guard let seconds = Durations.slurm(time) else {
                throw flag("--time", "expected minutes, M:S, H:M:S, D-H[:M[:S]] (as Slurm's --time) or a duration with units such as 90s or PT1H, found '\(time)'")
            }
            guard seconds <= Durations.maximum else { throw flag("--time", "must be at most \(Int(Durations.maximum / 86400))d") }
            constraints.maxWallClockTime = seconds
        }
        if let idleTimeout {
            guard let seconds = Durations.seconds(idleTimeout), seconds >= 1, seconds <= Durations.maximum else {
                throw flag("--idle-timeout", "expected a duration of at least 1s such as 90s or 10m, found '\(idleTimeout.prefix(40))'")
            }
            constraints.idleTimeout = seconds
        }
        if let warningSignal {
            guard let warning = WarningSignal.parse(slurm: warningSignal) else {
                throw flag("--signal", "expected SIG[@SECONDS] as Slurm's --signal (USR1@300, TERM, 12@60; not KILL or STOP), found '\(warningSignal.prefix(40))'")
            }
            guard let limit = constraints.maxWallClockTime else { throw flag("--signal", "warns before --time ends a run: give --time too") }
            guard warning.seconds < limit else { throw flag("--signal", "\(Int(warning.seconds)) s early is not within --time (\(Durations.format(limit)))") }
            constraints.signalBeforeTimeLimit = warning
        }
        var multi: MultiInstance? = nil
        if quick {
            guard let transportValue = Transport(rawValue: transport) else {
                throw flag("--transport", "expected \(Transport.allCases.map(\.rawValue).joined(separator: ", ")), found '\(transport)'")
            }
            guard let launchValue = LaunchMode(rawValue: launch) else { throw flag("--launch", "expected mpirun or raw, found '\(launch)'") }
            guard replicas >= 1 else { throw flag("--replicas", "must be ≥ 1") }
            let nodeCount = nodes ?? 1
            guard nodeCount >= 1 else { throw flag("-N", "must be ≥ 1") }
            let rankCount = ranks ?? nodeCount
            // As Slurm's -N/-n: as evenly as can be, the first nodes one more (-N 3 -n 4: 2, 1, 1).
            guard let blocks = MultiInstance.spread(ranks: rankCount, nodes: nodeCount) else {
                throw flag("-n", "\(rankCount) ranks cannot give each of \(nodeCount) nodes one")
            }
            multi = MultiInstance(instances: nodeCount, processesPerNode: blocks.processesPerNode, transport: transportValue, replicas: replicas, launch: launchValue)
            if rankCount != nodeCount * blocks.processesPerNode { multi?.totalRanks = rankCount }
            if let cpusPerTask {
                guard cpusPerTask >= 1 else { throw flag("--cpus-per-task", "must be ≥ 1") }
                multi?.cpusPerRank = cpusPerTask
            }
            if exclusive { multi?.exclusive = true }
        }
        let program = URL(fileURLWithPath: words[0]).lastPathComponent
        let id = String(program.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : "-" }.prefix(40))
        let stamp = Int(Date().timeIntervalSince1970 * 1000)
        var task = TaskSpec(id: id.isEmpty ? "task" : id, commandLine: words, multiInstance: multi, constraints: constraints)
        do {
            try TaskResources.apply(gpusPerNode: gpusPerNode, gpusPerRank: gpusPerTask, memory: memory, to: &task)
        } catch {
            let flags: [TaskResources.Problem.Field: String] = [.gpusPerNode: "--gpus-per-node", .gpusPerRank: "--gpus-per-task", .memoryPerNode: "--mem"]
            throw flag(flags[error.field]!, error.message)
        }
        var job = JobSpec(id: "run-\(stamp)", pool: pool ?? "local", tasks: [task])
        if let array {
            switch TaskArrays.indices(array) {
            case .success(let indices):
                job.tasks = TaskArrays.expand(job.tasks[0], elements: indices.values.map { ($0, []) }, throttle: indices.throttle)
            case .failure(let problem):
                throw flag("--array", problem.message)
            }
        }
        job.resolvePrograms(relativeTo: FileManager.default.currentDirectoryPath)
        // Its files are where it is run (`./solver input.dat`): on the local pool it starts
        // there; a remote pool's nodes may not have that directory, so only --chdir says so.
        let here = FileManager.default.currentDirectoryPath
        if let chdir {
            let absolute = URL(fileURLWithPath: chdir, relativeTo: URL(fileURLWithPath: here, isDirectory: true)).standardizedFileURL.path
            var isDirectory: ObjCBool = false
            if job.pool == "local", !FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) || !isDirectory.boolValue {
                throw flag("--chdir", "\(absolute) is not a directory")
            }
            for index in job.tasks.indices { job.tasks[index].workingDirectory = absolute }
        } else if job.pool == "local" && stage.isEmpty {
            // (Staged files go to the task's own directory, never into this folder.)
            for index in job.tasks.indices { job.tasks[index].workingDirectory = here }
        }
        return job
    }
}
