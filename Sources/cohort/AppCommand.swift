import ArgumentParser
import Foundation
import Launcher

/// `cohort app`: application packages (Azure Batch's), kept in the state directory.
struct AppCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "app", abstract: "Add, list and remove application packages (zip archives tasks name in applicationPackageReferences).",
        subcommands: [Add.self, List.self, Remove.self])

    static var packages: ApplicationPackages { ApplicationPackages(directory: "\(PoolStore.defaultStateDirectory)/apps") }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Keep a zip archive as version VERSION of application ID (the first version added is the default).")
        @Argument(help: "The application id.") var id: String
        @Argument(help: "The version.") var version: String
        @Argument(help: "The zip archive.") var file: String
        @Flag(help: "Make this version the application's default.") var makeDefault = false

        func run() throws {
            do {
                let package = try AppCommand.packages.add(id, version: version, file: file, makeDefault: makeDefault)
                print("application \(package.applicationId) version \(package.version)\(package.isDefault ? " (default)" : "")")
            } catch { throw Exit.badInput(error) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List application packages.")
        @Option(help: "table or json") var output: OutputFormat = .table

        func run() throws {
            let packages = AppCommand.packages.list()
            if output == .json { return print(encode(packages)) }
            printTable([["APPLICATION", "VERSION", "DEFAULT", "BYTES"]] + packages.map { [$0.applicationId, $0.version, $0.isDefault ? "yes" : "", String($0.bytes)] })
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a version of an application, or all of it.")
        @Argument(help: "The application id.") var id: String
        @Argument(help: "The version (all versions if none).") var version: String?

        func run() throws {
            do { try AppCommand.packages.remove(id, version: version) } catch { throw Exit.badInput(error) }
        }
    }
}
