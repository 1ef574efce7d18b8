// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Cohort",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MPI", targets: ["MPI"]),
        .executable(name: "hello", targets: ["hello"]),
        .executable(name: "ring", targets: ["ring"]),
        .executable(name: "montecarlo-pi", targets: ["montecarlo-pi"]),
        .executable(name: "heat2d", targets: ["heat2d"]),
    ],
    targets: [
        // mpi.h plus getters for Open MPI's predefined handles; found through pkg-config.
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        .target(name: "MPI", dependencies: ["CMPI"]),

        // Example programs: demos, test subjects and benchmarks at once.
        .executableTarget(name: "hello", dependencies: ["MPI"], path: "Sources/Examples/hello"),
        .executableTarget(name: "ring", dependencies: ["MPI"], path: "Sources/Examples/ring"),
        .executableTarget(name: "montecarlo-pi", dependencies: ["MPI"], path: "Sources/Examples/montecarlo-pi"),
        .executableTarget(name: "heat2d", dependencies: ["MPI"], path: "Sources/Examples/heat2d"),

        // OSU micro-benchmarks in Swift; their C twins live beside them in benchmarks/osu/c.
        .target(name: "OSUSupport", dependencies: ["MPI"], path: "benchmarks/osu/swift/Support"),
        .executableTarget(name: "osu-latency", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/latency"),
        .executableTarget(name: "osu-bw", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/bw"),
        .executableTarget(name: "osu-bibw", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/bibw"),
        .executableTarget(name: "osu-allreduce", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/allreduce"),

        // A program of MPI checks that the tests run under real mpirun on 1-4 ranks.
        .executableTarget(name: "mpi-checks", dependencies: ["MPI"], path: "Tests/Programs/mpi-checks"),
        .testTarget(name: "MPITests", dependencies: ["MPI"]),
        .testTarget(
            name: "MPIRunTests",
            dependencies: ["mpi-checks", "hello", "ring", "montecarlo-pi", "heat2d"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
