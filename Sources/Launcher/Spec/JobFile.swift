import Foundation
import Yams

/// Reads a job file (YAML, or JSON — also in Azure Batch's shape) into a validated
/// `JobSpec`. Every field has a default; unknown fields, wrong types and impossible values
/// are errors naming the file, line, column and field. Nothing runs before it passes.
public enum JobFile {
    public static func load(path: String) throws(SpecError) -> JobSpec {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SpecError(file: path, field: "", message: "cannot read the job file: \(error.localizedDescription)")
        }
        var job = try parse(text, file: path)
        job.resolvePrograms(relativeTo: URL(fileURLWithPath: path).deletingLastPathComponent().path)
        return job
    }

    public static func parse(_ text: String, file: String) throws(SpecError) -> JobSpec {
        if let line = NestingDepth.lineTooDeep(text) {
            throw SpecError(file: file, line: line, field: "", message: "nested more than \(NestingDepth.limit) levels deep (no job file needs that many)")
        }
        let root: Yams.Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw SpecError(file: file, line: 1, column: 1, field: "", message: "the job file is empty")
            }
            root = node
        } catch let error as SpecError {
            throw error
        } catch let error as YamlError {
            throw yamlError(error, file: file)
        } catch {
            throw SpecError(file: file, field: "", message: "\(error)")
        }
        let (job, sources) = try Field(node: root, path: "", file: file).job()
        try validate(job, sources: sources, file: file, root: root)
        return job
    }

    static func yamlError(_ error: YamlError, file: String) -> SpecError {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return SpecError(file: file, line: mark.line, column: mark.column, field: "", message: "not valid YAML or JSON: \(problem)")
        default:
            return SpecError(file: file, field: "", message: "not valid YAML or JSON: \(error)")
        }
    }

    /// Checks across tasks: unique ids, known dependencies, no cycles. `sources[i]`: the
    /// index in the file of the task that task `i` came from (arrays make many of one).
    static func validate(_ job: JobSpec, sources: [Int], file: String, root: Yams.Node) throws(SpecError) {
        let taskNodes = root["tasks"]?.sequence.map { Array($0) } ?? []
        func place(_ index: Int, _ key: String? = nil) -> (Int?, Int?) {
            guard sources[index] < taskNodes.count else { return (nil, nil) }
            let item = taskNodes[sources[index]]
            let node = key.flatMap { item[$0] } ?? item
            return (node.mark?.line, node.mark?.column)
        }
        var seen: [String: Int] = [:]
        var arrays: [String: Int] = [:]
        for (index, task) in job.tasks.enumerated() {
            if let first = seen[task.id] ?? (task.array == nil ? arrays[task.id] : nil) ?? task.array.flatMap({ seen[$0.task] }) {
                let (line, column) = place(index, "id")
                throw SpecError(file: file, line: line, column: column, field: "tasks[\(sources[index])].id",
                                message: "task id '\(task.array?.task ?? task.id)' is already used by tasks[\(sources[first])]")
            }
            seen[task.id] = index
            if let array = task.array, arrays[array.task] == nil { arrays[array.task] = index }
        }
        for (index, task) in job.tasks.enumerated() {
            for dependency in task.dependsOn where seen[dependency] == nil {
                let (line, column) = place(index, "dependsOn")
                throw SpecError(file: file, line: line, column: column, field: "tasks[\(sources[index])].dependsOn", message: "no task has the id '\(dependency)'")
            }
            if task.dependsOn.contains(task.id) {
                let (line, column) = place(index, "dependsOn")
                throw SpecError(file: file, line: line, column: column, field: "tasks[\(sources[index])].dependsOn",
                                message: task.array == nil ? "a task cannot depend on itself" : "an element of array \(task.array!.task) cannot depend on its own array")
            }
        }
        // Cycle check: depth-first over dependencies, with an explicit stack: a chain of
        // 15,000 tasks must neither recurse 15,000 deep (a stack overflow) nor copy its
        // trail at every step (quadratic memory).
        var state: [String: UInt8] = [:]  // 1 on the stack, 2 done
        let byId = Dictionary(uniqueKeysWithValues: job.tasks.map { ($0.id, $0) })
        for root in job.tasks where state[root.id] == nil {
            var stack: [(id: String, next: Int)] = [(root.id, 0)]
            state[root.id] = 1
            while let top = stack.last {
                let dependencies = byId[top.id]?.dependsOn ?? []
                guard top.next < dependencies.count else {
                    state[top.id] = 2
                    stack.removeLast()
                    continue
                }
                stack[stack.count - 1].next += 1
                let dependency = dependencies[top.next]
                if state[dependency] == 1 {
                    let cycle = stack[stack.firstIndex { $0.id == dependency }!...].map(\.id) + [dependency]
                    let index = seen[root.id]!
                    let (line, column) = place(index, "dependsOn")
                    throw SpecError(file: file, line: line, column: column, field: "tasks[\(sources[index])].dependsOn", message: "dependency cycle: \(cycle.joined(separator: " → "))")
                }
                if state[dependency] == nil {
                    state[dependency] = 1
                    stack.append((dependency, 0))
                }
            }
        }
    }
}

/// A node of the job file with its path, and typed reads that fail with its position.
struct Field {
    let node: Yams.Node
    let path: String
    let file: String

    func error(_ message: String) -> SpecError {
        SpecError(file: file, line: node.mark?.line, column: node.mark?.column, field: path, message: message)
    }

    func child(_ key: String, _ value: Yams.Node) -> Field {
        Field(node: value, path: path.isEmpty ? key : "\(path).\(key)", file: file)
    }

    /// The mapping's entries; unknown keys are errors. Aliases map to the canonical key.
    func object(known: [String], aliases: [String: String] = [:]) throws(SpecError) -> [String: Field] {
        guard case let .mapping(mapping) = node else { throw error("expected a mapping of fields, found \(kind)") }
        var fields: [String: Field] = [:]
        for (keyNode, value) in mapping {
            guard case let .scalar(scalar) = keyNode else { throw error("field names must be plain text") }
            let key = aliases[scalar.string] ?? scalar.string
            guard known.contains(key) else {
                let keyField = Field(node: keyNode, path: path.isEmpty ? scalar.string : "\(path).\(scalar.string)", file: file)
                throw keyField.error("unknown field '\(scalar.string)' (known: \(known.joined(separator: ", ")))")
            }
            if fields[key] != nil {
                throw Field(node: keyNode, path: "\(path).\(key)", file: file).error("field given twice")
            }
            fields[key] = child(scalar.string, value)
        }
        return fields
    }

