import CMPI

/// An ordered set of processes (MPI-4.1 §7.3): what a communicator is made of, and how a
/// sub-communicator is described before it is made (`Communicator.create(group:)`). Groups
/// are local objects: making one involves no communication. Freed when the last reference goes.
public final class Group: @unchecked Sendable {
    /// The MPI handle.
    public let handle: MPI_Group
    let owned: Bool

    init(handle: MPI_Group, owned: Bool = true) {
        self.handle = handle
        self.owned = owned
    }

    deinit {
        if owned, handle != MPI_GROUP_NULL, handle != MPI_GROUP_EMPTY, isActive {
            var group: MPI_Group? = handle
            _ = MPI_Group_free(&group)
        }
    }

    /// The group with no process (`MPI_GROUP_EMPTY`).
    public static let empty = Group(handle: MPI_GROUP_EMPTY, owned: false)

    /// The number of processes (`MPI_Group_size`).
    public var size: Int {
        var size: Int32 = 0
        _ = MPI_Group_size(handle, &size)
        return Int(size)
    }

    /// This process's rank in the group, or nil if it is not a member (`MPI_Group_rank`).
    public var rank: Int? {
        var rank: Int32 = 0
        _ = MPI_Group_rank(handle, &rank)
        return rank == MPI_UNDEFINED ? nil : Int(rank)
    }

    /// Makes a group with `call`, which fills the new handle.
    func derive(_ call: (inout MPI_Group?) -> Int32) throws(MPIError) -> Group {
        var group: MPI_Group?
        try check(call(&group))
        guard let group, group != MPI_GROUP_EMPTY else { return .empty }
        return Group(handle: group)
    }

    static func mpiRanks(_ ranks: [Int]) throws(MPIError) -> [Int32] {
        var converted: [Int32] = []
        converted.reserveCapacity(ranks.count)
        for rank in ranks { converted.append(try mpiCount(rank)) }
        return converted
    }

    /// The processes of these ranks, in this order (`MPI_Group_incl`).
    public func including(_ ranks: [Int]) throws(MPIError) -> Group {
        var list = try Self.mpiRanks(ranks)
        return try derive { MPI_Group_incl(handle, Int32(list.count), &list, &$0) }
    }

    /// Every process but these ranks, in order (`MPI_Group_excl`).
    public func excluding(_ ranks: [Int]) throws(MPIError) -> Group {
        var list = try Self.mpiRanks(ranks)
        return try derive { MPI_Group_excl(handle, Int32(list.count), &list, &$0) }
    }

    /// This group's processes, then `other`'s that are not in it (`MPI_Group_union`).
    public func union(_ other: Group) throws(MPIError) -> Group {
        try derive { MPI_Group_union(handle, other.handle, &$0) }
    }

    /// The processes in both, in this group's order (`MPI_Group_intersection`).
    public func intersection(_ other: Group) throws(MPIError) -> Group {
        try derive { MPI_Group_intersection(handle, other.handle, &$0) }
    }

    /// This group's processes that are not in `other` (`MPI_Group_difference`).
    public func subtracting(_ other: Group) throws(MPIError) -> Group {
        try derive { MPI_Group_difference(handle, other.handle, &$0) }
    }

    /// The ranks in `other` of the processes that have `ranks` here; nil for a process
    /// that is not in `other` (`MPI_Group_translate_ranks`).
    public func translate(_ ranks: [Int], to other: Group) throws(MPIError) -> [Int?] {
        var list = try Self.mpiRanks(ranks)
        var translated = [Int32](repeating: 0, count: list.count)
        try check(MPI_Group_translate_ranks(handle, Int32(list.count), &list, other.handle, &translated))
        return translated.map { $0 == MPI_UNDEFINED ? nil : Int($0) }
    }

    /// How two groups relate (`MPI_Group_compare`): `.identical` (same processes, same
    /// order), `.similar` (same processes), or `.unequal`.
    public func compare(with other: Group) throws(MPIError) -> Communicator.Comparison {
        var result: Int32 = 0
        try check(MPI_Group_compare(handle, other.handle, &result))
        return Communicator.Comparison(mpi: result)
    }
}

extension Communicator {
    /// The processes of this communicator, in rank order (`MPI_Comm_group`).
    public func group() throws(MPIError) -> Group {
        var group: MPI_Group?
        try check(MPI_Comm_group(handle, &group))
        return Group(handle: group!)
    }

    /// A communicator of `group`'s processes (a subset of this one's), ranked in the
    /// group's order (`MPI_Comm_create`). Every process of this communicator calls it with
    /// the same group; those outside it get nil.
    public func create(group: Group) throws(MPIError) -> Communicator? {
        var comm: MPI_Comm?
        try check(MPI_Comm_create(handle, group.handle, &comm))
        guard let comm, comm != MPI_COMM_NULL else { return nil }
        return Communicator(handle: comm, owned: true)
    }

    /// The same, called by `group`'s processes only (`MPI_Comm_create_group`): the others
    /// need not take part, so disjoint groups can make their communicators at once. `tag`
    /// tells concurrent calls on this communicator apart.
    public func create(group: Group, tag: Int) throws(MPIError) -> Communicator? {
        var comm: MPI_Comm?
        try check(MPI_Comm_create_group(handle, group.handle, try mpiCount(tag), &comm))
        guard let comm, comm != MPI_COMM_NULL else { return nil }
        return Communicator(handle: comm, owned: true)
    }

    /// What processes share to be put in one communicator by `split(type:)`.
    public enum SplitType: Sendable {
        /// Memory: the processes of one node (`MPI_COMM_TYPE_SHARED`), which can use a
        /// shared-memory window or exchange through the node's memory.
        case sharedMemory
    }

    /// One communicator per node (or per what `type` says), ranked by `key` then old rank
    /// (`MPI_Comm_split_type`).
    public func split(type: SplitType, key: Int = 0) throws(MPIError) -> Communicator {
        var comm: MPI_Comm?
        let splitType: Int32 = switch type { case .sharedMemory: Int32(MPI_COMM_TYPE_SHARED) }
        try check(MPI_Comm_split_type(handle, splitType, try mpiCount(key), MPI_INFO_NULL, &comm))
        return Communicator(handle: comm!, owned: true)
    }
}
