import Foundation
import XCTest
@testable import Launcher

/// The 4-node virtual cluster of scripts/virtual-cluster.sh, for tests: network namespaces
/// with their own addresses, hostnames and sshd. Needs root; CI runs as root, and without
/// it the tests fail, never skip.
enum VirtualCluster {
    static let directory = "/tmp/cohort-vc-tests"
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/virtual-cluster.sh").path
    nonisolated(unsafe) static var startError: String?

    static func up() { startError = shell(["bash", script, "up", "4"]) }
    static func down() { _ = shell(["bash", script, "down"]) }

    struct Unavailable: Error, CustomStringConvertible {
        let output: String
        var description: String {
            "the virtual cluster did not start (root, iproute2 and openssh-server are needed; bash scripts/setup.sh installs them):\n\(output)"
        }
    }

    static func requireUp() throws {
        if let startError { throw Unavailable(output: startError) }
    }

    static var pool: Pool {
        var pool = Pool.fromHosts(name: "vc", entries: (1...4).map { HostEntry(host: "node\($0)", slots: 2) })
        pool.sshConfig = "\(directory)/ssh_config"
        pool.network = "10.77.0.0/24"
        pool.mcaParameters = ["mpi_yield_when_idle": "1"]  // ranks share 2 cores across namespaces
        return pool
    }

    /// Runs a command with COHORT_VC_DIR set; returns its output if it failed or ran past
    /// `timeout` seconds, else nil.
    @discardableResult
    static func shell(_ arguments: [String], timeout: Double = 300) -> String? {
        let result = Harness.shell(arguments, environment: ["COHORT_VC_DIR": directory], timeout: timeout)
        return result.status == 0 ? nil : "exit \(result.status): \(result.output)"
    }

    /// Node `name` (node1…) → its index.
    static func index(_ name: String) -> Int { Int(name.dropFirst(4))! }

    /// Kills every process in the node's namespace (its sshd too) and takes its link down.
    static func kill(_ name: String) {
        shell(["sh", "-c", "for p in $(ip netns pids cohort-\(name)); do kill -9 $p; done"])
        linkDown(name)
    }

    static func linkDown(_ name: String) { shell(["ip", "link", "set", "cvh-\(index(name))", "down"]) }
    static func linkUp(_ name: String) { shell(["ip", "link", "set", "cvh-\(index(name))", "up"]) }

    /// Stops only the node's sshd: the host is there, but nothing can reach it.
    static func stopSSHD(_ name: String) {
        if let pid = try? String(contentsOfFile: "\(directory)/sshd-\(name).pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) {
            shell(["kill", "-9", pid])
        }
    }

    /// Every pid in the node's namespace.
    static func pids(on name: String) -> [Int32] {
        let output = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "pids", "cohort-\(name)"]
        process.standardOutput = output
        try? process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    static func commandLine(of pid: Int32) -> String {
        String(decoding: FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data(), as: UTF8.self).replacingOccurrences(of: "\0", with: " ")
    }

    /// Pids in the node's namespace whose environment holds `variable=value`.
    static func processes(on name: String, variable: String, value: String) -> [Int32] {
        let inNamespace = Set(pids(on: name))
        return ProcessSweeper.localProcesses(variable: variable, value: value).filter { inNamespace.contains($0) }
    }

    /// The value of `variable` in process `pid`'s environment.
    static func environment(of pid: Int32, _ variable: String) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        for entry in data.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            if text.hasPrefix("\(variable)=") { return String(text.dropFirst(variable.count + 1)) }
        }
        return nil
    }
}

/// A real Slurm cluster on the virtual cluster (scripts/slurm-cluster.sh): slurmctld here,
/// a slurmd in each node's namespace, munge, PMIx. Needs root and slurm-wlm; without them
/// the tests fail, never skip.
enum SlurmCluster {
    static let script = URL(fileURLWithPath: VirtualCluster.script).deletingLastPathComponent().appendingPathComponent("slurm-cluster.sh").path
    static var configuration: String { "\(VirtualCluster.directory)/slurm/slurm.conf" }
    nonisolated(unsafe) static var startError: String?

    static func up() {
        VirtualCluster.up()
        startError = VirtualCluster.startError ?? VirtualCluster.shell(["bash", script, "up", "4"])
    }

    static func down() {
        VirtualCluster.shell(["bash", script, "down"])
        VirtualCluster.down()
    }

    static func requireUp() throws {
        if let startError { throw VirtualCluster.Unavailable(output: "the Slurm cluster did not start (slurm-wlm and munge are needed; bash scripts/setup.sh installs them):\n\(startError)") }
    }

    /// (Re)starts node `name`'s slurmd and waits until Slurm has it back.
    static func nodeUp(_ name: String) { VirtualCluster.shell(["bash", script, "node-up", String(VirtualCluster.index(name))]) }

    static var options: SlurmOptions { SlurmOptions(configuration: configuration) }

    /// The cluster's 4 nodes as a Cohort pool, read from Slurm.
    static func pool(name: String = "slurm", _ options: SlurmOptions = SlurmCluster.options) throws -> Pool {
        var pool = Pool(name: name, kind: .slurm, nodes: [])
        pool.slurm = options
        pool.mcaParameters = ["mpi_yield_when_idle": "1"]  // ranks share 2 cores across namespaces
        return try SlurmClient(options: options).current(pool)
    }

    /// A Slurm command's output (SLURM_CONF set).
    static func run(_ arguments: [String]) -> String {
        (try? SlurmClient(options: options).run(arguments)) ?? ""
    }

    /// Cohort's jobs Slurm still has (pending, running or completing).
    static func cohortJobs() -> [String] {
        run(["squeue", "--noheader", "--format=%i %j %T"]).split(separator: "\n").map(String.init).filter { $0.contains(" cohort.") }
    }
}
