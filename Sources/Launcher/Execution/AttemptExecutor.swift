import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs one attempt of a task on the nodes it was given and reports what happened.
/// Blocking: the scheduler calls it on a thread of its own per running attempt.
public struct AttemptExecutor: Sendable {
    public var settings: ExecutionSettings
    public var pool: Pool
    /// Verbs probe results per node id, so `auto` asks each node once per run.
    let rdmaCache = RDMACache()
    /// Sweeps of successful remote attempts, sent together per node.
    let remoteSweeps = RemoteSweeps()
    /// Cancels every attempt of the run at once.
    public let cancellation = Cancellation()
    /// The pool's node agents: every remote task, check and sweep goes through them.
    public let agents: AgentFleet
    /// Attempts on this machine that a killed server left running, watched to their ends.
    let localAdoptions = AdoptedAttempts()

    public init(settings: ExecutionSettings, pool: Pool) {
        self.settings = settings
        self.pool = pool
        agents = AgentFleet(pool: pool, settings: settings)
    }

    /// A unit of work: one task, or one replica of it.
    public struct Work: Sendable {
        public var jobId: String
        public var task: TaskSpec
        public var replica: Int?
        public var attempt: Int
        public var jobEnvironment: [String: String]
        /// Cancels this job's attempts only (`cohort serve` runs many jobs); nil: the
        /// executor's own, which cancels every attempt.
        public var cancellation: Cancellation?

        public init(jobId: String, task: TaskSpec, replica: Int?, attempt: Int, jobEnvironment: [String: String], cancellation: Cancellation? = nil,
                    stateId: String = "", workKey: String? = nil) {
            self.stateId = stateId
            self.jobId = jobId
            self.workKey = workKey ?? jobId
            self.task = task
            self.replica = replica
            self.attempt = attempt
            self.jobEnvironment = jobEnvironment
            self.cancellation = cancellation
        }

        /// The steps its attempt reached before it was handed over (queued, allocated, nodes ready).
        public var phases: [AttemptPhase] = []
        /// The GPUs its group holds on each node (device numbers), if it asked for any.
        public var gpus: [[Int]]?

        /// The work tree's id (`ExecutionSettings.stateId`); every marker starts with it.
        public var stateId: String = ""
        /// The job incarnation's name (`JobSpec.workKey`): its directory and markers.
        public var workKey: String

        /// The task's variables: the job's, the task's own, its array element's (index,
        /// count, a sweep's parameters), then its application packages'.
        func userVariables(packages: [String: String]) -> [String: String] {
            var variables = jobEnvironment.merging(task.environment) { $1 }
            if let array = task.array { variables.merge(array.variables) { $1 } }
            return variables.merging(packages) { $1 }
        }

        /// Unique, and never passed through a shell: `<state id>.job.task.r0.a1`.
        public var attemptId: String { Self.attemptId(stateId: stateId, jobId: workKey, taskId: task.id, replica: replica, attempt: attempt) }

        /// What marks every process of the job from this work tree: `<state id>.job`.
        public var jobKey: String { Self.jobKey(stateId: stateId, jobId: workKey) }

        public static func attemptId(stateId: String, jobId: String, taskId: String, replica: Int?, attempt: Int) -> String {
            [stateId.isEmpty ? nil : stateId, jobId, taskId, replica.map { "r\($0)" }, "a\(attempt)"].compactMap { $0 }.joined(separator: ".")
        }

        public static func jobKey(stateId: String, jobId: String) -> String { stateId.isEmpty ? jobId : "\(stateId).\(jobId)" }

        func directory(under root: String) -> String {
            [root, workKey, task.id, replica.map { "r\($0)" }, "attempt-\(attempt)"].compactMap { $0 }.joined(separator: "/")
        }

        /// `COHORT_TASK_PERSIST_DIR`: the task's (or replica's) own, kept across its attempts
        /// for checkpoints; beside their directories, in the work tree the nodes share.
        func persistDirectory(under root: String) -> String {
            [root, workKey, task.id, replica.map { "r\($0)" }, "persist"].compactMap { $0 }.joined(separator: "/")
        }
    }

    // MARK: - Running

    /// Where the spawner writes how the application ended, in the attempt directory.
    public static let exitStatusFile = "exit-status"
    /// The attempt's node ids, one a line: what a restarted server sweeps and bills.
    public static let nodesFile = "nodes"

