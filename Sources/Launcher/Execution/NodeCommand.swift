/// How to reach a node over ssh: the prefix of every connection Cohort opens to it (one
/// per node, which carries its agent; see `AgentFleet`).
public struct NodeCommand: Sendable {
    public var sshConfig: String?
    /// Seconds ssh may take to connect before the node counts as unreachable.
    public var connectTimeout: Int = 10

    public init(sshConfig: String?, connectTimeout: Int = 10) {
        self.sshConfig = sshConfig
        self.connectTimeout = connectTimeout
    }

    /// The ssh prefix for `node`, up to and including its destination. `--` ends ssh's own
    /// options first, so no destination can ever be read as one (`-oProxyCommand=…`).
    public func sshPrefix(_ node: Node) -> [String] {
        var arguments = ["ssh"]
        if let sshConfig { arguments += ["-F", sshConfig] }
        arguments += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=\(connectTimeout)", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
        arguments += ["--", (node.user.map { "\($0)@" } ?? "") + node.address]
        return arguments
    }
}
