import Foundation
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
        if let directory = Self.multiplexDirectory {
            // One connection per host kept for a minute after its last session: the next
            // `cohort run` starts its agents over it without a handshake (0.31 → 0.09 s a
            // host here; 32 handshakes cost 3.4 s on 2 cores), as Ansible does.
            arguments += ["-o", "ControlMaster=auto", "-o", "ControlPath=\(directory)/%C", "-o", "ControlPersist=60"]
        }
        arguments += ["--", (node.user.map { "\($0)@" } ?? "") + node.address]
        return arguments
    }

    /// This user's directory of ssh control sockets (mode 0700, owned by them), or nil —
    /// then every connection is its own — if it cannot be made safely or
    /// `COHORT_SSH_MULTIPLEX=0` asks for none.
    static let multiplexDirectory: String? = {
        if ProcessInfo.processInfo.environment["COHORT_SSH_MULTIPLEX"] == "0" { return nil }
        let directory = "/tmp/cohort-ssh-\(getuid())"
        _ = mkdir(directory, 0o700)
        var info = stat()
        guard lstat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid(), info.st_mode & 0o077 == 0 else { return nil }
        return directory
    }()
}
