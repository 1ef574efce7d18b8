#if canImport(Glibc)
import Glibc
#endif

/// How a pool's nodes are provided.
public enum PoolKind: String, Codable, Sendable {
    /// This machine, shown as a few virtual nodes so multi-node work runs on a laptop too.
    case local
    /// A fixed list of hosts from a hostfile or a Slurm hostlist, reached over ssh.
    case `static`
    /// Nodes of a Slurm cluster: Slurm allocates them to each attempt and starts its ranks
    /// (`srun --mpi=pmix`); their states come from Slurm.
    case slurm
}

/// A named set of nodes and how to reach them.
public struct Pool: Codable, Sendable, Equatable {
    public var name: String
    public var kind: PoolKind
    public var nodes: [Node]
    /// An ssh client configuration file for reaching the nodes (and for mpirun's daemons).
    public var sshConfig: String?
    /// The network (CIDR, e.g. 10.9.0.0/24) MPI's TCP traffic must use, if pinned.
    public var network: String?
    /// Price per node-hour, for usage reports.
    public var pricePerNodeHour: Double?
    /// MCA parameters every mpirun on this pool gets (`--mca NAME VALUE`), e.g.
    /// mpi_yield_when_idle=1 where ranks share cores.
    public var mcaParameters: [String: String]?
    /// The admin's health script, run on a node (over ssh) before it joins a group.
    public var healthCheckCommandLine: [String]?
    /// Azure's pool start task: run on each node when it joins the pool or comes back
    /// (after it was lost or unusable); with waitForSuccess the node takes no work until
    /// it succeeds there.
    public var startTask: NodeTaskSpec?
    /// Application packages every task on the pool gets (Azure's pool
    /// applicationPackageReferences), extracted before the task as its own are.
    public var applicationPackageReferences: [ApplicationPackageReference]?
    /// For a Slurm pool: where its nodes come from and what every allocation asks for.
    public var slurm: SlurmOptions?

    public init(name: String, kind: PoolKind, nodes: [Node], sshConfig: String? = nil, network: String? = nil, pricePerNodeHour: Double? = nil) {
        self.name = name
        self.kind = kind
        self.nodes = nodes
        self.sshConfig = sshConfig
        self.network = network
        self.pricePerNodeHour = pricePerNodeHour
    }

    /// The built-in local pool: `nodeCount` virtual nodes named local-0…, each with this
    /// machine's cores as slots. mpirun sees one host holding all their slots.
    public static func local(nodeCount: Int = 4, slotsPerNode: Int? = nil) -> Pool {
        let cores = slotsPerNode ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return Pool(name: "local", kind: .local, nodes: (0..<nodeCount).map { Node(id: "local-\($0)", address: "localhost", slots: cores) })
    }

    /// A static pool from hostfile entries; hosts without a slot count get `defaultSlots`.
    public static func fromHosts(name: String, entries: [HostEntry], defaultSlots: Int = 1) -> Pool {
        Pool(name: name, kind: .static, nodes: entries.map { Node(id: $0.host, address: $0.host, user: $0.user, slots: $0.slots ?? defaultSlots) })
    }

    public var totalSlots: Int { nodes.reduce(0) { $0 + $1.slots } }
}
