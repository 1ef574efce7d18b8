import XCTest
@testable import Launcher

final class HostlistTests: XCTestCase {
    func testRangesPaddingListsAndProducts() throws {
        XCTAssertEqual(try Hostlist.expand("node[1-3]"), ["node1", "node2", "node3"])
        XCTAssertEqual(try Hostlist.expand("n[08-11]"), ["n08", "n09", "n10", "n11"])
        XCTAssertEqual(try Hostlist.expand("n[1-2,5,07-08]"), ["n1", "n2", "n5", "n07", "n08"])
        XCTAssertEqual(try Hostlist.expand("login,n[1-2],gpu7"), ["login", "n1", "n2", "gpu7"])
        XCTAssertEqual(try Hostlist.expand("rack[1-2]-n[1-2]"), ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"])
        XCTAssertEqual(try Hostlist.expand("n[001-003].cluster"), ["n001.cluster", "n002.cluster", "n003.cluster"])
        XCTAssertEqual(try Hostlist.expand("single"), ["single"])
        XCTAssertEqual(try Hostlist.expand("n[9-10]"), ["n9", "n10"])
    }

    func testErrorsSayWhere() {
        func failure(_ text: String) -> HostfileError? {
            do { _ = try Hostlist.expand(text, source: "--hosts"); return nil } catch { return error }
        }
        XCTAssertEqual(failure("n[1-3")?.message, "'[' is not closed")
        XCTAssertEqual(failure("n[5-2]")?.column, 3)
        XCTAssertTrue(failure("n[5-2]")?.message.contains("backwards") == true)
        XCTAssertEqual(failure("a,,b")?.column, 3)
        XCTAssertEqual(failure("n[1-x]")?.column, 3)
        XCTAssertEqual(failure("n[1-2]]")?.message, "']' without '['")
        XCTAssertTrue(failure("n[1-99999999]")?.message.contains("more than") == true)
        XCTAssertEqual(failure("n[1-2]")?.description, nil)
        XCTAssertEqual(failure("bad host")?.column, 4)
        XCTAssertEqual(failure("n[1-3")?.description, "--hosts:1:6: '[' is not closed")
    }

    func testCompressRoundTrips() throws {
        let cases: [[String]] = [
            ["n1", "n2", "n3", "n5"],
            ["n08", "n09", "n10", "n11"],
            ["login", "n1", "n2", "gpu7"],
            ["n9", "n10", "n010"],
            ["a", "b", "c"],
            (1...100).map { "node\($0)" },
            ["x1y", "x2y", "x3z"],
            ["n0", "n00", "n1"],
        ]
        for hosts in cases {
            let compressed = Hostlist.compress(hosts)
            XCTAssertEqual(try Hostlist.expand(compressed), hosts, "round trip of \(compressed)")
        }
        XCTAssertEqual(Hostlist.compress(["n1", "n2", "n3", "n5"]), "n[1-3,5]")
        XCTAssertEqual(Hostlist.compress(["n08", "n09", "n10"]), "n[08-10]")
        XCTAssertEqual(Hostlist.compress((1...16).map { String(format: "node%02d", $0) }), "node[01-16]")
    }

    func testRandomHostListsRoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let prefixes = ["n", "node", "gpu-", "r1n"]
            var hosts: [String] = []
            var seen = Set<String>()
            for _ in 0..<Int.random(in: 1...30, using: &generator) {
                let width = Int.random(in: 0...3, using: &generator)
                let number = Int.random(in: 0...120, using: &generator)
                var digits = String(number)
                if digits.count < width { digits = String(repeating: "0", count: width - digits.count) + digits }
                let host = prefixes.randomElement(using: &generator)! + digits
                if seen.insert(host).inserted { hosts.append(host) }
            }
            XCTAssertEqual(try Hostlist.expand(Hostlist.compress(hosts)), hosts)
        }
    }

    func testTaskCounts() throws {
        XCTAssertEqual(try Hostlist.expandCounts("2(x3),1"), [2, 2, 2, 1])
        XCTAssertEqual(try Hostlist.expandCounts("4"), [4])
        XCTAssertThrowsError(try Hostlist.expandCounts("2(x0)"))
        XCTAssertThrowsError(try Hostlist.expandCounts("2,,3")) { error in
            XCTAssertEqual((error as? HostfileError)?.column, 3)
        }
    }
}

