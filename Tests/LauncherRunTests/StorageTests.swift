import Foundation
import XCTest
@testable import Launcher

/// Resource files in and output files out, against a real S3-compatible store (SeaweedFS,
/// signatures checked) and a real HTTP server; what landed is checked with awscli.
final class StorageTests: XCTestCase {
    func settings(storage: StorageConfiguration? = nil) throws -> ExecutionSettings {
        var settings = Harness.settings(Harness.temporaryDirectory())
        settings.storage = try storage ?? TestObjectStore.configuration()
        return settings
    }

    func run(_ job: JobSpec, settings: ExecutionSettings, pool: Pool = .local(nodeCount: 2, slotsPerNode: 2)) throws -> JobRun {
        let run = try JobRunner(job: job, pool: pool, settings: settings).run()
        Harness.checkNoOrphans(run)
        return run
    }

    func testResourceFilesComeFromABucketAndAURLIntoTheTasksDirectory() throws {
        let bucket = try TestObjectStore.bucket("inputs")
        try TestObjectStore.put(bucket, "mesh/coarse.dat", "coarse\n")
        try TestObjectStore.put(bucket, "mesh/fine/f.dat", "fine\n")
        try TestObjectStore.put(bucket, "other/x.dat", "not wanted\n")
        let http = try TestHTTPServer()
        try "params\n".write(toFile: "\(http.directory)/params.txt", atomically: true, encoding: .utf8)
        let endpoint = TestObjectStore.endpoint

        var read = TaskSpec.shell("read", "cat input/mesh/coarse.dat input/mesh/fine/f.dat params.txt; stat -c %a params.txt input/mesh/coarse.dat; ls input")
        read.resourceFiles = [ResourceFile(storageContainerUrl: "\(endpoint)/\(bucket)", blobPrefix: "mesh/", filePath: "input"),
                              ResourceFile(httpUrl: http.url("params.txt"), filePath: "params.txt", fileMode: "0640")]
        // The same objects again: through the configured store's bucket name, and an s3://
        // URL whose prefix is taken off the names.
        var again = TaskSpec.shell("again", "cat mesh/coarse.dat; cat data/fine/f.dat", dependsOn: ["read"])
        again.resourceFiles = [ResourceFile(autoStorageContainerName: bucket, blobPrefix: "mesh/coarse"),
                               ResourceFile(storageContainerUrl: "s3://\(bucket)/mesh", filePath: "data")]
        let settings = try settings()
        let result = try run(JobSpec(id: "inputs", tasks: [read, again]), settings: settings)
        XCTAssertTrue(result.succeeded, "\(result.tasks.map { $0.failure })")
        let first = try XCTUnwrap(result.tasks.first { $0.taskId == "read" }?.attempts.last)
        XCTAssertEqual(Harness.read("\(first.directory)/stdout.txt"), "coarse\nfine\nparams\n640\n770\nmesh\n",
                       "the prefix's objects (not the others) under filePath with their names, the URL's file with its mode; Azure's default mode 0770")
        let second = try XCTUnwrap(result.tasks.first { $0.taskId == "again" }?.attempts.last)
        XCTAssertEqual(Harness.read("\(second.directory)/stdout.txt"), "coarse\nfine\n")
        // Each object was downloaded once: the later task's copies came from the cache.
        let cached = try FileManager.default.contentsOfDirectory(atPath: "\(settings.workDirectory)/.cache/objects").filter { !$0.hasSuffix(".lock") }
        XCTAssertEqual(cached.count, 2, "\(cached)")
    }

