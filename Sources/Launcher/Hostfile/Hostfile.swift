/// One host line of a hostfile: where to reach it and how many processes it takes.
public struct HostEntry: Equatable, Sendable, Codable {
    /// Host name or address as written (IPv6 without brackets).
    public var host: String
    /// `user@` part, if any.
    public var user: String?
    /// Processes the host takes; nil when the file did not say (Open MPI then counts cores).
    public var slots: Int?
    /// The most processes ever placed there (`max_slots`), if given.
    public var maxSlots: Int?

    public init(host: String, user: String? = nil, slots: Int? = nil, maxSlots: Int? = nil) {
        self.host = host
        self.user = user
        self.slots = slots
        self.maxSlots = maxSlots
    }
}

/// Reads and writes the host files HPC people already have: Open MPI hostfiles, MPICH
/// machinefiles, and Slurm hostlists.
public enum Hostfile {
    public enum Format: String, CaseIterable, Sendable {
        /// `host slots=4 max_slots=8`, `#` comments, `user@host`.
        case openMPI = "openmpi"
        /// `host:4`, one host per line.
        case mpich
        /// One Slurm hostlist expression, `node[01-16]`.
        case slurm
    }

    /// Parses a hostfile, guessing its format: `host:n` lines are MPICH, a single line with
    /// brackets is a Slurm hostlist, anything else is Open MPI's.
    public static func parse(_ text: String, source: String) throws(HostfileError) -> [HostEntry] {
        try parse(text, format: detectFormat(text), source: source)
    }

    public static func detectFormat(_ text: String) -> Format {
        let text = text.contains("\r") ? text.replacingOccurrences(of: "\r\n", with: "\n") : text
        let lines = text.split(separator: "\n").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        if lines.count == 1, lines[0].contains("["), !lines[0].contains("=") { return .slurm }
        // MPICH: host:n, where the host is not an IPv6 address (those hold several colons).
        if !lines.isEmpty, lines.allSatisfy({ line in
            let fields = line.split(whereSeparator: \.isWhitespace)
            return fields.count == 1 && line.filter { $0 == ":" }.count == 1
        }) { return .mpich }
        return .openMPI
    }

