/// How node groups are chosen.
public enum PlacementPolicy: String, Codable, Sendable {
    /// Fill the fullest nodes first, keeping whole nodes free for large groups (best fit).
    case pack
    /// Use the emptiest nodes first, spreading load.
    case spread
}

/// Slots (and GPUs and memory) handed out on a pool's nodes: in-memory bookkeeping that
/// never gives a slot or a GPU twice.
///
/// Nodes are kept in buckets by their number of free slots, so a group of N nodes with P
/// free slots each is found by walking at most N nodes, whatever the pool's size. GPUs and
/// memory are checked on the nodes walked: a group that asks for none walks as before.
public struct Allocator: Sendable {
    public private(set) var capacity: [Int]
    public private(set) var free: [Int]
    /// Per node: its GPUs by position in the node's list (bit i: GPU i free); at most 64.
    public private(set) var gpuCount: [Int]
    public private(set) var freeGPUs: [UInt64]
    /// Per node: memory in MiB (0 where the pool states none) and how much of it is free.
    public private(set) var memory: [Int]
    public private(set) var freeMemory: [Int]
    /// Whether the node may take new work (not drained or unusable).
    public private(set) var usable: [Bool]
    /// buckets[k]: usable nodes with exactly k free slots; position[i]: node i's index there.
    var buckets: [[Int]]
    var position: [Int]
    public let policy: PlacementPolicy

    /// The most GPUs a node may have (one bit each).
    public static let maximumGPUsPerNode = 64

    public init(slots: [Int], usable: [Bool]? = nil, gpus: [Int]? = nil, memory: [Int]? = nil, policy: PlacementPolicy = .pack) {
        capacity = slots
        free = slots
        gpuCount = gpus.map { $0.map { min(max($0, 0), Self.maximumGPUsPerNode) } } ?? Array(repeating: 0, count: slots.count)
        freeGPUs = gpuCount.map { $0 == 64 ? UInt64.max : (UInt64(1) << UInt64($0)) - 1 }
        self.memory = memory ?? Array(repeating: 0, count: slots.count)
        freeMemory = self.memory
        self.usable = usable ?? Array(repeating: true, count: slots.count)
        self.policy = policy
        buckets = Array(repeating: [], count: (slots.max() ?? 0) + 1)
        position = Array(repeating: -1, count: slots.count)
        for node in slots.indices where self.usable[node] { insert(node) }
    }

    public init(pool: Pool, policy: PlacementPolicy = .pack) {
        self.init(slots: pool.nodes.map(\.slots), usable: pool.nodes.map(\.state.acceptsWork),
                  gpus: pool.nodes.map { $0.gpus?.count ?? 0 }, memory: pool.nodes.map { $0.memoryMiB ?? 0 }, policy: policy)
    }

    public var nodeCount: Int { capacity.count }
    /// The most slots any node has.
    public var largestNode: Int { buckets.count - 1 }
    public var freeSlots: Int { free.indices.filter { usable[$0] }.reduce(0) { $0 + free[$1] } }

    // MARK: - Feasibility (checked when a job is given, so nothing waits forever)

    /// Why a group of `instances` nodes with `processesPerNode` slots each can never be
    /// placed on this pool, or nil if it can once the pool is free.
    public func impossibility(instances: Int, processesPerNode: Int, replicas: Int = 1) -> String? {
        let fitting = capacity.indices.filter { usable[$0] && capacity[$0] >= processesPerNode }.count
        let usableCount = usable.filter { $0 }.count
        let largest = capacity.indices.filter { usable[$0] }.map { capacity[$0] }.max() ?? 0
        if processesPerNode > largest {
            return "needs \(processesPerNode) processes per node but the largest usable node has \(largest) slots"
        }
        if instances > fitting {
            return "needs \(instances) nodes with \(processesPerNode) slots each but the pool has \(fitting) such nodes (\(usableCount) usable in all)"
        }
        // Replicas beyond what fits at once run one after another: slower, but possible.
        return nil
    }

    // MARK: - Allocation

    /// What a group needs on each of its nodes besides slots.
    public struct Extras: Hashable, Sendable {
        public var gpus: Int
        /// MiB.
        public var memory: Int
        public init(gpus: Int = 0, memory: Int = 0) {
            self.gpus = gpus
            self.memory = memory
        }
        public static let none = Extras()
        public var isEmpty: Bool { gpus == 0 && memory == 0 }
    }

    /// A group taken: its nodes, and per node the positions of its GPUs in the node's list
    /// (no lists at all when it asked for none).
    public struct Placement: Equatable, Sendable {
        public var nodes: [Int]
        public var gpus: [[Int]]
    }

    /// Takes `processesPerNode` slots on each of `instances` distinct nodes, none of them in
    /// `excluded` (the nodes of a sibling replica), or returns nil, taking nothing, if they
    /// are not free now. `exclusive`: only wholly free nodes, and all of their slots.
    public mutating func allocateGroup(instances: Int, processesPerNode: Int, excluding excluded: Set<Int> = [], exclusive: Bool = false) -> [Int]? {
        place(instances: instances, processesPerNode: processesPerNode, extras: .none, excluding: excluded, exclusive: exclusive)?.nodes
    }

