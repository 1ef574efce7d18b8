import Foundation
/// What a node is doing, in Azure Batch's words.
public enum NodeState: String, Codable, Sendable, CaseIterable {
    case idle, running, starting, leaving
    /// Drained by an admin: finishes its work, takes no more.
    case offline
    /// Failed a health check or was lost; `stateReason` says why.
    case unusable

    /// Whether new work may be placed there.
    public var acceptsWork: Bool { self == .idle || self == .running }
}

/// One host of a pool.
public struct Node: Codable, Sendable, Equatable {
    /// The node's id within its pool (`AZ_BATCH_NODE_ID`); for static pools the host name.
    public var id: String
    /// How to reach it: host name or address. `localhost` for the local pool's virtual nodes.
    public var address: String
    /// `user@` for ssh, if not the current user.
    public var user: String?
    /// Processes it takes at once.
    public var slots: Int
    public var state: NodeState
    /// Why the node is offline or unusable.
    public var stateReason: String?
    /// Free-form attributes (rack, RDMA device, ...).
    public var attributes: [String: String]
    /// Attempts whose processes may still run there (the node was cut off when they were
    /// ended): swept as soon as it answers again.
    public var pendingSweeps: [String]?
    /// The pool's start task's last run there (`cohort node list --output json`).
    public var startTask: NodeTaskRun?
    /// Its GPUs, as the device numbers a task is given in `CUDA_VISIBLE_DEVICES` (pool
    /// option `--gpus-per-node`); nil or empty: none.
    public var gpus: [Int]?
    /// Its memory in MiB that tasks may ask for (`memoryPerNode`); nil: not stated.
    public var memoryMiB: Int?

    public init(id: String, address: String, user: String? = nil, slots: Int, state: NodeState = .idle, stateReason: String? = nil, attributes: [String: String] = [:]) {
        self.id = id
        self.address = address
        self.user = user
        self.slots = slots
        self.state = state
        self.stateReason = stateReason
        self.attributes = attributes
    }

    /// Whether the node is this machine (no ssh needed).
    public var isLocal: Bool { address == "localhost" || address == "127.0.0.1" || address == "::1" }

    /// This machine's hostname as the kernel has it (gethostname: no DNS lookup, unlike
    /// Foundation's `hostName`).
    public static var thisMachineName: String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        return String(cString: name)
    }
}
