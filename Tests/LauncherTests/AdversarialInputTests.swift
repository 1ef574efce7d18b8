import Foundation
import XCTest
@testable import Launcher

/// Crafted and careless input, refused cleanly before anything runs (the service-level half
/// of this suite is LauncherRunTests/AdversarialServiceTests). Each case failed, crashed or
/// ran something it should not before its fix.
final class AdversarialInputTests: XCTestCase {
    func error(_ text: String) -> SpecError? {
        do { _ = try JobFile.parse(text, file: "job.yaml"); return nil } catch { return error }
    }

    // MARK: - Nesting (a 12 KB body 6,000 levels deep killed the server with SIGSEGV)

    func testDeepNestingIsRefusedBeforeTheParserRecurses() throws {
        let cases = [
            "{\"id\":\"x\",\"tasks\":" + String(repeating: "[", count: 6000) + String(repeating: "]", count: 6000) + "}",
            "{\"id\":\"x\",\"displayName\":" + String(repeating: "{\"a\":", count: 6000) + "1" + String(repeating: "}", count: 6000) + ",\"tasks\":[]}",
            "id: x\ntasks:\n  " + String(repeating: "- ", count: 6000) + "a\n",
            // Quotes cannot hide brackets: a quote only starts a scalar where a node starts.
            "id: x\ntasks: [it's " + String(repeating: "[", count: 6000) + "]\n",
            "id: x\ntasks: [\"]]]]\", " + String(repeating: "[", count: 6000) + "]\n",
        ]
        for (index, text) in cases.enumerated() {
            let started = Date()
            let refused = try XCTUnwrap(error(text), "case \(index) was accepted")
            XCTAssertTrue(refused.message.contains("nested more than \(NestingDepth.limit) levels"), "case \(index): \(refused.message)")
            XCTAssertNotNil(refused.line, "case \(index) names the line")
            XCTAssertLessThan(Date().timeIntervalSince(started), 1, "case \(index) is refused at once")
        }
        // Indentation alone: one more space per level.
        let indented = "id: x\ntasks:\n" + (1...100).map { String(repeating: " ", count: $0) + "a\($0):" }.joined(separator: "\n") + " 1\n"
        XCTAssertTrue(error(indented)?.message.contains("nested more than") == true)
    }

    func testOrdinaryJobsWithBracketsAndQuotesAreNotMistakenForDeepOnes() {
        let text = """
            id: fine
            environment: { A: "[[[[", B: '{{{{' }
            tasks:
              - id: a
                commandLine: echo [a] {b} "[[[[[[[[" '}}}}' x[1]
              - id: b
                commandLine: [sh, -c, "echo '[[[[[[[[[[' # not a comment"]
                dependsOn: { taskIds: [a], taskIdRanges: [{ start: 1, end: 2 }] }
            """
        XCTAssertNil(NestingDepth.lineTooDeep(text))
        XCTAssertNil(error(text.replacingOccurrences(of: ", taskIdRanges: [{ start: 1, end: 2 }]", with: "")))
        // The limit counts every level, the document's own included.
        XCTAssertNil(NestingDepth.lineTooDeep(String(repeating: "[", count: 63) + String(repeating: "]", count: 63)))
        XCTAssertEqual(NestingDepth.lineTooDeep(String(repeating: "[", count: 64)), 1)
    }

    /// A 15,000-task chain listed in reverse: the cycle check recursed once per link (a stack
    /// overflow in debug builds) and copied its trail at each step (2 GB in release builds).
    func testLongDependencyChainsInAnyOrderAreCheckedWithoutRecursion() {
        let count = 15_000
        var text = "id: chain\ntasks:\n"
        for index in stride(from: count, through: 1, by: -1) {
            text += "  - id: t\(index)\n    commandLine: 'true'\n" + (index > 1 ? "    dependsOn: [t\(index - 1)]\n" : "")
        }
        XCTAssertNil(error(text))
        // Closing the chain into a ring is still found, whichever task the search starts from.
        let ring = text.replacingOccurrences(of: "  - id: t1\n    commandLine: 'true'\n", with: "  - id: t1\n    commandLine: 'true'\n    dependsOn: [t\(count)]\n")
        let refused = error(ring)
        XCTAssertTrue(refused?.message.hasPrefix("dependency cycle: t\(count) → t\(count - 1)") == true, String(describing: refused?.message.prefix(80)))
        XCTAssertEqual(refused?.field, "tasks[0].dependsOn")
    }

    // MARK: - Host and user names that ssh would read as options

