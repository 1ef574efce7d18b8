import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An attempt on a Slurm pool: one `srun` asks Slurm for the group's nodes (its own job,
/// named after the attempt, or a step of the pool's allocation) and starts the ranks with
/// PMIx; Slurm confines, accounts and ends them. No ssh, no agent, no mpirun.
extension AttemptExecutor {
    var slurm: SlurmClient { SlurmClient(options: pool.slurm ?? SlurmOptions()) }

    /// What names the attempt in Slurm: `cohort.<attempt id>` (the job key is a prefix of it).
    public static func slurmJobName(_ attemptId: String) -> String { "cohort.\(attemptId)" }

    /// Whether the attempt runs through the node agents rather than an srun of its own: an
    /// independent task inside an allocation, where a step a task would cost a round trip to
    /// slurmctld and a slurmstepd each time, and an agent started once per node (itself a
    /// step, `srun --overlap`, holding the channel) starts hundreds a second (1000 `true` in
    /// 2.4 s on 4 nodes here). Outside one, each task stays a Slurm job of its own, so that
    /// Slurm's fair share, limits and accounting see it.
    func runsThroughAgents(_ work: Work) -> Bool {
        pool.kind == .slurm && pool.slurm?.allocation != nil && work.task.multiInstance == nil
    }

    /// The group in Slurm's order: srun's block distribution fills the nodes of
    /// `--nodelist` in the cluster's order, so rank 0 is on the first of them.
    func inSlurmOrder(_ nodes: [Node]) -> [Node] {
        let order = Dictionary(pool.nodes.enumerated().map { ($1.id, $0) }) { first, _ in first }
        return nodes.sorted { (order[$0.id] ?? .max, $0.id) < (order[$1.id] ?? .max, $1.id) }
    }

