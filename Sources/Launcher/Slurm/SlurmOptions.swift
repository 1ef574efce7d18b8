/// What a Slurm pool asks Slurm for with every allocation, and which cluster it talks to.
/// Every value travels to Slurm as one argument (`--partition=VALUE`), never through a shell.
public struct SlurmOptions: Codable, Sendable, Equatable {
    public var partition: String?
    public var account: String?
    public var qos: String?
    /// Node features every allocation needs (`--constraint`).
    public var constraint: String?
    /// Whole nodes per allocation (`--exclusive`): no other Slurm job shares them.
    public var exclusive: Bool?
    /// The slurm.conf every Slurm command is given (`SLURM_CONF`); nil: the environment's.
    public var configuration: String?
    /// The Slurm job Cohort runs inside (`--slurm-allocation`): every attempt is a step of
    /// it (`srun --jobid`) on its own nodes, rather than a Slurm job of its own.
    public var allocation: String?

    public init(partition: String? = nil, account: String? = nil, qos: String? = nil, constraint: String? = nil, exclusive: Bool? = nil,
                configuration: String? = nil, allocation: String? = nil) {
        self.partition = partition
        self.account = account
        self.qos = qos
        self.constraint = constraint
        self.exclusive = exclusive
        self.configuration = configuration
        self.allocation = allocation
    }

    /// The options every allocation (or step) of the pool carries.
    var requestArguments: [String] {
        var a: [String] = []
        if let allocation { return ["--jobid=\(allocation)", "--exact"] }
        if let partition { a.append("--partition=\(partition)") }
        if let account { a.append("--account=\(account)") }
        if let qos { a.append("--qos=\(qos)") }
        if let constraint { a.append("--constraint=\(constraint)") }
        if exclusive == true { a.append("--exclusive") }
        return a
    }
}
