import Foundation
import XCTest
@testable import Launcher

/// Runs jobs for real: in-process through JobRunner, or through the built `cohort` binary.
enum Harness {
    /// The folder with the package's built executables (next to the test bundle).
    static let productsDirectory: URL = {
        if let dir = ProcessInfo.processInfo.environment["COHORT_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("cohort").path) { return url }
        }
        fatalError("the cohort executable was not found next to \(CommandLine.arguments[0]); set COHORT_BIN_DIR")
    }()

    static func executable(_ name: String) -> String { productsDirectory.appendingPathComponent(name).path }

    static func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-test-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func settings(_ work: String) -> ExecutionSettings {
        ExecutionSettings(workDirectory: work, cohortExecutable: executable("cohort"))
    }

    /// Runs `job` on `pool` and returns the outcome; every attempt's processes must be gone after.
    static func run(_ job: JobSpec, pool: Pool = .local(nodeCount: 4, slotsPerNode: 2), file: StaticString = #filePath, line: UInt = #line) throws -> JobRun {
        let runner = try JobRunner(job: job, pool: pool, settings: settings(temporaryDirectory()))
        let result = runner.run()
        checkNoOrphans(result, file: file, line: line)
        return result
    }

    /// No process of the job may be left on any node: every namespace shares this /proc.
    static func checkNoOrphans(_ result: JobRun, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ProcessSweeper.localProcesses(variable: "COHORT_JOB_ID", value: result.jobId), [], "processes of job \(result.jobId) left running", file: file, line: line)
        for task in result.tasks {
            for attempt in task.attempts {
                let id = attemptId(job: result.jobId, task: task, attempt: attempt)
                XCTAssertEqual(ProcessSweeper.localProcesses(attemptId: id), [], "processes of \(id) left running", file: file, line: line)
            }
        }
    }

    /// The id that marks the attempt's processes, as the executor recorded it.
    static func attemptId(job: String, task: TaskRun, attempt: Attempt) -> String {
        guard let id = attempt.markerId else {
            XCTFail("attempt \(attempt.number) of \(job).\(task.taskId) has no marker id")
            return "\(job).\(task.taskId).a\(attempt.number)"
        }
        XCTAssertTrue(id.hasSuffix([job, task.taskId, task.replica.map { "r\($0)" }, "a\(attempt.number)"].compactMap { $0 }.joined(separator: ".")), id)
        return id
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// Runs a command to its end, its output through a file, the way Cohort starts programs:
    /// posix_spawn with no descriptor of this process inherited, the end learned from
    /// waitpid. Foundation's Process learns a child's end when a socket the child inherits
    /// closes, so a daemon the command leaves behind holding it (munged keeps every
    /// descriptor) kept the tests waiting for ever. Past `timeout` seconds the command's
    /// process group is ended and the status is 124, as `timeout` says.
    static func shell(_ arguments: [String], environment extra: [String: String] = [:], mergeErrors: Bool = true,
                      timeout: Double = 300) -> (status: Int32, output: String) {
        let output = NSTemporaryDirectory() + "cohort-shell-\(UUID().uuidString)"
        defer { unlink(output) }
        let environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        guard let child = try? ChildProcess(["/usr/bin/env"] + arguments, environment: environment, directory: nil, stdout: output,
                                            stderr: mergeErrors ? output : "/dev/null")
        else { return (-1, "cannot start \(arguments)") }
        let deadline = Deadline(after: timeout, grace: 5) { child.signalGroup($0) }
        let status = child.wait().code
        deadline.cancel()
        if deadline.fired { return (124, "\(arguments.joined(separator: " ")) did not end within \(Int(timeout)) s: \(read(output))") }
        return (status, read(output))
    }

    /// Waits until `job` is completed in the store of `home`.
    static func waitCompleted(_ job: String, home: String, timeout: Double = 120, file: StaticString = #filePath, line: UInt = #line) throws -> JobStore.JobSummary {
        let store = try JobStore(stateDirectory: home)
        let deadline = Date() + timeout
        while Date() < deadline {
            if let summary = try store.job(job), summary.state == .completed { return summary }
            usleep(50_000)
        }
        XCTFail("job \(job) did not complete in \(timeout) s: \(try store.job(job).map { "\($0)" } ?? "not stored")", file: file, line: line)
        throw CocoaError(.fileReadNoSuchFile)
    }

    struct CLIResult {
        let exitCode: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs the cohort binary with a private state directory. Its output goes to files, not
    /// pipes: read one after the other, pipes deadlocked once a run's JSON passed the 64 KiB a
    /// pipe holds while this side still waited for stderr's end.
    static func cohort(_ arguments: [String], home: String, directory: String? = nil, environment extra: [String: String] = [:],
                       timeout: Double = 600, file: StaticString = #filePath, line: UInt = #line) throws -> CLIResult {
        var environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        environment["COHORT_HOME"] = home
        let output = NSTemporaryDirectory() + "cohort-cli-\(UUID().uuidString)"
        defer { unlink("\(output).out"); unlink("\(output).err") }
        let child = try ChildProcess([executable("cohort")] + arguments, environment: environment, directory: directory,
                                     stdout: "\(output).out", stderr: "\(output).err")
        let deadline = Deadline(after: timeout, grace: 5) { child.signalGroup($0) }
        let end = child.wait()
        deadline.cancel()
        let result = CLIResult(exitCode: end.code, stdout: read("\(output).out"), stderr: read("\(output).err"))
        if deadline.fired { XCTFail("cohort \(arguments.joined(separator: " ")) did not end within \(Int(timeout)) s: \(result.stderr)", file: file, line: line) }
        return result
    }
}

extension TaskSpec {
    static func shell(_ id: String, _ script: String, multi: MultiInstance? = nil, dependsOn: [String] = [], constraints: Constraints = Constraints()) -> TaskSpec {
        TaskSpec(id: id, commandLine: ["/bin/sh", "-c", script], dependsOn: dependsOn, multiInstance: multi, constraints: constraints)
    }
}

extension Array where Element: Equatable {
    func containsSequence(_ sequence: [Element]) -> Bool {
        guard sequence.count <= count else { return false }
        return (0...(count - sequence.count)).contains { Array(self[$0..<$0 + sequence.count]) == sequence }
    }
}
