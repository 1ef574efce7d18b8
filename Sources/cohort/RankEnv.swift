import ArgumentParser
import CSpawn
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What every rank of a managed MPI task runs through when `cohort-rank-env` (the same C
/// code, without a Swift runtime's start) is not beside `cohort`: sets the variables that
/// differ from node to node (AZ_BATCH_NODE_ID, the working directory, ...) from the rank's
/// number, moves into the node's working directory, and becomes the application (execvp).
struct RankEnv: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rank-env", abstract: "(internal) Start one rank with its node's environment.", shouldDisplay: false)

    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        var words = command
        if words.first == "--" { words.removeFirst() }
        guard !words.isEmpty else { throw Exit.badInput("rank-env: no program given") }
        // Runs on a thread whose signals may be blocked; cohort_rank_exec unblocks them all
        // before exec, as the application would have them from a shell.
        let argv = words.map { strdup($0) } + [nil]
        let error = cohort_rank_exec(argv)
        FileHandle.standardError.write(Data("cohort rank-env: cannot start \(words[0]): \(String(cString: strerror(error)))\n".utf8))
        throw ExitCode(127)
    }
}