final class HostfileTests: XCTestCase {
    func testOpenMPIHostfile() throws {
        let text = """
            # a comment
            node1 slots=4 max_slots=8
            node2 slots=2   # trailing comment
            alice@node3 cpu=6
            10.0.0.7 count=2 max-slots=4

            fe80::1 slots=1
            [fe80::2] slots=3
            node1 slots=2
            """
        let entries = try Hostfile.parse(text, source: "hosts")
        XCTAssertEqual(entries, [
            HostEntry(host: "node1", slots: 6, maxSlots: 8),  // listed twice: slots add up
            HostEntry(host: "node2", slots: 2),
            HostEntry(host: "node3", user: "alice", slots: 6),
            HostEntry(host: "10.0.0.7", slots: 2, maxSlots: 4),
            HostEntry(host: "fe80::1", slots: 1),
            HostEntry(host: "fe80::2", slots: 3),
        ])
        XCTAssertEqual(Hostfile.detectFormat(text), .openMPI)
    }

    func testOpenMPIErrorsNameLineAndColumn() {
        func failure(_ text: String) -> HostfileError? {
            do { _ = try Hostfile.parse(text, format: .openMPI, source: "h.txt"); return nil } catch { return error }
        }
        let unknown = failure("node1 slots=2\nnode2 slot=3\n")
        XCTAssertEqual(unknown?.line, 2)
        XCTAssertEqual(unknown?.column, 7)
        XCTAssertTrue(unknown?.message.contains("unknown keyword 'slot'") == true)
        XCTAssertEqual(failure("node1 slots=two")?.column, 7)
        XCTAssertEqual(failure("node1 slots")?.message.contains("KEY=VALUE"), true)
        XCTAssertTrue(failure("node1 slots=4 max_slots=2")?.message.contains("below") == true)
        let hostile = failure("a;touch /tmp/pwned slots=1")
        XCTAssertEqual(hostile?.column, 2)
        XCTAssertTrue(hostile?.message.contains("';' is not allowed") == true)
        XCTAssertNotNil(failure("$(reboot) slots=1"))
        XCTAssertNotNil(failure("@node1"))
        XCTAssertEqual(failure("node1 slots=2\n  bad|host")?.description, "h.txt:2:6: '|' is not allowed in a host name or address")
    }

    func testMPICHMachinefile() throws {
        let text = "node1:4\nnode2:2\nnode3\n# done\n"
        XCTAssertEqual(Hostfile.detectFormat("node1:4\nnode2:2\n"), .mpich)
        let entries = try Hostfile.parse(text, format: .mpich, source: "m")
        XCTAssertEqual(entries, [HostEntry(host: "node1", slots: 4), HostEntry(host: "node2", slots: 2), HostEntry(host: "node3")])
        XCTAssertThrowsError(try Hostfile.parse("node1:zero\n", format: .mpich, source: "m")) { error in
            XCTAssertEqual((error as? HostfileError)?.column, 7)
        }
    }

    func testSlurmHostlistFile() throws {
        XCTAssertEqual(Hostfile.detectFormat("node[01-04]\n"), .slurm)
        XCTAssertEqual(try Hostfile.parse("node[01-03]\n", source: "s").map(\.host), ["node01", "node02", "node03"])
    }