    func testHostsAndUsersThatLookLikeOptionsAreRefused() {
        XCTAssertThrowsError(try Hostfile.parse("-V slots=2\n", source: "hosts")) { error in
            XCTAssertTrue("\(error)".contains("cannot begin or end with '-'"), "\(error)")
            XCTAssertTrue("\(error)".contains("hosts:1:"), "names the file and line: \(error)")
        }
        XCTAssertThrowsError(try Hostfile.parse("node1\n-oProxyCommand=touch${IFS}/tmp/x@node1\n", source: "hosts")) { error in
            XCTAssertTrue("\(error)".contains("hosts:2:"), "\(error)")
        }
        XCTAssertThrowsError(try Hostfile.parse("-oProxyCommand=x@node1:2\n", format: .mpich, source: "machines"))
        XCTAssertThrowsError(try Hostlist.expand("-V", source: "--hosts"))
        XCTAssertThrowsError(try Hostlist.expand("node[1-2],-oX", source: "--hosts"))
        XCTAssertThrowsError(try Hostfile.parse(".hpc@node1\n", source: "hosts"), "a user name begins with a letter, a digit or '_'")
        XCTAssertNoThrow(try Hostfile.parse("hpc-@node1\n", source: "hosts"), "it may end with '-'")
        XCTAssertNoThrow(try Hostfile.parse("hpc_user@node-1.rack2.example.org slots=4\n", source: "hosts"))
        // The store refuses such a pool however it was made.
        let store = PoolStore(stateDirectory: temporaryDirectory())
        for node in [Node(id: "a", address: "-V", slots: 1), Node(id: "b", address: "n1", user: "-oProxyCommand=x", slots: 1),
                     Node(id: "c", address: "n1; reboot", slots: 1), Node(id: "d", address: "n1", slots: 100_000_000)] {
            XCTAssertThrowsError(try store.save(Pool(name: "bad", kind: .static, nodes: [node])), node.id)
        }
        XCTAssertThrowsError(try store.load("bad"), "nothing was stored")
    }

    func testIPv6LiteralsAreHostsAndMalformedOnesAreNot() {
        for good in ["::1", "fe80::1", "2001:db8::8a2e:370:7334", "fe80::1%eth0", "::ffff:10.0.0.1", "1:2:3:4:5:6:7:8"] {
            XCTAssertNil(HostName.problem(host: good), good)
        }
        for bad in [":::", "1:2:3:4:5:6:7:8:9", "fe80::1::2", "fe80::g", "fe80::1%", "fe80::1%-x", ":1:2"] {
            XCTAssertNotNil(HostName.problem(host: bad), bad)
        }
    }

    func testSlotCountsAreBounded() {
        XCTAssertThrowsError(try Hostfile.parse("node1 slots=1000000000000\n", source: "hosts")) { XCTAssertTrue("\($0)".contains("4096"), "\($0)") }
        XCTAssertThrowsError(try Hostfile.parse("node1:100000000\n", format: .mpich, source: "machines"))
        XCTAssertThrowsError(try Hostlist.expandCounts("100000000"))
        XCTAssertThrowsError(try Hostlist.expandCounts("2(x100000000000)"), "a count list cannot ask for a billion entries")
        XCTAssertEqual(try Hostfile.parse("node1 slots=4096\n", source: "hosts").first?.slots, 4096)
    }

    func testHostfilesWithWindowsLineEndingsAreRead() throws {
        let entries = try Hostfile.parse("# cluster\r\nnode1 slots=2\r\nnode2 slots=4\r\n", source: "hosts")
        XCTAssertEqual(entries, [HostEntry(host: "node1", slots: 2), HostEntry(host: "node2", slots: 4)])
        XCTAssertEqual(try Hostfile.parse("a:2\r\nb:3\r\n", source: "m").map(\.slots), [2, 3])
    }

    // MARK: - Sizes and numbers

    func testHugeReplicasDurationsAndRetriesAreRefusedAtOnce() {
        let started = Date()
        let replicas = error("id: x\ntasks:\n  - id: a\n    commandLine: 'true'\n    multiInstance: { replicas: 1000000 }\n")
        XCTAssertEqual(replicas?.field, "tasks[0].multiInstance.replicas")
        XCTAssertTrue(replicas?.message.contains("at most \(MultiInstance.maximumReplicas)") == true, "\(String(describing: replicas))")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        let nines = String(repeating: "9", count: 400)
        for field in ["maxWallClockTime: \(nines)", "killGracePeriod: \(nines)s", "maxWallClockTime: P\(nines)D"] {
            let refused = error("id: x\ntasks:\n  - id: a\n    commandLine: 'true'\n    constraints: { \(field) }\n")
            XCTAssertTrue(refused?.message.contains("at most 3650d") == true, "\(field): \(String(describing: refused))")
        }
        XCTAssertNotNil(error("id: x\ntasks:\n  - id: a\n    commandLine: 'true'\n    constraints: { maxTaskRetryCount: 100000000 }\n"))
        XCTAssertNil(error("id: x\ntasks:\n  - id: a\n    commandLine: 'true'\n    constraints: { maxWallClockTime: 30d }\n    multiInstance: { replicas: 10000 }\n"))
    }

