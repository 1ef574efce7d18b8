/// Turns "run these words on that node, in this directory, with this environment" into the
/// argument list to start here: the words themselves on this machine, or ssh to the node.
/// ssh joins its arguments into one remote shell line, so every word is quoted there.
public struct NodeCommand: Sendable {
    public var sshConfig: String?
    /// Seconds ssh may take to connect before the node counts as unreachable.
    public var connectTimeout: Int = 10

    public init(sshConfig: String?, connectTimeout: Int = 10) {
        self.sshConfig = sshConfig
        self.connectTimeout = connectTimeout
    }

    /// The ssh prefix for `node`, up to and including its destination.
    public func sshPrefix(_ node: Node) -> [String] {
        var arguments = ["ssh"]
        if let sshConfig { arguments += ["-F", sshConfig] }
        arguments += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=\(connectTimeout)", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
        arguments.append((node.user.map { "\($0)@" } ?? "") + node.address)
        return arguments
    }

    /// What to spawn here to run `words` on `node`. For a remote node the environment and the
    /// directory travel inside the quoted remote command; locally they are the spawn's own.
    public func arguments(_ words: [String], on node: Node, directory: String, environment: [String: String]) -> [String] {
        guard !node.isLocal else { return words }
        var remote = ["cd", directory, "&&", "exec", "env"]
        remote += environment.keys.sorted().map { "\($0)=\(environment[$0]!)" }
        remote += words
        // "&&" must reach the shell as an operator: quote everything else.
        let line = remote.map { $0 == "&&" ? $0 : CommandLineWords.shellQuote($0) }.joined(separator: " ")
        return sshPrefix(node) + ["--", line]
    }
}
