import ArgumentParser
import Foundation
import Launcher

struct HostfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hostfile", abstract: "Expand and convert hostfiles and Slurm hostlists.",
        subcommands: [Expand.self, Convert.self])

    struct Expand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "expand", abstract: "Print the hosts of a Slurm hostlist, one per line.")
        @Argument(help: "e.g. 'node[01-16]' or 'rack[1-2]-n[1-4]'") var expression: String

        func run() throws {
            do {
                for host in try Hostlist.expand(expression, source: "hostlist") { print(host) }
            } catch {
                throw Exit.badInput(error)
            }
        }
    }

    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "convert", abstract: "Convert a hostfile between Open MPI, MPICH and Slurm forms.")
        @Argument(help: "The file to read ('-' for standard input).") var file: String
        @Option(help: "Input format: openmpi, mpich or slurm (default: guessed).") var from: String?
        @Option(help: "Output format: openmpi, mpich or slurm.") var to: String

        func run() throws {
            guard let target = Hostfile.Format(rawValue: to) else { throw Exit.badInput("--to: expected openmpi, mpich or slurm, found '\(to)'") }
            let text: String
            if file == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                guard let contents = try? String(contentsOfFile: file, encoding: .utf8) else { throw Exit.badInput("cannot read \(file)") }
                text = contents
            }
            do {
                let entries: [HostEntry]
                if let from {
                    guard let format = Hostfile.Format(rawValue: from) else { throw Exit.badInput("--from: expected openmpi, mpich or slurm, found '\(from)'") }
                    entries = try Hostfile.parse(text, format: format, source: file)
                } else {
                    entries = try Hostfile.parse(text, source: file)
                }
                print(Hostfile.write(entries, format: target), terminator: "")
            } catch let error as HostfileError {
                throw Exit.badInput(error)
            }
        }
    }
}