    func runOnSlurm(_ work: Work, _ given: [Node], _ directory: String, _ attempt: inout Attempt) throws {
        let nodes = inSlurmOrder(given)
        attempt.nodes = nodes.map(\.id)
        let multi = work.task.multiInstance
        let perNode = multi?.processesPerNode ?? 1
        try makeDirectory(directory)
        let shared = multi == nil ? directory : "\(directory)/shared"
        var hostfile: String?
        if multi != nil {
            try makeDirectory(shared)
            for node in nodes { try makeDirectory("\(directory)/node-\(node.id)") }
            hostfile = "\(directory)/hostfile"
            try MPIRunCommand.hostfileText(nodes: nodes, processesPerNode: perNode, isLocalPool: false, totalRanks: multi?.totalRanks)
                .write(toFile: hostfile!, atomically: true, encoding: .utf8)
        }
        let packages = try applicationPackageVariables(work.task, node: nodes[0].id)
        var environment = TaskEnvironment(jobId: work.jobId, taskId: work.task.id, attemptId: work.attemptId, attempt: work.attempt, replica: work.replica,
                                          pool: pool.name, nodes: nodes, processesPerNode: perNode, attemptDirectory: directory,
                                          sharedDirectory: shared, hostfile: hostfile,
                                          userVariables: work.userVariables(packages: packages),
                                          preparationRoot: "\(settings.workDirectory)/\(work.workKey)/job.preparation", jobKey: work.jobKey,
                                          startDirectory: work.task.workingDirectory)
        environment.persistDirectory = try persistDirectory(work)
        environment.threadsPerRank = multi?.threadsPerRank ?? 1
        environment.totalRanks = multi?.totalRanks
        if let multi { try stageResourceFiles(multi.commonResourceFiles, into: shared, node: nodes[0].id, what: "common resource file") }
        try stageResourceFiles(work.task.resourceFiles, into: environment.workingDirectory(0), node: nodes[0].id)
        attempt.reached(.staged)
        let cancellation = work.cancellation ?? self.cancellation
        let name = Self.slurmJobName(work.attemptId)
        defer {
            if attempt.slurmJobId == nil {
                attempt.slurmJobId = SrunReport(Self.text("\(directory)/stderr.txt")).jobId
                    ?? SrunReport(Self.text("\(directory)/coordination-stderr.txt")).jobId ?? slurm.jobId(named: name)
            }
        }

        // 1. The coordination command on every node (a step of its own, one process a node);
        // the application starts only if it succeeded everywhere.
        let started = Date()
        if let multi, let coordination = multi.coordinationCommandLine {
            var variables = environment.variables(forNode: 0)
            variables.merge(slurm.environment([:])) { $1 }
            // Its output, every node's lines labelled with the node's index, in the attempt's directory.
            let srun = SrunCommand(options: pool.slurm ?? SlurmOptions(), jobName: name, nodes: nodes.map(\.id), tasksPerNode: 1, mpi: false,
                                   timeLimit: work.task.constraints.maxWallClockTime, workingDirectory: shared, label: true,
                                   program: settings.rankWrapper + coordination)
            let errors = "\(directory)/coordination-stderr.txt"
            var limits = work.task.constraints
            limits.signalBeforeTimeLimit = nil  // the application's warning, not the coordination command's
            let termination = try supervise(output: directory, constraints: limits, node: nodes[0].id, cancellation: cancellation) {
                try launch(srun.arguments, on: Self.thisMachine(as: nodes[0].id), directory: directory, variables: variables,
                           stdout: "\(directory)/coordination-stdout.txt", stderr: errors, statusFile: nil)
            }
            if termination != .exited(0) {
                let report = SrunReport(Self.text(errors))
                if let failure = slurmFailure(report, termination: termination, nodes: nodes, what: "the coordination command", errors: errors),
                   [.exitCode, .launchFailed, .signal].contains(failure.category) {
                    let node = failure.node ?? nodes[0].id
                    if let code = report.failingTask?.code { attempt.nodeExitCodes[node] = code }
                    throw Failure(category: .coordinationFailed, node: node,
                                  message: "coordination command failed on node \(node): \(report.failingTask?.how ?? "\(termination)")", details: failure.details)
                } else if let failure = slurmFailure(report, termination: termination, nodes: nodes, what: "the coordination command", errors: errors) {
                    throw failure
                }
            }
            attempt.reached(.coordinated)
        }

        // 2. The application: every rank through `cohort-rank-env` (its node's variables),
        // with the transport as Open MPI's variables; or, for an independent task, as written.
        var remaining = work.task.constraints
        if multi?.coordinationCommandLine != nil, let limit = remaining.maxWallClockTime {
            remaining.maxWallClockTime = max(0.001, limit - Date().timeIntervalSince(started))
        }
        var variables = environment.variables(forNode: 0)
        var program = work.task.commandLine
        if let multi {
            if multi.launch == .raw {
                try runRawOnSlurm(work, nodes, environment: environment, constraints: remaining, directory: directory, name: name,
                                  cancellation: cancellation, attempt: &attempt)
                return
            }
            let transport: Transport = switch multi.transport {
            case .auto: nodes.count == 1 ? .shm : .tcp
            case .shm where nodes.count > 1:
                throw Failure(category: .transportUnavailable, message: "transport shm needs every rank on one host, but the group spans \(nodes.count) hosts")
            default: multi.transport
            }
            attempt.transport = transport
            let flags = MPIRunCommand.transportFlags(transport)
            for index in stride(from: 0, to: flags.count - 2, by: 3) where flags[index] == "--mca" {
                variables["OMPI_MCA_\(flags[index + 1])"] = flags[index + 2]
            }
            variables.merge(poolOpenMPIVariables(remote: true)) { $1 }
            for (name, value) in environment.userVariables where name.hasPrefix("OMPI_") { variables[name] = value }
            program = settings.rankWrapper + program
        }
        variables.merge(slurm.environment([:])) { $1 }
        var srun = SrunCommand(options: pool.slurm ?? SlurmOptions(), jobName: name, nodes: nodes.map(\.id), tasksPerNode: perNode, mpi: multi != nil,
                               timeLimit: remaining.maxWallClockTime, workingDirectory: environment.workingDirectory(0), program: program)
        srun.cpusPerTask = multi?.threadsPerRank ?? 1
        srun.totalTasks = multi?.totalRanks
        srun.label = multi?.labelRanks == true
        srun.resources = SlurmResources(task: work.task)
        attempt.launchedCommand = srun.arguments
        attempt.reached(.launched)
        let termination = try supervise(output: directory, constraints: remaining, node: nodes[0].id, cancellation: cancellation, launcher: true) {
            try launch(srun.arguments, on: Self.thisMachine(as: nodes[0].id), directory: directory, variables: variables,
                       output: directory, statusFile: "\(directory)/\(Self.exitStatusFile)")
        }
        attempt.exitCode = termination.code
        if termination == .exited(0) {
            for node in nodes { attempt.nodeExitCodes[node.id] = 0 }
            return
        }
        let report = SrunReport(Self.text("\(directory)/stderr.txt"))
        if let code = report.failingTask?.code, let node = report.failingTask?.node {
            // The failing rank's code, not srun's (which reports the others it then ended).
            attempt.nodeExitCodes[node] = code
            attempt.exitCode = code
        }
        attempt.failure = slurmFailure(report, termination: termination, nodes: nodes, what: multi == nil ? "the task" : "rank", errors: "\(directory)/stderr.txt")
    }

