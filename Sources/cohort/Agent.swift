import ArgumentParser
import Foundation
import Launcher

/// `cohort agent --stdio`: what the controller starts on each node of a static pool over
/// one ssh connection it keeps (see `NodeAgent`).
struct Agent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "(internal) Serve a controller on this node over stdin/stdout.", shouldDisplay: false)

    @Flag(help: "Speak the agent protocol on stdin and stdout (the only way for now).") var stdio = false
    @Flag(help: "One frame a line (for a channel carried by srun, which passes only whole lines along).") var lines = false

    func run() throws {
        guard stdio else { throw Exit.badInput("cohort agent: give --stdio (the controller starts agents this way over ssh)") }
        throw ExitCode(NodeAgent(lines: lines).serve())
    }
}