    public static func parse(_ text: String, format: Format, source: String) throws(HostfileError) -> [HostEntry] {
        // Files written on Windows end lines with CRLF; Swift sees "\r\n" as one character.
        let text = text.contains("\r") ? text.replacingOccurrences(of: "\r\n", with: "\n") : text
        switch format {
        case .openMPI: return try parseOpenMPI(text, source: source)
        case .mpich: return try parseMPICH(text, source: source)
        case .slurm:
            var entries: [HostEntry] = []
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let (content, offset) = stripComment(String(line))
                if content.isEmpty { continue }
                entries += try Hostlist.expand(content, source: source, line: number + 1, columnOffset: offset).map { HostEntry(host: $0) }
            }
            return entries
        }
    }

    /// Writes `entries` in `format`. Slurm's form keeps only the names.
    public static func write(_ entries: [HostEntry], format: Format) -> String {
        switch format {
        case .openMPI:
            return entries.map { entry in
                var line = (entry.user.map { "\($0)@" } ?? "") + entry.host
                if let slots = entry.slots { line += " slots=\(slots)" }
                if let maxSlots = entry.maxSlots { line += " max_slots=\(maxSlots)" }
                return line + "\n"
            }.joined()
        case .mpich:
            return entries.map { entry in
                (entry.user.map { "\($0)@" } ?? "") + entry.host + (entry.slots.map { ":\($0)" } ?? "") + "\n"
            }.joined()
        case .slurm:
            return Hostlist.compress(entries.map(\.host)) + "\n"
        }
    }

    // MARK: - Open MPI

    /// Keyword synonyms Open MPI's hostfile lexer accepts.
    static let slotKeywords: Set<String> = ["slots", "count", "cpu", "cpus"]
    static let maxSlotKeywords: Set<String> = ["max_slots", "max-slots", "slots_max", "slots-max"]

    static func parseOpenMPI(_ text: String, source: String) throws(HostfileError) -> [HostEntry] {
        var entries: [HostEntry] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = number + 1
            let (content, _) = stripComment(String(rawLine))
            if content.isEmpty { continue }
            let fields = tokenize(String(rawLine.prefix(while: { $0 != "#" })))
            var entry = try parseHost(fields[0].text, source: source, line: line, column: fields[0].column)
            for field in fields.dropFirst() {
                func fail(_ message: String) -> HostfileError { HostfileError(source: source, line: line, column: field.column, message: message) }
                let parts = field.text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("expected KEY=VALUE after the host name, found '\(field.text)'") }
                let key = parts[0].lowercased()
                guard let value = Int(parts[1]), value >= 0 else { throw fail("\(key) needs a whole number, found '\(parts[1])'") }
                guard value <= HostName.maximumSlots else { throw fail("\(key)=\(value) is more than the \(HostName.maximumSlots) slots a node may have") }
                if slotKeywords.contains(key) {
                    entry.slots = value
                } else if maxSlotKeywords.contains(key) {
                    entry.maxSlots = value
                } else {
                    throw fail("unknown keyword '\(parts[0])' (expected slots, max_slots or a synonym)")
                }
            }
            if let slots = entry.slots, let maxSlots = entry.maxSlots, maxSlots < slots {
                throw HostfileError(source: source, line: line, column: fields[0].column, message: "max_slots=\(maxSlots) is below slots=\(slots)")
            }
            // A host listed twice adds its slots, as Open MPI does.
            if let existing = entries.firstIndex(where: { $0.host == entry.host && $0.user == entry.user }) {
                entries[existing].slots = (entries[existing].slots ?? 1) + (entry.slots ?? 1)
            } else {
                entries.append(entry)
            }
        }
        return entries
    }

    // MARK: - MPICH

    static func parseMPICH(_ text: String, source: String) throws(HostfileError) -> [HostEntry] {
        var entries: [HostEntry] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = number + 1
            let (content, offset) = stripComment(String(rawLine))
            if content.isEmpty { continue }
            let fields = content.split(whereSeparator: \.isWhitespace)
            guard fields.count == 1 else {
                throw HostfileError(source: source, line: line, column: offset + 1, message: "expected HOST or HOST:COUNT, found '\(content)'")
            }
            var hostPart = content, slots: Int? = nil
            if let colon = content.lastIndex(of: ":"), !content.hasSuffix("]"), content.filter({ $0 == ":" }).count == 1 {
                let countText = content[content.index(after: colon)...]
                guard let count = Int(countText), count > 0, count <= HostName.maximumSlots else {
                    throw HostfileError(source: source, line: line, column: offset + content.distance(from: content.startIndex, to: colon) + 2, message: "expected a process count from 1 to \(HostName.maximumSlots) after ':', found '\(countText)'")
                }
                hostPart = String(content[..<colon])
                slots = count
            }
            var entry = try parseHost(hostPart, source: source, line: line, column: offset + 1)
            entry.slots = slots
            entries.append(entry)
        }
        return entries
    }

    // MARK: - Pieces

    /// `user@host`, `host`, `10.0.0.1`, `fe80::1`, `[fe80::1]`.
    static func parseHost(_ text: String, source: String, line: Int, column: Int) throws(HostfileError) -> HostEntry {
        var user: String? = nil
        var host = Substring(text)
        if let at = text.firstIndex(of: "@") {
            user = String(text[..<at])
            host = text[text.index(after: at)...]
            if let problem = HostName.problem(user: user!) { throw HostfileError(source: source, line: line, column: column, message: problem) }
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        let hostColumn = column + (text.count - host.count)
        guard !host.isEmpty else { throw HostfileError(source: source, line: line, column: hostColumn, message: "empty host name") }
        if let bad = host.firstIndex(where: { !isHostCharacter($0) }) {
            throw HostfileError(source: source, line: line, column: hostColumn + host.distance(from: host.startIndex, to: bad),
                                message: "'\(host[bad])' is not allowed in a host name or address")
        }
        if let problem = HostName.problem(host: String(host)) {
            throw HostfileError(source: source, line: line, column: hostColumn, message: problem)
        }
        return HostEntry(host: String(host), user: user)
    }

    /// Letters, digits, and the punctuation of DNS names and IPv4/IPv6 addresses; nothing a
    /// shell would read specially.
    static func isHostCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "-" || c == "_" || c == ":" || c == "%")
    }

    /// Whitespace-separated fields with 1-based columns.
    static func tokenize(_ line: String) -> [(text: String, column: Int)] {
        var fields: [(String, Int)] = []
        var current = "", start = 0
        for (offset, c) in line.enumerated() {
            if c.isWhitespace {
                if !current.isEmpty { fields.append((current, start + 1)); current = "" }
            } else {
                if current.isEmpty { start = offset }
                current.append(c)
            }
        }
        if !current.isEmpty { fields.append((current, start + 1)) }
        return fields
    }

    /// The line without its `#` comment, trimmed, and the offset of its first character.
    static func stripComment(_ line: String) -> (String, Int) {
        let content = line.prefix { $0 != "#" }
        let leading = content.prefix { $0.isWhitespace }.count
        return (String(content).trimmingWhitespace(), leading)
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map { index(after: $0) } ?? start
        return String(self[start..<end])
    }
}
