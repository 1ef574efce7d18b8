/// How deeply a YAML or JSON text nests, found without parsing it: the parser and the tree
/// it builds recurse once per level, so a 12 KB body of 6,000 `[` overflows the stack of the
/// thread that reads it. Texts deeper than the limit are refused before they reach it.
///
/// The count is an upper bound on what the parser would build: block levels (indentation and
/// compact `- - -` entries) plus flow levels (`[` `{`), with quoted scalars skipped only where
/// YAML starts one, so quotes cannot hide brackets.
enum NestingDepth {
    /// Far above any job file (a job, its tasks, a task, its settings: about 6 levels).
    static let limit = 64

    /// The 1-based line where `text` first nests deeper than `limit`, or nil.
    static func lineTooDeep(_ text: String, limit: Int = limit) -> Int? {
        let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), newline = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        let bytes = Array(text.utf8)
        var flow = 0                         // open [ and { around the current character
        var quote: UInt8? = nil              // inside a quoted scalar
        var escaped = false
        var indents: [Int] = []              // block indentation levels, outermost first
        var line = 1, indent = 0
        var atLineStart = true               // only blanks so far on this line
        var valueStart = true                // a '[', '{' or quote here starts a node
        var markers = 0                      // compact '- ' / '? ' entries on this line
        var previous = newline
        var index = 0
        while index < bytes.count {
            let c = bytes[index]
            index += 1
            defer { previous = c }
            if let open = quote {
                if c == newline { line += 1 }
                if escaped { escaped = false } else if open == UInt8(ascii: "\"") && c == UInt8(ascii: "\\") { escaped = true } else if c == open {
                    // '' inside a single-quoted scalar is a quote, not its end.
                    if open == UInt8(ascii: "'") && index < bytes.count && bytes[index] == open { index += 1 } else { quote = nil }
                }
                continue
            }
            if c == newline {
                line += 1; indent = 0; atLineStart = true; valueStart = true; markers = 0
                continue
            }
            let blankBefore = previous == space || previous == tab || previous == newline
            if c == UInt8(ascii: "#") && blankBefore {
                while index < bytes.count && bytes[index] != newline { index += 1 }
                continue
            }
            if atLineStart {
                if c == space || c == tab || c == cr { if c == space { indent += 1 }; continue }
                atLineStart = false
                if flow == 0 {
                    while let last = indents.last, last >= indent { indents.removeLast() }
                    indents.append(indent)
                }
            }
            let next = index < bytes.count ? bytes[index] : space
            let blankAfter = next == space || next == tab || next == newline || next == cr
            switch c {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                if flow > 0 || valueStart { flow += 1; valueStart = true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if flow > 0 { flow -= 1 }
                valueStart = false
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                if valueStart { quote = c }
                valueStart = false
            case UInt8(ascii: ","):
                valueStart = flow > 0
            case UInt8(ascii: ":"):
                valueStart = blankAfter || flow > 0
            case UInt8(ascii: "-"), UInt8(ascii: "?"):
                if flow == 0 && valueStart && blankAfter { markers += 1 } else { valueStart = false }
            case space, tab, cr:
                break
            default:
                valueStart = false
            }
            if indents.count + markers + flow > limit { return line }
        }
        return nil
    }
}
