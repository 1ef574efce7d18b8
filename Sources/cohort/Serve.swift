import ArgumentParser
import Foundation
import API
import Launcher
#if canImport(Glibc)
import Glibc
#endif

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "submit", abstract: "Queue a job file for `cohort serve`; prints the job's id.")
    @Argument(help: "A job file (YAML or JSON).") var file: String
    @Option(help: "The pool to run on (default: the job file's).") var pool: String?
    @Flag(help: "Submit it disabled: nothing starts until `cohort job enable`.") var disabled = false
    @Option(help: "Upload PATH (a file, a folder, or . for this folder's contents) to the object store and put it in each task's working directory first (repeatable).") var stage: [String] = []
    @Option(help: "The bucket --stage uploads to.") var stageBucket: String = "cohort-staging"
    @Option(help: "Start it only after job JOB has ended: JOB (every task of it succeeded, Slurm's afterok), JOB:any or JOB:notok (repeatable).") var after: [String] = []
    @Option(name: .customLong("export"), help: ArgumentHelp("What of this environment the job's tasks get, as sbatch's: ALL (the default), NONE, or NAME[,NAME=VALUE…] (ALL,NAME=VALUE adds to all); the job file's own variables win.", valueName: "ALL|NONE|NAMES"))
    var export: String = "ALL"
    @Option(help: "table (the id alone) or json") var output: OutputFormat = .table

    func say(_ id: String) {
        print(output == .json ? "{\"id\":\"\(id)\"}" : id)  // ids are letters, digits, '-' and '_'
    }

    /// Submits through the API and says the id the job got; the server's refusal names the file.
    func post(_ client: Client, _ path: String, body: Data) throws {
        do {
            let data = try client.call("POST", path, body: body)
            let answer = try JSONDecoder().decode([String: String].self, from: data)
            say(answer["id"] ?? "")
        } catch let failure as Client.Failure where failure.status != 0 {
            throw Exit.badInput("\(file): \(failure.description)")
        } catch let failure as Client.Failure {
            throw Exit.badInput(failure.description)
        }
    }

    func run() throws {
        var job: JobSpec
        do { job = try JobFile.load(path: file) } catch { throw Exit.badInput(error) }
        var dependencies: [JobDependency] = []
        for text in after {
            guard let dependency = JobDependency.parse(text) else { throw Exit.badInput("--after: expected JOB, JOB:ok, JOB:any or JOB:notok, found '\(text)'") }
            dependencies.append(dependency)
        }
        if !dependencies.isEmpty { job.afterJobs = (job.afterJobs ?? []) + dependencies }
        if let pool { job.pool = pool }
        guard let exported = ExportedEnvironment.parse(export) else {
            throw Exit.badInput("--export: expected ALL, NONE or NAME[,NAME=VALUE…] (names of letters, digits and '_'), found '\(export.prefix(80))'")
        }
        let before = job.environment
        do { try exported.apply(to: &job, from: ProcessInfo.processInfo.environment) } catch { throw Exit.badInput(error) }
        try Staging.apply(stage, bucket: stageBucket, to: &job)
        // Through the server when one runs (it checks, stores and starts at once), else
        // straight into the store, where the next server finds it.
        if let client = try Client.discover() {
            // The file as written, with what the flags add as the API's parameters: the server
            // reads it as this command did (its arrays, its own folder for relative programs).
            // (Exported variables travel in the job: then the body is the job as read here.)
            if stage.isEmpty && !client.elsewhere && job.environment == before {
                var query = [("directory", URL(fileURLWithPath: file).deletingLastPathComponent().standardizedFileURL.path)]
                if let pool { query.append(("pool", pool)) }
                if disabled { query.append(("disabled", "true")) }
                query += after.map { ("after", $0) }
                let encoded = query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.1)" }.joined(separator: "&")
                let text: Data
                do { text = try Data(contentsOf: URL(fileURLWithPath: file)) } catch { throw Exit.badInput("\(file): \(error.localizedDescription)") }
                return try post(client, "/v1/jobs?" + encoded, body: text)
            }
            // Programs the job file names by relative path are files here; a server elsewhere
            // gets them as resource files (through the object store).
            if client.elsewhere { try Staging.programs(of: &job, folder: URL(fileURLWithPath: file).deletingLastPathComponent().path, bucket: stageBucket) }
            return try post(client, "/v1/jobs\(disabled ? "?disabled=true" : "")", body: try JSONEncoder().encode(job))
        }
        let id: String
        do { id = try Submission.submit(job, store: Stored.jobs(), pools: PoolStore(stateDirectory: PoolStore.defaultStateDirectory), held: disabled) }
        catch let error as ExitCode { throw error } catch { throw Exit.badInput(error) }
        say(id)
    }
}

/// The batch service: runs queued jobs (see `BatchService`) and answers the HTTP API (see
/// `APIServer`, `docs/openapi.yaml`) on 127.0.0.1 unless told otherwise.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run queued jobs as they come and answer the HTTP API.")
    @Option(help: "Where the API listens: HOST:PORT (port 0: any free port; see serve.json in the state directory).")
    var listen: String = "127.0.0.1:8765"
    @Option(help: "The API's bearer token file (default: api-token in the state directory, made on first start with mode 0600).")
    var tokenFile: String?
    @Option(help: "Seconds between looks at the queue.") var poll: Double = 0.2

    func run() async throws {
        let stateDirectory = PoolStore.defaultStateDirectory
        guard let address = APIHost.Address(listen) else { throw Exit.badInput("--listen: expected HOST:PORT, found '\(listen)'") }
        do { try StateDirectory.prepare(stateDirectory) } catch { throw Exit.badInput(error) }
        let path = tokenFile ?? APIToken.defaultPath(stateDirectory: stateDirectory)
        let token: String
        do {
            if FileManager.default.fileExists(atPath: path) {
                token = try APIToken.read(path)
            } else if tokenFile == nil && address.isLoopback {
                token = try APIToken.create(path)
                log("made the API token: \(path) (mode 0600)")
            } else if tokenFile != nil {
                throw APIToken.Problem(description: "--token-file: \(path) does not exist")
            } else {
                // Anyone on that network could reach the API: its token must exist and be
                // known before the first request, not be made now.
                throw APIToken.Problem(description: "--listen \(listen) is not a loopback address, and no API token exists yet: "
                    + "start once on 127.0.0.1 to make \(path), or pass --token-file with a token file of mode 0600")
            }
        } catch { throw Exit.badInput(error) }
        let service: BatchService
        do {
            service = try BatchService(stateDirectory: stateDirectory, cohortExecutable: ExecutionSettings.currentExecutable, poll: poll, log: { log($0) })
            try service.acquire()
            // On a thread of its own: recovery blocks on ssh, agents and uploads (which wait
            // for async HTTP), never a thread of Swift's cooperative pool.
            let recovering = service
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
                Thread { do { try recovering.recover(); done.resume() } catch { done.resume(throwing: error) } }.start()
            }
            try service.startSpawner()
        } catch { throw Exit.badInput(error) }
        do { try await APIHost.run(service: service, token: token, address: address, log: { log($0) }) } catch {
            throw Exit.badInput("the API cannot listen on \(listen): \(error)")
        }
    }
}

func log(_ message: String) {
    let stamp = ISO8601DateFormatter().string(from: Date())
    // write(2) with its errors ignored: Foundation's FileHandle.write traps on a failed write,
    // and a full disk under the log must cost a log line, not the server.
    let line = "\(stamp) cohort serve: \(message)\n"
    _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
}
