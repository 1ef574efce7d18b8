import Foundation

/// What of the submitter's environment a submitted job carries, as sbatch's `--export`:
/// `ALL` (the default: PATH, LD_LIBRARY_PATH and what `module load` set reach the tasks, on
/// every node), `NONE`, or names — each item `NAME` (taken from the environment if set
/// there) or `NAME=VALUE`, comma-separated (`ALL,OMP_PROC_BIND=close`). The job file's own
/// variables win over the exported ones.
public struct ExportedEnvironment: Equatable, Sendable {
    public var everything: Bool
    public var names: [String]
    public var values: [String: String]

    /// Every variable of the submitter's (ALL).
    public static let everything = ExportedEnvironment(everything: true, names: [], values: [:])

    /// Parses `--export`'s value; nil if it is malformed.
    public static func parse(_ text: String) -> ExportedEnvironment? {
        var export = ExportedEnvironment(everything: false, names: [], values: [:])
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            switch item.uppercased() {
            case "ALL": export.everything = true
            case "NONE": continue
            default:
                if let equals = item.firstIndex(of: "=") {
                    let name = String(item[..<equals])
                    guard isName(name) else { return nil }
                    export.values[name] = String(item[item.index(after: equals)...])
                } else {
                    guard isName(item) else { return nil }
                    export.names.append(item)
                }
            }
        }
        return export
    }

    /// A variable name a shell and mpirun's `-x` take: letters, digits and '_', not first a digit.
    static func isName(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return text.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    /// Variables that describe the submitting shell or process, not what a task should see:
    /// its directory, nesting, last command; a parent Cohort task's, rank's or MPI job's own.
    static func belongsToTheSubmitter(_ name: String) -> Bool {
        ["PWD", "OLDPWD", "SHLVL", "_"].contains(name) || AttemptExecutor.inheritedPrefixesToDrop.contains { name.hasPrefix($0) }
    }

    /// The variables to give the job from `environment` (the submitter's).
    public func variables(from environment: [String: String]) -> [String: String] {
        var chosen: [String: String] = [:]
        if everything {
            for (name, value) in environment where Self.isName(name) && !Self.belongsToTheSubmitter(name) { chosen[name] = value }
        }
        for name in names { if let value = environment[name] { chosen[name] = value } }
        return chosen.merging(values) { $1 }
    }

    /// Puts the exported variables under `job`'s own; an error if together they pass the
    /// limits of a task's environment.
    public func apply(to job: inout JobSpec, from environment: [String: String]) throws(SpecError) {
        let exported = variables(from: environment)
        guard !exported.isEmpty else { return }
        let merged = exported.merging(job.environment) { $1 }
        for task in job.tasks {
            if let excess = TaskEnvironmentLimits.excess(merged.merging(task.environment) { $1 }) {
                throw SpecError(file: "--export", field: "", message: "the exported environment with task \(task.id)'s variables is \(excess) (--export=NONE or --export=NAME,…)")
            }
        }
        job.environment = merged
    }
}
