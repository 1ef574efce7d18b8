import Foundation
import XCTest

/// Runs a program of this package under real `mpirun` and captures what it printed.
struct MPIRun {
    struct Result {
        let exitCode: Int32
        let output: String
        let seconds: Double

        /// Lines that match `pattern` (a regular expression).
        func lines(matching pattern: String) -> [String] {
            output.split(separator: "\n").map(String.init).filter { $0.range(of: pattern, options: .regularExpression) != nil }
        }
    }

    /// The folder that holds the package's built executables (next to the test bundle).
    static let productsDirectory: URL = {
        if let dir = ProcessInfo.processInfo.environment["COHORT_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("mpi-checks").path) { return url }
        }
        fatalError("built executables not found next to \(CommandLine.arguments[0]); set COHORT_BIN_DIR")
    }()

    static func executable(_ name: String) -> String { productsDirectory.appendingPathComponent(name).path }

    /// Flags every test run needs here: more ranks than cores, yielding while idle (2 cores),
    /// and permission to run as root, which CI is.
    static var commonFlags: [String] {
        var flags = ["--oversubscribe", "--mca", "mpi_yield_when_idle", "1"]
        if getuid() == 0 { flags.append("--allow-run-as-root") }
        return flags
    }

    /// Runs `mpirun -np ranks [flags] program arguments`, killing it after `timeout` seconds.
    static func run(ranks: Int, _ program: String, _ arguments: [String] = [], flags: [String] = [], timeout: Double = 120) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try which("mpirun"))
        process.arguments = ["-np", String(ranks)] + commonFlags + flags + [executable(program)] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let start = Date()
        try process.run()
        let deadline = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: deadline)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        deadline.cancel()
        return Result(exitCode: process.terminationStatus, output: String(decoding: data, as: UTF8.self), seconds: Date().timeIntervalSince(start))
    }

    static func which(_ tool: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        // Not a skip: without Open MPI installed these tests must fail loudly.
        throw MissingTool(name: tool)
    }

    struct MissingTool: Error, CustomStringConvertible {
        let name: String
        var description: String { "\(name) is not on PATH: install openmpi-bin (bash .ci/run does)" }
    }
}
