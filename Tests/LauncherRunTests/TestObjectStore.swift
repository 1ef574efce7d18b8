import Foundation
import XCTest
@testable import Launcher

/// A real S3-compatible store for the tests: SeaweedFS started once per test process by
/// scripts/object-store.sh (an S3 identity configured, so signatures are checked), and
/// awscli to look at what landed there independently of Cohort's client. Missing `weed`
/// or `aws` fails the tests that need them, loudly.
enum TestObjectStore {
    static let directory = "/tmp/cohort-s3-tests-\(getpid())"
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/object-store.sh").path

    /// The configuration of the running store, or why it is not running.
    static let started: Result<StorageConfiguration, StoreError> = {
        let result = shell(["bash", script, "up", directory])
        guard result.status == 0 else { return .failure(StoreError(description: "object store did not start: \(result.output)")) }
        atexit { _ = TestObjectStore.shell(["bash", TestObjectStore.script, "down", TestObjectStore.directory]) }
        var variables: [String: String] = [:]
        for line in Harness.read("\(directory)/env").split(separator: "\n") {
            let assignment = line.replacingOccurrences(of: "export ", with: "")
            guard let equals = assignment.firstIndex(of: "=") else { continue }
            variables[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...]).trimmingCharacters(in: CharacterSet(charactersIn: "'"))
        }
        return .success(StorageConfiguration.fromEnvironment(variables))
    }()

    struct StoreError: Error, CustomStringConvertible { var description: String }

    static func configuration() throws -> StorageConfiguration { try started.get() }

    static var endpoint: String { (try? configuration().endpoint) ?? "" }

    /// The store's variables, for a `cohort` process.
    static var variables: [String: String] {
        guard let c = try? configuration() else { return [:] }
        return ["COHORT_S3_ENDPOINT": c.endpoint ?? "", "AWS_ACCESS_KEY_ID": c.accessKeyId ?? "", "AWS_SECRET_ACCESS_KEY": c.secretAccessKey ?? "",
                "AWS_DEFAULT_REGION": c.region]
    }

    /// `aws --endpoint-url … ARGS` with the store's credentials.
    @discardableResult
    static func aws(_ arguments: [String], input: String? = nil) -> (status: Int32, output: String) {
        shell(["aws", "--endpoint-url", endpoint] + arguments, environment: variables)
    }

    /// A new bucket with a unique name.
    static func bucket(_ prefix: String) throws -> String {
        _ = try configuration()
        let name = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        let made = aws(["s3api", "create-bucket", "--bucket", name])
        guard made.status == 0 else { throw StoreError(description: "create-bucket \(name): \(made.output)") }
        return name
    }

    static func put(_ bucket: String, _ key: String, _ contents: String) throws {
        let file = NSTemporaryDirectory() + "cohort-put-\(UUID().uuidString)"
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        let put = aws(["s3api", "put-object", "--bucket", bucket, "--key", key, "--body", file])
        guard put.status == 0 else { throw StoreError(description: "put-object \(bucket)/\(key): \(put.output)") }
    }

    /// Every key of the bucket, sorted.
    static func keys(_ bucket: String) -> [String] {
        let listed = aws(["s3api", "list-objects-v2", "--bucket", bucket, "--query", "Contents[].Key", "--output", "text"])
        return listed.output.split(whereSeparator: { $0 == "\t" || $0 == "\n" }).map(String.init).filter { $0 != "None" }.sorted()
    }

    static func contents(_ bucket: String, _ key: String) -> String? {
        let got = shell(["aws", "--endpoint-url", endpoint, "s3", "cp", "s3://\(bucket)/\(key)", "-"], environment: variables, mergeErrors: false)
        return got.status == 0 ? got.output : nil
    }

    static func shell(_ arguments: [String], environment extra: [String: String] = [:], mergeErrors: Bool = true) -> (status: Int32, output: String) {
        Harness.shell(arguments, environment: extra, mergeErrors: mergeErrors)
    }
}

/// A plain HTTP server (Python's http.server) serving a directory, for httpUrl resource files.
final class TestHTTPServer {
    let directory = Harness.temporaryDirectory()
    let port = Int.random(in: 41000...48000)
    private let process = Process()

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", directory]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date() + 10
        while Date() < deadline {
            if TestObjectStore.shell(["python3", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:\(port)/')"]).status == 0 { return }
            usleep(100_000)
        }
        throw TestObjectStore.StoreError(description: "http.server did not answer on port \(port)")
    }

    func url(_ name: String) -> String { "http://127.0.0.1:\(port)/\(name)" }

    deinit { process.terminate(); process.waitUntilExit() }
}
