import ArgumentParser
import Foundation
import Launcher
#if canImport(Glibc)
import Glibc
#endif

/// What every rank of a managed MPI task runs through: sets the variables that differ from
/// node to node (AZ_BATCH_NODE_ID, the working directory, ...) from the rank's number, moves
/// into the node's working directory, and becomes the application (execvp).
struct RankEnv: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rank-env", abstract: "(internal) Start one rank with its node's environment.", shouldDisplay: false)

    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        var words = command
        if words.first == "--" { words.removeFirst() }
        guard !words.isEmpty else { throw Exit.badInput("rank-env: no program given") }
        var environment = ProcessInfo.processInfo.environment
        if let rank = environment["OMPI_COMM_WORLD_RANK"].flatMap(Int.init) {
            TaskEnvironment.applyRank(rank, to: &environment)
        } else if let node = environment["SLURMD_NODENAME"] {
            // Started by srun: the node is named, whatever order Slurm gave the ranks.
            TaskEnvironment.applyNode(node, to: &environment)
        }
        for (name, value) in environment { setenv(name, value, 1) }
        if let directory = environment["COHORT_WORKING_DIR"] { _ = chdir(directory) }
        // This runs on a Swift concurrency thread (the command is async), whose signals are
        // all blocked, and a mask survives exec: the application would never see mpirun's
        // SIGTERM or a SIGUSR1 warning. It starts with none blocked, as from a shell.
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        let argv = words.map { strdup($0) } + [nil]
        execvp(words[0], argv)
        let reason = String(cString: strerror(errno))
        FileHandle.standardError.write(Data("cohort rank-env: cannot start \(words[0]): \(reason)\n".utf8))
        throw ExitCode(127)
    }
}