    func testEnvironmentsBeyondWhatAProcessCanTakeAreRefused() {
        let many = (0..<66_000).map { "    V\($0): x" }.joined(separator: "\n")
        let refused = error("id: x\nenvironment:\n\(many)\ntasks:\n  - id: a\n    commandLine: 'true'\n")
        XCTAssertEqual(refused?.field, "environment")
        XCTAssertTrue(refused?.message.contains("at most \(TaskEnvironmentLimits.maximumVariables)") == true, "\(String(describing: refused))")
        let big = String(repeating: "x", count: 300_000)
        XCTAssertEqual(error("id: x\ntasks:\n  - id: a\n    commandLine: 'true'\n    environment: { BIG: \(big) }\n")?.field, "tasks[0].environment")
        // Job and task variables together.
        let half = (0..<3000).map { "    J\($0): x" }.joined(separator: "\n"), other = (0..<3000).map { "        T\($0): x" }.joined(separator: "\n")
        XCTAssertTrue(error("id: x\nenvironment:\n\(half)\ntasks:\n  - id: a\n    commandLine: 'true'\n    environment:\n\(other)\n")?.message.contains("together") == true)
    }

    // MARK: - What a job may ask of mpirun (it runs on the server's host)

    func testJobsCannotChooseMpirunsLaunchAgentOrLoadCode() {
        func mpirun(_ options: String) -> SpecError? {
            error("id: x\ntasks:\n  - id: a\n    commandLine: hostname\n    multiInstance: { instances: 2, mpirunOptions: \(options) }\n")
        }
        XCTAssertEqual(mpirun("[--mca, plm_rsh_agent, 'touch /tmp/owned']")?.field, "tasks[0].multiInstance.mpirunOptions[1]")
        XCTAssertTrue(mpirun("[--mca, plm_rsh_agent, x]")?.message.contains("set it on the pool") == true)
        for refused in ["[--launch-agent, x]", "[--prefix, /tmp/evil]", "[--mca, orte_launch_agent, x]", "[-mca, mca_base_component_path, /tmp]",
                        "[--hostfile, /etc/hosts]", "[-x, OMPI_MCA_plm_rsh_agent=x]", "[--tune, /tmp/params]", "[--mca, btl]"] {
            XCTAssertNotNil(mpirun(refused), refused)
        }
        for accepted in ["[--mca, btl, 'self,tcp']", "[--map-by, 'ppr:1:node', --bind-to, core, --report-bindings]",
                         "[--mca, coll_tuned_use_dynamic_rules, '1', -x, LD_LIBRARY_PATH=/opt/lib, --mca, mpi_yield_when_idle, '1']"] {
            XCTAssertNil(mpirun(accepted), accepted)
        }
        func variable(_ name: String) -> SpecError? { error("id: x\nenvironment: { \(name): v }\ntasks:\n  - id: a\n    commandLine: 'true'\n") }
        XCTAssertTrue(variable("OMPI_MCA_plm_rsh_agent")?.message.contains("OMPI_MCA_plm_rsh_agent") == true)
        XCTAssertNotNil(variable("OMPI_MCA_orte_launch_agent"))
        XCTAssertNotNil(variable("OPAL_PREFIX"))
        XCTAssertNotNil(variable("PMIX_MCA_ptl"))
        XCTAssertNil(variable("OMPI_MCA_btl_tcp_if_include"))
        XCTAssertNil(variable("LD_PRELOAD"), "loader variables reach the ranks, never mpirun itself")
    }

    func testAProgramThatLooksLikeAnOptionIsRefused() {
        XCTAssertTrue(error("id: x\ntasks:\n  - id: a\n    commandLine: -x\n")?.message.contains("./-x") == true)
        XCTAssertNil(error("id: x\ntasks:\n  - id: a\n    commandLine: echo -x\n"))
    }

    // MARK: - Ids the store makes

    func testGeneratedIdsStayValid() throws {
        let store = try JobStore(stateDirectory: temporaryDirectory())
        let long = String(repeating: "a", count: 64)
        let job = JobSpec(id: long, pool: "local", tasks: [TaskSpec(id: "t", commandLine: ["true"])])
        _ = try store.begin(job, units: [("t", nil)])
        for _ in 0..<11 {
            let id = try store.availableId(long)
            XCTAssertLessThanOrEqual(id.count, 64, id)
            XCTAssertTrue(id.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" }, id)
            var next = job
            next.id = id
            _ = try store.begin(next, units: [("t", nil)])
        }
        XCTAssertEqual(try store.availableId(long), String(repeating: "a", count: 61) + "-13")
    }

    func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-adv-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
