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

    /// The ssh prefix for `node`, up to and including its destination. `--` ends ssh's own
    /// options first, so no destination can ever be read as one (`-oProxyCommand=…`).
    public func sshPrefix(_ node: Node) -> [String] {
        var arguments = ["ssh"]
        if let sshConfig { arguments += ["-F", sshConfig] }
        arguments += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=\(connectTimeout)", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
        arguments += ["--", (node.user.map { "\($0)@" } ?? "") + node.address]
        return arguments
    }

    /// What to spawn here to run `words` on `node`. For a remote node the environment and the
    /// directory travel inside the quoted remote command; locally they are the spawn's own.
    public func arguments(_ words: [String], on node: Node, directory: String, environment: [String: String]) -> [String] {
        guard !node.isLocal else { return words }
        return sshPrefix(node) + [Self.remoteLine(words, directory: directory, environment: environment)]
    }

    /// The remote shell line: `cd DIR && export 'A=1' … && exec 'word' …`. Every word is
    /// quoted, so the remote shell runs the same argv as a local spawn would: `&&` stays a
    /// word and `FOO=bar` stays a program name, never an operator or an assignment.
    /// Variables go through `export` (not `env A=1 words`, where env would take a first word
    /// holding '=' for another assignment).
    static func remoteLine(_ words: [String], directory: String, environment: [String: String]) -> String {
        var line = "cd \(CommandLineWords.shellQuote(directory))"
        if !environment.isEmpty {
            line += " && export " + environment.keys.sorted().map { CommandLineWords.shellQuote("\($0)=\(environment[$0]!)") }.joined(separator: " ")
        }
        return line + " && exec " + CommandLineWords.shellJoin(words)
    }
}
