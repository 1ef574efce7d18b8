import ArgumentParser
import Foundation
import Launcher

struct PoolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool", abstract: "Define and inspect pools.",
        subcommands: [Add.self, List.self, Show.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Add (or replace) a pool from a hostfile or a Slurm hostlist.")

        @Argument(help: "The pool's name.")
        var name: String

        @Option(help: "An Open MPI hostfile, MPICH machinefile or Slurm hostlist file.")
        var hostfile: String?

        @Option(help: "A Slurm hostlist such as 'node[01-16]'.")
        var hosts: String?

        @Option(help: "Slots per node where the hostfile gives none: N, or Slurm's counts such as '2(x3),1'.")
        var slots: String?

        @Option(help: "ssh client configuration for reaching the nodes (also given to mpirun).")
        var sshConfig: String?

        @Option(help: "CIDR network that MPI's TCP traffic must use, e.g. 10.9.0.0/24.")
        var network: String?

        @Option(help: "Price per node-hour, for usage reports.")
        var price: Double?

        @Option(help: "For the local pool: how many virtual nodes.")
        var localNodes: Int?

        @Option(help: "GPUs of each node, which tasks ask for with gpusPerNode/gpusPerRank (devices 0…N-1; on the local pool each virtual node gets its own N of this machine's).")
        var gpusPerNode: Int?

        @Option(help: "Memory of each node that tasks may ask for with memoryPerNode: 64G, 512M, or MiB.")
        var memoryPerNode: String?

        @Option(help: "A health check run on each node (over ssh) before it joins a group; non-zero makes it unusable.")
        var healthCheck: String?

        @Option(help: "An MCA parameter for every mpirun on the pool, NAME=VALUE (repeatable).")
        var mca: [String] = []

        @Option(help: "A command run on each node when it joins the pool or comes back (Azure's pool start task; split like a shell would, never run by one).")
        var startTask: String?

        @Option(help: "A file the start task gets first, URL=PATH (http(s) URL, path inside its directory; repeatable).")
        var startTaskResourceFile: [String] = []

        @Flag(help: "Let nodes take work while their start task runs (default: only once it succeeded).")
        var startTaskNoWait = false

        @Option(help: "An application package every task on the pool gets, ID or ID:VERSION (cohort app add; repeatable).")
        var app: [String] = []

        @Flag(help: "Nodes from a Slurm cluster: Slurm allocates them to each attempt and starts the ranks (srun --mpi=pmix).")
        var slurm = false

        @Option(help: "A Slurm job to run inside (default $SLURM_JOB_ID): its nodes make the pool, each attempt is a step on its own nodes.")
        var slurmAllocation: String?

        @Option(help: "Slurm partition for the pool's nodes and allocations.")
        var partition: String?

        @Option(help: "Slurm account the allocations are charged to.")
        var account: String?

        @Option(help: "Slurm QOS of the allocations.")
        var qos: String?

        @Option(help: "Slurm node features every allocation needs (--constraint).")
        var constraint: String?

        @Flag(help: "Whole nodes per Slurm allocation (--exclusive).")
        var exclusive = false

        @Option(help: "The slurm.conf Slurm's commands use (SLURM_CONF; default: the environment's).")
        var slurmConf: String?

        func run() throws {
            let store = PoolStore(stateDirectory: PoolStore.defaultStateDirectory)
            do { try PoolStore.validateName(name) } catch { throw Exit.badInput(error) }
            var pool: Pool
            let slurmGiven = slurm || slurmAllocation != nil
            if !slurmGiven, let flag = [("--partition", partition), ("--account", account), ("--qos", qos), ("--constraint", constraint), ("--slurm-conf", slurmConf)].first(where: { $0.1 != nil }) {
                throw Exit.badInput("\(flag.0) is for Slurm pools: add --slurm")
            }
            if !slurmGiven, exclusive { throw Exit.badInput("--exclusive is for Slurm pools: add --slurm") }
            if slurmGiven {
                guard name != "local" else { throw Exit.badInput("the local pool is this machine; a Slurm pool needs another name") }
                if let flag = [("--hostfile", hostfile), ("--hosts", hosts), ("--slots", slots), ("--ssh-config", sshConfig), ("--health-check", healthCheck),
                               ("--start-task", startTask)].first(where: { $0.1 != nil }) ?? (localNodes != nil ? ("--local-nodes", "") : nil) {
                    throw Exit.badInput("\(flag.0) does not apply to a Slurm pool: Slurm provides, checks and starts its nodes")
                }
                pool = try SlurmPoolDefinition.make(name: name, allocation: slurmAllocation, partition: partition, account: account, qos: qos,
                                                    constraint: constraint, exclusive: exclusive, configuration: slurmConf)
            } else if name == "local" {
                guard hostfile == nil, hosts == nil else { throw Exit.badInput("the local pool is this machine; give it --local-nodes and --slots, not hosts") }
                let perNode = try slots.map { text throws -> Int in
                    guard let n = Int(text), (1...HostName.maximumSlots).contains(n) else {
                        throw Exit.badInput("--slots: expected a whole number from 1 to \(HostName.maximumSlots), found '\(text)'")
                    }
                    return n
                }
                guard (1...1024).contains(localNodes ?? 4) else { throw Exit.badInput("--local-nodes: must be 1 to 1024") }
                pool = Pool.local(nodeCount: localNodes ?? 4, slotsPerNode: perNode)
            } else {
                guard (hostfile == nil) != (hosts == nil) else { throw Exit.badInput("give exactly one of --hostfile and --hosts") }
                var entries: [HostEntry]
                do {
                    if let hostfile {
                        guard let text = try? String(contentsOfFile: hostfile, encoding: .utf8) else { throw Exit.badInput("--hostfile: cannot read \(hostfile)") }
                        entries = try Hostfile.parse(text, source: hostfile)
                    } else {
                        entries = try Hostlist.expand(hosts!, source: "--hosts").map { HostEntry(host: $0) }
                    }
                } catch let error as HostfileError {
                    throw Exit.badInput(error)
                }
                guard !entries.isEmpty else { throw Exit.badInput("the pool would have no hosts") }
                if let slots {
                    let counts: [Int]
                    do { counts = try Hostlist.expandCounts(slots, source: "--slots") } catch { throw Exit.badInput(error) }
                    guard counts.count == 1 || counts.count == entries.count else {
                        throw Exit.badInput("--slots: \(counts.count) counts for \(entries.count) hosts")
                    }
                    for index in entries.indices where entries[index].slots == nil {
                        entries[index].slots = counts.count == 1 ? counts[0] : counts[index]
                    }
                }
                pool = Pool.fromHosts(name: name, entries: entries)
            }
            if let gpusPerNode {
                guard (0...Allocator.maximumGPUsPerNode).contains(gpusPerNode) else {
                    throw Exit.badInput("--gpus-per-node: must be 0 to \(Allocator.maximumGPUsPerNode), found \(gpusPerNode)")
                }
                // The local pool's virtual nodes are one machine: each gets its own devices.
                for index in pool.nodes.indices {
                    let first = pool.kind == .local ? index * gpusPerNode : 0
                    pool.nodes[index].gpus = gpusPerNode == 0 ? nil : Array(first..<(first + gpusPerNode))
                }
            }
            if let memoryPerNode {
                guard let mebibytes = MemorySizes.mebibytes(memoryPerNode) else {
                    throw Exit.badInput("--memory-per-node: expected a size such as 64G, 512M or 2048 (MiB), found '\(memoryPerNode.prefix(40))'")
                }
                for index in pool.nodes.indices { pool.nodes[index].memoryMiB = mebibytes }
            }
            if let sshConfig {
                guard !sshConfig.contains(where: \.isWhitespace) else { throw Exit.badInput("--ssh-config: the path must not contain spaces (mpirun splits its ssh agent on them)") }
                pool.sshConfig = URL(fileURLWithPath: sshConfig).standardizedFileURL.path
            }
            if let network {
                guard network.allSatisfy({ $0.isHexDigit || ".:/".contains($0) }), network.contains("/") else {
                    throw Exit.badInput("--network: expected a CIDR such as 10.9.0.0/24, found '\(network)'")
                }
                pool.network = network
            }
            if let healthCheck {
                do {
                    let words = try CommandLineWords.split(healthCheck)
                    guard !words.isEmpty else { throw Exit.badInput("--health-check: the command is empty") }
                    pool.healthCheckCommandLine = words
                } catch let error as CommandLineWords.SplitError {
                    throw Exit.badInput("--health-check: \(error.message) at character \(error.column)")
                }
            }
            if let startTask {
                do {
                    let words = try CommandLineWords.split(startTask)
                    guard let program = words.first, !program.isEmpty else { throw Exit.badInput("--start-task: the command is empty") }
                    guard !program.hasPrefix("-") else { throw Exit.badInput("--start-task: the program '\(program)' begins with '-'") }
                    var spec = NodeTaskSpec(commandLine: words, waitForSuccess: !startTaskNoWait)
                    var files: [ResourceFile] = []
                    for entry in startTaskResourceFile {
                        guard let equals = entry.lastIndex(of: "=") else {
                            throw Exit.badInput("--start-task-resource-file: expected URL=PATH, found '\(entry)'")
                        }
                        let url = String(entry[..<equals]), path = String(entry[entry.index(after: equals)...])
                        guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme?.lowercased() ?? ""), components.host?.isEmpty == false else {
                            throw Exit.badInput("--start-task-resource-file: '\(url)' is not an http(s) URL")
                        }
                        let parts = path.split(separator: "/")
                        guard !path.isEmpty, !path.hasPrefix("/"), !parts.contains("..") else {
                            throw Exit.badInput("--start-task-resource-file: '\(path)' must be a relative path inside the start task's directory")
                        }
                        files.append(ResourceFile(httpUrl: url, filePath: path))
                    }
                    spec.resourceFiles = files.isEmpty ? nil : files
                    pool.startTask = spec
                } catch let error as CommandLineWords.SplitError {
                    throw Exit.badInput("--start-task: \(error.message) at character \(error.column)")
                }
            } else if !startTaskResourceFile.isEmpty || startTaskNoWait {
                throw Exit.badInput("--start-task-resource-file and --start-task-no-wait go with --start-task")
            }
            for entry in app {
                let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
                do {
                    try ApplicationPackages.checkName(parts[0], "application id", dots: false)
                    if parts.count == 2 { try ApplicationPackages.checkName(parts[1], "version", dots: true) }
                } catch { throw Exit.badInput("--app: \(error)") }
                let reference = ApplicationPackageReference(applicationId: parts[0], version: parts.count == 2 ? parts[1] : nil)
                pool.applicationPackageReferences = (pool.applicationPackageReferences ?? []) + [reference]
            }
            for parameter in mca {
                let parts = parameter.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                    throw Exit.badInput("--mca: expected NAME=VALUE with a plain parameter name, found '\(parameter)'")
                }
                pool.mcaParameters = (pool.mcaParameters ?? [:]).merging([parts[0]: parts[1]]) { $1 }
            }
            if let price {
                guard price >= 0, price.isFinite else { throw Exit.badInput("--price: must be ≥ 0") }
                pool.pricePerNodeHour = price
            }
            // Redefining a pool keeps what is known of the nodes it still has: a drained node
            // stays drained, an unusable one unusable, a pending sweep pending.
            if store.isStored(pool.name), let old = try? store.load(pool.name) {
                let known = Dictionary(old.nodes.map { ($0.id, $0) }) { first, _ in first }
                for index in pool.nodes.indices {
                    guard let before = known[pool.nodes[index].id] else { continue }
                    pool.nodes[index].state = before.state
                    pool.nodes[index].stateReason = before.stateReason
                    pool.nodes[index].pendingSweeps = before.pendingSweeps
                    // A start task already run is not run again, unless it is another one.
                    if old.startTask == pool.startTask { pool.nodes[index].startTask = before.startTask }
                }
            }
            do { try store.save(pool) } catch { throw Exit.badInput(error) }
            print("pool \(pool.name): \(plural(pool.nodes.count, "node")), \(plural(pool.totalSlots, "slot"))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List pools.")
        @Option(help: "table or json") var output: OutputFormat = .table

        func run() throws {
            let pools: [Pool]
            do { pools = try PoolStore(stateDirectory: PoolStore.defaultStateDirectory).list() } catch { throw Exit.badInput(error) }
            if output == .json { return print(encode(pools)) }
            printTable([["NAME", "KIND", "NODES", "SLOTS"]] + pools.map { [$0.name, $0.kind.rawValue, String($0.nodes.count), String($0.totalSlots)] })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a pool's nodes.")
        @Argument var name: String
        @Option(help: "table or json") var output: OutputFormat = .table

        func run() throws {
            let pool: Pool
            do { pool = try PoolStore(stateDirectory: PoolStore.defaultStateDirectory).load(name).withLiveState() } catch { throw Exit.badInput(error) }
            if output == .json { return print(encode(pool)) }
            print("pool \(pool.name) (\(pool.kind.rawValue)), \(plural(pool.nodes.count, "node")), \(plural(pool.totalSlots, "slot"))")
            if let ssh = pool.sshConfig { print("ssh config \(ssh)") }
            if let network = pool.network { print("network \(network)") }
            let resources = pool.nodes.contains { $0.gpus?.isEmpty == false || $0.memoryMiB != nil }
            var rows: [[String]] = [["NODE", "ADDRESS", "SLOTS"] + (resources ? ["GPUS", "MEMORY"] : []) + ["STATE"]]
            for node in pool.nodes {
                var row = [node.id, (node.user.map { "\($0)@" } ?? "") + node.address, String(node.slots)]
                if resources {
                    let gpus: String = node.gpus.map { $0.map(String.init).joined(separator: ",") } ?? "-"
                    let memory: String = node.memoryMiB.map { "\($0)M" } ?? "-"
                    row += [gpus.isEmpty ? "-" : gpus, memory]
                }
                let state: String = node.state.rawValue + (node.stateReason.map { " (\($0))" } ?? "")
                rows.append(row + [state])
            }
            printTable(rows)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a pool.")
        @Argument var name: String

        func run() throws {
            do { try PoolStore(stateDirectory: PoolStore.defaultStateDirectory).remove(name) } catch { throw Exit.badInput(error) }
            print("pool \(name) removed")
        }
    }
}

/// Every `--output json` of the CLI, in Cohort's one JSON style (as the API writes it).
func encode<T: Encodable>(_ value: T) -> String {
    String(decoding: (try? JSONStyle.encoder(pretty: true).encode(value)) ?? Data(), as: UTF8.self)
}

/// "1 slot", "2 slots".
func plural(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }
