/// Slurm hostlist expressions (`node[01-16]`, `rack[1-2]-n[1,3]`, `a,b,c`) and task-count
/// lists (`2(x3),1`): one small unit that everything else reuses, after Slurm's hostlist.c.
public enum Hostlist {
    /// The largest expansion accepted, so a typo like `n[1-99999999]` fails instead of eating memory.
    public static let maximumHosts = 1_000_000

    /// Expands `expression` into host names in order, e.g. `n[1-3,7]` → n1 n2 n3 n7.
    /// Zero padding follows the range's lower bound: `n[08-10]` → n08 n09 n10.
    public static func expand(_ expression: String, source: String = "hostlist", line: Int = 1, columnOffset: Int = 0) throws(HostfileError) -> [String] {
        var hosts: [String] = []
        for (item, start) in try splitTopLevel(expression, source: source, line: line, columnOffset: columnOffset) {
            let expanded = try expandItem(item, source: source, line: line, column: columnOffset + start + 1)
            if let bad = expanded.lazy.compactMap({ HostName.problem(host: $0) }).first {
                throw HostfileError(source: source, line: line, column: columnOffset + start + 1, message: bad)
            }
            hosts.append(contentsOf: expanded)
            if hosts.count > maximumHosts {
                throw HostfileError(source: source, line: line, column: columnOffset + start + 1, message: "expands to more than \(maximumHosts) hosts")
            }
        }
        return hosts
    }

    /// Writes `hosts` compactly: runs of numbered names that share a prefix, suffix and
    /// padding become ranges (`n1,n2,n3,n5` → `n[1-3,5]`). Order is kept.
    public static func compress(_ hosts: [String]) -> String {
        var parts: [String] = []
        var index = 0
        while index < hosts.count {
            guard let first = NumberedName(hosts[index]) else {
                parts.append(hosts[index])
                index += 1
                continue
            }
            // Gather following hosts of the same shape, as long as numbers increase.
            var numbers = [first.number]
            var next = index + 1
            while next < hosts.count, let name = NumberedName(hosts[next]), first.fits(name), name.number > numbers.last! {
                numbers.append(name.number)
                next += 1
            }
            if numbers.count == 1 {
                parts.append(hosts[index])
            } else {
                var ranges: [String] = []
                var runStart = numbers[0], previous = numbers[0]
                for number in numbers.dropFirst() + [Int.min] {
                    if number == previous + 1 { previous = number; continue }
                    ranges.append(runStart == previous ? first.format(runStart) : "\(first.format(runStart))-\(first.format(previous))")
                    runStart = number
                    previous = number
                }
                parts.append("\(first.prefix)[\(ranges.joined(separator: ","))]\(first.suffix)")
            }
            index = next
        }
        return parts.joined(separator: ",")
    }