    /// `allocateGroup`, where each node must also have `extras` free (GPUs, memory), which are taken too.
    public mutating func place(instances: Int, processesPerNode: Int, extras: Extras, excluding excluded: Set<Int> = [], exclusive: Bool = false) -> Placement? {
        guard instances > 0, processesPerNode > 0, processesPerNode < buckets.count,
              nodesWithFree(atLeast: processesPerNode) >= instances else { return nil }
        let chosen: [Int]
        if exclusive {
            guard let whole = wholeNodes(instances: instances, minimumSlots: processesPerNode, extras: extras, excluding: excluded) else { return nil }
            chosen = whole
        } else {
            var found: [Int] = []
            found.reserveCapacity(instances)
            // Pack walks up from the fewest free slots that fit (best fit); spread walks down.
            let top = buckets.count - 1
            var level = policy == .pack ? processesPerNode : top
            while level >= processesPerNode && level <= top {
                for node in buckets[level] where (excluded.isEmpty || !excluded.contains(node)) && (extras.isEmpty || hasFree(extras, on: node)) {
                    found.append(node)
                    if found.count == instances { break }
                }
                if found.count == instances { break }
                level += policy == .pack ? 1 : -1
            }
            guard found.count == instances else { return nil }
            chosen = found
        }
        var gpus: [[Int]] = []  // left empty (no allocation) when none are asked for
        if extras.gpus > 0 { gpus.reserveCapacity(instances) }
        for node in chosen {
            take(node, exclusive ? capacity[node] : processesPerNode)
            if extras.gpus > 0 { gpus.append(takeGPUs(extras.gpus, on: node)) }
            if extras.memory > 0 { freeMemory[node] -= extras.memory }
        }
        return Placement(nodes: chosen, gpus: gpus)
    }

    /// Whether `node` has `extras` free now.
    public func hasFree(_ extras: Extras, on node: Int) -> Bool {
        (extras.gpus == 0 || freeGPUs[node].nonzeroBitCount >= extras.gpus) && freeMemory[node] >= extras.memory
    }

    /// Whether `node` has `extras` at all, used or not.
    public func canEverHold(_ extras: Extras, on node: Int) -> Bool {
        gpuCount[node] >= extras.gpus && memory[node] >= extras.memory
    }

    /// The bits of these GPU positions, or nil if one is out of range or named twice.
    static func mask(_ positions: [Int]) -> UInt64? {
        var mask: UInt64 = 0
        for position in positions {
            guard position >= 0, position < maximumGPUsPerNode, mask & (UInt64(1) << UInt64(position)) == 0 else { return nil }
            mask |= UInt64(1) << UInt64(position)
        }
        return mask
    }

    /// The lowest `count` free GPU positions of `node`, taken.
    mutating func takeGPUs(_ count: Int, on node: Int) -> [Int] {
        guard count > 0 else { return [] }
        var taken: [Int] = []
        var mask = freeGPUs[node]
        while taken.count < count {
            let position = mask.trailingZeroBitCount
            precondition(position < 64, "GPU handed out twice on node \(node)")
            taken.append(position)
            mask &= mask - 1
        }
        freeGPUs[node] = mask
        return taken
    }

    /// `instances` wholly free nodes with at least `minimumSlots` slots, every slot of each
    /// taken. Pack takes the smallest such nodes (a big node stays for a big task), spread the largest.
    func wholeNodes(instances: Int, minimumSlots: Int, extras: Extras, excluding excluded: Set<Int>) -> [Int]? {
        var chosen: [Int] = []
        let levels = policy == .pack ? Array(minimumSlots..<buckets.count) : Array((minimumSlots..<buckets.count).reversed())
        for level in levels {
            for node in buckets[level] where capacity[node] == level && !excluded.contains(node) && (extras.isEmpty || hasFree(extras, on: node)) {
                chosen.append(node)
                if chosen.count == instances { break }
            }
            if chosen.count == instances { break }
        }
        return chosen.count == instances ? chosen : nil
    }

    /// Slots a group's node gives back: all of them for an exclusive group.
    func slots(of node: Int, processesPerNode: Int, exclusive: Bool) -> Int { exclusive ? capacity[node] : processesPerNode }

    /// Takes `count` disjoint groups at once, all or nothing (replicas that must run together).
    public mutating func allocateGroups(count: Int, instances: Int, processesPerNode: Int) -> [[Int]]? {
        var groups: [[Int]] = []
        var used = Set<Int>()
        for _ in 0..<count {
            guard let group = allocateGroup(instances: instances, processesPerNode: processesPerNode, excluding: used) else {
                for taken in groups { release(group: taken, processesPerNode: processesPerNode) }
                return nil
            }
            groups.append(group)
            used.formUnion(group)
        }
        return groups
    }

