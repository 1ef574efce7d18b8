/// What may stand as a host or a user name anywhere Cohort reaches a node: these strings go
/// to ssh and to mpirun's daemons, so a name that could be read as an option (`-V`,
/// `-oProxyCommand=…`) or as shell syntax never gets that far.
public enum HostName {
    /// The most slots one node may declare. Bounds the allocator's bookkeeping (one bucket
    /// per free-slot count) and catches typos such as `slots=1000000000000`.
    public static let maximumSlots = 4096

    /// Why `host` is not an RFC 1123 host name, an IPv4 address or an IPv6 literal, or nil.
    public static func problem(host: String) -> String? {
        guard !host.isEmpty else { return "empty host name" }
        guard host.utf8.count <= 253 else { return "host name longer than 253 characters" }
        if host.contains(":") { return isIPv6(host) ? nil : "'\(host)' is not a valid IPv6 address" }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard !label.isEmpty else { return "'\(host)' has an empty label (two dots, or a dot at an end)" }
            guard label.utf8.count <= 63 else { return "'\(host)' has a label longer than 63 characters" }
            guard label.first != "-", label.last != "-" else { return "'\(host)': a host name label cannot begin or end with '-'" }
            // '_' is not RFC 1123, but sites use it in node names; it is harmless to ssh.
            guard label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                return "'\(host)' is not a host name: letters, digits, '-', '_' and '.' only"
            }
        }
        return nil
    }

    /// Why `user` is not a POSIX portable user name (letters, digits, '.', '_', '-'; not
    /// starting with '-'; at most 32), or nil.
    public static func problem(user: String) -> String? {
        guard !user.isEmpty else { return "empty user name before '@'" }
        guard user.utf8.count <= 32 else { return "user name '\(user.prefix(40))' is longer than 32 characters" }
        guard let first = user.first, first.isASCII, first.isLetter || first.isNumber || first == "_" else {
            return "user name '\(user)' must begin with a letter, a digit or '_'"
        }
        guard user.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }) else {
            return "user name '\(user)' may hold only letters, digits, '.', '_' and '-'"
        }
        return nil
    }

    /// Hex groups and colons, at most one `::`, an optional dotted IPv4 tail and `%zone`.
    static func isIPv6(_ text: String) -> Bool {
        var address = Substring(text)
        if let percent = address.firstIndex(of: "%") {
            let zone = address[address.index(after: percent)...]
            guard !zone.isEmpty, zone.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }),
                  zone.first != "-" else { return false }
            address = address[..<percent]
        }
        guard address.count >= 2, address.filter({ $0 == ":" }).count >= 2, !address.contains(":::") else { return false }
        let doubles = address.components(separatedBy: "::").count - 1
        guard doubles <= 1 else { return false }
        let groups = address.split(separator: ":", omittingEmptySubsequences: true)
        var count = 0
        for (index, group) in groups.enumerated() {
            if index == groups.count - 1, group.contains(".") {
                let octets = group.split(separator: ".", omittingEmptySubsequences: false)
                guard octets.count == 4, octets.allSatisfy({ Int($0).map { (0...255).contains($0) } == true && $0.count <= 3 }) else { return false }
                count += 2
            } else {
                guard (1...4).contains(group.count), group.allSatisfy(\.isHexDigit) else { return false }
                count += 1
            }
        }
        if address.hasPrefix(":") && !address.hasPrefix("::") { return false }
        if address.hasSuffix(":") && !address.hasSuffix("::") { return false }
        return doubles == 1 ? count <= 7 : count == 8
    }

    /// Why `pool` cannot be stored: a node whose address or user could be misread, or whose
    /// slot count is out of range; nil if every node is fine.
    public static func problem(pool: Pool) -> String? {
        for node in pool.nodes {
            if let problem = problem(host: node.address) { return "node \(node.id): \(problem)" }
            if let user = node.user, let problem = problem(user: user) { return "node \(node.id): \(problem)" }
            guard (1...maximumSlots).contains(node.slots) else {
                return "node \(node.id): slots must be 1 to \(maximumSlots), found \(node.slots)"
            }
        }
        return nil
    }
}