    public func run(_ work: Work, on nodes: [Node]) -> Attempt {
        let window = ProcessSweeper.PidWindow()
        let directory = work.directory(under: settings.workDirectory)
        if settings.spawner != nil {
            // A few syscalls, not Foundation's file writing: this is on every task's path.
            _ = Self.makeDirectories(directory)
            let text = nodes.map(\.id).joined(separator: "\n") + "\n"
            let descriptor = open("\(directory)/\(Self.nodesFile)", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            if descriptor >= 0 {
                _ = text.withCString { write(descriptor, $0, strlen($0)) }
                close(descriptor)
            }
        }
        var attempt = Attempt(number: work.attempt, nodes: nodes.map(\.id), nodeExitCodes: [:], exitCode: nil, start: Date(), end: nil,
                              transport: nil, launchedCommand: [], directory: directory, failure: nil)
        attempt.markerId = work.attemptId
        attempt.gpus = work.gpus
        if !work.phases.isEmpty { attempt.phases = work.phases }
        do {
            if pool.kind == .slurm && !runsThroughAgents(work) {
                try runOnSlurm(work, nodes, directory, &attempt)
            } else if let multi = work.task.multiInstance {
                try runMultiInstance(work, multi, nodes, directory, &attempt)
            } else {
                try runIndependent(work, nodes[0], directory, &attempt)
            }
        } catch let failure as Failure {
            attempt.failure = failure
        } catch {
            attempt.failure = Failure(category: .launchFailed, node: nodes.first?.id, message: "\(error)")
        }
        return finish(work, on: nodes, attempt, pidFloor: window.floor)
    }

    /// What every attempt ends with, however it ran: its outputs uploaded, its end time, and
    /// its processes swept from every node of its group.
    func finish(_ work: Work, on nodes: [Node], _ attempt: Attempt, pidFloor: pid_t) -> Attempt {
        var attempt = attempt
        let directory = attempt.directory
        if attempt.phases?.contains(where: { $0.name == .launched }) == true { attempt.reached(.ended) }
        if !(work.task.outputFiles ?? []).isEmpty {
            uploadOutputFiles(work, nodes: nodes, directory: directory, attempt: &attempt)
            attempt.reached(.uploaded)
        }
        attempt.end = Date()
        // Nothing of an attempt may outlive it, on any node of the group: not even of one that
        // succeeded, whose daemons (setsid, double fork) left its process group. The local
        // scan is C over /proc (~3 µs a process here). A successful independent task's remote
        // sweep is gathered with others on its node and sent within a second in one message:
        // each sweep is a scan of the node's /proc, too much to pay per task at hundreds of
        // tasks a second.
        if pool.kind == .slurm && !runsThroughAgents(work) {
            // Slurm ends a step's processes itself; a failed or cancelled attempt's job is
            // cancelled by name as well, in case srun died before it could.
            if attempt.failure != nil { try? slurm.cancel(jobNamed: Self.slurmJobName(work.attemptId)) }
        } else if attempt.failure == nil && work.task.multiInstance == nil && nodes.allSatisfy({ !$0.isLocal }) && pool.kind != .local {
            remoteSweeps.add(work.attemptId, on: nodes, executor: self)
        } else {
            let lost = attempt.failure?.category == .nodeLost ? attempt.failure?.node : nil
            let unswept = sweep(attemptId: work.attemptId, nodes: nodes, skipping: lost, newerThan: pidFloor)
            if !unswept.isEmpty { attempt.unsweptNodes = unswept } else { attempt.reached(.swept) }
        }
        return attempt
    }

    /// Goes on with an attempt a killed server left running (see `AdoptedAttempts`): waits
    /// for its end as for its own tasks — its wall-clock limit counted from its start, its
    /// job's cancellation, its nodes watched — then uploads and sweeps as for any attempt.
    /// Its processes outlived the server under cohort-spawner (here) or the node's agent
    /// (there), which write the end to its `exit-status`.
    public func adopt(_ work: Work, started: Attempt, on nodes: [Node]) -> Attempt {
        var attempt = started
        // It was launched by the server that died (when exactly, only that server knew).
        if attempt.phases?.contains(where: { $0.name == .launched }) != true { attempt.reached(.launched, at: started.start) }
        attempt.reached(.adopted)
        let attemptId = started.markerId ?? work.attemptId
        let statusFile = "\(started.directory)/\(Self.exitStatusFile)"
        let here = pool.kind == .local || nodes[0].isLocal
        var limits = work.task.constraints
        if let limit = limits.maxWallClockTime { limits.maxWallClockTime = max(0.001, limit - Date().timeIntervalSince(started.start)) }
        // A warning due before the restart was sent by the server that died: not twice.
        if let due = work.task.constraints.warningDue(limit: work.task.constraints.maxWallClockTime), Date().timeIntervalSince(started.start) >= due {
            limits.signalBeforeTimeLimit = nil
        }
        let launcher = work.task.multiInstance.map { $0.launch != .raw } ?? false
        do {
            let termination = try supervise(output: started.directory, constraints: limits, node: nodes[0].id, watching: nodes,
                                            cancellation: work.cancellation ?? cancellation, launcher: launcher, attemptId: attemptId) {
                if here { return localAdoptions.child(attemptId: attemptId, statusFile: statusFile) }
                switch agents.ready(nodes[0]) {
                case .failure(let lost): throw lost
                case .success(let (channel, _)): return channel.adopt(attemptId: attemptId, statusFile: statusFile)
                }
            }
            attempt.exitCode = termination.code
            for node in nodes { attempt.nodeExitCodes[node.id] = termination.code }
            if termination != .exited(0) {
                attempt.failure = exitFailure(termination, node: nodes[0].id, what: work.task.multiInstance == nil ? "the task" : "mpirun",
                                              stderr: "\(started.directory)/stderr.txt")
            }
        } catch var failure as Failure {
            if failure.category == .interrupted {
                failure.message = "its end was not written down (what watched it since the server restarted, cohort-spawner or the node's agent, died); its processes were ended and it runs again"
            }
            attempt.failure = failure
        } catch {
            attempt.failure = Failure(category: .launchFailed, node: nodes.first?.id, message: "\(error)")
        }
        return finish(work, on: nodes, attempt, pidFloor: 0)
    }

    // MARK: - Job preparation and release

    /// Runs a job's preparation or release task on one node, in
    /// `<work>/<job>/job.preparation/<node>` (or `job.release`: a '.' no task id can have),
    /// with the job's variables and the node's. Never throws: the outcome says what happened.
    /// `workKey`: the job incarnation's name (`JobSpec.workKey`), by default its id.
    public func runNodeTask(_ spec: NodeTaskSpec, kind: NodeTaskRun.Kind, jobId: String, workKey: String? = nil, jobEnvironment: [String: String], node: Node,
                            cancellation: Cancellation) -> NodeTaskRun {
        let key = workKey ?? jobId
        // A pool's start task belongs to no job: `<work>/.pools/POOL/start/NODE`.
        let directory = kind == .start ? "\(settings.workDirectory)/.pools/\(pool.name)/start/\(node.id)"
                                       : "\(settings.workDirectory)/\(key)/job.\(kind.rawValue)/\(node.id)"
        let preparationDirectory = "\(settings.workDirectory)/\(key)/job.preparation/\(node.id)"
        var run = NodeTaskRun(kind: kind, node: node.id, exitCode: nil, start: Date(), end: Date(), directory: directory, failure: nil)
        let marker = "\(settings.stateId).\(key).job-\(kind.rawValue).\(node.id)"
        let what = kind == .preparation ? "the job preparation task" : kind == .release ? "the job release task" : "the pool's start task"
        do {
            try makeDirectory(directory)
            var variables = jobEnvironment.merging(spec.environment) { $1 }
            variables["COHORT_JOB_ID"] = jobId
            variables[ProcessSweeper.jobMarker] = Work.jobKey(stateId: settings.stateId, jobId: key)
            variables["COHORT_POOL"] = pool.name
            variables["COHORT_NODE_ID"] = node.id
            variables["COHORT_WORKING_DIR"] = directory
            variables["COHORT_JOB_PREP_DIR"] = preparationDirectory
            variables[ProcessSweeper.marker] = marker
            variables["AZ_BATCH_JOB_ID"] = jobId
            variables["AZ_BATCH_NODE_ID"] = node.id
            variables["AZ_BATCH_POOL_ID"] = pool.name
            variables["AZ_BATCH_JOB_PREP_DIR"] = preparationDirectory
            variables["AZ_BATCH_JOB_PREP_WORKING_DIR"] = preparationDirectory
            if kind == .start {
                for name in ["COHORT_JOB_ID", "COHORT_JOB_PREP_DIR", "AZ_BATCH_JOB_ID", "AZ_BATCH_JOB_PREP_DIR", "AZ_BATCH_JOB_PREP_WORKING_DIR"] { variables[name] = nil }
                variables["AZ_BATCH_NODE_STARTUP_DIR"] = directory
            }
            // Release runs even for a cancelled job, within its own limit (Azure's default is 15 minutes).
            try stageResourceFiles(spec.resourceFiles, into: directory, node: node.id)
            let limit = spec.maxWallClockTime ?? (kind == .release ? 900 : nil)
            let termination = try supervise(output: directory, constraints: Constraints(maxWallClockTime: limit), node: node.id, watching: [node],
                                            cancellation: cancellation) {
                try launch(spec.commandLine, on: node, directory: directory, variables: variables, output: directory, statusFile: nil)
            }
            run.exitCode = termination.code
            if termination != .exited(0) {
                run.failure = exitFailure(termination, node: node.id, what: what, stderr: "\(directory)/stderr.txt")
            }
        } catch let failure as Failure {
            run.failure = failure
            run.failure?.message = "\(what) on node \(node.id): \(failure.message)"
        } catch {
            run.failure = Failure(category: .launchFailed, node: node.id, message: "\(what) on node \(node.id): \(error)")
        }
        if kind == .preparation, run.failure != nil { run.failure?.category = .preparationFailed }
        run.end = Date()
        if run.failure != nil { sweep(attemptId: marker, nodes: [node]) }
        return run
    }

    // MARK: - Resource and output files

    var fileTransfers: TaskFileTransfers {
        TaskFileTransfers(storage: settings.storage, cacheDirectory: "\(settings.workDirectory)/.cache/objects")
    }

    /// The task's application packages, extracted (once, in the work tree's cache), as the
    /// variables that name their folders; a failure is the attempt's preProcessingError.
    /// The pool's packages come first; the task's own win where both name an application.
    func applicationPackageVariables(_ task: TaskSpec, node: String) throws -> [String: String] {
        let references = (pool.applicationPackageReferences ?? []) + (task.applicationPackageReferences ?? [])
        guard !references.isEmpty else { return [:] }
        let packages = ApplicationPackages(directory: settings.applicationsDirectory)
        var variables: [String: String] = [:]
        for reference in references {
            do {
                let package = try packages.resolve(reference)
                let folder = try packages.extracted(package, cache: "\(settings.workDirectory)/.cache/apps")
                variables.merge(ApplicationPackages.variables(package, folder: folder)) { $1 }
            } catch {
                throw Failure(category: .preProcessingError, node: node, message: "application package not put in place: \(error)")
            }
        }
        return variables
    }

    /// Puts `files` in `directory` before a task starts; a failure is the attempt's
    /// preProcessingError, naming the URL and the HTTP status.
    func stageResourceFiles(_ files: [ResourceFile]?, into directory: String, node: String, what: String = "resource file") throws {
        guard let files, !files.isEmpty else { return }
        do {
            try fileTransfers.stage(files, into: directory)
        } catch {
            throw Failure(category: .preProcessingError, node: node, message: "\(what) not put in place: \(error)")
        }
    }

    /// Uploads the task's output files whose condition holds, from the primary's working
    /// directory (as Azure does), after any end but a cancel, a lost server or a task that
    /// never started. A failure fails a successful attempt as fileUploadError; a failed
    /// one keeps its own failure and gets the upload's as a detail.
    func uploadOutputFiles(_ work: Work, nodes: [Node], directory: String, attempt: inout Attempt) {
        Self.uploadOutputFiles(of: work.task, nodes: nodes.map(\.id), directory: directory, attempt: &attempt, transfers: fileTransfers)
    }

    /// The same for an attempt a restarted server found ended (Recovery): its upload may
    /// have been cut off with the server.
    public static func uploadOutputFiles(of task: TaskSpec, nodes: [String], directory: String, attempt: inout Attempt, transfers: TaskFileTransfers) {
        guard let files = task.outputFiles, !files.isEmpty, let primary = nodes.first else { return }
        if let category = attempt.failure?.category, [.cancelled, .interrupted, .preProcessingError, .transportUnavailable].contains(category) { return }
        let working = task.workingDirectory ?? (task.multiInstance == nil ? directory : "\(directory)/node-\(primary)")
        do {
            try transfers.upload(files, taskDirectory: directory, workingDirectory: working, succeeded: attempt.failure == nil)
        } catch {
            if attempt.failure == nil {
                attempt.failure = Failure(category: .fileUploadError, node: primary, message: "output files not uploaded: \(error)")
            } else {
                attempt.failure?.details.append("output files not uploaded: \(error)")
            }
        }
    }

    /// Makes the task's checkpoint directory (once; later attempts find what earlier ones left).
    func persistDirectory(_ work: Work) throws -> String {
        let path = work.persistDirectory(under: settings.workDirectory)
        try makeDirectory(path)
        return path
    }

    func baseEnvironment() -> [String: String] {
        // The caller's environment (PATH, LD_LIBRARY_PATH, modules, OMPI_MCA_* choices), minus
        // what a parent Cohort task or MPI job may have left: a task started from inside a
        // rank must not believe it is that rank.
        ProcessInfo.processInfo.environment.filter { key, _ in
            !Self.inheritedPrefixesToDrop.contains { key.hasPrefix($0) }
        }
    }

    static let inheritedPrefixesToDrop = ["COHORT_", "AZ_BATCH_", "CCP_NODES", "PMIX_", "OMPI_COMM_WORLD_", "OMPI_UNIVERSE_SIZE",
                                          "OMPI_FIRST_RANKS", "OMPI_APP_CTX", "OMPI_NUM_APP_CTX", "OMPI_MCA_ess", "OMPI_MCA_orte",
                                          "OMPI_MCA_pmix", "OMPI_FILE_LOCATION", "OMPI_ARGV", "OMPI_COMMAND", "OMPI_MCA_initial_wdir"]

    func runIndependent(_ work: Work, _ node: Node, _ directory: String, _ attempt: inout Attempt) throws {
        try makeDirectory(directory)
        let packages = try applicationPackageVariables(work.task, node: node.id)
        var environment = TaskEnvironment(jobId: work.jobId, taskId: work.task.id, attemptId: work.attemptId, attempt: work.attempt, replica: work.replica,
                                          pool: pool.name, nodes: [node], processesPerNode: 1, attemptDirectory: directory,
                                          sharedDirectory: directory, hostfile: nil,
                                          userVariables: work.userVariables(packages: packages),
                                          preparationRoot: "\(settings.workDirectory)/\(work.workKey)/job.preparation", jobKey: work.jobKey,
                                          startDirectory: work.task.workingDirectory)
        environment.persistDirectory = try persistDirectory(work)
        environment.gpus = work.gpus
        let variables = environment.variables(forNode: 0)
        let start = environment.workingDirectory(0)
        attempt.launchedCommand = work.task.commandLine
        try stageResourceFiles(work.task.resourceFiles, into: start, node: node.id)
        attempt.reached(.staged)
        attempt.reached(.launched)
        let termination = try supervise(output: directory, constraints: work.task.constraints, node: node.id, watching: [node],
                                        cancellation: work.cancellation ?? cancellation, attemptId: work.attemptId) {
            try launch(work.task.commandLine, on: node, directory: start, variables: variables, output: directory, statusFile: "\(directory)/\(Self.exitStatusFile)")
        }
        attempt.exitCode = termination.code
        attempt.nodeExitCodes[node.id] = termination.code
        if termination != .exited(0) {
            attempt.failure = exitFailure(termination, node: node.id, what: "the task", stderr: "\(directory)/stderr.txt")
        }
    }

    func runMultiInstance(_ work: Work, _ multi: MultiInstance, _ nodes: [Node], _ directory: String, _ attempt: inout Attempt) throws {
        let shared = "\(directory)/shared"
        let hostfile = "\(directory)/hostfile"
        try makeDirectory(shared)
        for node in nodes { try makeDirectory("\(directory)/node-\(node.id)") }
        let packages = try applicationPackageVariables(work.task, node: nodes[0].id)
        let isLocal = pool.kind == .local
        try MPIRunCommand.hostfileText(nodes: nodes, processesPerNode: multi.processesPerNode, isLocalPool: isLocal, totalRanks: multi.totalRanks)
            .write(toFile: hostfile, atomically: true, encoding: .utf8)
        var environment = TaskEnvironment(jobId: work.jobId, taskId: work.task.id, attemptId: work.attemptId, attempt: work.attempt, replica: work.replica,
                                          pool: pool.name, nodes: nodes, processesPerNode: multi.processesPerNode, attemptDirectory: directory,
                                          sharedDirectory: shared, hostfile: hostfile,
                                          userVariables: work.userVariables(packages: packages),
                                          preparationRoot: "\(settings.workDirectory)/\(work.workKey)/job.preparation", jobKey: work.jobKey,
                                          startDirectory: work.task.workingDirectory)
        environment.persistDirectory = try persistDirectory(work)
        environment.threadsPerRank = multi.threadsPerRank
        environment.totalRanks = multi.totalRanks
        environment.gpus = work.gpus
        environment.gpusPerRank = work.task.gpusPerNode == nil ? work.task.gpusPerRank : nil

        let transport = try resolveTransport(multi.transport, nodes: nodes, task: work.task.id)
        attempt.transport = transport

        // 0. Files: the common ones into the shared directory (every node's, as the work tree
        // is shared), the task's into the primary's working directory.
        try stageResourceFiles(multi.commonResourceFiles, into: shared, node: nodes[0].id, what: "common resource file")
        try stageResourceFiles(work.task.resourceFiles, into: environment.workingDirectory(0), node: nodes[0].id)
        attempt.reached(.staged)

        // 1. The coordination command on every node; the application starts only if all succeed.
        let started = Date()
        if let coordination = multi.coordinationCommandLine {
            try runCoordination(coordination, environment: environment, nodes: nodes, constraints: work.task.constraints,
                                cancellation: work.cancellation ?? cancellation, attempt: &attempt)
            attempt.reached(.coordinated)
        }

        // 2. The application: under mpirun, or as written (raw) on the master node.
        var remaining = work.task.constraints
        if let limit = remaining.maxWallClockTime { remaining.maxWallClockTime = max(0.001, limit - Date().timeIntervalSince(started)) }
        let master = environment.variables(forNode: 0)
        var arguments: [String]
        var shellSocket: String?
        if multi.launch == .raw {
            arguments = work.task.commandLine
        } else {
            let exported = master.keys.filter { $0.hasPrefix("COHORT_") || $0.hasPrefix("AZ_BATCH_") || $0 == "CCP_NODES" || $0 == "OMP_NUM_THREADS"
                || environment.userVariables[$0] != nil }
            // Loader variables of the job reach the ranks as NAME=VALUE, not mpirun itself.
            let forRanks = exported.sorted().map { name in
                LaunchPolicy.isLoaderVariable(name) && environment.userVariables[name] != nil ? "\(name)=\(master[name]!)" : name
            }
            var command = MPIRunCommand(mpirun: settings.mpirun, hostfile: hostfile, nodes: nodes, processesPerNode: multi.processesPerNode,
                                        transport: transport, isLocalPool: isLocal, localCores: settings.localCores, runningAsRoot: settings.runningAsRoot,
                                        sshConfig: pool.sshConfig, network: pool.network, exportedNames: forRanks,
                                        extraOptions: multi.mpirunOptions, rankWrapper: settings.rankWrapper,
                                        application: work.task.commandLine)
            command.mcaParameters = pool.mcaParameters ?? [:]
            command.cpusPerRank = multi.threadsPerRank
            command.totalRanks = multi.totalRanks
            command.tagsOutput = multi.labelRanks == true
            if !isLocal, let remoteShell = settings.siblingRemoteShell, let socket = agents.remoteShellSocket() {
                command.remoteShell = remoteShell
                command.skipsNameResolution = nodesAreElsewhere(nodes)
                shellSocket = socket
            }
            arguments = command.arguments
        }
        attempt.launchedCommand = arguments
        let base = baseEnvironment()
        var launcherVariables = master
        if let shellSocket { launcherVariables["COHORT_AGENT_SOCKET"] = shellSocket }
        // A raw task on remote nodes runs its own mpirun: it gets the agents too (its first
        // node's agent relays cohort-rsh's requests to the controller).
        let relayShell = multi.launch == .raw && !isLocal && !nodes[0].isLocal && settings.siblingRemoteShell != nil
        if relayShell, let remoteShell = settings.siblingRemoteShell {
            launcherVariables["OMPI_MCA_plm_rsh_agent"] = remoteShell
            launcherVariables["OMPI_MCA_plm_rsh_no_tree_spawn"] = "1"
            if nodesAreElsewhere(nodes) { launcherVariables["OMPI_MCA_\(MPIRunCommand.doNotResolve)"] = "1" }
        }
        if multi.launch == .raw {
            // The task's own mpirun gets what Cohort's would have had (the pool's network and
            // MCA choices, root's permission) as Open MPI's variables, so that a command
            // written for Azure (`mpirun -host $AZ_BATCH_HOST_LIST …`) runs unchanged; the
            // job's own variables win.
            for (name, value) in poolOpenMPIVariables(remote: !isLocal) where environment.userVariables[name] == nil { launcherVariables[name] = value }
        }
        if multi.launch != .raw {
            // mpirun runs here, with this machine's loader variables, not the job's.
            for name in environment.userVariables.keys where LaunchPolicy.isLoaderVariable(name) { launcherVariables[name] = base[name] }
        }
        // A raw launch runs on the group's first node (through its agent); mpirun runs here.
        let launchNode = multi.launch == .raw ? nodes[0] : Self.thisMachine(as: nodes[0].id)
        attempt.reached(.launched)
        let termination = try supervise(output: directory, constraints: remaining, node: nodes[0].id, watching: nodes,
                                        cancellation: work.cancellation ?? cancellation, launcher: multi.launch != .raw, attemptId: work.attemptId) {
            try launch(arguments, on: launchNode, directory: environment.workingDirectory(0), variables: launcherVariables, output: directory,
                       statusFile: "\(directory)/\(Self.exitStatusFile)", relayShell: relayShell)
        }
        attempt.exitCode = termination.code
        if termination == .exited(0) {
            for node in nodes { attempt.nodeExitCodes[node.id] = 0 }
        } else {
            var failure = exitFailure(termination, node: nodes[0].id, what: multi.launch == .raw ? "the task" : "mpirun", stderr: "\(directory)/stderr.txt")
            // mpirun names the failing rank; map it to its node.
            if let (rank, code) = MPIRunReport.failingRank(in: failure.details) {
                let node = nodes[multi.node(ofRank: rank)].id
                failure.node = node
                failure.message = "rank \(rank) on node \(node) exited with code \(code)"
                attempt.nodeExitCodes[node] = code
            }
            attempt.failure = failure
        }
    }

    func runCoordination(_ words: [String], environment: TaskEnvironment, nodes: [Node], constraints: Constraints, cancellation: Cancellation,
                         attempt: inout Attempt) throws {
        var children: [(Node, ChildProcess, String)] = []
        // On every node at once (a remote node's start is a message to its agent).
        let starts = concurrentMap(Array(nodes.enumerated())) { index, node -> Result<ChildProcess, Error> in
            let output = environment.nodeDirectory(index)
            return Result {
                try launch(words, on: node, directory: environment.workingDirectory(index), variables: environment.variables(forNode: index),
                           stdout: "\(output)/coordination-stdout.txt", stderr: "\(output)/coordination-stderr.txt", statusFile: nil)
            }
        }
        for ((index, node), start) in zip(nodes.enumerated(), starts) {
            if case .success(let child) = start {
                _ = cancellation.started(child)
                children.append((node, child, environment.nodeDirectory(index)))
            }
        }
        if let (node, failed) = zip(nodes, starts).lazy.compactMap({ node, start -> (Node, Error)? in
            if case .failure(let error) = start { (node, error) } else { nil }
        }).first {
            children.forEach { $0.1.signalGroup(SIGKILL); _ = $0.1.wait(); cancellation.finished($0.1) }
            if let lost = failed as? AgentChannel.Lost {
                throw Failure(category: .nodeLost, node: node.id, message: "node \(node.id) was lost (\(lost.reason)) before its coordination command started")
            }
            throw Failure(category: .coordinationFailed, node: node.id, message: "coordination command could not start on \(node.id): \(failed)")
        }
        let started = children.map(\.1)
        let deadline = constraints.maxWallClockTime.map { limit in
            Deadline(after: limit, grace: constraints.killGracePeriod) { signal in started.forEach { $0.signalGroup(signal) } }
        }
        var firstFailure: Failure?
        for (node, child, directory) in children {
            let termination = child.wait()
            cancellation.finished(child)
            attempt.nodeExitCodes[node.id] = termination.code
            if termination != .exited(0), firstFailure == nil {
                let lines = MPIRunReport.lastLines(of: "\(directory)/coordination-stderr.txt")
                firstFailure = Failure(category: .coordinationFailed, node: node.id,
                                       message: "coordination command failed on node \(node.id) with \(termination)", details: lines)
            }
        }
        deadline?.cancel()
        if cancellation.isCancelled { throw Failure(category: .cancelled, message: "cancelled during the coordination command") }
        if deadline?.hasFired == true {
            throw Failure(category: .timeout, message: "maxWallClockTime ran out during the coordination command")
        }
        if let firstFailure { throw firstFailure }
    }

    /// Starts `arguments`, enforces the wall-clock limit on its whole process group, watches
    /// the remote nodes among `watching` and ends everything when one is lost, then waits.
    /// `launcher`: the child is mpirun or srun, which pass a warning signal on to the ranks.
    /// `attemptId`: what marks its processes, for `idleTimeout`'s watch over the `watching` group.
    func supervise(output: String, constraints: Constraints, node: String, watching: [Node] = [], cancellation: Cancellation,
                   launcher: Bool = false, attemptId: String? = nil, starting start: () throws -> ChildProcess) throws -> Termination {
        let child: ChildProcess
        do {
            child = try start()
        } catch let lost as AgentChannel.Lost {
            throw Failure(category: .nodeLost, node: node, message: "node \(node) was lost (\(lost.reason)); the task did not start")
        } catch {
            throw Failure(category: .launchFailed, node: node, message: "\(error)")
        }
        let deadline = constraints.maxWallClockTime.map { limit in
            Deadline(after: limit, grace: constraints.killGracePeriod) { signal in child.signalGroup(signal) }
        }
        // signalBeforeTimeLimit: the application's warning, once, unless it ends first.
        let warning = constraints.warningDue(limit: constraints.maxWallClockTime).map { due in
            let signal = constraints.signalBeforeTimeLimit!.signal
            let send = DispatchWorkItem { launcher ? child.signalLeader(signal) : child.signalGroup(signal) }
            DispatchQueue.global().asyncAfter(deadline: .now() + due, execute: send)
            return send
        }
        defer { warning?.cancel() }
        // idleTimeout: no output and no CPU for that long, and the attempt is ended as hung.
        let hang = constraints.idleTimeout.flatMap { timeout -> HangWatch? in
            guard let attemptId, pool.kind != .slurm else { return nil }
            let group = watching.isEmpty ? [Self.thisMachine(as: node)] : watching
            return HangWatch(timeout: timeout, output: output, probe: { stacks in self.probe(group, attemptId: attemptId, stacks: stacks) }) {
                child.signalGroup(SIGTERM)
                DispatchQueue.global().asyncAfter(deadline: .now() + constraints.killGracePeriod) { child.signalGroup(SIGKILL) }
            }
        }
        defer { hang?.stop() }
        guard cancellation.started(child) else {
            _ = child.wait()
            throw Failure(category: .cancelled, node: node, message: "cancelled before it started")
        }
        defer { cancellation.finished(child) }
        let remote = watching.filter { !$0.isLocal && pool.kind != .local }
        let monitor = agents.watch(remote) { _ in
            // mpirun cannot reach the lost node's daemon to end it cleanly: don't wait for it;
            // the survivors are swept right after.
            child.signalGroup(SIGTERM)
            DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { child.signalGroup(SIGKILL) }
        }
        let termination = child.wait()
        monitor.stop()
        deadline?.cancel()
        child.signalGroup(SIGKILL)  // whatever it left in its process group
        if let lost = monitor.lostNode {
            throw Failure(category: .nodeLost, node: lost.node,
                          message: "node \(lost.node) was lost (\(lost.reason)), detected after \(String(format: "%.1f", lost.after)) s; the group's processes were ended",
                          details: MPIRunReport.lastLines(of: "\(output)/stderr.txt"))
        }
        if child.untracked {
            throw Failure(category: .interrupted, node: node,
                          message: "cohort-spawner, which watched this task, died; its processes were ended and it runs again")
        }
        if cancellation.isCancelled {
            throw Failure(category: .cancelled, node: node, message: "cancelled; the task's processes were ended",
                          details: MPIRunReport.lastLines(of: "\(output)/stderr.txt"))
        }
        if termination != .exited(0), let silent = agents.firstSilent(remote, timeout: 2) {
            throw Failure(category: .nodeLost, node: silent.node,
                          message: "node \(silent.node) was lost (\(silent.reason)); the task failed with \(termination)",
                          details: MPIRunReport.lastLines(of: "\(output)/stderr.txt"))
        }
        hang?.stop()
        if let verdict = hang?.verdict {
            throw Failure(category: .hung, node: node, message: verdict, details: MPIRunReport.lastLines(of: "\(output)/stderr.txt"))
        }
        if deadline?.hasFired == true {
            throw Failure(category: .timeout, node: node,
                          message: "maxWallClockTime of \(Durations.format(constraints.maxWallClockTime!)) ran out; the task's processes were ended",
                          details: MPIRunReport.lastLines(of: "\(output)/stderr.txt"))
        }
        return termination
    }

    /// The attempt's processes on each node of `group` (nil where a node could not say), every
    /// node at once; with `stacks`, each process's stacks are saved there too. The local
    /// pool's nodes share this machine: one look at /proc covers them all.
    func probe(_ group: [Node], attemptId: String, stacks: String?) -> [[ProcessProbe.Sample]?] {
        @Sendable func here(_ name: String) -> [ProcessProbe.Sample] {
            let samples = ProcessProbe.sample(attemptId: attemptId)
            if let stacks { ProcessProbe.saveStacks(samples, node: name, directory: stacks) }
            return samples
        }
        if pool.kind == .local { return [here(group.first?.id ?? "local")] }
        return concurrentMap(group) { node -> [ProcessProbe.Sample]? in
            if node.isLocal { return here(node.id) }
            guard case .success(let (channel, _)) = self.agents.ready(node) else { return nil }
            let words = [self.settings.cohortExecutable, "node-probe", "--attempt", attemptId] + (stacks.map { ["--stacks", $0, "--node", node.id] } ?? [])
            return channel.capture(words, timeout: stacks == nil ? 30 : 150).map { ProcessProbe.samples(fromLines: String(decoding: $0, as: UTF8.self)) }
        }
    }

    /// Starts `words` on `node`: here (through the spawner when serving, so that the end is
    /// written to `statusFile`), or as a child of the node's agent, which writes it there.
    func launch(_ words: [String], on node: Node, directory: String, variables: [String: String], output: String, statusFile: String?,
                relayShell: Bool = false) throws -> ChildProcess {
        try launch(words, on: node, directory: directory, variables: variables, stdout: "\(output)/stdout.txt", stderr: "\(output)/stderr.txt",
                   statusFile: statusFile, relayShell: relayShell)
    }

    func launch(_ words: [String], on node: Node, directory: String, variables: [String: String], stdout: String, stderr: String,
                statusFile: String?, relayShell: Bool = false) throws -> ChildProcess {
        if node.isLocal || pool.kind == .local {
            let environment = baseEnvironment().merging(variables) { $1 }
            if let spawner = settings.spawner, let statusFile {
                return try spawner.spawn(words, environment: environment, directory: directory, stdout: stdout, stderr: stderr, statusFile: statusFile)
            }
            return try ChildProcess(words, environment: environment, directory: directory, stdout: stdout, stderr: stderr)
        }
        switch agents.ready(node) {
        case .failure(let lost): throw lost
        case .success(let (channel, _)):
            return try channel.spawn(words, variables: variables, directory: directory, stdout: stdout, stderr: stderr,
                                     statusFile: settings.spawner == nil ? nil : statusFile, relayShell: relayShell)
        }
    }

    /// Whether every node of the group is another machine, by its agent's hello (see
    /// `MPIRunCommand.skipsNameResolution`).
    func nodesAreElsewhere(_ nodes: [Node]) -> Bool {
        let hostnames = nodes.map { node -> String? in
            if case .success(let (_, hello)) = agents.ready(node) { return hello.hostname }
            return nil
        }
        return MPIRunCommand.nodesAreElsewhere(nodes, hostnames: hostnames, thisHost: Node.thisMachineName)
    }

    /// What Cohort's own mpirun flags say, as Open MPI's variables: the pool's network and
    /// MCA parameters, and root's permission.
    func poolOpenMPIVariables(remote: Bool) -> [String: String] {
        var variables: [String: String] = [:]
        if let network = pool.network, remote {
            variables["OMPI_MCA_btl_tcp_if_include"] = network
            variables["OMPI_MCA_oob_tcp_if_include"] = network
        }
        for (name, value) in pool.mcaParameters ?? [:] { variables["OMPI_MCA_\(name)"] = value }
        if settings.runningAsRoot {
            variables["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
            variables["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        }
        return variables
    }

    /// This machine, under the id of the group node a local process (mpirun) answers for.
    static func thisMachine(as id: String) -> Node { Node(id: id, address: "localhost", slots: 1) }

    func exitFailure(_ termination: Termination, node: String, what: String, stderr: String) -> Failure {
        let details = MPIRunReport.lastLines(of: stderr)
        switch termination {
        case .exited(127):
            return Failure(category: .launchFailed, node: node, message: "\(what) on node \(node): program not found (exit code 127)", details: details)
        case .exited(let code):
            return Failure(category: .exitCode, node: node, message: "\(what) on node \(node) exited with code \(code)", details: details)
        case .signaled(let signal):
            return Failure(category: .signal, node: node, message: "\(what) on node \(node) was killed by \(signalName(signal))", details: details)
        }
    }

    // MARK: - Transport

    /// Picks the transport for the group, or fails before launch with the reason.
    func resolveTransport(_ requested: Transport, nodes: [Node], task: String) throws -> Transport {
        let hosts = Set(nodes.map(\.address))
        let oneHost = hosts.count == 1 || pool.kind == .local
        switch requested {
        case .shm:
            guard oneHost else {
                throw Failure(category: .transportUnavailable, message: "transport shm needs every rank on one host, but the group spans \(hosts.count) hosts")
            }
            return .shm
        case .tcp, .ucx:
            return requested
        case .rdma:
            if let missing = rdmaCache.firstWithoutRDMA(nodes, agents: agents) {
                throw Failure(category: .transportUnavailable, node: missing.id,
                              message: "transport rdma requested but node \(missing.id) has no RDMA device with an active port (libibverbs)")
            }
            return .rdma
        case .auto:
            if let missing = rdmaCache.firstWithoutRDMA(nodes, agents: agents) {
                let choice: Transport = oneHost ? .shm : .tcp
                settings.log("task \(task): transport \(choice.rawValue), since node \(missing.id) has no active RDMA port")
                return choice
            }
            settings.log("task \(task): transport rdma: every node has an active RDMA port")
            return .rdma
        }
    }

    // MARK: - Pieces

    func makeDirectory(_ path: String) throws {
        guard Self.makeDirectories(path) else {
            throw Failure(category: .launchFailed, message: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// mkdir -p with plain syscalls: one mkdir when the parent exists (every attempt after
    /// a task's first), where Foundation stats every component of the path first.
    static func makeDirectories(_ path: String) -> Bool {
        if mkdir(path, 0o700) == 0 || errno == EEXIST { return true }
        guard errno == ENOENT, let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return false }
        guard makeDirectories(String(path[..<slash])) else { return false }
        return mkdir(path, 0o700) == 0 || errno == EEXIST
    }

    /// Ends whatever is left of the attempt on every node of the group; returns the nodes
    /// it could not reach (`skipping` is known lost and counts as not reached).
    @discardableResult
    public func sweep(attemptId: String, nodes: [Node], skipping lost: String? = nil, newerThan: pid_t = 0) -> [String] {
        if pool.kind == .slurm && pool.slurm?.allocation == nil {
            ProcessSweeper.killLocal(variable: ProcessSweeper.marker, value: attemptId, newerThan: newerThan, inThisNamespace: true)  // its srun
            return (try? slurm.cancel(jobNamed: Self.slurmJobName(attemptId))) == nil ? nodes.map(\.id) : []
        }
        if pool.kind == .slurm {
            // Inside an allocation the attempt was a step (cancelled by name) or a task of an
            // agent (swept by it, below).
            try? slurm.cancel(jobNamed: Self.slurmJobName(attemptId))
        }
        if nodes.contains(where: \.isLocal) || pool.kind == .local {
            ProcessSweeper.killLocal(attemptId: attemptId, newerThan: newerThan)
        } else if nodes.count > 1 || pool.kind != .local {
            // mpirun ran here for a remote group: its ssh children may outlive it for a moment.
            ProcessSweeper.killLocal(variable: ProcessSweeper.marker, value: attemptId, newerThan: newerThan, inThisNamespace: true)
        }
        // Every remote node at once, each a message to its agent.
        let remote = nodes.filter { !$0.isLocal && $0.id != lost }
        let reached = concurrentMap(remote) { self.sweepRemote(attemptId: attemptId, node: $0) }
        let swept = Set(zip(remote, reached).compactMap { node, ok in ok ? node.id : nil })
        return nodes.filter { !$0.isLocal && !swept.contains($0.id) }.map(\.id)
    }

    /// Sends every gathered remote sweep now (the runner calls it before it returns).
    public func flushRemoteSweeps() { remoteSweeps.flush(self) }

    /// Kills the attempt's processes on one remote node; false if the node did not answer.
    public func sweepRemote(attemptId: String, node: Node) -> Bool {
        sweepRemote(variable: ProcessSweeper.marker, value: attemptId, node: node)
    }

    /// Kills every process on one remote node whose environment holds `variable=value`, but
    /// those of the attempts in `sparing`.
    public func sweepRemote(variable: String, value: String, sparing: [String] = [], node: Node) -> Bool {
        sweepRemote(variable: variable, values: [value], sparing: sparing, node: node)
    }

    func sweepRemote(variable: String, values: [String], sparing: [String] = [], node: Node) -> Bool {
        agents.sweep(variable: variable, values: values, sparing: sparing, on: node)
    }

}

/// Sweeps of successful remote attempts, gathered per node: one message (one scan of its
/// /proc) per node every second with every marker, instead of one per task. What a
/// successful task left running lives on for that second at most; nothing waits for it, so a node that does not answer
/// keeps nothing pending (its next failed attempt's sweep, or the node's own check, will).
final class RemoteSweeps: @unchecked Sendable {
    static let delay: Double = 1
    private let lock = NSLock()
    private var pending: [String: (node: Node, ids: [String])] = [:]
    private var scheduled = false

    func add(_ id: String, on nodes: [Node], executor: AttemptExecutor) {
        lock.lock()
        for node in nodes { pending[node.id, default: (node, [])].ids.append(id) }
        let start = !scheduled
        scheduled = true
        lock.unlock()
        if start { DispatchQueue.global().asyncAfter(deadline: .now() + Self.delay) { self.flush(executor) } }
    }

    /// Sends what is gathered, all nodes at once; returns when every node has answered or timed out.
    func flush(_ executor: AttemptExecutor) {
        lock.lock()
        let batch = Array(pending.values)
        pending.removeAll()
        scheduled = false
        lock.unlock()
        guard !batch.isEmpty else { return }
        DispatchQueue.concurrentPerform(iterations: batch.count) { index in
            _ = executor.sweepRemote(variable: ProcessSweeper.marker, values: batch[index].ids, node: batch[index].node)
        }
    }
}

/// Remembers which nodes have RDMA: this machine asked once through libibverbs, a remote
/// node as its agent reported at hello.
final class RDMACache: @unchecked Sendable {
    private let lock = NSLock()
    private var known: [String: Bool] = [:]

    func hasRDMA(_ node: Node, agents: AgentFleet) -> Bool {
        lock.lock()
        if let value = known[node.id] { lock.unlock(); return value }
        lock.unlock()
        let value: Bool
        if node.isLocal {
            value = RDMAProbe.localHasActivePort
        } else if case .success(let (_, hello)) = agents.ready(node) {
            value = hello.hasActiveRDMAPort
        } else {
            value = false
        }
        lock.lock(); known[node.id] = value; lock.unlock()
        return value
    }

    /// The first node of `nodes` without an active RDMA port, if any; nodes not known yet are
    /// asked all at once.
    func firstWithoutRDMA(_ nodes: [Node], agents: AgentFleet) -> Node? {
        lock.lock()
        let unknown = nodes.filter { known[$0.id] == nil }
        lock.unlock()
        _ = concurrentMap(unknown) { self.hasRDMA($0, agents: agents) }
        return nodes.first { !hasRDMA($0, agents: agents) }
    }
}

/// Reads what mpirun and tasks leave in their error output.
public enum MPIRunReport {
    /// The last `count` non-empty lines of a file.
    public static func lastLines(of path: String, count: Int = 20) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 16384 ? size - 16384 : 0)
        let data = (try? handle.readToEnd()) ?? Data()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.trimmingWhitespace().isEmpty }
        return Array(lines.suffix(count))
    }

    /// The first failing rank and its exit code from Open MPI's report:
    /// `Process name: [[1234,1],3]` followed by `Exit code:    7`.
    public static func failingRank(in lines: [String]) -> (rank: Int, code: Int32)? {
        for (index, line) in lines.enumerated() {
            guard let range = line.range(of: "Process name: [[") else { continue }
            let rest = line[range.upperBound...]
            guard let close = rest.firstIndex(of: "]"), let comma = rest[close...].firstIndex(of: ","),
                  let end = rest[comma...].firstIndex(of: "]"),
                  let rank = Int(rest[rest.index(after: comma)..<end]) else { continue }
            for next in lines[(index + 1)...].prefix(3) {
                if let codeRange = next.range(of: "Exit code:"), let code = Int32(next[codeRange.upperBound...].trimmingWhitespace()) {
                    return (rank, code)
                }
            }
        }
        return nil
    }
}
