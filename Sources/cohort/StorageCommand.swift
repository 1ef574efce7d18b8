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
        static let configuration = CommandConfiguration(commandName: "set", 
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
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the store Cohort uses here (the secret is never printed).")

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

    /// Programs below `folder` (a job file's relative programs, which the loader made
    /// absolute) are uploaded and run as `./NAME` from the task's working directory. A task
    /// whose ranks Cohort's mpirun starts (in per-node directories) cannot take them so: it is
    /// refused with what to do instead.
    static func programs(of job: inout JobSpec, folder: String, bucket: String) throws {
        let root = URL(fileURLWithPath: folder).standardizedFileURL.path + "/"
        let local = job.tasks.indices.filter { job.tasks[$0].commandLine.first.map { $0.hasPrefix(root) && FileManager.default.fileExists(atPath: $0) } == true }
        guard !local.isEmpty else { return }
        var names: [String: String] = [:]
        for index in local {
            let task = job.tasks[index], path = task.commandLine[0]
            if let multi = task.multiInstance, multi.launch == .mpirun {
                throw Exit.badInput("task \(task.id): its program \(path) is a file on this machine, which the server at $COHORT_SERVER may not see, and its ranks start in per-node directories: --stage it and run it from $AZ_BATCH_TASK_SHARED_DIR (launch: raw), or give a path that exists on the nodes")
            }
            let name = (path as NSString).lastPathComponent
            if let other = names[name], other != path {
                throw Exit.badInput("task \(task.id): programs \(other) and \(path) would both travel as ./\(name); give one another name")
            }
            names[name] = path
        }
        let storage = StorageConfiguration.configured(stateDirectory: PoolStore.defaultStateDirectory)
        guard storage.endpoint != nil else {
            throw Exit.badInput("task \(job.tasks[local[0]].id): its program \(job.tasks[local[0]].commandLine[0]) is a file on this machine, which the server at $COHORT_SERVER may not see: set an object store (cohort storage set) for it to travel, or give a path that exists there")
        }
        let file: ResourceFile
        do { file = try LocalStaging.stage(Array(Set(names.values)).sorted(), jobId: job.id, bucket: bucket, storage: storage, from: folder) } catch { throw Exit.badInput(error) }
        for index in local {
            job.tasks[index].commandLine[0] = "./" + (job.tasks[index].commandLine[0] as NSString).lastPathComponent
            job.tasks[index].resourceFiles = [file] + (job.tasks[index].resourceFiles ?? [])
        }
    }
}
