/// What a job file may ask of mpirun, which runs on the server's host (for a pool of remote
/// nodes, a machine the job's own code never runs on). The trust model (README, "Who may
/// run what"): whoever submits a job runs code as the server's user on the pool's nodes;
/// only the pool's configuration (its admin: `cohort pool add --mca`) chooses how mpirun
/// launches its daemons or which code it loads. So a job file may tune the data path
/// (transports, collectives, mapping, binding, reporting) and nothing else.
public enum LaunchPolicy {
    /// MCA frameworks a job may set parameters of: the MPI data path, read by the ranks.
    /// Launch agents (plm, orte, odls, ess), the runtime's wiring (oob, routed, pmix) and
    /// component loading (mca_base) stay the pool's.
    static let jobFrameworks = ["btl", "pml", "mtl", "coll", "osc", "io", "fs", "fcoll", "sharedfp", "vprotocol", "mpi", "rmaps_base", "hwloc_base"]

    /// mpirun options a job may give, and how many values each takes.
    static let jobOptions: [String: Int] = [
        "--map-by": 1, "--rank-by": 1, "--bind-to": 1, "--cpus-per-proc": 1, "--cpus-per-rank": 1, "--timeout": 1,
        "-x": 1, "--mca": 2, "-mca": 2, "--gmca": 2, "-gmca": 2,
        "--report-bindings": 0, "--display-map": 0, "--display-devel-map": 0, "--display-allocation": 0, "--tag-output": 0,
        "--timestamp-output": 0, "--merge-stderr-to-stdout": 0, "--oversubscribe": 0, "--nooversubscribe": 0,
        "--use-hwthread-cpus": 0, "--bynode": 0, "--byslot": 0, "--bycore": 0, "--bysocket": 0, "--get-stack-traces": 0,
        "--report-state-on-timeout": 0, "-v": 0, "--verbose": 0, "-q": 0, "--quiet": 0,
    ]

    /// Why a job may not set MCA parameter `name`, or nil.
    public static func problem(mcaParameter name: String) -> String? {
        let allowed = jobFrameworks.contains { name == $0 || name.hasPrefix("\($0)_") }
        return allowed ? nil : "the MCA parameter \(name) is not a job's to set (it can choose what mpirun runs or loads on the server's host): "
            + "set it on the pool (cohort pool add … --mca \(name)=VALUE); jobs may set \(jobFrameworks.map { "\($0)_*" }.joined(separator: ", "))"
    }

    /// Why a job may not set the variable `name`: MPI's and PMIx's own (OMPI_MCA_*, OPAL_*,
    /// PMIX_*…) reach mpirun's environment, so they follow the MCA rule; or nil.
    public static func problem(variable name: String) -> String? {
        for prefix in ["OMPI_MCA_", "OPAL_MCA_", "PMIX_MCA_", "PRTE_MCA_", "ORTE_MCA_"] where name.hasPrefix(prefix) {
            return problem(mcaParameter: String(name.dropFirst(prefix.count))).map { "\(name): \($0)" }
        }
        for prefix in ["OMPI_", "OPAL_", "ORTE_", "PMIX_", "PRTE_"] where name.hasPrefix(prefix) {
            return "\(name) is Open MPI's or PMIx's own variable (it can change what mpirun runs or loads on the server's host): set it on the pool, not in a job"
        }
        return nil
    }

    /// The index and reason of the first `mpirunOptions` word a job may not give, or nil.
    public static func problem(mpirunOptions words: [String]) -> (index: Int, reason: String)? {
        var index = 0
        while index < words.count {
            let word = words[index]
            guard let count = jobOptions[word] else {
                return (index, "mpirun option '\(word.prefix(80))' is not one a job may give (allowed: \(jobOptions.keys.sorted().joined(separator: " ")))")
            }
            guard index + count < words.count else { return (index, "\(word) needs \(count) value\(count == 1 ? "" : "s")") }
            if count == 2, let problem = problem(mcaParameter: words[index + 1]) { return (index + 1, problem) }
            if word == "-x" {
                let name = String(words[index + 1].prefix { $0 != "=" })
                if let problem = problem(variable: name) { return (index + 1, problem) }
            }
            index += count + 1
        }
        return nil
    }

    /// Variables that make a program load code (`LD_PRELOAD`, `LD_LIBRARY_PATH`, …): given to
    /// the ranks (`-x NAME=VALUE`), never to mpirun's own process on the server's host.
    public static func isLoaderVariable(_ name: String) -> Bool { name.hasPrefix("LD_") || name == "GCONV_PATH" || name == "MALLOC_CONF" }
}
