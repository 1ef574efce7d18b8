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

/// `cohort node-probe`: the processes of an attempt on this node and the CPU each used, one
/// `PID TICKS NAME` line each; with `--stacks`, each one's stacks saved there (gdb). What a
/// controller elsewhere runs through the node's agent to tell a hung task from a busy one.
struct NodeProbe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node-probe", abstract: "(internal) An attempt's processes here and their CPU time; their stacks on request.", shouldDisplay: false)

    @Option(help: "The attempt's id (COHORT_ATTEMPT_ID).") var attempt: String
    @Option(help: "Save each process's stacks (gdb) in this directory.") var stacks: String?
    @Option(help: "This node's id, for the stack files' names.") var node: String = "node"

    func validate() throws {
        guard !attempt.isEmpty, attempt.count <= 300, !attempt.contains("="), !attempt.contains("\0") else { throw ValidationError("--attempt: not an attempt id") }
        if let stacks, !stacks.hasPrefix("/") { throw ValidationError("--stacks: an absolute path, found '\(stacks.prefix(80))'") }
        guard node.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else { throw ValidationError("--node: not a node id") }
    }

    func run() throws {
        let samples = ProcessProbe.sample(attemptId: attempt)
        if let stacks { ProcessProbe.saveStacks(samples, node: node, directory: stacks) }
        FileHandle.standardOutput.write(Data(ProcessProbe.lines(samples).utf8))
    }
}
