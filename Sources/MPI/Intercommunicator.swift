import CMPI

// Intercommunicators (MPI-4.1 §7.6): two disjoint groups that talk across — a coupled
// simulation's fluid and structure solvers, a master group and its workers. Point-to-point
// ranks name processes of the other group; `merged` makes one intracommunicator of both.
extension Communicator {
    /// Whether this is an intercommunicator (`MPI_Comm_test_inter`).
    public var isIntercommunicator: Bool {
        var flag: Int32 = 0
        _ = MPI_Comm_test_inter(handle, &flag)
        return flag != 0
    }

    /// The number of processes of the other group (`MPI_Comm_remote_size`); 0 on an
    /// intracommunicator.
    public var remoteSize: Int {
        guard isIntercommunicator else { return 0 }
        var size: Int32 = 0
        _ = MPI_Comm_remote_size(handle, &size)
        return Int(size)
    }

    /// The other group's processes (`MPI_Comm_remote_group`).
    public func remoteGroup() throws(MPIError) -> Group {
        guard isIntercommunicator else { throw MPIError(errorClass: MPI_ERR_COMM, message: "remoteGroup: not an intercommunicator") }
        var group: MPI_Group?
        try check(MPI_Comm_remote_group(handle, &group))
        return Group(handle: group!)
    }

    /// An intercommunicator between this communicator's processes and another, disjoint
    /// group (`MPI_Intercomm_create`). Collective over both groups: each names its own
    /// leader (a rank here) and the other group's leader by its rank in `peer`, a
    /// communicator both leaders belong to (often `world`); `tag` keeps the leaders'
    /// handshake apart from other messages on `peer`.
    public func intercommunicator(localLeader: Int, peer: Communicator, remoteLeader: Int, tag: Int = 0) throws(MPIError) -> Communicator {
        var comm: MPI_Comm?
        try check(MPI_Intercomm_create(handle, try mpiCount(localLeader), peer.handle, try mpiCount(remoteLeader), try mpiCount(tag), &comm))
        return Communicator(handle: comm!, owned: true)
    }

    /// Both groups of an intercommunicator as one intracommunicator
    /// (`MPI_Intercomm_merge`): the group that passes `high: true` is ranked after the other.
    public func merged(high: Bool) throws(MPIError) -> Communicator {
        guard isIntercommunicator else { throw MPIError(errorClass: MPI_ERR_COMM, message: "merged: not an intercommunicator") }
        var comm: MPI_Comm?
        try check(MPI_Intercomm_merge(handle, high ? 1 : 0, &comm))
        return Communicator(handle: comm!, owned: true)
    }
}
