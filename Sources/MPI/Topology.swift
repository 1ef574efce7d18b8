import CMPI

// Process topologies (MPI-4.1 §8.5): Cartesian grids for stencil codes, distributed graphs
// for unstructured meshes; the neighbourhood collectives over them are in NeighborCollective.swift.

extension Communicator {
    /// A balanced grid of `dimensions` extents whose product is `processes`
    /// (`MPI_Dims_create`); entries of `fixed` that are non-zero are kept.
    public static func balancedDimensions(processes: Int, dimensions: Int, fixed: [Int]? = nil) throws(MPIError) -> [Int] {
        var dims = [Int32](repeating: 0, count: dimensions)
        if let fixed { for (i, d) in fixed.prefix(dimensions).enumerated() { dims[i] = try mpiCount(d) } }
        try check(MPI_Dims_create(try mpiCount(processes), try mpiCount(dimensions), &dims))
        return dims.map(Int.init)
    }

    /// A new communicator with a Cartesian topology of `dimensions` extents, periodic where
    /// `periodic` says (`MPI_Cart_create`). Processes beyond the grid get nil.
    public func cartesian(dimensions: [Int], periodic: [Bool], reorder: Bool = false) throws(MPIError) -> Communicator? {
        guard dimensions.count == periodic.count else {
            throw MPIError(errorClass: MPI_ERR_DIMS, message: "cartesian: \(dimensions.count) dimensions but \(periodic.count) periodic flags")
        }
        var dims = [Int32]()
        for d in dimensions { dims.append(try mpiCount(d)) }
        var periods = periodic.map { Int32($0 ? 1 : 0) }
        var comm: MPI_Comm?
        try check(MPI_Cart_create(handle, Int32(dims.count), &dims, &periods, reorder ? 1 : 0, &comm))
        guard let comm, comm != MPI_COMM_NULL else { return nil }
        return Communicator(handle: comm, owned: true)
    }

    /// The grid's extents, periodicity and this process's coordinates (`MPI_Cart_get`).
    public func cartesianLayout() throws(MPIError) -> (dimensions: [Int], periodic: [Bool], coordinates: [Int]) {
        var ndims: Int32 = 0
        try check(MPI_Cartdim_get(handle, &ndims))
        var dims = [Int32](repeating: 0, count: Int(ndims)), periods = dims, coords = dims
        try check(MPI_Cart_get(handle, ndims, &dims, &periods, &coords))
        return (dims.map(Int.init), periods.map { $0 != 0 }, coords.map(Int.init))
    }

    /// The grid coordinates of `rank` (`MPI_Cart_coords`).
    public func coordinates(of rank: Int) throws(MPIError) -> [Int] {
        var ndims: Int32 = 0
        try check(MPI_Cartdim_get(handle, &ndims))
        var coords = [Int32](repeating: 0, count: Int(ndims))
        try check(MPI_Cart_coords(handle, try mpiCount(rank), ndims, &coords))
        return coords.map(Int.init)
    }

    /// The rank at grid `coordinates`; periodic dimensions wrap (`MPI_Cart_rank`).
    public func rank(at coordinates: [Int]) throws(MPIError) -> Int {
        var coords = [Int32]()
        for c in coordinates { coords.append(try mpiCount(c)) }
        var rank: Int32 = 0
        try check(MPI_Cart_rank(handle, &coords, &rank))
        return Int(rank)
    }

    /// The neighbours `displacement` steps away along `dimension`: the rank to receive from
    /// and the rank to send to, `Communicator.nullProcess` past a non-periodic edge (`MPI_Cart_shift`).
    public func shift(dimension: Int, displacement: Int = 1) throws(MPIError) -> (source: Int, destination: Int) {
        var source: Int32 = 0, destination: Int32 = 0
        try check(MPI_Cart_shift(handle, try mpiCount(dimension), try mpiCount(displacement), &source, &destination))
        return (Int(source), Int(destination))
    }

    /// The sub-grids that keep the dimensions where `keeping` is true: the processes that
    /// differ only along those share one (`MPI_Cart_sub`) — a row or a column of a 2-D grid.
    public func cartesianSub(keeping: [Bool]) throws(MPIError) -> Communicator {
        var remain = keeping.map { Int32($0 ? 1 : 0) }
        var comm: MPI_Comm?
        try check(MPI_Cart_sub(handle, &remain, &comm))
        return Communicator(handle: comm!, owned: true)
    }