    /// Takes `slots` slots on one given node, if it is usable and has them free.
    public mutating func allocate(slots: Int, on node: Int) -> Bool {
        guard slots > 0, usable[node], free[node] >= slots else { return false }
        take(node, slots)
        return true
    }

    /// How many usable nodes have at least `slots` free slots now: O(largest node's slots),
    /// so a group that cannot fit is turned down without walking any node.
    public func nodesWithFree(atLeast slots: Int) -> Int {
        guard slots < buckets.count else { return 0 }
        var count = 0
        for level in max(0, slots)..<buckets.count { count += buckets[level].count }
        return count
    }

    /// How many usable nodes have exactly `slots` free slots now.
    public func nodes(withFree slots: Int) -> Int { slots < buckets.count ? buckets[slots].count : 0 }

    /// The `count` usable nodes with the most free slots now (the ones that will be free
    /// soonest), among those with at least `minimumCapacity` slots, or nil if there are
    /// not that many: walks the buckets from the top, so it costs `count` nodes, not the pool.
    public func mostFree(count: Int, minimumCapacity: Int, extras: Extras = .none, excluding excluded: Set<Int> = []) -> [Int]? {
        var chosen: [Int] = []
        for level in buckets.indices.reversed() {
            for node in buckets[level] where capacity[node] >= minimumCapacity && !excluded.contains(node) && (extras.isEmpty || canEverHold(extras, on: node)) {
                chosen.append(node)
                if chosen.count == count { return chosen }
            }
        }
        return nil
    }

    /// Takes these slots on each of these nodes, drained or not (work a restarted controller
    /// adopts runs there already); false, taking nothing, if one lacks them.
    /// `gpus`: the GPU positions it holds on each node, `memory` what it holds on each.
    public mutating func occupy(group: [Int], processesPerNode: Int, exclusive: Bool = false, gpus: [[Int]] = [], memory: Int = 0) -> Bool {
        guard group.allSatisfy({ free[$0] >= slots(of: $0, processesPerNode: processesPerNode, exclusive: exclusive) && freeMemory[$0] >= memory }),
              Set(group).count == group.count, gpus.isEmpty || gpus.count == group.count else { return false }
        var masks: [UInt64] = []
        for (position, node) in group.enumerated() where position < gpus.count {
            guard let mask = Self.mask(gpus[position]), mask & freeGPUs[node] == mask else { return false }
            masks.append(mask)
        }
        for (position, node) in group.enumerated() {
            take(node, slots(of: node, processesPerNode: processesPerNode, exclusive: exclusive))
            freeMemory[node] -= memory
            if position < masks.count { freeGPUs[node] &= ~masks[position] }
        }
        return true
    }

    /// Takes one slot for an independent task.
    public mutating func allocateSlot() -> Int? {
        allocateGroup(instances: 1, processesPerNode: 1)?.first
    }

    public mutating func release(group: [Int], processesPerNode: Int, exclusive: Bool = false, gpus: [[Int]] = [], memory: Int = 0) {
        for (position, node) in group.enumerated() {
            give(node, slots(of: node, processesPerNode: processesPerNode, exclusive: exclusive))
            if memory > 0 {
                freeMemory[node] += memory
                precondition(freeMemory[node] <= self.memory[node], "released more memory than node \(node) has")
            }
            guard position < gpus.count else { continue }
            for gpu in gpus[position] {
                precondition(freeGPUs[node] & (UInt64(1) << UInt64(gpu)) == 0, "released GPU \(gpu) of node \(node), which was free")
                freeGPUs[node] |= UInt64(1) << UInt64(gpu)
            }
        }
    }

    public mutating func release(slot node: Int) { give(node, 1) }

    /// Marks a node unusable or drained (no new work) or usable again.
    public mutating func setUsable(_ node: Int, _ isUsable: Bool) {
        guard usable[node] != isUsable else { return }
        if isUsable { usable[node] = true; insert(node) } else { remove(node); usable[node] = false }
    }

    // MARK: - Buckets

    mutating func take(_ node: Int, _ slots: Int) {
        precondition(free[node] >= slots, "slot handed out twice on node \(node)")
        remove(node)
        free[node] -= slots
        insert(node)
    }

    mutating func give(_ node: Int, _ slots: Int) {
        precondition(free[node] + slots <= capacity[node], "released more slots than node \(node) has")
        remove(node)
        free[node] += slots
        insert(node)
    }

    mutating func insert(_ node: Int) {
        guard usable[node] else { return }
        position[node] = buckets[free[node]].count
        buckets[free[node]].append(node)
    }

    mutating func remove(_ node: Int) {
        let index = position[node]
        guard index >= 0 else { return }
        let level = free[node]
        let last = buckets[level].removeLast()
        if last != node {
            buckets[level][index] = last
            position[last] = index
        }
        position[node] = -1
    }
}
