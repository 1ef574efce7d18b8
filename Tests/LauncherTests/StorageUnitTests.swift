import Foundation
import XCTest
@testable import Launcher

/// The signer against AWS's published vectors, the output file patterns, bucket URLs and
/// the job file's resourceFiles/outputFiles with their errors.
final class StorageUnitTests: XCTestCase {
    // MARK: - Signature V4: AWS's test suite (service "service", 2015-08-30) and S3's GET example

    let suite = SignatureV4(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "service")

    func suiteSignature(path: String = "/", query: [(String, String)] = []) -> String {
        let authorization = suite.authorization(method: "GET", path: path, query: query,
                                                headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
                                                payloadHash: SignatureV4.emptyPayloadHash)
        XCTAssertTrue(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature="), authorization)
        return String(authorization.split(separator: "=").last!)
    }

    func testSignaturesMatchAWSsPublishedTestSuite() {
        let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        XCTAssertEqual(suiteSignature(), "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31", "get-vanilla")
        XCTAssertEqual(suiteSignature(query: [("Param2", "value2"), ("Param1", "value1")]),
                       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500", "get-vanilla-query-order-key-case")
        XCTAssertEqual(suiteSignature(query: [(unreserved, unreserved)]),
                       "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197", "get-vanilla-query-unreserved")
        XCTAssertEqual(suiteSignature(query: [("\u{1234}", "bar")]),
                       "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04", "get-vanilla-utf8-query")
        XCTAssertEqual(suiteSignature(query: [("Param-3", "Value3"), ("Param", "Value2"), ("\u{1234}", "Value1")]),
                       "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac", "get-vanilla-query-order-encoded")
        XCTAssertEqual(suiteSignature(path: "/\(unreserved)"), "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f", "get-unreserved")
    }

    /// The worked example of S3's documentation: GET /test.txt with a Range header.
    func testTheS3DocumentationsGetObjectExample() {
        let s3 = SignatureV4(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
        let authorization = s3.authorization(method: "GET", path: "/test.txt", query: [],
                                             headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
                                                       ("x-amz-content-sha256", SignatureV4.emptyPayloadHash), ("x-amz-date", "20130524T000000Z")],
                                             payloadHash: SignatureV4.emptyPayloadHash)
        XCTAssertEqual(authorization, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    func testTimestampsAreUTCInSigV4Form() {
        XCTAssertEqual(SignatureV4.timestamp(Date(timeIntervalSince1970: 1_440_938_160)), "20150830T123600Z")
    }

    // MARK: - Bucket URLs

    func testContainerURLsAreParsedOrRefusedWithTheReason() throws {
        XCTAssertEqual(try ObjectLocation.parse("http://127.0.0.1:9000/results/run-1/", endpoint: nil),
                       ObjectLocation(endpoint: "http://127.0.0.1:9000", bucket: "results", key: "run-1/"))
        XCTAssertEqual(try ObjectLocation.parse("s3://inputs/mesh", endpoint: "https://store.example:8443/"),
                       ObjectLocation(endpoint: "https://store.example:8443", bucket: "inputs", key: "mesh"))
        XCTAssertEqual(ObjectLocation(endpoint: "http://e", bucket: "bbb", key: "a/").appending("x/y.dat").key, "a/x/y.dat")
        for (url, reason) in [("s3://inputs/mesh", "needs a storage endpoint"), ("ftp://host/bucket", "unknown scheme 'ftp'"),
                              ("http://host", "names no bucket"), ("http://host/Bad_Bucket", "is not a bucket name"),
                              ("https://acct.blob.core.windows.net/c?sv=2020&sig=x", "has a query"), ("not a url at all", "is not a URL")] {
            XCTAssertThrowsError(try ObjectLocation.parse(url, endpoint: nil), url) {
                XCTAssertTrue("\($0)".contains(reason), "\(url): \($0)")
            }
        }
    }

    // MARK: - Output file patterns

    func testPatternsFollowAzuresRules() throws {
        let task = NSTemporaryDirectory() + "cohort-pattern-\(UUID().uuidString)"
        let working = "\(task)/wd"
        for file in ["wd/a.dat", "wd/b.txt", "wd/.hidden.dat", "wd/out/x.dat", "wd/out/deep/y.dat", "wd/out/deep/z.txt", "stdout.txt", "stderr.txt"] {
            let path = "\(task)/\(file)"
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: path, contents: Data(file.utf8))
        }
        defer { try? FileManager.default.removeItem(atPath: task) }
        func names(_ pattern: String) throws -> [String] {
            try FilePattern(pattern).matches(taskDirectory: task, workingDirectory: working).map(\.relative)
        }
        XCTAssertEqual(try names("*.dat"), ["a.dat"], "no hidden files, no directories below")
        XCTAssertEqual(try names(".*.dat"), [".hidden.dat"])
        XCTAssertEqual(try names("**/*.dat"), ["a.dat", "out/deep/y.dat", "out/x.dat"])
        XCTAssertEqual(try names("out/**/*.txt"), ["deep/z.txt"], "relative to the pattern's fixed directory")
        XCTAssertEqual(try names("../std*.txt"), ["stderr.txt", "stdout.txt"], "../ is the task directory")
        XCTAssertEqual(try names("b.txt"), ["b.txt"])
        XCTAssertEqual(try names("missing.txt"), [])
        XCTAssertEqual(try names("[ab].*"), ["a.dat", "b.txt"])
        for bad in ["../../etc/passwd", "/etc/passwd", "out/../../x", "..", ""] {
            XCTAssertThrowsError(try FilePattern(bad), bad)
        }
    }

    // MARK: - The job file

    func testResourceAndOutputFilesAreReadInAzuresShape() throws {
        let job = try JobFile.parse("""
        {"id": "files", "tasks": [{"id": "t", "commandLine": "cat input/mesh.dat",
          "resourceFiles": [{"httpUrl": "http://example.org/a.dat", "filePath": "input/a.dat", "fileMode": "0755"},
                            {"storageContainerUrl": "s3://inputs", "blobPrefix": "mesh/", "filePath": "input"},
                            {"autoStorageContainerName": "shared-data"}],
          "outputFiles": [{"filePattern": "../std*.txt", "destination": {"container": {"containerUrl": "http://store:9000/results", "path": "logs"}},
                           "uploadOptions": {"uploadCondition": "TaskCompletion"}},
                          {"filePattern": "**/*.dat", "destination": {"container": {"containerUrl": "s3://results/"}},
                           "uploadOptions": {"uploadCondition": "taskSuccess"}}]}]}
        """, file: "files.json")
        let task = job.tasks[0]
        XCTAssertEqual(task.resourceFiles?.count, 3)
        XCTAssertEqual(task.resourceFiles?[0], ResourceFile(httpUrl: "http://example.org/a.dat", filePath: "input/a.dat", fileMode: "0755"))
        XCTAssertEqual(task.resourceFiles?[1], ResourceFile(storageContainerUrl: "s3://inputs", blobPrefix: "mesh/", filePath: "input"))
        XCTAssertEqual(task.outputFiles?[0], OutputFile(filePattern: "../std*.txt", containerUrl: "http://store:9000/results", path: "logs", uploadCondition: .taskCompletion))
        XCTAssertEqual(task.outputFiles?[1].uploadCondition, .taskSuccess)
    }

    func testBadFileEntriesAreRefusedNamingTheField() {
        let cases: [(String, String, String)] = [
            (#"{"httpUrl": "ftp://x/a", "filePath": "a"}"#, "tasks[0].resourceFiles[0].httpUrl", "is not an http(s) URL"),
            (#"{"httpUrl": "http://x/a"}"#, "tasks[0].resourceFiles[0]", "needs a filePath"),
            (#"{"httpUrl": "http://x/a", "filePath": "../../etc/passwd"}"#, "tasks[0].resourceFiles[0].filePath", "inside the task's directory"),
            (#"{"storageContainerUrl": "gopher://x/bucket"}"#, "tasks[0].resourceFiles[0].storageContainerUrl", "unknown scheme"),
            (#"{"storageContainerUrl": "http://x/b", "httpUrl": "http://x/a", "filePath": "a"}"#, "tasks[0].resourceFiles[0]", "not several"),
            (#"{"autoStorageContainerName": "UPPER"}"#, "tasks[0].resourceFiles[0].autoStorageContainerName", "is not a bucket name"),
            (#"{"autoStorageContainerName": "data", "fileMode": "rwx"}"#, "tasks[0].resourceFiles[0].fileMode", "octal"),
        ]
        for (entry, field, message) in cases {
            let text = #"{"id": "j", "tasks": [{"id": "t", "commandLine": "true", "resourceFiles": ["# + entry + "]}]}"
            XCTAssertThrowsError(try JobFile.parse(text, file: "j.json"), entry) {
                let error = $0 as! SpecError
                XCTAssertEqual(error.field, field, entry)
                XCTAssertTrue(error.message.contains(message), "\(entry): \(error.message)")
                XCTAssertEqual(error.file, "j.json")
                XCTAssertNotNil(error.line)
            }
        }
        let outputs: [(String, String, String)] = [
            (#"{"filePattern": "../../etc/*", "destination": {"container": {"containerUrl": "s3://results"}}}"#, "tasks[0].outputFiles[0].filePattern", "outside the task directory"),
            (#"{"filePattern": "*.dat", "destination": {"container": {"containerUrl": "nope://results"}}}"#, "tasks[0].outputFiles[0].destination.container.containerUrl", "unknown scheme"),
            (#"{"filePattern": "*.dat", "destination": {"container": {"containerUrl": "s3://results", "path": "../x"}}}"#, "tasks[0].outputFiles[0].destination.container.path", "no . or .."),
            (#"{"filePattern": "*.dat", "destination": {"container": {"containerUrl": "s3://results"}}, "uploadOptions": {"uploadCondition": "always"}}"#, "tasks[0].outputFiles[0].uploadOptions.uploadCondition", "unknown uploadCondition"),
            (#"{"filePattern": "*.dat"}"#, "tasks[0].outputFiles[0]", "needs a destination"),
        ]
        for (entry, field, message) in outputs {
            let text = #"{"id": "j", "tasks": [{"id": "t", "commandLine": "true", "outputFiles": ["# + entry + "]}]}"
            XCTAssertThrowsError(try JobFile.parse(text, file: "j.json"), entry) {
                let error = $0 as! SpecError
                XCTAssertEqual(error.field, field, entry)
                XCTAssertTrue(error.message.contains(message), "\(entry): \(error.message)")
            }
        }
    }

    /// A multi-instance task in Azure's shape runs its commandLine once, on the primary
    /// (it calls mpirun itself); Cohort's shape keeps mpirun around the command.
    func testAzuresMultiInstanceShapeMeansARawLaunch() throws {
        let azure = try JobFile.parse(#"{"id": "a", "tasks": [{"id": "t", "commandLine": "mpirun hello", "multiInstanceSettings": {"numberOfInstances": 2}}]}"#, file: "a.json")
        XCTAssertEqual(azure.tasks[0].multiInstance?.launch, .raw)
        let explicit = try JobFile.parse(#"{"id": "a", "tasks": [{"id": "t", "commandLine": "hello", "multiInstanceSettings": {"numberOfInstances": 2, "launch": "mpirun"}}]}"#, file: "a.json")
        XCTAssertEqual(explicit.tasks[0].multiInstance?.launch, .mpirun)
        let cohort = try JobFile.parse("id: a\ntasks:\n  - id: t\n    commandLine: hello\n    multiInstance: {instances: 2}\n", file: "a.yaml")
        XCTAssertEqual(cohort.tasks[0].multiInstance?.launch, .mpirun)
        let common = try JobFile.parse(#"{"id": "a", "tasks": [{"id": "t", "commandLine": "x", "multiInstanceSettings": {"numberOfInstances": 2, "commonResourceFiles": [{"autoStorageContainerName": "meshes"}]}}]}"#, file: "a.json")
        XCTAssertEqual(common.tasks[0].multiInstance?.commonResourceFiles, [ResourceFile(autoStorageContainerName: "meshes")])
    }

    /// `cohort submit` sends the job as JSON that the server reads with the job file's
    /// parser: every new field must come back as it went (the server once refused
    /// outputFiles' encoded form).
    func testAJobWithFilesAndExitConditionsSurvivesTheTripToTheServer() throws {
        let text = """
        {"id": "trip", "onTaskFailure": "performexitoptionsjobaction", "tasks": [
          {"id": "a", "commandLine": "x", "requiredSlots": 2, "workingDirectory": "/srv/case",
           "applicationPackageReferences": [{"applicationId": "solver", "version": "2.0"}, {"applicationId": "mesher"}],
           "resourceFiles": [{"httpUrl": "http://h/a", "filePath": "a", "fileMode": "0755"}, {"storageContainerUrl": "s3://inputs", "blobPrefix": "m/"}],
           "outputFiles": [{"filePattern": "**/*.dat", "destination": {"container": {"containerUrl": "s3://out", "path": "p"}},
                            "uploadOptions": {"uploadCondition": "taskFailure"}}],
           "exitConditions": {"exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}],
                              "exitCodeRanges": [{"start": 10, "end": 20, "exitOptions": {"jobAction": "disable"}}],
                              "preProcessingError": {"jobAction": "none"}, "fileUploadError": {"dependencyAction": "block"},
                              "default": {"jobAction": "terminate"}}},
          {"id": "b", "commandLine": "y", "multiInstanceSettings": {"numberOfInstances": 2, "commonResourceFiles": [{"autoStorageContainerName": "apps"}]}}]}
        """
        let job = try JobFile.parse(text, file: "trip.json")
        XCTAssertEqual(job.tasks[0].exitConditions?.preProcessingError, ExitOptions(jobAction: JobAction.none))
        XCTAssertEqual(job.tasks[0].exitConditions?.codes.first?.options.dependencyAction, .satisfy)
        let sent = String(decoding: try JSONEncoder().encode(job), as: UTF8.self)
        XCTAssertEqual(try JobFile.parse(sent, file: "sent.json"), job, sent)
        XCTAssertEqual(try JSONDecoder().decode(JobSpec.self, from: Data(sent.utf8)), job, "and the store's own reading")
    }
}
