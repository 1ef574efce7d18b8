import Foundation
import XCTest
@testable import Launcher

/// The README's examples, run as a newcomer would type them: every `console` block is run
/// command by command in one shell (so `&` and `kill %1` work) from the repository's folder
/// with one fresh state directory for the whole README (blocks build on the ones before, as
/// for a reader going down the page), and what each command prints (stdout and stderr together)
/// must be what the block shows, and every job file in a `yaml` or `json` block must parse.
final class ReadmeExampleTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// One command of a block and what it prints.
    struct Step {
        var command: String
        var expected: [String] = []
        var exitCode: Int32 = 0
    }

    /// The blocks fenced as `language`, with the line each starts on.
    static func blocks(_ language: String, in text: String) -> [(line: Int, body: [String])] {
        var found: [(Int, [String])] = []
        var current: [String]?
        var start = 0
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if current == nil, line == "```\(language)" {
                current = []
                start = number + 1
            } else if current != nil, line == "```" {
                found.append((start, current!))
                current = nil
            } else if current != nil {
                current!.append(String(line))
            }
        }
        return found
    }

    static func steps(_ body: [String]) -> [Step] {
        var steps: [Step] = []
        for line in body {
            if line.hasPrefix("$ ") {
                steps.append(Step(command: String(line.dropFirst(2))))
            } else if line.hasPrefix("[exit "), line.hasSuffix("]"), let code = Int32(line.dropFirst(6).dropLast()) {
                steps[steps.count - 1].exitCode = code
            } else if !steps.isEmpty {
                steps[steps.count - 1].expected.append(line)
            }
        }
        return steps
    }

    /// Runs of spaces are one (tables widen with their contents), and `*` is any text.
    static func matches(_ line: String, _ pattern: String) -> Bool {
        let text = collapse(line), parts = collapse(pattern).components(separatedBy: "*")
        guard parts.count > 1 else { return text == parts[0] }
        guard text.hasPrefix(parts[0]), text.dropFirst(parts[0].count).hasSuffix(parts.last!),
              text.count >= parts[0].count + parts.last!.count else { return false }
        var rest = text.dropFirst(parts[0].count).dropLast(parts.last!.count)[...]
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let found = rest.range(of: part) else { return false }
            rest = rest[found.upperBound...]
        }
        return true
    }

    static func collapse(_ line: String) -> String {
        line.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    /// Lines of tasks that run at once come in any order: each expected line must match an
    /// output line of its own, and every output line must be matched unless `...` says more may come.
    static func problems(output: [String], expected: [String]) -> [String] {
        var unmatched = output
        var problems: [String] = []
        for pattern in expected where pattern != "..." {
            if let index = unmatched.firstIndex(where: { matches($0, pattern) }) { unmatched.remove(at: index) } else { problems.append("missing: \(pattern)") }
        }
        if !expected.contains("...") { problems += unmatched.map { "not shown in the README: \($0)" } }
        return problems
    }

    func testTheMatcherIsStrictWhereItShouldBe() {
        XCTAssertTrue(Self.matches("sh    success  1   local-[0-1]  0     2.35s", "sh success 1 local-[0-1] 0 *s"))
        XCTAssertFalse(Self.matches("sh failure 1 local-0 1 2.35s", "sh success 1 local-* 0 *s"))
        XCTAssertFalse(Self.matches("job run-1 on pool local: 1 succeeded", "job run-* on pool local: 1 succeeded, 0 failed in * s"))
        XCTAssertEqual(Self.problems(output: ["b", "a"], expected: ["a", "b"]), [])
        XCTAssertEqual(Self.problems(output: ["a", "a"], expected: ["a"]), ["not shown in the README: a"])
        XCTAssertEqual(Self.problems(output: ["a"], expected: ["a", "a"]), ["missing: a"])
        XCTAssertEqual(Self.problems(output: ["a", "x", "y"], expected: ["a", "..."]), [])
    }

    func testEveryConsoleExampleRunsAsShown() throws {
        let readme = Harness.read(Self.root.appendingPathComponent("README.md").path)
        let blocks = Self.blocks("console", in: readme)
        XCTAssertGreaterThanOrEqual(blocks.count, 4, "the README's runnable examples")
        let bin = Harness.productsDirectory.path
        let home = Harness.temporaryDirectory()
        for (line, body) in blocks {
            let steps = Self.steps(body)
            XCTAssertFalse(steps.isEmpty, "README.md:\(line): a console block without a command")
            let scratch = Harness.temporaryDirectory()
            // One shell for the block; each command's output to its own file, then its exit code.
            var script = "set +e\ncd \(CommandLineWords.shellQuote(Self.root.path))\n"
            for (index, step) in steps.enumerated() {
                let out = CommandLineWords.shellQuote("\(scratch)/\(index).out")
                // A command ending in & runs in the background as written, its output where it says.
                if step.command.hasSuffix("&") {
                    script += "\(step.command.replacingOccurrences(of: "> serve.log", with: "> \(CommandLineWords.shellQuote(scratch))/serve.log"))\n"
                    script += "echo 0 > \(CommandLineWords.shellQuote("\(scratch)/\(index).code"))\n"
                } else {
                    script += "{ \(step.command) ; } > \(out) 2>&1 < /dev/null\necho $? > \(CommandLineWords.shellQuote("\(scratch)/\(index).code"))\n"
                }
            }
            script += "wait\n"
            let result = Harness.shell(["bash", "-c", script], environment: ["COHORT_HOME": home, "PATH": "\(bin):" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")],
                                       timeout: 300)
            XCTAssertEqual(result.status, 0, "README.md:\(line): \(result.output)")
            for (index, step) in steps.enumerated() {
                let output = Harness.read("\(scratch)/\(index).out").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                let lines = output.last == "" ? Array(output.dropLast()) : output
                let code = Int32(Harness.read("\(scratch)/\(index).code").trimmingCharacters(in: .whitespacesAndNewlines))
                XCTAssertEqual(code, step.exitCode, "README.md:\(line): `\(step.command)` exited \(code.map(String.init) ?? "?"): \(lines.joined(separator: "\n"))")
                let problems = Self.problems(output: lines, expected: step.expected)
                XCTAssertEqual(problems, [], "README.md:\(line): `\(step.command)` printed:\n\(lines.joined(separator: "\n"))")
            }
        }
    }

    /// Every job file the README shows (YAML or JSON with `tasks`) is one Cohort reads.
    func testEveryJobFileInTheReadmeParses() throws {
        let readme = Harness.read(Self.root.appendingPathComponent("README.md").path)
        var parsed = 0
        for language in ["yaml", "json"] {
            for (line, body) in Self.blocks(language, in: readme) where body.contains(where: { $0.contains("tasks") }) {
                XCTAssertNoThrow(try JobFile.parse(body.joined(separator: "\n"), file: "README.md:\(line)"))
                parsed += 1
            }
        }
        XCTAssertGreaterThanOrEqual(parsed, 4, "wing-sweep, wing-study, the Azure job, long-heat")
    }
}
