import ArgumentParser
import Foundation
import Launcher

@main
struct Cohort: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cohort",
        abstract: "Batch runs of independent and MPI tasks on pools of nodes.",
        subcommands: [Run.self, Submit.self, Serve.self, JobCommand.self, TaskCommand.self, Ps.self, Logs.self, Wait.self, Usage.self, PoolCommand.self, AppCommand.self, StorageCommand.self, NodeCommandGroup.self, HostfileCommand.self, RankEnv.self, Agent.self]
    )
}

/// Exit codes: 0 every task succeeded, 1 a task failed, 2 bad input (nothing ran).
enum Exit {
    static let taskFailed = ExitCode(1)
    static let badInput = ExitCode(2)

    /// Prints `message` as an error and exits with 2.
    static func badInput(_ message: Any) -> ExitCode {
        FileHandle.standardError.write(Data("cohort: error: \(message)\n".utf8))
        return Exit.badInput
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}
