/// Builds the mpirun command line of a managed multi-instance attempt: hostfile, rank count,
/// mapping, transport, root flags, ssh agent, interface pinning, exported environment.
public struct MPIRunCommand: Sendable {
    public var mpirun: String
    public var hostfile: String
    public var nodes: [Node]
    public var processesPerNode: Int
    public var transport: Transport
    public var isLocalPool: Bool
    public var localCores: Int
    public var runningAsRoot: Bool
    public var sshConfig: String?
    public var network: String?
    public var mcaParameters: [String: String] = [:]
    /// Cores of each rank: each is bound to that many (`PE=`), where the cores are there.
    public var cpusPerRank = 1
    /// Ranks in all when the last nodes hold fewer (block distribution); nil: every node full.
    public var totalRanks: Int?
    /// `cohort-rsh`, when mpirun starts its daemons through the node agents (else ssh).
    public var remoteShell: String?
    /// Whether mpirun may skip resolving the hostfile's names (`if_base_do_not_resolve`): true
    /// when every node is known to be another machine. mpirun resolves each name to learn
    /// whether it is this machine, one lookup after another, and each lost DNS answer costs
    /// the resolver's 5 s timeout (32 names: 25 s instead of 5 s on the virtual cluster).
    /// Without resolution mpirun knows this machine by its name only, so it must not be set
    /// when a node could be this machine under an address.
    public var skipsNameResolution = false
    /// Each line of the ranks' output tagged with its rank (`--tag-output`).
    public var tagsOutput = false
    /// Variables mpirun must hand to every rank (`-x NAME`).
    public var exportedNames: [String]
    public var extraOptions: [String]
    /// `cohort-rank-env` (`ExecutionSettings.rankWrapper`), which sets each rank's per-node variables, then the program.
    public var rankWrapper: [String]
    public var application: [String]

    /// The hostfile for the group: one line per node with its ranks; on the local pool one
    /// `localhost` line holding all of them, since every virtual node is this machine.
    /// With `totalRanks`, each node's line holds its own share (the first nodes one more).
    public static func hostfileText(nodes: [Node], processesPerNode: Int, isLocalPool: Bool, totalRanks: Int? = nil) -> String {
        if isLocalPool { return "localhost slots=\(totalRanks ?? nodes.count * processesPerNode)\n" }
        return Hostfile.write(nodes.indices.map {
            HostEntry(host: nodes[$0].address, user: nodes[$0].user,
                      slots: MultiInstance.ranks(onNode: $0, of: nodes.count, total: totalRanks, processesPerNode: processesPerNode))
        }, format: .openMPI)
    }

    /// mpirun flags that select the transport. One-sided windows over ob1 go through osc
    /// sm (one node) or pt2pt: Open MPI 4.1's default osc/rdma cannot make a window across
    /// hosts over btl/tcp (MPI_ERR_WIN) and crashes in a 64-bit compare-and-swap over vader
    /// (open-mpi/ompi#7967). (pt2pt refuses MPI_THREAD_MULTIPLE in 4.1: such a program's
    /// windows need one node or the rdma/ucx transports.)
    public static func transportFlags(_ transport: Transport) -> [String] {
        switch transport {
        case .shm: ["--mca", "pml", "ob1", "--mca", "btl", "self,vader", "--mca", "osc", "sm,pt2pt"]
        case .tcp: ["--mca", "pml", "ob1", "--mca", "btl", "self,vader,tcp", "--mca", "osc", "sm,pt2pt"]
        case .rdma: ["--mca", "pml", "ucx", "--mca", "osc", "ucx"]
        // UCX refuses to load without verbs unless told any device will do.
        case .ucx: ["--mca", "pml", "ucx", "--mca", "pml_ucx_devices", "any", "--mca", "pml_ucx_tls", "any"]
        case .auto: []
        }
    }

    static let doNotResolve = "if_base_do_not_resolve"

    /// Whether a group's nodes are all other machines than this one, by what their agents
    /// said at hello: a node whose agent runs under this machine's hostname (or is addressed
    /// as localhost) may be this machine under another name, which mpirun would only see by
    /// resolving it.
    public static func nodesAreElsewhere(_ nodes: [Node], hostnames: [String?], thisHost: String) -> Bool {
        guard nodes.count == hostnames.count, !nodes.isEmpty else { return false }
        return zip(nodes, hostnames).allSatisfy { node, hostname in
            guard let hostname, !node.isLocal else { return false }
            return hostname != thisHost && node.address != thisHost
        }
    }

    public var arguments: [String] {
        let ranks = totalRanks ?? nodes.count * processesPerNode
        var a = [mpirun, "--hostfile", hostfile, "-np", String(ranks)]
        if isLocalPool {
            // Virtual nodes share this machine's cores: don't pin ranks, yield when idle.
            if ranks * cpusPerRank > localCores {
                a += ["--bind-to", "none", "--mca", "mpi_yield_when_idle", "1"]
            } else if cpusPerRank > 1 {
                a += ["--map-by", "slot:PE=\(cpusPerRank)", "--bind-to", "core", "--report-bindings"]
            }
        } else {
            // Hybrid ranks get their cores each; Open MPI refuses if a node has fewer. Uneven
            // shares (-N 3 -n 4) fill each node's hostfile slots in order instead.
            let pattern = totalRanks == nil ? "ppr:\(processesPerNode):node" : "slot"
            a += ["--map-by", cpusPerRank > 1 ? "\(pattern):PE=\(cpusPerRank)" : pattern]
            // Hybrid ranks' cores are written to the attempt's stderr ("MCW rank 0 bound to …").
            if cpusPerRank > 1 { a += ["--bind-to", "core", "--report-bindings"] }
        }
        if runningAsRoot { a.append("--allow-run-as-root") }
        a += Self.transportFlags(transport)
        if let remoteShell, !isLocalPool {
            // Every daemon from mpirun itself (no tree spawn: cohort-rsh reaches the controller
            // from this machine only), each a message on its node's agent channel.
            a += ["--mca", "plm_rsh_agent", remoteShell, "--mca", "plm_rsh_no_tree_spawn", "1"]
        } else if let sshConfig, !isLocalPool {
            a += ["--mca", "plm_rsh_agent", "ssh -F \(sshConfig)"]
        }
        if let network, !isLocalPool { a += ["--mca", "btl_tcp_if_include", network, "--mca", "oob_tcp_if_include", network] }
        if skipsNameResolution && !isLocalPool && mcaParameters[Self.doNotResolve] == nil { a += ["--mca", Self.doNotResolve, "1"] }
        for name in mcaParameters.keys.sorted() { a += ["--mca", name, mcaParameters[name]!] }
        if tagsOutput { a.append("--tag-output") }
        for name in exportedNames { a += ["-x", name] }
        a += extraOptions
        return a + rankWrapper + application
    }
}
