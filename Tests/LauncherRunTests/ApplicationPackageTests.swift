import Foundation
import XCTest
@testable import Launcher

/// `cohort app` and applicationPackageReferences: zip archives made by Python's zipfile,
/// kept by the CLI, extracted before the tasks that name them, refused when they would
/// write outside their folder.
final class ApplicationPackageTests: XCTestCase {
    /// A zip of `entries` (name, text, mode) written by Python's zipfile.
    func zip(_ entries: [(String, String, Int)], at path: String) throws {
        let script = """
        import sys, zipfile, json
        with zipfile.ZipFile(sys.argv[1], 'w') as z:
            for name, text, mode in json.loads(sys.argv[2]):
                info = zipfile.ZipInfo(name)
                info.external_attr = mode << 16
                z.writestr(info, text)
        """
        let list = try String(decoding: JSONSerialization.data(withJSONObject: entries.map { [$0.0, $0.1, $0.2] }), as: UTF8.self)
        let made = TestObjectStore.shell(["python3", "-c", script, path, list])
        XCTAssertEqual(made.status, 0, made.output)
    }

    func testPackagesAreKeptExtractedOnceAndNamedInTheEnvironment() throws {
        let home = Harness.temporaryDirectory()
        let files = Harness.temporaryDirectory()
        try zip([("bin/solve.sh", "#!/bin/sh\necho solver one\n", 0o755)], at: "\(files)/one.zip")
        try zip([("bin/solve.sh", "#!/bin/sh\necho solver two\n", 0o755), ("share/readme.txt", "two", 0o644)], at: "\(files)/two.zip")
        XCTAssertEqual(try Harness.cohort(["app", "add", "solver", "1.0", "\(files)/one.zip"], home: home).stdout, "application solver version 1.0 (default)\n")
        XCTAssertEqual(try Harness.cohort(["app", "add", "solver", "2.0", "\(files)/two.zip"], home: home).stdout, "application solver version 2.0\n")
        let listed = try Harness.cohort(["app", "list", "--output", "json"], home: home)
        let packages = try JSONDecoder().decode([ApplicationPackages.Package].self, from: Data(listed.stdout.utf8))
        XCTAssertEqual(packages.map { "\($0.applicationId) \($0.version) \($0.isDefault)" }, ["solver 1.0 true", "solver 2.0 false"])

        let job = "\(files)/job.json"
        try """
        {"id": "apps", "tasks": [
          {"id": "default", "commandLine": "/bin/sh -c \\"$AZ_BATCH_APP_PACKAGE_solver/bin/solve.sh\\"",
           "applicationPackageReferences": [{"applicationId": "solver"}]},
          {"id": "second", "commandLine": "/bin/sh -c \\"$AZ_BATCH_APP_PACKAGE_solver_2_0/bin/solve.sh; cat $AZ_BATCH_APP_PACKAGE_solver_2_0/share/readme.txt\\"",
           "applicationPackageReferences": [{"applicationId": "solver", "version": "2.0"}]},
          {"id": "again", "commandLine": "/bin/sh -c \\"$AZ_BATCH_APP_PACKAGE_solver_2_0/bin/solve.sh\\"", "dependsOn": ["second"],
           "applicationPackageReferences": [{"applicationId": "solver", "version": "2.0"}]},
          {"id": "missing", "commandLine": "true", "applicationPackageReferences": [{"applicationId": "mesher"}]}]}
        """.write(toFile: job, atomically: true, encoding: .utf8)
        let run = try Harness.cohort(["run", "--output", "json", job], home: home)
        XCTAssertEqual(run.exitCode, 1, run.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        let tasks = Dictionary(uniqueKeysWithValues: try XCTUnwrap(object?["tasks"] as? [[String: Any]]).map { ($0["taskId"] as! String, $0) })
        func output(_ id: String) -> String {
            let attempt = (tasks[id]?["attempts"] as? [[String: Any]])?.last
            return Harness.read("\(attempt?["directory"] as? String ?? "")/stdout.txt")
        }
        XCTAssertEqual(output("default"), "solver one\n")
        XCTAssertEqual(output("second"), "solver two\ntwo")
        XCTAssertEqual(output("again"), "solver two\n")
        let failure = ((tasks["missing"]?["attempts"] as? [[String: Any]])?.last?["failure"] as? [String: Any])
        XCTAssertEqual(failure?["category"] as? String, "preProcessingError")
        XCTAssertTrue((failure?["message"] as? String)?.contains("application mesher has no default version") == true, "\(String(describing: failure))")
        // Each version extracted once, for every task that named it.
        let cache = try FileManager.default.contentsOfDirectory(atPath: "\(home)/work/.cache/apps/solver").filter { !$0.hasSuffix(".lock") }
        XCTAssertEqual(cache.count, 2, "\(cache)")
        // A pool's packages reach every task on it.
        XCTAssertEqual(try Harness.cohort(["pool", "add", "local", "--local-nodes", "1", "--slots", "1", "--app", "solver:2.0"], home: home).exitCode, 0)
        let pooled = try Harness.cohort(["run", "--output", "json", "--", "/bin/sh", "-c", "$AZ_BATCH_APP_PACKAGE_solver_2_0/bin/solve.sh"], home: home)
        XCTAssertEqual(pooled.exitCode, 0, pooled.stderr + pooled.stdout)
        XCTAssertTrue(pooled.stdout.contains("\"exitCode\" : 0") || pooled.stdout.contains("\"exitCode\":0"), pooled.stdout)
        XCTAssertEqual(try Harness.cohort(["app", "remove", "solver", "1.0"], home: home).exitCode, 0)
        XCTAssertEqual(try Harness.cohort(["app", "list"], home: home).stdout, "APPLICATION  VERSION  DEFAULT  BYTES\nsolver       2.0               \(packages[1].bytes)\n")
    }

    /// Archives that would write outside their folder, or are no archives, are refused
    /// with the reason, and nothing is written.
    func testEscapingOrBrokenArchivesAreRefused() throws {
        let home = Harness.temporaryDirectory()
        let files = Harness.temporaryDirectory()
        try zip([("../escaped.sh", "x", 0o644)], at: "\(files)/dotdot.zip")
        try zip([("/tmp/cohort-absolute-\(getpid()).sh", "x", 0o644)], at: "\(files)/absolute.zip")
        try "not a zip".write(toFile: "\(files)/text.zip", atomically: true, encoding: .utf8)
        for (file, reason) in [("dotdot.zip", "would be written outside"), ("absolute.zip", "would be written outside"), ("text.zip", "is not a zip archive")] {
            let added = try Harness.cohort(["app", "add", "bad", "1", "\(files)/\(file)"], home: home)
            XCTAssertEqual(added.exitCode, 2, file)
            XCTAssertTrue(added.stderr.contains(reason), "\(file): \(added.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(home)/apps/bad"), "nothing kept")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(files)/../escaped.sh"))
        let badName = try Harness.cohort(["app", "add", "no/slash", "1", "\(files)/text.zip"], home: home)
        XCTAssertEqual(badName.exitCode, 2)
        XCTAssertTrue(badName.stderr.contains("is not a valid application id"), badName.stderr)
    }
}
