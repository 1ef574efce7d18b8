/// Splits a command line into words the way a POSIX shell does for quoting — single
/// quotes, double quotes, backslashes — and nothing else: no variables, globs, pipes or
/// redirections. The words are then run directly, never by a shell (as Azure Batch does;
/// write `/bin/sh -c '…'` to ask for one).
public enum CommandLineWords {
    public struct SplitError: Error, Equatable, Sendable {
        /// 1-based column of the problem.
        public var column: Int
        public var message: String
    }

    public static func split(_ text: String) throws(SplitError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character? = nil
        var quoteColumn = 0
        var escaping = false
        for (offset, c) in text.enumerated() {
            if escaping {
                // Inside double quotes a backslash only escapes $ ` " \ and newline.
                if quote == "\"", !"$`\"\\\n".contains(c) { current.append("\\") }
                if c != "\n" { current.append(c) }
                escaping = false
                continue
            }
            switch (quote, c) {
            case ("'", "'"), ("\"", "\""):
                quote = nil
            case ("'", _):
                current.append(c)
            case ("\"", "\\"), (nil, "\\"):
                escaping = true
                inWord = true
            case ("\"", _):
                current.append(c)
            case (nil, "'"), (nil, "\""):
                quote = c
                quoteColumn = offset + 1
                inWord = true
            case (nil, _) where c.isWhitespace:
                if inWord { words.append(current); current = ""; inWord = false }
            default:
                current.append(c)
                inWord = true
            }
        }
        if let quote { throw SplitError(column: quoteColumn, message: "unterminated \(quote) quote") }
        if escaping { throw SplitError(column: text.count, message: "a trailing backslash escapes nothing") }
        if inWord { words.append(current) }
        return words
    }

    /// Quotes `word` for a POSIX shell so it arrives as exactly one word: `'it'\''s'`.
    /// Used only where a remote shell cannot be avoided (ssh joins its arguments).
    public static func shellQuote(_ word: String) -> String {
        // '=' is quoted too: an unquoted first word `FOO=bar` would be an assignment.
        if !word.isEmpty, word.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./:,@%+".contains($0)) }) { return word }
        return "'" + word.replacingAll("'", with: "'\\''") + "'"
    }

    /// Joins words into one shell command line, each quoted.
    public static func shellJoin(_ words: [String]) -> String { words.map(shellQuote).joined(separator: " ") }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
