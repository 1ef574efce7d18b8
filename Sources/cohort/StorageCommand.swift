import ArgumentParser
import Foundation
import Launcher

/// `cohort storage`: the S3-compatible store resource and output files use by default.
struct StorageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage", abstract: "Set or show the object store (S3-compatible) that s3:// URLs and autoStorageContainerName use.",
        subcommands: [Set.self, Show.self])

    static var stateDirectory: String { PoolStore.defaultStateDirectory }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keep the store's endpoint, region and credentials in the state directory (storage.json, mode 0600); AWS_* and COHORT_S3_ENDPOINT in the environment still win.")
        @Option(help: "http(s)://HOST[:PORT] of the store.") var endpoint: String?
        @Option(help: "The region requests are signed for (default us-east-1).") var region: String?
        @Option(help: "The access key id.") var accessKeyId: String?
        @Option(help: "A file holding the secret access key ('-': standard input); never on the command line.") var secretAccessKeyFile: String?

        func run() throws {
            var configuration = StorageConfiguration.stored(stateDirectory: StorageCommand.stateDirectory) ?? StorageConfiguration()
            if let endpoint {
                do { _ = try ObjectLocation.parse("\(endpoint)/bucket", endpoint: nil) } catch { throw Exit.badInput("--endpoint: \(error)") }
                guard let url = URLComponents(string: endpoint), url.path.isEmpty || url.path == "/", url.query == nil else {
                    throw Exit.badInput("--endpoint: expected http(s)://HOST[:PORT], found '\(endpoint)'")
                }
                configuration.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            }
            if let region {
                guard !region.isEmpty, region.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                    throw Exit.badInput("--region: expected a region name such as us-east-1, found '\(region)'")
                }
                configuration.region = region
            }
            if let accessKeyId { configuration.accessKeyId = accessKeyId }
            if let file = secretAccessKeyFile {
                let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
                guard let secret = data.map({ String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }), !secret.isEmpty else {
                    throw Exit.badInput("--secret-access-key-file: cannot read a secret from '\(file)'")
                }
                configuration.secretAccessKey = secret
            }
            guard (configuration.accessKeyId == nil) == (configuration.secretAccessKey == nil) else {
                throw Exit.badInput("give both --access-key-id and --secret-access-key-file (requests are signed with both, or with neither)")
            }
            do { try configuration.store(stateDirectory: StorageCommand.stateDirectory) } catch { throw Exit.badInput("cannot write storage.json: \(error)") }
            print("storage: \(configuration.endpoint ?? "no endpoint"), region \(configuration.region), \(configuration.accessKeyId == nil ? "unsigned" : "signed as \(configuration.accessKeyId!)")")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the store Cohort uses here (the secret is never printed).")

        func run() throws {
            let configuration = StorageConfiguration.configured(stateDirectory: StorageCommand.stateDirectory)
            print("endpoint: \(configuration.endpoint ?? "none (s3:// URLs and autoStorageContainerName need one)")")
            print("region: \(configuration.region)")
            print("credentials: \(configuration.accessKeyId.map { "access key id \($0), secret \(configuration.secretAccessKey == nil ? "missing" : "set")" } ?? "none (requests are unsigned)")")
        }
    }
}

/// `--stage` of run and submit: the paths uploaded, every task given them.
enum Staging {
    static func apply(_ paths: [String], bucket: String, to job: inout JobSpec) throws {
        guard !paths.isEmpty else { return }
        let storage = StorageConfiguration.configured(stateDirectory: PoolStore.defaultStateDirectory)
        let file: ResourceFile
        do { file = try LocalStaging.stage(paths, jobId: job.id, bucket: bucket, storage: storage) } catch { throw Exit.badInput(error) }
        // Into each task's working directory; for a multi-instance task also into its group's
        // shared directory (every rank's $AZ_BATCH_TASK_SHARED_DIR), as only the primary
        // works in the task's own.
        for index in job.tasks.indices {
            job.tasks[index].resourceFiles = [file] + (job.tasks[index].resourceFiles ?? [])
            if var multi = job.tasks[index].multiInstance {
                multi.commonResourceFiles = [file] + (multi.commonResourceFiles ?? [])
                job.tasks[index].multiInstance = multi
            }
        }
    }
}