    /// Expands a Slurm task-count list such as `2(x3),1` into `[2, 2, 2, 1]`.
    public static func expandCounts(_ text: String, source: String = "counts", line: Int = 1) throws(HostfileError) -> [Int] {
        var counts: [Int] = []
        var column = 1
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = String(part)
            func fail(_ message: String) -> HostfileError { HostfileError(source: source, line: line, column: column, message: message) }
            if let open = item.firstIndex(of: "(") {
                guard item.hasSuffix(")"), item[item.index(after: open)...].hasPrefix("x"),
                      let value = Int(item[..<open]), value > 0, value <= HostName.maximumSlots,
                      let repeats = Int(item[item.index(open, offsetBy: 2)..<item.index(before: item.endIndex)]), repeats > 0,
                      counts.count + repeats <= maximumHosts
                else { throw fail("expected COUNT or COUNT(xREPEATS) with COUNT 1 to \(HostName.maximumSlots) and at most \(maximumHosts) in all, found '\(item)'") }
                counts.append(contentsOf: repeatElement(value, count: repeats))
            } else {
                guard let value = Int(item), value > 0, value <= HostName.maximumSlots else {
                    throw fail("expected a count from 1 to \(HostName.maximumSlots), found '\(item)'")
                }
                counts.append(value)
            }
            column += item.count + 1
        }
        return counts
    }

    // MARK: - Parsing

    /// Splits at commas outside brackets, returning each item and its 0-based offset.
    static func splitTopLevel(_ text: String, source: String, line: Int, columnOffset: Int) throws(HostfileError) -> [(String, Int)] {
        var items: [(String, Int)] = []
        var depth = 0, current = "", start = 0
        for (offset, character) in text.enumerated() {
            switch character {
            case "[":
                depth += 1
                if depth > 1 { throw HostfileError(source: source, line: line, column: columnOffset + offset + 1, message: "nested '['") }
            case "]":
                depth -= 1
                if depth < 0 { throw HostfileError(source: source, line: line, column: columnOffset + offset + 1, message: "']' without '['") }
            case "," where depth == 0:
                items.append((current, start))
                current = ""
                start = offset + 1
                continue
            default: break
            }
            current.append(character)
        }
        if depth != 0 { throw HostfileError(source: source, line: line, column: columnOffset + text.count + 1, message: "'[' is not closed") }
        items.append((current, start))
        for (item, offset) in items where item.isEmpty {
            throw HostfileError(source: source, line: line, column: columnOffset + offset + 1, message: "empty host name")
        }
        return items
    }

    /// Expands one item that may hold several bracket groups: the cartesian product, in order.
    static func expandItem(_ item: String, source: String, line: Int, column: Int) throws(HostfileError) -> [String] {
        var results = [""]
        var rest = Substring(item)
        var offset = 0
        while let open = rest.firstIndex(of: "[") {
            let literal = rest[..<open]
            try validateName(String(literal), source: source, line: line, column: column + offset)
            guard let close = rest[open...].firstIndex(of: "]") else {
                throw HostfileError(source: source, line: line, column: column + offset + rest.distance(from: rest.startIndex, to: open), message: "'[' is not closed")
            }
            let bodyColumn = column + offset + rest.distance(from: rest.startIndex, to: open) + 1
            let values = try expandRanges(String(rest[rest.index(after: open)..<close]), source: source, line: line, column: bodyColumn)
            var next: [String] = []
            next.reserveCapacity(results.count * values.count)
            for prefix in results { for value in values { next.append(prefix + literal + value) } }
            if next.count > maximumHosts {
                throw HostfileError(source: source, line: line, column: bodyColumn, message: "expands to more than \(maximumHosts) hosts")
            }
            results = next
            offset += rest.distance(from: rest.startIndex, to: close) + 1
            rest = rest[rest.index(after: close)...]
        }
        try validateName(String(rest), source: source, line: line, column: column + offset)
        return results.map { $0 + rest }
    }

    /// `01-03,7` → ["01", "02", "03", "7"].
    static func expandRanges(_ body: String, source: String, line: Int, column: Int) throws(HostfileError) -> [String] {
        var values: [String] = []
        var partColumn = column
        for part in body.split(separator: ",", omittingEmptySubsequences: false) {
            func fail(_ message: String) -> HostfileError { HostfileError(source: source, line: line, column: partColumn, message: message) }
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), bounds.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }) else {
                throw fail("expected NUMBER or FIRST-LAST in brackets, found '\(part)'")
            }
            guard let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]) else { throw fail("number too large in '\(part)'") }
            guard low <= high else { throw fail("range \(part) runs backwards") }
            guard high - low < maximumHosts else { throw fail("range \(part) expands to more than \(maximumHosts) hosts") }
            let width = bounds[0].count
            for number in low...high {
                let digits = String(number)
                values.append(digits.count < width ? String(repeating: "0", count: width - digits.count) + digits : digits)
            }
            partColumn += part.count + 1
        }
        return values
    }

    /// Host names hold letters, digits, '.', '-', '_' and ':' only: nothing a shell would read.
    static func validateName(_ text: String, source: String, line: Int, column: Int) throws(HostfileError) {
        if let bad = text.firstIndex(where: { !Hostfile.isHostCharacter($0) || $0 == "%" }) {
            throw HostfileError(source: source, line: line, column: column + text.distance(from: text.startIndex, to: bad), message: "unexpected '\(text[bad])' in host name")
        }
    }
}

/// A host name split into prefix, number and suffix, for compressing (`n07x` → n, 7, x).
struct NumberedName {
    let prefix: String, digits: String, suffix: String
    let number: Int
    /// Zero-padded names keep their width; others have none.
    var width: Int { digits.count > String(number).count ? digits.count : 0 }

    init?(_ name: String) {
        // The last run of digits is the number.
        guard let lastDigit = name.lastIndex(where: { $0.isASCII && $0.isNumber }) else { return nil }
        var start = lastDigit
        while start > name.startIndex, name[name.index(before: start)].isASCII, name[name.index(before: start)].isNumber {
            start = name.index(before: start)
        }
        let end = name.index(after: lastDigit)
        digits = String(name[start..<end])
        guard digits.count <= 18, let number = Int(digits) else { return nil }
        prefix = String(name[..<start])
        suffix = String(name[end...])
        self.number = number
        // "[" or "," in a name would not survive a round trip.
        if name.contains(where: { $0 == "[" || $0 == "]" || $0 == "," }) { return nil }
    }

    /// Whether `other` can join a range that starts with this name and still expand back
    /// to exactly its own spelling.
    func fits(_ other: NumberedName) -> Bool {
        prefix == other.prefix && suffix == other.suffix && format(other.number) == other.digits
    }

    func format(_ number: Int) -> String {
        let text = String(number)
        return text.count < width ? String(repeating: "0", count: width - text.count) + text : text
    }
}