    func testConversionsRoundTrip() throws {
        let entries = [HostEntry(host: "n1", slots: 4), HostEntry(host: "n2", user: "bob", slots: 2, maxSlots: 4), HostEntry(host: "fe80::3", slots: 1)]
        XCTAssertEqual(try Hostfile.parse(Hostfile.write(entries, format: .openMPI), format: .openMPI, source: "x"), entries)
        let mpich = Hostfile.write(entries.map { HostEntry(host: $0.host, slots: $0.slots) }.filter { !$0.host.contains(":") }, format: .mpich)
        XCTAssertEqual(mpich, "n1:4\nn2:2\n")
        XCTAssertEqual(try Hostfile.parse(mpich, format: .mpich, source: "x").map(\.slots), [4, 2])
        XCTAssertEqual(Hostfile.write((1...4).map { HostEntry(host: "c\($0)") }, format: .slurm), "c[1-4]\n")
    }
}

final class HostfileFuzzTests: XCTestCase {
    /// Garbled hostfiles and hostlists never crash the parsers, and every error points at a
    /// real place in the text.
    func testRandomMutationsFailCleanlyWithAPlace() {
        let seeds = ["node1 slots=4 max_slots=8\nalice@node2 cpu=2 # c\n10.0.0.7 slots=1\n[fe80::2] slots=3\n",
                     "n1:4\nn2:2\nn3\n", "rack[1-2]-n[01-08],login\n"]
        let alphabet: [Character] = ["[", "]", ",", "-", ":", "=", "@", "#", " ", "\n", "x", "0", "9", ";", "$", "("]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var text = Array(seeds.randomElement(using: &generator)!)
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let index = Int.random(in: 0..<text.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: text.remove(at: index)
                case 1: text.insert(alphabet.randomElement(using: &generator)!, at: index)
                default: text[index] = alphabet.randomElement(using: &generator)!
                }
                if text.isEmpty { text = ["x"] }
            }
            let string = String(text)
            let lines = string.split(separator: "\n", omittingEmptySubsequences: false)
            for format in Hostfile.Format.allCases {
                do {
                    let entries = try Hostfile.parse(string, format: format, source: "fuzz")
                    for entry in entries { XCTAssertFalse(entry.host.contains { $0 == ";" || $0 == "$" || $0 == " " }, "\(entry.host) from \(string.debugDescription)") }
                } catch {
                    XCTAssertEqual(error.source, "fuzz")
                    XCTAssertTrue((1...max(1, lines.count)).contains(error.line), "line \(error.line) of \(string.debugDescription)")
                    XCTAssertGreaterThanOrEqual(error.column, 1, "\(error) in \(string.debugDescription)")
                    XCTAssertLessThanOrEqual(error.column, lines[error.line - 1].count + 1, "\(error) in \(string.debugDescription)")
                }
            }
        }
    }

    /// The repository's sample host files (hostfiles/), as the README tells a site to use them.
    func testTheSampleHostFilesReadAsTheirFormats() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("hostfiles").path
        func read(_ name: String) throws -> (Hostfile.Format, [HostEntry]) {
            let text = try String(contentsOfFile: "\(folder)/\(name)", encoding: .utf8)
            return (Hostfile.detectFormat(text), try Hostfile.parse(text, source: name))
        }
        let (openMPIFormat, openMPI) = try read("openmpi.hostfile")
        XCTAssertEqual(openMPIFormat, .openMPI)
        XCTAssertEqual(openMPI, [HostEntry(host: "node01", slots: 16), HostEntry(host: "node02", slots: 16),
                                 HostEntry(host: "node03", slots: 16, maxSlots: 32), HostEntry(host: "node04", user: "hpc", slots: 8)])
        let (mpichFormat, mpich) = try read("mpich.machinefile")
        XCTAssertEqual(mpichFormat, .mpich)
        XCTAssertEqual(mpich.map(\.host), ["node01", "node02", "node03", "node04"])
        XCTAssertEqual(mpich.map(\.slots), [16, 16, 16, 8])
        let (slurmFormat, slurm) = try read("slurm.hostlist")
        XCTAssertEqual(slurmFormat, .slurm)
        XCTAssertEqual(slurm.map(\.host), ["node01", "node02", "node03", "gpu1", "gpu2"])
    }
}