    /// Azure's semantics the Slurm way: a batch job over the group whose script — the task's
    /// own command line — runs once, on the group's first node, with the whole allocation
    /// in its SLURM_* variables, so that the task's own mpirun starts its daemons through
    /// Slurm. `sbatch --wait` ends when the job does; Slurm writes the output (one writer).
    func runRawOnSlurm(_ work: Work, _ nodes: [Node], environment: TaskEnvironment, constraints: Constraints, directory: String, name: String,
                       cancellation: Cancellation, attempt: inout Attempt) throws {
        let options = pool.slurm ?? SlurmOptions()
        guard options.allocation == nil else {
            throw Failure(category: .launchFailed, node: nodes[0].id,
                          message: "launch: raw needs an allocation of its own, and pool \(pool.name) runs inside Slurm job \(options.allocation!); use launch: mpirun (srun --mpi=pmix steps)")
        }
        let script = "\(directory)/slurm-batch.sh"
        let text = "#!/bin/sh\n# Cohort: the task's command line, on the group's first node, with that node's variables.\nexec \(settings.rankWrapper.map(CommandLineWords.shellQuote).joined(separator: " ")) \"$@\"\n"
        guard FileManager.default.createFile(atPath: script, contents: Data(text.utf8), attributes: [.posixPermissions: 0o700]) else {
            throw Failure(category: .launchFailed, node: nodes[0].id, message: "cannot write \(script)")
        }
        var arguments = ["sbatch", "--wait", "--parsable", "--job-name=\(name)", "--nodes=\(nodes.count)",
                         "--ntasks-per-node=\(environment.processesPerNode)", "--cpus-per-task=\(environment.threadsPerRank)",
                         "--nodelist=\(nodes.map(\.id).joined(separator: ","))",
                         "--chdir=\(environment.workingDirectory(0))", "--output=\(directory)/stdout.txt", "--error=\(directory)/stderr.txt"]
        if let total = environment.totalRanks { arguments.append("--ntasks=\(total)") }
        arguments += SlurmResources(task: work.task).arguments
        if let limit = constraints.maxWallClockTime { arguments.append("--time=\(SrunCommand.slurmTime(limit))") }
        // sbatch --wait passes no signal on: Slurm sends the warning to the job's steps itself.
        var limits = constraints
        if let warning = limits.signalBeforeTimeLimit {
            arguments.append("--signal=\(warning.signal)@\(Int(warning.seconds.rounded(.up)))")
            limits.signalBeforeTimeLimit = nil
        }
        arguments += options.requestArguments + [script] + work.task.commandLine
        attempt.launchedCommand = arguments
        attempt.reached(.launched)
        var variables = environment.variables(forNode: 0).merging(poolOpenMPIVariables(remote: true)) { $1 }
        for (name, value) in environment.userVariables { variables[name] = value }  // the job's own win
        variables.merge(slurm.environment([:])) { $1 }
        let termination = try supervise(output: directory, constraints: limits, node: nodes[0].id, cancellation: cancellation) {
            try launch(arguments, on: Self.thisMachine(as: nodes[0].id), directory: directory, variables: variables,
                       stdout: "\(directory)/slurm-job", stderr: "\(directory)/sbatch.txt", statusFile: "\(directory)/\(Self.exitStatusFile)")
        }
        attempt.slurmJobId = Self.text("\(directory)/slurm-job").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        attempt.exitCode = termination.code
        if termination == .exited(0) {
            for node in nodes { attempt.nodeExitCodes[node.id] = 0 }
            return
        }
        let errors = "\(directory)/stderr.txt"
        let said = Self.text("\(directory)/sbatch.txt")
        if let refusal = said.split(separator: "\n").first(where: { $0.hasPrefix("sbatch: error:") }), attempt.slurmJobId?.isEmpty ?? true {
            throw Failure(category: .launchFailed, node: nodes[0].id, message: "Slurm refused the batch job: \(refusal.dropFirst("sbatch: error: ".count))")
        }
        attempt.failure = slurmFailure(SrunReport(Self.text(errors) + "\n" + said), termination: termination, nodes: nodes, what: "the task", errors: errors)
    }

    /// Why srun ended badly, in Cohort's categories, naming the node Slurm named.
    func slurmFailure(_ report: SrunReport, termination: Termination, nodes: [Node], what: String, errors: String) -> Failure? {
        let details = MPIRunReport.lastLines(of: errors)
        if let node = report.failedNode {
            return Failure(category: .nodeLost, node: node, message: "node \(node) failed (Slurm: \"Node failure on \(node)\"); the group's processes were ended",
                           details: details)
        }
        if report.timeLimit {
            return Failure(category: .timeout, node: nodes[0].id, message: "Slurm's time limit ended the task (Slurm job \(report.jobId ?? "?"))", details: details)
        }
        if report.preempted {
            return Failure(category: .interrupted, node: nodes[0].id, message: "Slurm preempted the task (Slurm job \(report.jobId ?? "?")); it runs again", details: details)
        }
        if let refusal = report.allocationError {
            // An invalid partition, account or QOS stays invalid: the task is not retried.
            let lasting = refusal.hasPrefix("Invalid") || refusal.contains("invalid")
            return Failure(category: lasting ? .rejected : .launchFailed, node: nodes[0].id, message: "Slurm refused the allocation: \(refusal)", details: details)
        }
        if let start = report.startError {
            let node = report.failingTask?.node ?? nodes[0].id
            return Failure(category: .launchFailed, node: node, message: "cannot start the program on node \(node): \(start)", details: details)
        }
        if let task = report.failingTask {
            if let code = task.code {
                let subject = what == "rank" ? "rank \(task.rank)" : what
                return Failure(category: .exitCode, node: task.node, message: "\(subject) on node \(task.node) exited with code \(code)", details: details)
            }
            return Failure(category: .signal, node: task.node, message: "\(what == "rank" ? "rank \(task.rank)" : what) on node \(task.node): \(task.how)", details: details)
        }
        return exitFailure(termination, node: nodes[0].id, what: "srun", stderr: errors)
    }

    static func text(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }
}
