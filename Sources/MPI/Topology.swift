import CMPI

// Cartesian process topologies (MPI-4.1 §8.5): what stencil and halo-exchange codes need.

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
}