    /// A distributed graph topology from each process's own neighbours
    /// (`MPI_Dist_graph_create_adjacent`): the ranks it receives from and sends to, which the
    /// neighbourhood collectives then use in this order. An unstructured mesh's halo: a
    /// partition's neighbouring partitions. Weights, if given, one per edge, may guide
    /// `reorder`.
    public func distributedGraph(sources: [Int], destinations: [Int], sourceWeights: [Int]? = nil, destinationWeights: [Int]? = nil,
                                 reorder: Bool = false) throws(MPIError) -> Communicator {
        if let sourceWeights, sourceWeights.count != sources.count {
            throw MPIError(errorClass: MPI_ERR_ARG, message: "distributedGraph: \(sources.count) sources but \(sourceWeights.count) source weights")
        }
        if let destinationWeights, destinationWeights.count != destinations.count {
            throw MPIError(errorClass: MPI_ERR_ARG, message: "distributedGraph: \(destinations.count) destinations but \(destinationWeights.count) destination weights")
        }
        var from = try Group.mpiRanks(sources), to = try Group.mpiRanks(destinations)
        var fromWeights = try sourceWeights.map { w throws(MPIError) in try Group.mpiRanks(w) } ?? []
        var toWeights = try destinationWeights.map { w throws(MPIError) in try Group.mpiRanks(w) } ?? []
        var comm: MPI_Comm?
        // Without weights MPI wants its MPI_UNWEIGHTED marker, never a pointer to an empty array.
        let rc = fromWeights.withUnsafeMutableBufferPointer { fw in
            toWeights.withUnsafeMutableBufferPointer { tw in
                MPI_Dist_graph_create_adjacent(handle, Int32(from.count), &from, sourceWeights == nil ? MPI_UNWEIGHTED : (fw.baseAddress ?? MPI_WEIGHTS_EMPTY),
                                               Int32(to.count), &to, destinationWeights == nil ? MPI_UNWEIGHTED : (tw.baseAddress ?? MPI_WEIGHTS_EMPTY),
                                               MPI_INFO_NULL, reorder ? 1 : 0, &comm)
            }
        }
        try check(rc)
        return Communicator(handle: comm!, owned: true)
    }

    /// The topology this communicator has, if any (`MPI_Topo_test`).
    public enum Topology: Sendable { case cartesian, graph, distributedGraph }

    public var topology: Topology? {
        var status: Int32 = 0
        _ = MPI_Topo_test(handle, &status)
        switch status {
        case Int32(MPI_CART): return .cartesian
        case Int32(MPI_GRAPH): return .graph
        case Int32(MPI_DIST_GRAPH): return .distributedGraph
        default: return nil
        }
    }

    /// The ranks this process receives from and sends to in the neighbourhood collectives,
    /// in their order: a distributed graph's as given (`MPI_Dist_graph_neighbors`); a
    /// Cartesian grid's two per dimension, the negative side first, `nullProcess` past a
    /// non-periodic edge.
    public func neighbors() throws(MPIError) -> (sources: [Int], destinations: [Int]) {
        switch topology {
        case .cartesian:
            var ndims: Int32 = 0
            try check(MPI_Cartdim_get(handle, &ndims))
            var around: [Int] = []
            for dimension in 0..<Int(ndims) {
                let (source, destination) = try shift(dimension: dimension)
                around += [source, destination]
            }
            return (around, around)
        case .distributedGraph:
            var indegree: Int32 = 0, outdegree: Int32 = 0, weighted: Int32 = 0
            try check(MPI_Dist_graph_neighbors_count(handle, &indegree, &outdegree, &weighted))
            var sources = [Int32](repeating: 0, count: Int(indegree)), destinations = [Int32](repeating: 0, count: Int(outdegree))
            var sourceWeights = sources, destinationWeights = destinations
            try check(MPI_Dist_graph_neighbors(handle, indegree, &sources, &sourceWeights, outdegree, &destinations, &destinationWeights))
            return (sources.map(Int.init), destinations.map(Int.init))
        default:
            throw MPIError(errorClass: MPI_ERR_TOPOLOGY, message: "neighbors: the communicator has no Cartesian or distributed graph topology")
        }
    }
}