    func testOutputFilesAreUploadedByTheirConditionUnderTheirNames() throws {
        let bucket = try TestObjectStore.bucket("results")
        let container = "\(TestObjectStore.endpoint)/\(bucket)"
        func outputs(_ id: String) -> [OutputFile] {
            [OutputFile(filePattern: "**/*.dat", containerUrl: "\(container)/\(id)", uploadCondition: .taskSuccess),
             OutputFile(filePattern: "result.txt", containerUrl: "s3://\(bucket)/\(id)", path: "final/result.txt", uploadCondition: .taskCompletion),
             OutputFile(filePattern: "../std*.txt", containerUrl: container, path: "\(id)/logs", uploadCondition: .taskFailure)]
        }
        var good = TaskSpec.shell("good", "mkdir -p out/deep; echo a > out/a.dat; echo b > out/deep/b.dat; echo 42 > result.txt; echo .hidden > .h.dat")
        good.outputFiles = outputs("good")
        var bad = TaskSpec.shell("bad", "echo a > a.dat; echo 0 > result.txt; echo broken >&2; exit 3")
        bad.outputFiles = outputs("bad")
        let result = try run(JobSpec(id: "outputs", tasks: [good, bad]), settings: try settings())
        let byId = Dictionary(uniqueKeysWithValues: result.tasks.map { ($0.taskId, $0) })
        XCTAssertTrue(byId["good"]?.succeeded == true, "\(String(describing: byId["good"]?.failure))")
        XCTAssertEqual(byId["bad"]?.failure?.category, .exitCode, "an upload does not hide the task's own failure")
        XCTAssertEqual(TestObjectStore.keys(bucket), ["bad/final/result.txt", "bad/logs/stderr.txt", "bad/logs/stdout.txt",
                                                       "good/final/result.txt", "good/out/a.dat", "good/out/deep/b.dat"])
        XCTAssertEqual(TestObjectStore.contents(bucket, "good/out/deep/b.dat"), "b\n")
        XCTAssertEqual(TestObjectStore.contents(bucket, "good/final/result.txt"), "42\n")
        XCTAssertEqual(TestObjectStore.contents(bucket, "bad/logs/stderr.txt"), "broken\n")
    }

    /// Each way a transfer fails is the attempt's named failure: the URL and the status.
    func testTransferFailuresNameTheURLAndTheStatus() throws {
        let bucket = try TestObjectStore.bucket("named")
        try TestObjectStore.put(bucket, "in.dat", "x")
        let http = try TestHTTPServer()
        let endpoint = TestObjectStore.endpoint
        func task(_ id: String, _ file: ResourceFile) -> TaskSpec {
            var task = TaskSpec.shell(id, "echo ran")
            task.resourceFiles = [file]
            return task
        }
        var upload = TaskSpec.shell("upload", "echo out > out.dat")
        upload.outputFiles = [OutputFile(filePattern: "out.dat", containerUrl: "http://127.0.0.1:1/unreachable")]
        var missingOutput = TaskSpec.shell("nothing", "true")
        missingOutput.outputFiles = [OutputFile(filePattern: "never-written.dat", containerUrl: "\(endpoint)/\(bucket)")]
        let job = JobSpec(id: "failures", tasks: [
            task("notfound", ResourceFile(httpUrl: http.url("missing.dat"), filePath: "m.dat")),
            task("nobucket", ResourceFile(storageContainerUrl: "\(endpoint)/no-such-bucket-here")),
            task("refused", ResourceFile(httpUrl: "http://127.0.0.1:1/x", filePath: "x")),
            upload, missingOutput,
        ])
        let result = try run(job, settings: try settings())
        let byId = Dictionary(uniqueKeysWithValues: result.tasks.map { ($0.taskId, $0) })
        func check(_ id: String, _ category: FailureCategory, _ parts: [String], ran: Bool) {
            let attempt = byId[id]?.attempts.last
            XCTAssertEqual(attempt?.failure?.category, category, id)
            for part in parts { XCTAssertTrue(attempt?.failure?.message.contains(part) == true, "\(id): \(attempt?.failure?.message ?? "none")") }
            XCTAssertEqual(Harness.read("\(attempt?.directory ?? "")/stdout.txt").contains("ran"), ran, "\(id) ran: \(!ran)")
        }
        check("notfound", .preProcessingError, [http.url("missing.dat"), "HTTP 404"], ran: false)
        check("nobucket", .preProcessingError, ["no-such-bucket-here", "NoSuchBucket"], ran: false)
        check("refused", .preProcessingError, ["http://127.0.0.1:1/x"], ran: false)
        check("upload", .fileUploadError, ["PUT http://127.0.0.1:1/unreachable/out.dat"], ran: false)
        check("nothing", .fileUploadError, ["no file never-written.dat"], ran: false)

        // Wrong credentials: the store refuses the signature, and the attempt says so.
        var wrong = try TestObjectStore.configuration()
        wrong.secretAccessKey = "not-the-secret"
        var deniedUpload = TaskSpec.shell("upload", "echo out > out.dat")
        deniedUpload.outputFiles = [OutputFile(filePattern: "out.dat", containerUrl: "\(endpoint)/\(bucket)")]
        let denied = try run(JobSpec(id: "denied", tasks: [task("download", ResourceFile(storageContainerUrl: "\(endpoint)/\(bucket)")), deniedUpload]),
                             settings: try settings(storage: wrong))
        for task in denied.tasks {
            let failure = try XCTUnwrap(task.failure, task.taskId)
            XCTAssertEqual(failure.category, task.taskId == "upload" ? .fileUploadError : .preProcessingError)
            XCTAssertTrue(failure.message.contains("HTTP 403") && failure.message.contains("SignatureDoesNotMatch"), failure.message)
        }
        XCTAssertEqual(TestObjectStore.keys(bucket), ["in.dat"], "nothing was written with a wrong signature")
    }