    var kind: String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar(let s): s.string.isEmpty ? "nothing" : "'\(s.string)'"
        }
    }

    func string() throws(SpecError) -> String {
        guard case let .scalar(scalar) = node else { throw error("expected text, found \(kind)") }
        return scalar.string
    }

    func nonEmptyString() throws(SpecError) -> String {
        let value = try string()
        guard !value.trimmingWhitespace().isEmpty else { throw error("must not be empty") }
        return value
    }

    func int(minimum: Int) throws(SpecError) -> Int {
        guard case let .scalar(scalar) = node, let value = Int(scalar.string) else {
            throw error("expected a whole number ≥ \(minimum), found \(kind.prefix(80))")
        }
        guard value >= minimum else { throw error("must be ≥ \(minimum), found \(value)") }
        return value
    }

    func duration() throws(SpecError) -> Double {
        guard case let .scalar(scalar) = node, let seconds = Durations.seconds(scalar.string) else {
            throw error("expected a duration such as 90s, 30m, 1h30m or PT30M, found \(kind.prefix(80))")
        }
        guard seconds <= Durations.maximum else { throw error("must be at most \(Int(Durations.maximum / 86400))d") }
        return seconds
    }

    func int(minimum: Int, maximum: Int) throws(SpecError) -> Int {
        let value = try int(minimum: minimum)
        guard value <= maximum else { throw error("must be at most \(maximum), found \(value)") }
        return value
    }

    func list() throws(SpecError) -> [Field] {
        guard case let .sequence(sequence) = node else { throw error("expected a list, found \(kind)") }
        return sequence.enumerated().map { Field(node: $1, path: "\(path)[\($0)]", file: file) }
    }

    func stringList() throws(SpecError) -> [String] {
        var values: [String] = []
        for item in try list() { values.append(try item.string()) }
        return values
    }

    /// A command line: text split into words (no shell), or a list of exact words.
    func commandLine() throws(SpecError) -> [String] {
        let words: [String]
        if case .sequence = node {
            words = try stringList()
        } else {
            do {
                words = try CommandLineWords.split(try string())
            } catch let split as CommandLineWords.SplitError {
                var located = error("\(split.message) (at character \(split.column) of the command line)")
                if let line = node.mark?.line, let column = node.mark?.column, case let .scalar(s) = node, s.style == .plain || s.style == .any {
                    located.line = line
                    located.column = column + split.column - 1
                }
                throw located
            } catch let other as SpecError {
                throw other
            } catch {
                throw self.error("\(error)")
            }
        }
        guard let program = words.first, !program.isEmpty else { throw error("the command line is empty") }
        // A program name starting with '-' would be read as an option by the remote shell's
        // exec; no program is named so (write ./-name for a file that is).
        guard !program.hasPrefix("-") else { throw error("the program '\(program)' begins with '-': write ./\(program) for a file of that name") }
        return words
    }

    /// `{NAME: value}` or Azure's `[{name: NAME, value: value}]`.
    func environment() throws(SpecError) -> [String: String] {
        var environment: [String: String] = [:]
        func add(_ name: String, _ value: String, _ at: Field) throws(SpecError) {
            guard name.first.map({ $0 == "_" || ($0.isASCII && $0.isLetter) }) == true,
                  name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) })
            else { throw at.error("'\(name.prefix(80))' is not a valid environment variable name") }
            if let problem = LaunchPolicy.problem(variable: name) { throw at.error(problem) }
            environment[name] = value
        }
        let count: Int
        switch node {
        case .mapping(let mapping): count = mapping.count
        case .sequence(let sequence): count = sequence.count
        default: count = 0
        }
        guard count <= TaskEnvironmentLimits.maximumVariables else {
            throw error("\(count) variables; at most \(TaskEnvironmentLimits.maximumVariables) are allowed")
        }
        if case let .mapping(mapping) = node {
            for (key, value) in mapping {
                let name = try Field(node: key, path: path, file: file).string()
                let field = child(name, value)
                try add(name, try field.string(), field)
            }
        } else {
            for item in try list() {
                let fields = try item.object(known: ["name", "value"])
                guard let name = fields["name"] else { throw item.error("each setting needs a name") }
                try add(try name.string(), try fields["value"]?.string() ?? "", name)
            }
        }
        let bytes = environment.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 }
        guard bytes <= TaskEnvironmentLimits.maximumBytes else {
            throw error("\(bytes) bytes of variables; at most \(TaskEnvironmentLimits.maximumBytes) are allowed")
        }
        return environment
    }

    // MARK: - The schema

    /// The job, and for each of its tasks the index of the task in the file it came from.
    func job() throws(SpecError) -> (JobSpec, [Int]) {
        let f = try object(known: ["id", "pool", "priority", "environment", "tasks", "displayName", "constraints", "jobPreparationTask", "jobReleaseTask",
                                   "onTaskFailure", "onAllTasksComplete", "usesTaskDependencies", "dependsOn", "maxWallClockTime", "notify"],
                           // (afterJobs, preparation, release: how a JobSpec names them encoded as JSON)
                           aliases: ["poolInfo": "pool", "environmentSettings": "environment", "commonEnvironmentSettings": "environment",
                                     "afterJobs": "dependsOn", "preparation": "jobPreparationTask", "release": "jobReleaseTask"])
        guard let id = f["id"] else { throw error("a job needs an id") }
        let jobId = try id.identifier()
        var pool = "local"
        if let p = f["pool"] {
            if case .mapping = p.node {
                let info = try p.object(known: ["poolId"])
                guard let poolId = info["poolId"] else { throw p.error("poolInfo needs a poolId") }
                pool = try poolId.nonEmptyString()
            } else {
                pool = try p.nonEmptyString()
            }
        }
        guard let tasksField = f["tasks"] else { throw error("a job needs a list of tasks") }
        let items = try tasksField.list()
        guard !items.isEmpty else { throw tasksField.error("a job needs at least one task") }
        var tasks: [TaskSpec] = []
        var sources: [Int] = []
        for (index, item) in items.enumerated() {
            let made = try item.tasks()
            tasks += made
            sources += repeatElement(index, count: made.count)
            guard tasks.count <= TaskArrays.maximumElements else {
                throw item.error("the job has more than \(TaskArrays.maximumElements) tasks once its arrays and sweeps are expanded")
            }
        }
        // A dependency on an array is on every element of it (Slurm's afterok on an array job),
        // each with the condition given; aftercorr pairs element k with the other array's k.
        var elements: [String: [String]] = [:], byIndex: [String: [Int: String]] = [:]
        for task in tasks {
            guard let array = task.array else { continue }
            elements[array.task, default: []].append(task.id)
            byIndex[array.task, default: [:]][array.index] = task.id
        }
        for index in tasks.indices where tasks[index].dependencyConditions?.values.contains(.aftercorr) == true {
            for (id, condition) in tasks[index].dependencyConditions ?? [:] where condition == .aftercorr {
                let task = tasks[index], at = items[sources[index]]
                guard let mine = task.array else {
                    throw at.error("aftercorr pairs the elements of two arrays, and task \(task.id) is not an array (use afterok)")
                }
                guard let theirs = byIndex[id] else { throw at.error("aftercorr on \(id): no array of this job has that id") }
                guard let partner = theirs[mine.index] else {
                    throw at.error("aftercorr: element \(mine.index) of \(mine.task) has no partner, since array \(id) has no element \(mine.index)")
                }
                tasks[index].dependsOn = tasks[index].dependsOn.map { $0 == id ? partner : $0 }
                tasks[index].dependencyConditions?[id] = nil
            }
            if tasks[index].dependencyConditions?.isEmpty == true { tasks[index].dependencyConditions = nil }
        }
        if !elements.isEmpty {
            for index in tasks.indices where tasks[index].dependsOn.contains(where: { elements[$0] != nil }) {
                var conditions = tasks[index].dependencyConditions ?? [:]
                for (id, condition) in conditions where elements[id] != nil {
                    conditions[id] = nil
                    for element in elements[id]! { conditions[element] = condition }
                }
                tasks[index].dependsOn = tasks[index].dependsOn.flatMap { elements[$0] ?? [$0] }
                tasks[index].dependencyConditions = conditions.isEmpty ? nil : conditions
            }
        }
        // (maxWallClockTime at the top: how a JobSpec encoded as JSON gives it)
        var limit = try f["maxWallClockTime"]?.duration()
        if let c = f["constraints"] {
            let constraints = try c.object(known: ["maxWallClockTime"])
            if let given = constraints["maxWallClockTime"] {
                if limit != nil { throw given.error("maxWallClockTime is given twice: here and at the top of the job") }
                limit = try given.duration()
            }
        }
        var job = JobSpec(id: jobId, pool: pool, priority: try f["priority"]?.int(minimum: -1000) ?? 0,
                          tasks: tasks, environment: try f["environment"]?.environment() ?? [:], maxWallClockTime: limit)
        // The job's variables reach every task with the task's own: bound them together.
        for (index, task) in tasks.enumerated() {
            if let excess = TaskEnvironmentLimits.excess(job.environment.merging(task.environment) { $1 }) {
                throw items[index].error("the job's and the task's variables together are \(excess)")
            }
        }
        if let action = f["onTaskFailure"] {
            let text = try action.string()
            guard let value = TaskFailureAction(rawValue: text.lowercased()) else {
                throw action.error("unknown onTaskFailure '\(text.prefix(40))' (expected noaction or performexitoptionsjobaction)")
            }
            job.onTaskFailure = value
        }
        if let complete = f["onAllTasksComplete"] {
            let text = try complete.string().lowercased()
            guard text == "terminatejob" || text == "noaction" else {
                throw complete.error("unknown onAllTasksComplete '\(text.prefix(40))' (expected terminatejob or noaction)")
            }
            // A job here is its file's tasks: none can be added later, so it ends with them.
            if text == "noaction" {
                throw complete.error("noaction keeps a job open for tasks added later; Cohort's jobs are their file's tasks and end with them (use terminatejob or leave it out)")
            }
        }
        if let uses = f["usesTaskDependencies"], try uses.bool() == false,
           let index = tasks.firstIndex(where: { !$0.dependsOn.isEmpty }) {
            throw items[index].error("task \(tasks[index].id) has dependsOn, but the job says usesTaskDependencies: false")
        }
        for (index, task) in tasks.enumerated() where task.exitConditions.map(Self.hasJobAction) == true && job.onTaskFailure != .performExitOptionsJobAction {
            throw items[index].error("task \(task.id)'s exitConditions give a jobAction, which needs the job's onTaskFailure: performexitoptionsjobaction")
        }
        job.preparation = try f["jobPreparationTask"]?.nodeTask(preparation: true)
        job.release = try f["jobReleaseTask"]?.nodeTask(preparation: false)
        job.afterJobs = try f["dependsOn"]?.jobDependencies(of: jobId)
        if let notify = f["notify"] {
            let text = try notify.string()
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), !(url.host ?? "").isEmpty else {
                throw notify.error("expected an http:// or https:// URL to POST the job's outcome to, found '\(text)'")
            }
            job.notify = text
        }
        return (job, sources)
    }

    /// A job's dependsOn: other jobs, `mesh` (afterok) or `{job: mesh, condition: afterany}`.
    func jobDependencies(of jobId: String) throws(SpecError) -> [JobDependency] {
        var dependencies: [JobDependency] = []
        for item in try list() {
            var dependency: JobDependency
            if case .mapping = item.node {
                let d = try item.object(known: ["job", "condition"])
                guard let job = d["job"] else { throw item.error("a job dependency needs the job's id: {job: mesh, condition: afterok}") }
                dependency = JobDependency(job: try job.identifier())
                if let condition = d["condition"] {
                    let text = try condition.string()
                    guard let value = JobDependency.Condition(rawValue: text.lowercased()), value != .aftercorr else {
                        throw condition.error("unknown condition '\(text.prefix(40))' between jobs (expected afterok, afterany or afternotok; aftercorr pairs the elements of two arrays of one job)")
                    }
                    dependency.condition = value
                }
            } else {
                dependency = JobDependency(job: try item.identifier())
            }
            guard dependency.job != jobId else { throw item.error("a job cannot depend on itself") }
            dependencies.append(dependency)
        }
        return dependencies
    }

    static func hasJobAction(_ conditions: ExitConditions) -> Bool {
        let all = conditions.codes.map(\.options) + conditions.ranges.map(\.options)
            + [conditions.preProcessingError, conditions.fileUploadError, conditions.otherwise].compactMap { $0 }
        return all.contains { $0.jobAction != nil }
    }

    func bool() throws(SpecError) -> Bool {
        guard case let .scalar(scalar) = node, let value = Bool(scalar.string.lowercased()) else { throw error("expected true or false") }
        return value
    }

    /// Azure's exitConditions: exitCodes, exitCodeRanges, preProcessingError,
    /// fileUploadError and default, each with exitOptions {jobAction, dependencyAction}.
    func exitConditions() throws(SpecError) -> ExitConditions {
        let f = try object(known: ["exitCodes", "exitCodeRanges", "preProcessingError", "fileUploadError", "default"])
        var conditions = ExitConditions()
        func code(_ field: Field) throws(SpecError) -> Int32 {
            guard case let .scalar(scalar) = field.node, let value = Int32(scalar.string) else { throw field.error("expected an exit code (a whole number)") }
            return value
        }
        for item in try f["exitCodes"]?.list() ?? [] {
            let e = try item.object(known: ["code", "exitOptions"])
            guard let c = e["code"], let o = e["exitOptions"] else { throw item.error("an exit code mapping needs code and exitOptions") }
            let value = try code(c)
            conditions.codes.append(.init(start: value, end: value, options: try o.exitOptions()))
        }
        for item in try f["exitCodeRanges"]?.list() ?? [] {
            let e = try item.object(known: ["start", "end", "exitOptions"])
            guard let a = e["start"], let b = e["end"], let o = e["exitOptions"] else { throw item.error("an exit code range needs start, end and exitOptions") }
            let start = try code(a), end = try code(b)
            guard start <= end else { throw item.error("start \(start) is after end \(end)") }
            conditions.ranges.append(.init(start: start, end: end, options: try o.exitOptions()))
        }
        conditions.preProcessingError = try f["preProcessingError"]?.exitOptions()
        conditions.fileUploadError = try f["fileUploadError"]?.exitOptions()
        conditions.otherwise = try f["default"]?.exitOptions()
        return conditions
    }

    func exitOptions() throws(SpecError) -> ExitOptions {
        let f = try object(known: ["jobAction", "dependencyAction"])
        var options = ExitOptions()
        if let a = f["jobAction"] {
            let text = try a.string()
            guard let value = JobAction(rawValue: text.lowercased()) else { throw a.error("unknown jobAction '\(text.prefix(40))' (expected none, disable or terminate)") }
            options.jobAction = value
        }
        if let d = f["dependencyAction"] {
            let text = try d.string()
            guard let value = DependencyAction(rawValue: text.lowercased()) else { throw d.error("unknown dependencyAction '\(text.prefix(40))' (expected satisfy or block)") }
            options.dependencyAction = value
        }
        return options
    }

    /// Azure's userIdentity, where it can be honoured: tasks run as the user running Cohort.
    func userIdentity() throws(SpecError) {
        let f = try object(known: ["autoUser", "userName"])
        if let name = f["userName"] {
            throw name.error("tasks run as the user running Cohort (uid \(getuid())); a named user account cannot be honoured")
        }
        if let auto = f["autoUser"] {
            let a = try auto.object(known: ["scope", "elevationLevel"])
            if let level = a["elevationLevel"] {
                let text = try level.string().lowercased()
                guard text == "admin" || text == "nonadmin" else { throw level.error("unknown elevationLevel '\(text.prefix(40))' (expected admin or nonadmin)") }
                if text == "admin" && getuid() != 0 { throw level.error("elevationLevel admin needs Cohort to run as root; it runs as uid \(getuid())") }
            }
            if let scope = a["scope"] {
                let text = try scope.string().lowercased()
                guard text == "pool" || text == "task" else { throw scope.error("unknown scope '\(text.prefix(40))' (expected pool or task)") }
            }
        }
    }

    /// Azure's jobPreparationTask / jobReleaseTask.
    func nodeTask(preparation: Bool) throws(SpecError) -> NodeTaskSpec {
        var known = ["id", "commandLine", "environment", "constraints", "maxWallClockTime", "resourceFiles"]
        if preparation { known += ["waitForSuccess", "rerunOnNodeRebootAfterSuccess"] }
        // A JobSpec encoded as JSON names it `release` and says waitForSuccess: true, which a
        // release task means anyway; Azure's jobReleaseTask has no such field.
        if !preparation && path.hasSuffix("release") { known.append("waitForSuccess") }
        let f = try object(known: known, aliases: ["environmentSettings": "environment"])
        guard let command = f["commandLine"] else { throw error("a \(preparation ? "job preparation" : "job release") task needs a commandLine") }
        var limit = try f["maxWallClockTime"]?.duration()
        if let c = f["constraints"] {
            let constraints = try c.object(known: ["maxWallClockTime", "maxTaskRetryCount", "retentionTime"])
            limit = try constraints["maxWallClockTime"]?.duration() ?? limit
        }
        var wait = true
        if let w = f["waitForSuccess"] {
            guard case let .scalar(scalar) = w.node, let value = Bool(scalar.string.lowercased()) else { throw w.error("expected true or false") }
            guard preparation || value else { throw w.error("waitForSuccess is the job preparation task's; a release task runs after the job's tasks anyway") }
            wait = value
        }
        var spec = NodeTaskSpec(commandLine: try command.commandLine(), environment: try f["environment"]?.environment() ?? [:],
                                maxWallClockTime: limit, waitForSuccess: wait)
        spec.resourceFiles = try f["resourceFiles"]?.resourceFiles()
        return spec
    }

    static func isIdentifier(_ value: some StringProtocol) -> Bool {
        !value.isEmpty && value.count <= 64 && value.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// An array's element's id: `ID[index]`.
    func elementIdentifier() throws(SpecError) -> String {
        let value = try string()
        guard value.hasSuffix("]"), let open = value.firstIndex(of: "["), Self.isIdentifier(value[..<open]),
              Int(value[value.index(after: open)..<value.index(before: value.endIndex)]) != nil
        else { throw error("an array's element's id is ID[index], found '\(value.prefix(80))'") }
        return value
    }

    /// Ids as Azure Batch allows them: letters, digits, '-' and '_', at most 64.
    func identifier() throws(SpecError) -> String {
        let value = try string()
        guard Self.isIdentifier(value) else {
            throw error("ids are 1-64 letters, digits, '-' or '_', found '\(value)'")
        }
        return value
    }

    /// A task of the file: one, or one per element of its array or sweep.
    func tasks() throws(SpecError) -> [TaskSpec] {
        var task = try task()
        let f = try object(known: Self.taskFields, aliases: Self.taskAliases)
        if let array = f["array"], case .mapping = array.node {
            // One element already (a JobSpec encoded as JSON names it so): taken as it is.
            if let other = f["sweep"] ?? f["throttle"] { throw other.error("an array's element (array: {task, index, …}) takes no sweep or throttle of its own") }
            task.array = try array.arrayElement(id: task.id)
            return [task]
        }
        guard f["array"] != nil || f["sweep"] != nil else {
            if let throttle = f["throttle"] { throw throttle.error("throttle limits the elements of an array or a sweep; this task has neither") }
            return [task]
        }
        if f["array"] != nil, let sweep = f["sweep"] {
            throw sweep.error("a task takes an array or a sweep, not both (a sweep's combinations are numbered: use {index})")
        }
        var throttle = try f["throttle"]?.int(minimum: 1)
        var elements: [(index: Int, parameters: [(name: String, value: String)])] = []
        if let array = f["array"] {
            let indices = try array.arrayIndices()
            if let limit = indices.throttle {
                if throttle != nil { throw array.error("the throttle is given twice: by % here and by throttle") }
                throttle = limit
            }
            elements = indices.values.map { ($0, []) }
        } else if let sweep = f["sweep"] {
            let parameters = try sweep.sweepParameters()
            for (name, _) in parameters where task.environment[name] != nil {
                throw sweep.error("parameter \(name) is also in the task's environment; each element gets the parameter's value under that name")
            }
            elements = TaskArrays.combinations(parameters).enumerated().map { ($0.offset, $0.element) }
        }
        return TaskArrays.expand(task, elements: elements, throttle: throttle)
    }

    /// `{task, index, count, throttle, parameters}`: which element of an array a task is.
    func arrayElement(id: String) throws(SpecError) -> ArrayElement {
        let f = try object(known: ["task", "index", "count", "throttle", "parameters"])
        guard let task = f["task"], let index = f["index"], let count = f["count"] else { throw error("an array's element needs task, index and count") }
        var element = ArrayElement(task: try task.identifier(), index: try index.int(minimum: 0, maximum: TaskArrays.maximumIndex),
                                   count: try count.int(minimum: 1, maximum: TaskArrays.maximumElements), throttle: try f["throttle"]?.int(minimum: 1))
        guard id == "\(element.task)[\(element.index)]" else { throw error("element \(element.index) of array \(element.task) has the id \(element.task)[\(element.index)], not \(id)") }
        if let parameters = f["parameters"] {
            var pairs: [[String]] = []
            for pair in try parameters.list() {
                let words = try pair.stringList()
                guard words.count == 2 else { throw pair.error("a parameter is [name, value]") }
                try pair.checkParameterName(words[0])
                pairs.append(words)
            }
            element.parameters = pairs
        }
        return element
    }

    /// A sweep's parameter becomes a variable of its name in each element.
    func checkParameterName(_ name: String) throws(SpecError) {
        guard name != "index" else { throw error("'index' is the element's number ({index}); name the parameter otherwise") }
        guard name.first.map({ $0 == "_" || ($0.isASCII && $0.isLetter) }) == true,
              name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) })
        else { throw error("'\(name.prefix(80))' cannot name a parameter: each element gets it as a variable (letters, digits and _)") }
        if let problem = LaunchPolicy.problem(variable: name) { throw error(problem) }
    }

    /// `1-100%8`, `0,6,16-32`, `0-15:4` (Slurm's --array), a single index, or a list of them.
    func arrayIndices() throws(SpecError) -> TaskArrays.Indices {
        if case .sequence = node {
            var values: [Int] = []
            var seen = Set<Int>()
            for item in try list() {
                let value = try item.int(minimum: 0, maximum: TaskArrays.maximumIndex)
                guard seen.insert(value).inserted else { throw item.error("index \(value) is given twice") }
                values.append(value)
            }
            guard !values.isEmpty else { throw error("an array needs at least one index") }
            guard values.count <= TaskArrays.maximumElements else { throw error("more than \(TaskArrays.maximumElements) elements") }
            return TaskArrays.Indices(values: values, throttle: nil)
        }
        switch TaskArrays.indices(try string()) {
        case .success(let indices): return indices
        case .failure(let problem): throw error(problem.message)
        }
    }

    /// `{name: [values…], …}`: names usable as variables, each with at least one value.
    func sweepParameters() throws(SpecError) -> [(name: String, values: [String])] {
        guard case let .mapping(mapping) = node, !mapping.isEmpty else { throw error("expected a mapping of parameters to lists of values, such as {mesh: [coarse, fine]}") }
        var parameters: [(name: String, values: [String])] = []
        var combinations = 1
        for (key, value) in mapping {
            let name = try Field(node: key, path: path, file: file).string()
            let field = child(name, value)
            try field.checkParameterName(name)
            let values = try field.stringList()
            guard !values.isEmpty else { throw field.error("a parameter needs at least one value") }
            combinations *= values.count
            guard combinations <= TaskArrays.maximumElements else { throw error("more than \(TaskArrays.maximumElements) combinations") }
            parameters.append((name, values))
        }
        return parameters
    }

    static let taskFields = ["id", "commandLine", "dependsOn", "multiInstance", "constraints", "environment", "displayName",
                             "resourceFiles", "outputFiles", "exitConditions", "requiredSlots", "userIdentity", "workingDirectory",
                             "applicationPackageReferences", "array", "sweep", "throttle", "gpusPerNode", "gpusPerRank", "memoryPerNode",
                             "dependencyConditions"]
    static let taskAliases = ["multiInstanceSettings": "multiInstance", "environmentSettings": "environment", "slots": "requiredSlots"]

    func task() throws(SpecError) -> TaskSpec {
        let f = try object(known: Self.taskFields,
                           aliases: Self.taskAliases)
        guard let id = f["id"] else { throw error("a task needs an id") }
        guard let command = f["commandLine"] else { throw error("a task needs a commandLine") }
        var isElement = false
        if let array = f["array"], case .mapping = array.node { isElement = true }
        // Azure's shape (multiInstanceSettings) means Azure's meaning: the commandLine runs
        // once, on the primary node, and starts its own mpirun.
        let azureShape = node["multiInstanceSettings"] != nil
        var task = TaskSpec(id: isElement ? try id.elementIdentifier() : try id.identifier(), commandLine: try command.commandLine(),
                            dependsOn: [],
                            multiInstance: try f["multiInstance"]?.multiInstance(azureShape: azureShape),
                            constraints: try f["constraints"]?.constraints() ?? Constraints(),
                            environment: try f["environment"]?.environment() ?? [:])
        if let dependencies = try f["dependsOn"]?.dependencies() {
            task.dependsOn = dependencies.ids
            task.dependencyConditions = dependencies.conditions.isEmpty ? nil : dependencies.conditions
        }
        if let written = f["dependencyConditions"] {
            // As an encoded JobSpec gives them: {task id: condition} beside plain dependsOn ids.
            guard case .mapping(let mapping) = written.node else { throw written.error("expected a mapping of task ids to conditions") }
            var conditions = task.dependencyConditions ?? [:]
            for (key, value) in mapping {
                let id = try Field(node: key, path: written.path, file: written.file).string()
                let field = written.child(id, value)
                let text = try field.string()
                guard let condition = JobDependency.Condition(rawValue: text), condition != .aftercorr, task.dependsOn.contains(id) else {
                    throw field.error("expected afterok, afterany or afternotok for a task in dependsOn, found '\(text.prefix(40))'")
                }
                conditions[id] = condition
            }
            task.dependencyConditions = conditions.isEmpty ? nil : conditions
        }
        task.resourceFiles = try f["resourceFiles"]?.resourceFiles()
        task.outputFiles = try f["outputFiles"]?.outputFiles()
        task.exitConditions = try f["exitConditions"]?.exitConditions()
        if let slots = f["requiredSlots"] {
            let value = try slots.int(minimum: 1, maximum: HostName.maximumSlots)
            if task.multiInstance != nil && value != 1 {
                throw slots.error("a multi-instance task takes processesPerNode slots on each node; requiredSlots must be 1 (as in Azure)")
            }
            task.requiredSlots = value == 1 ? nil : value
        }
        try f["userIdentity"]?.userIdentity()
        if let references = f["applicationPackageReferences"] {
            var list: [ApplicationPackageReference] = []
            for item in try references.list() {
                let r = try item.object(known: ["applicationId", "version"])
                guard let idField = r["applicationId"] else { throw item.error("an application package reference needs an applicationId") }
                let id = try idField.string()
                do { try ApplicationPackages.checkName(id, "application id", dots: false) } catch { throw idField.error(error.description) }
                var reference = ApplicationPackageReference(applicationId: id)
                if let versionField = r["version"] {
                    let version = try versionField.string()
                    do { try ApplicationPackages.checkName(version, "version", dots: true) } catch { throw versionField.error(error.description) }
                    reference.version = version
                }
                list.append(reference)
            }
            task.applicationPackageReferences = list
        }
        try resources(f, into: &task)
        if let directory = f["workingDirectory"] {
            let text = try directory.nonEmptyString()
            guard text.hasPrefix("/"), !text.split(separator: "/").contains("..") else {
                throw directory.error("'\(text.prefix(200))' must be an absolute path (a directory on the pool's nodes) without ..")
            }
            task.workingDirectory = text
        }
        return task
    }

    /// A task's GPUs and memory per node (`TaskResources`), each error at its field.
    func resources(_ f: [String: Field], into task: inout TaskSpec) throws(SpecError) {
        let gpusPerNode = try f["gpusPerNode"]?.int(minimum: 1, maximum: Allocator.maximumGPUsPerNode)
        let gpusPerRank = try f["gpusPerRank"]?.int(minimum: 1, maximum: Allocator.maximumGPUsPerNode)
        let memory = try f["memoryPerNode"]?.nonEmptyString()
        do {
            try TaskResources.apply(gpusPerNode: gpusPerNode, gpusPerRank: gpusPerRank, memory: memory, to: &task)
        } catch {
            throw (f[error.field.rawValue] ?? self).error(error.message)
        }
    }

    /// Azure's resourceFiles: one source each (httpUrl, storageContainerUrl or
    /// autoStorageContainerName), a filePath inside the task's directory, an octal fileMode.
    func resourceFiles() throws(SpecError) -> [ResourceFile] {
        var files: [ResourceFile] = []
        for item in try list() {
            let f = try item.object(known: ["httpUrl", "storageContainerUrl", "autoStorageContainerName", "blobPrefix", "filePath", "fileMode"])
            let sources = ["httpUrl", "storageContainerUrl", "autoStorageContainerName"].filter { f[$0] != nil }
            guard sources.count == 1 else {
                throw item.error(sources.isEmpty ? "a resource file needs one of httpUrl, storageContainerUrl or autoStorageContainerName"
                                                 : "a resource file takes one of \(sources.joined(separator: ", ")), not several")
            }
            var file = ResourceFile()
            if let url = f["httpUrl"] {
                let text = try url.nonEmptyString()
                guard let components = URLComponents(string: text), ["http", "https"].contains(components.scheme?.lowercased() ?? ""),
                      components.host?.isEmpty == false
                else { throw url.error("'\(text.prefix(200))' is not an http(s) URL") }
                guard f["filePath"] != nil else { throw item.error("an httpUrl resource file needs a filePath (the file's name in the task's directory)") }
                guard f["blobPrefix"] == nil else { throw f["blobPrefix"]!.error("blobPrefix goes with storageContainerUrl or autoStorageContainerName") }
                file.httpUrl = text
            }
            if let url = f["storageContainerUrl"] {
                let text = try url.nonEmptyString()
                do {
                    _ = try ObjectLocation.parse(text, endpoint: "http://configured.endpoint")
                } catch {
                    throw url.error(error.description)
                }
                file.storageContainerUrl = text
            }
            if let name = f["autoStorageContainerName"] {
                let text = try name.nonEmptyString()
                do {
                    try ObjectLocation.checkBucket(text, in: text)
                } catch {
                    throw name.error(error.description)
                }
                file.autoStorageContainerName = text
            }
            file.blobPrefix = try f["blobPrefix"]?.string()
            if let path = f["filePath"] {
                let text = try path.nonEmptyString()
                let parts = text.split(separator: "/", omittingEmptySubsequences: true)
                guard !text.hasPrefix("/"), !parts.contains(".."), !parts.isEmpty else {
                    throw path.error("'\(text.prefix(200))' must be a relative path inside the task's directory (no leading / and no ..)")
                }
                file.filePath = text
            }
            if let mode = f["fileMode"] {
                let text = try mode.nonEmptyString()
                guard let value = Int(text, radix: 8), value >= 0, value <= 0o7777 else { throw mode.error("expected octal permissions such as 0755, found '\(text.prefix(40))'") }
                file.fileMode = text
            }
            files.append(file)
        }
        return files
    }

    /// Azure's outputFiles: `{filePattern, destination: {container: {containerUrl, path}},
    /// uploadOptions: {uploadCondition}}`.
    func outputFiles() throws(SpecError) -> [OutputFile] {
        var files: [OutputFile] = []
        for item in try list() {
            let f = try item.object(known: ["filePattern", "destination", "uploadOptions"])
            guard let patternField = f["filePattern"] else { throw item.error("an output file needs a filePattern") }
            let pattern = try patternField.nonEmptyString()
            do {
                _ = try FilePattern(pattern)
            } catch {
                throw patternField.error(error.description)
            }
            guard let destination = f["destination"] else { throw item.error("an output file needs a destination: {container: {containerUrl: …}}") }
            let d = try destination.object(known: ["container"])
            guard let container = d["container"] else { throw destination.error("the destination needs a container: {containerUrl: …, path: …}") }
            let c = try container.object(known: ["containerUrl", "path"])
            guard let urlField = c["containerUrl"] else { throw container.error("the container needs a containerUrl") }
            let url = try urlField.nonEmptyString()
            do {
                _ = try ObjectLocation.parse(url, endpoint: "http://configured.endpoint")
            } catch {
                throw urlField.error(error.description)
            }
            var condition = UploadCondition.taskCompletion
            if let options = f["uploadOptions"] {
                let o = try options.object(known: ["uploadCondition"])
                if let value = o["uploadCondition"] {
                    let text = try value.string()
                    guard let known = UploadCondition.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
                        throw value.error("unknown uploadCondition '\(text.prefix(40))' (expected taskSuccess, taskFailure or taskCompletion)")
                    }
                    condition = known
                }
            }
            var path = try c["path"]?.string()
            if let text = path {
                let parts = text.split(separator: "/", omittingEmptySubsequences: true)
                guard !parts.contains(".."), !parts.contains(".") else { throw c["path"]!.error("'\(text.prefix(200))': object names have no . or .. parts") }
                path = parts.isEmpty ? nil : parts.joined(separator: "/")
            }
            files.append(OutputFile(filePattern: pattern, containerUrl: url, path: path, uploadCondition: condition))
        }
        return files
    }

    /// `[a, b]` or Azure's `{taskIds: [...], taskIdRanges: [{start: 1, end: 9}]}`.
    /// A task's dependsOn: task ids, `{task: mesh, condition: afterany}` (Slurm's kinds:
    /// afterok, afterany, afternotok, aftercorr), or Azure's `{taskIds, taskIdRanges}`; the
    /// ids, and the condition of each that is not afterok.
    func dependencies() throws(SpecError) -> (ids: [String], conditions: [String: JobDependency.Condition]) {
        if case .sequence = node {
            var ids: [String] = [], conditions: [String: JobDependency.Condition] = [:]
            for item in try list() {
                guard case .mapping = item.node else { ids.append(try item.string()); continue }
                let d = try item.object(known: ["task", "condition"])
                guard let task = d["task"] else { throw item.error("a task dependency needs the task's id: {task: mesh, condition: afterany}") }
                let id = try task.nonEmptyString()
                ids.append(id)
                if let condition = d["condition"] {
                    let text = try condition.string()
                    guard let value = JobDependency.Condition(rawValue: text.lowercased()) else {
                        throw condition.error("unknown condition '\(text.prefix(40))' (expected \(JobDependency.Condition.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    if value != .afterok { conditions[id] = value }
                }
            }
            return (ids, conditions)
        }
        return (try azureDependencies(), [:])
    }

    /// Azure's `{taskIds, taskIdRanges}`.
    func azureDependencies() throws(SpecError) -> [String] {
        let f = try object(known: ["taskIds", "taskIdRanges"])
        var ids = try f["taskIds"]?.stringList() ?? []
        for range in try f["taskIdRanges"]?.list() ?? [] {
            let r = try range.object(known: ["start", "end"])
            guard let start = r["start"], let end = r["end"] else { throw range.error("a range needs start and end") }
            let low = try start.int(minimum: 0), high = try end.int(minimum: 0)
            guard low <= high else { throw range.error("start \(low) is after end \(high)") }
            guard high - low < 100_000 else { throw range.error("range of \(high - low + 1) ids is too large") }
            ids += (low...high).map(String.init)
        }
        return ids
    }

    func multiInstance(azureShape: Bool = false) throws(SpecError) -> MultiInstance {
        let f = try object(known: ["instances", "processesPerNode", "coordinationCommandLine", "transport", "replicas", "launch", "mpirunOptions", "commonResourceFiles",
                                   "cpusPerRank", "exclusive", "ranks", "totalRanks", "labelRanks"],
                           aliases: ["numberOfInstances": "instances"])
        var transport = Transport.auto
        if let t = f["transport"] {
            let name = try t.string()
            guard let value = Transport(rawValue: name) else {
                throw t.error("unknown transport '\(name)' (expected \(Transport.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            transport = value
        }
        var launch = azureShape ? LaunchMode.raw : LaunchMode.mpirun
        if let l = f["launch"] {
            let name = try l.string()
            guard let value = LaunchMode(rawValue: name) else { throw l.error("unknown launch mode '\(name)' (expected mpirun or raw)") }
            launch = value
        }
        var multi = MultiInstance(instances: try f["instances"]?.int(minimum: 1, maximum: Hostlist.maximumHosts) ?? 1,
                                  processesPerNode: try f["processesPerNode"]?.int(minimum: 1, maximum: HostName.maximumSlots) ?? 1,
                                  coordinationCommandLine: try f["coordinationCommandLine"]?.commandLine(),
                                  transport: transport,
                                  replicas: try f["replicas"]?.int(minimum: 1, maximum: MultiInstance.maximumReplicas) ?? 1,
                                  launch: launch,
                                  mpirunOptions: try f["mpirunOptions"]?.mpirunOptions() ?? [])
        multi.commonResourceFiles = try f["commonResourceFiles"]?.resourceFiles()
        if let cpus = f["cpusPerRank"] {
            multi.cpusPerRank = try cpus.int(minimum: 1, maximum: HostName.maximumSlots)
            if multi.slotsPerNode > HostName.maximumSlots {
                throw cpus.error("processesPerNode \(multi.processesPerNode) × cpusPerRank \(multi.threadsPerRank) is \(multi.slotsPerNode) cores on a node, more than any node has (at most \(HostName.maximumSlots))")
            }
        }
        if let exclusive = f["exclusive"] { multi.exclusive = try exclusive.bool() }
        if let label = f["labelRanks"] { multi.labelRanks = try label.bool() ? true : nil }
        // Ranks in all (as Slurm's -n beside -N): spread as evenly as can be, the first nodes one more.
        if let ranks = f["ranks"] ?? f["totalRanks"] {
            let total = try ranks.int(minimum: 1, maximum: Hostlist.maximumHosts * HostName.maximumSlots)
            guard let blocks = MultiInstance.spread(ranks: total, nodes: multi.instances) else {
                throw ranks.error("\(total) ranks cannot give each of \(multi.instances) nodes one")
            }
            if f["processesPerNode"] != nil, multi.processesPerNode != blocks.processesPerNode {
                throw ranks.error("\(total) ranks on \(multi.instances) nodes are at most \(blocks.processesPerNode) per node (the last nodes fewer), not processesPerNode \(multi.processesPerNode)")
            }
            multi.processesPerNode = blocks.processesPerNode
            if total != multi.instances * multi.processesPerNode { multi.totalRanks = total }
        }
        return multi
    }

    /// mpirun options a job may give (LaunchPolicy), each error naming its word.
    func mpirunOptions() throws(SpecError) -> [String] {
        let words = try stringList()
        if let (index, reason) = LaunchPolicy.problem(mpirunOptions: words) {
            let items = try list()
            throw (index < items.count ? items[index] : self).error(reason)
        }
        return words
    }

    func constraints() throws(SpecError) -> Constraints {
        let f = try object(known: ["maxWallClockTime", "maxTaskRetryCount", "killGracePeriod", "retentionTime", "signalBeforeTimeLimit", "idleTimeout"])
        var constraints = Constraints(maxWallClockTime: try f["maxWallClockTime"]?.duration(),
                                      maxTaskRetryCount: try f["maxTaskRetryCount"]?.int(minimum: 0, maximum: 1000) ?? 0,
                                      killGracePeriod: try f["killGracePeriod"]?.duration() ?? 5)
        if let warning = f["signalBeforeTimeLimit"] {
            let w = try warning.object(known: ["signal", "seconds"])
            guard let signalField = w["signal"] else { throw warning.error("needs signal (USR1, USR2, TERM, … or a number)") }
            let name = try signalField.string()
            guard let signal = WarningSignal.signal(named: name) else {
                throw signalField.error("expected a signal such as USR1, USR2, TERM or a number 1-64 (not KILL or STOP), found '\(name.prefix(40))'")
            }
            let seconds = try w["seconds"]?.duration() ?? 60
            guard let limit = constraints.maxWallClockTime else { throw warning.error("warns before maxWallClockTime ends a run: set maxWallClockTime too") }
            guard seconds > 0, seconds < limit else {
                throw (w["seconds"] ?? warning).error("must be more than 0 and less than maxWallClockTime (\(Durations.format(limit))), found \(Durations.format(seconds))")
            }
            constraints.signalBeforeTimeLimit = WarningSignal(signal: signal, seconds: seconds)
        }
        if let idle = f["idleTimeout"] {
            let seconds = try idle.duration()
            guard seconds >= 1 else { throw idle.error("must be at least 1s, found \(Durations.format(seconds))") }
            constraints.idleTimeout = seconds
        }
        return constraints
    }
}

extension Yams.Node {
    subscript(key: String) -> Yams.Node? {
        guard case let .mapping(mapping) = self else { return nil }
        return mapping.first { $0.key.scalar?.string == key }?.value
    }
}

extension JobSpec {
    /// Programs written as relative paths (`./solver`, `bin/mesh`) that exist relative to
    /// `directory` (the job file's, or the current one for quick runs) become absolute,
    /// since tasks start in directories of their own.
    public mutating func resolvePrograms(relativeTo directory: String) {
        func resolve(_ words: inout [String]) {
            guard let program = words.first, program.contains("/"), !program.hasPrefix("/") else { return }
            let candidate = URL(fileURLWithPath: program, relativeTo: URL(fileURLWithPath: directory, isDirectory: true)).standardizedFileURL.path
            if FileManager.default.fileExists(atPath: candidate) { words[0] = candidate }
        }
        for index in tasks.indices {
            resolve(&tasks[index].commandLine)
            if var coordination = tasks[index].multiInstance?.coordinationCommandLine {
                resolve(&coordination)
                tasks[index].multiInstance?.coordinationCommandLine = coordination
            }
        }
    }
}
