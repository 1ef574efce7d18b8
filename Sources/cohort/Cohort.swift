import ArgumentParser
import Foundation
import Launcher

/// Every command names itself (`commandName:`): without it ArgumentParser derives each name
/// with `String(describing:)` at every start, whose dynamic casts scan the protocol
/// conformances of this whole binary (NIO, Hummingbird, GRDB): 9 % of starting `cohort`.
@main
struct Cohort: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cohort",
        abstract: "Batch runs of independent and MPI tasks on pools of nodes.",
        discussion: """
        Environment: COHORT_HOME (the state directory, default ~/.cohort), COHORT_SERVER and \
        COHORT_TOKEN (a cohort serve elsewhere and its token), COHORT_S3_ENDPOINT and AWS_* (the \
        object store of resource and output files; see cohort storage).
        Exit codes: 0 every task succeeded; 1 a task failed; 2 bad input (nothing ran); 3 cohort \
        wait --timeout ran out; 64 a command-line usage error; 130 cancelled (Ctrl-C).
        """,
        version: Cohort.version,
        subcommands: [Run.self, Submit.self, Serve.self, JobCommand.self, TaskCommand.self, Ps.self, Logs.self, Events.self, Wait.self, Usage.self, DashboardCommand.self, PoolCommand.self, AppCommand.self, StorageCommand.self, NodeCommandGroup.self, HostfileCommand.self, RankEnv.self, Agent.self, NodeProbe.self]
    )
}

extension Cohort {
    /// The release and this binary's GNU build id (what node agents must match).
    static var version: String { "cohort 0.5 (build \(AgentProtocol.build(of: ExecutionSettings.currentExecutable).prefix(12)))" }
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