    /// A multi-instance task's common resource files are in the shared directory before the
    /// coordination command runs on every node; its output goes up from the primary.
    func testCommonResourceFilesReachEveryNodeBeforeCoordination() throws {
        let bucket = try TestObjectStore.bucket("common")
        try TestObjectStore.put(bucket, "app/run.sh", "#!/bin/sh\necho \"app on $AZ_BATCH_NODE_ID\"\n")
        let job = try JobFile.parse("""
        {"id": "azure-common", "tasks": [{"id": "mpi",
          "commandLine": "/bin/sh -c \\"$AZ_BATCH_TASK_SHARED_DIR/app/run.sh > primary.txt\\"",
          "multiInstanceSettings": {"numberOfInstances": 2,
            "coordinationCommandLine": "/bin/sh -c \\"test -x $AZ_BATCH_TASK_SHARED_DIR/app/run.sh && echo ready\\"",
            "commonResourceFiles": [{"storageContainerUrl": "s3://\(bucket)", "fileMode": "0755"}]},
          "outputFiles": [{"filePattern": "primary.txt", "destination": {"container": {"containerUrl": "s3://\(bucket)/out"}},
                           "uploadOptions": {"uploadCondition": "taskSuccess"}}]}]}
        """, file: "azure-common.json")
        let result = try run(job, settings: try settings())
        let attempt = try XCTUnwrap(result.tasks[0].attempts.last)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure))")
        for node in attempt.nodes {
            XCTAssertEqual(Harness.read("\(attempt.directory)/node-\(node)/coordination-stdout.txt"), "ready\n", node)
        }
        XCTAssertEqual(TestObjectStore.contents(bucket, "out/primary.txt"), "app on \(attempt.nodes[0])\n", "run once, on the primary")
    }

    /// kill -9 of the server while a task's output is being uploaded: no half object ever
    /// appears under the name (one PUT, atomic in S3), and the restarted server uploads it
    /// before recording the attempt; the task does not run again.
    func testAServerKilledDuringAnUploadLeavesNoHalfObjectAndUploadsAgain() throws {
        let home = Harness.temporaryDirectory()
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "1", "--slots", "1"], home: home).exitCode, 0)
        let bucket = try TestObjectStore.bucket("crash")
        let size = 192 << 20
        let file = "\(home)/crash.json"
        try """
        {"id": "crash", "tasks": [{"id": "big", "commandLine": "/bin/sh -c \\"echo run >> \(home)/runs; head -c \(size) /dev/urandom > big.bin\\"",
          "outputFiles": [{"filePattern": "big.bin", "destination": {"container": {"containerUrl": "s3://\(bucket)/out"}}}]}]}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let server = try ServerProcess(home: home, environment: TestObjectStore.variables)
        try server.waitUntilListening()
        let submitted = try Harness.cohort(["submit", file], home: home)
        XCTAssertEqual(submitted.stdout, "crash\n", submitted.stderr)
        // The task's end is written down (exit-status) before the server uploads: kill then.
        let deadline = Date() + 60
        var status: String?
        while status == nil && Date() < deadline {
            status = FileManager.default.enumerator(atPath: "\(home)/work")?.compactMap { $0 as? String }.first { $0.hasSuffix("big/attempt-1/exit-status") }
            if status == nil { usleep(5_000) }
        }
        XCTAssertNotNil(status, "the task did not end")
        server.killHard()
        let atKill = TestObjectStore.aws(["s3api", "head-object", "--bucket", bucket, "--key", "out/big.bin", "--query", "ContentLength", "--output", "text"])
        if atKill.status == 0 {
            XCTAssertEqual(atKill.output.trimmingCharacters(in: .whitespacesAndNewlines), "\(size)", "only a whole object under the name")
        }
        print("at the kill the object was \(atKill.status == 0 ? "already whole" : "absent")")
        let restarted = try ServerProcess(home: home, environment: TestObjectStore.variables)
        try restarted.waitUntilListening()
        let store = try JobStore(stateDirectory: home)
        let until = Date() + 120
        while try store.job("crash")?.state != .completed && Date() < until { usleep(50_000) }
        XCTAssertEqual(try store.job("crash")?.succeeded, 1, restarted.log)
        let local = try XCTUnwrap(status.map { "\(home)/work/\(($0 as NSString).deletingLastPathComponent)/big.bin" })
        let md5 = TestObjectStore.shell(["md5sum", local]).output.split(separator: " ").first.map(String.init) ?? "?"
        let etag = TestObjectStore.aws(["s3api", "head-object", "--bucket", bucket, "--key", "out/big.bin", "--query", "ETag", "--output", "text"])
        XCTAssertEqual(etag.output.trimmingCharacters(in: CharacterSet(charactersIn: "\"\n ")), md5, "the whole file, uploaded by the restarted server")
        XCTAssertEqual(Harness.read("\(home)/runs"), "run\n", "the task ran once")
        XCTAssertEqual(restarted.stop(), 0, restarted.log)
    }

    /// `cohort storage set` keeps the store (secret from a file, storage.json owner-only)
    /// and `cohort run` uses it without any AWS_* variable; `show` never prints the secret.
    func testTheStoreSetWithTheCLIIsUsedByRuns() throws {
        let store = try TestObjectStore.configuration()
        let home = Harness.temporaryDirectory()
        let secret = "\(home)/secret"
        try (store.secretAccessKey ?? "").write(toFile: secret, atomically: true, encoding: .utf8)
        let set = try Harness.cohort(["storage", "set", "--endpoint", store.endpoint ?? "", "--access-key-id", store.accessKeyId ?? "",
                                      "--secret-access-key-file", secret], home: home)
        XCTAssertEqual(set.exitCode, 0, set.stderr)
        var info = stat()
        XCTAssertEqual(stat("\(home)/storage.json", &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        let shown = try Harness.cohort(["storage", "show"], home: home)
        XCTAssertTrue(shown.stdout.contains(store.endpoint ?? "?") && shown.stdout.contains("secret set"), shown.stdout)
        XCTAssertFalse(shown.stdout.contains(store.secretAccessKey ?? "?"), "the secret is never printed")
        let bucket = try TestObjectStore.bucket("configured")
        let job = "\(home)/job.json"
        try """
        {"id": "configured", "tasks": [{"id": "t", "commandLine": "/bin/sh -c \\"echo kept > out.txt\\"",
          "outputFiles": [{"filePattern": "out.txt", "destination": {"container": {"containerUrl": "s3://\(bucket)/runs"}}}]}]}
        """.write(toFile: job, atomically: true, encoding: .utf8)
        let run = try Harness.cohort(["run", job], home: home)
        XCTAssertEqual(run.exitCode, 0, run.stderr + run.stdout)
        XCTAssertEqual(TestObjectStore.contents(bucket, "runs/out.txt"), "kept\n")
        let half = try Harness.cohort(["storage", "set", "--access-key-id", "only-the-id"], home: Harness.temporaryDirectory())
        XCTAssertEqual(half.exitCode, 2)
        XCTAssertTrue(half.stderr.contains("give both"), half.stderr)
    }

    /// `--stage`: local files travel with the job through the object store into the task's
    /// own directory (not the folder it was run from); hidden ones stay behind.
    func testStagedFilesTravelWithTheJob() throws {
        let home = Harness.temporaryDirectory()
        let project = Harness.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: "\(project)/data/.git", withIntermediateDirectories: true)
        try "mesh\n".write(toFile: "\(project)/input.dat", atomically: true, encoding: .utf8)
        try "deep\n".write(toFile: "\(project)/data/x.txt", atomically: true, encoding: .utf8)
        try "secret\n".write(toFile: "\(project)/data/.git/config", atomically: true, encoding: .utf8)
        let run = try Harness.cohort(["run", "--output", "json", "--stage", "input.dat", "--stage", "data", "--",
                                      "/bin/sh", "-c", "cat input.dat data/x.txt; ls -a data; pwd"], home: home, directory: project,
                                     environment: TestObjectStore.variables)
        XCTAssertEqual(run.exitCode, 0, run.stderr + run.stdout)
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        let attempt = try XCTUnwrap(((object?["tasks"] as? [[String: Any]])?.first?["attempts"] as? [[String: Any]])?.last)
        let directory = try XCTUnwrap(attempt["directory"] as? String)
        XCTAssertEqual(Harness.read("\(directory)/stdout.txt"), "mesh\ndeep\n.\n..\nx.txt\n\(directory)\n")
        let missing = try Harness.cohort(["run", "--stage", "input.dat", "--", "true"], home: Harness.temporaryDirectory(), directory: project,
                                         environment: ["COHORT_S3_ENDPOINT": "", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": ""])
        XCTAssertEqual(missing.exitCode, 2)
        XCTAssertTrue(missing.stderr.contains("--stage needs an object store"), missing.stderr)
    }

    /// `cohort submit` to a server elsewhere ($COHORT_SERVER): a program the job file names by
    /// relative path travels through the object store (it runs even after the local file is
    /// gone); one whose ranks Cohort's mpirun would start is refused with what to do.
    func testRelativeProgramsTravelToAServerElsewhere() throws {
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home, environment: TestObjectStore.variables)
        try server.waitUntilListening()
        let elsewhere = Harness.temporaryDirectory()
        let project = Harness.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: "\(project)/bin", withIntermediateDirectories: true)
        try "#!/bin/sh\necho estimate $1\n".write(toFile: "\(project)/bin/estimate", atomically: true, encoding: .utf8)
        chmod("\(project)/bin/estimate", 0o755)
        try "id: travel\ntasks:\n  - { id: a, commandLine: bin/estimate 7 }\n".write(toFile: "\(project)/job.yaml", atomically: true, encoding: .utf8)
        let environment = TestObjectStore.variables.merging(["COHORT_SERVER": server.url, "COHORT_TOKEN": server.token]) { $1 }
        let submitted = try Harness.cohort(["submit", "--disabled", "\(project)/job.yaml"], home: elsewhere, environment: environment)
        XCTAssertEqual(submitted.stdout, "travel\n", submitted.stderr)
        try FileManager.default.removeItem(atPath: "\(project)/bin")  // only the uploaded copy is left
        XCTAssertEqual(try Harness.cohort(["job", "enable", "travel"], home: elsewhere, environment: environment).exitCode, 0)
        let store = try JobStore(stateDirectory: home)
        let until = Date() + 60
        while try store.job("travel")?.state != .completed && Date() < until { usleep(50_000) }
        let attempt = try XCTUnwrap(try store.tasks(jobId: "travel").first?.attempts.last)
        XCTAssertTrue(attempt.succeeded, "\(String(describing: attempt.failure)) \(server.log)")
        XCTAssertEqual(Harness.read("\(attempt.directory)/stdout.txt"), "estimate 7\n")
        try FileManager.default.createDirectory(atPath: "\(project)/bin", withIntermediateDirectories: true)
        try "#!/bin/sh\ntrue\n".write(toFile: "\(project)/bin/solver", atomically: true, encoding: .utf8)
        try "id: mpi\ntasks:\n  - { id: s, commandLine: bin/solver, multiInstance: { instances: 1 } }\n".write(toFile: "\(project)/mpi.yaml", atomically: true, encoding: .utf8)
        let refused = try Harness.cohort(["submit", "\(project)/mpi.yaml"], home: elsewhere, environment: environment)
        XCTAssertEqual(refused.exitCode, 2)
        XCTAssertTrue(refused.stderr.contains("ranks start in per-node directories"), refused.stderr)
        XCTAssertEqual(server.stop(), 0, server.log)
    }
}
