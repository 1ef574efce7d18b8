// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Cohort",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MPI", targets: ["MPI"]),
        .library(name: "Launcher", targets: ["Launcher"]),
        .executable(name: "cohort", targets: ["cohort"]),
        .executable(name: "cohort-spawner", targets: ["cohort-spawner"]),
        .executable(name: "cohort-rsh", targets: ["cohort-rsh"]),
        .executable(name: "cohort-rank-env", targets: ["cohort-rank-env"]),
        .executable(name: "hello", targets: ["hello"]),
        .executable(name: "ring", targets: ["ring"]),
        .executable(name: "montecarlo-pi", targets: ["montecarlo-pi"]),
        .executable(name: "heat2d", targets: ["heat2d"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // The HTTP API of `cohort serve`; swift-configuration support is not needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // Already in the build through Hummingbird: the API's request deadlines use them.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        // Object storage: HTTP for resource and output files, SigV4's HMAC-SHA256 and checksums.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // Application packages (zip, as Azure Batch's are).
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        // Metrics: the engine counts and times through swift-metrics; `cohort serve` serves
        // them in Prometheus's format.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // mpi.h plus getters for Open MPI's predefined handles; found through pkg-config.
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        .target(name: "MPI", dependencies: ["CMPI"]),

        // The batch engine and its command line.
        .systemLibrary(name: "CVerbs", pkgConfig: "libibverbs", providers: [.apt(["libibverbs-dev"])]),
        .target(name: "CSpawn"),
        .target(name: "Launcher", dependencies: ["CVerbs", "CSpawn", .product(name: "Yams", package: "Yams"), .product(name: "GRDB", package: "GRDB.swift"),
                                                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                                                .product(name: "Crypto", package: "swift-crypto"),
                                                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                                                .product(name: "Metrics", package: "swift-metrics")]),
        // The HTTP/JSON API over the batch service.
        .target(name: "API", dependencies: ["Launcher", .product(name: "Hummingbird", package: "hummingbird"),
                                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                           .product(name: "Logging", package: "swift-log"),
                                           .product(name: "HTTPTypes", package: "swift-http-types"),
                                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "HummingbirdCore", package: "hummingbird"),
                                           .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                                           .product(name: "Metrics", package: "swift-metrics"),
                                           .product(name: "Prometheus", package: "swift-prometheus"),
                                           // The dashboard's signed session cookies and login links.
                                           .product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(name: "cohort", dependencies: ["Launcher", "API", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // The parent of `cohort serve`'s tasks: their results outlive a killed server. C and
        // static: it starts once per server, and a task costs one posix_spawn, as without it.
        .executableTarget(name: "cohort-spawner", dependencies: ["CSpawn"], path: "Sources/TaskSpawner",
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // The remote shell mpirun uses under Cohort: daemons start through the node agents'
        // channels, not an ssh connection each. C and static, like the spawner.
        .executableTarget(name: "cohort-rsh", path: "Sources/AgentRsh", linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // What every rank of a managed MPI task starts through (its node's variables, then
        // exec): C and static, as a rank must not pay a Swift runtime's start.
        .executableTarget(name: "cohort-rank-env", dependencies: ["CSpawn"], path: "Sources/RankEnv",
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),

        // Example programs: demos, test subjects and benchmarks at once.
        .executableTarget(name: "hello", dependencies: ["MPI"], path: "Sources/Examples/hello"),
        .executableTarget(name: "ring", dependencies: ["MPI"], path: "Sources/Examples/ring"),
        .executableTarget(name: "montecarlo-pi", dependencies: ["MPI"], path: "Sources/Examples/montecarlo-pi"),
        .executableTarget(name: "heat2d", dependencies: ["MPI"], path: "Sources/Examples/heat2d"),
        .executableTarget(name: "halo", dependencies: ["MPI"], path: "Sources/Examples/halo"),
        .executableTarget(name: "shared-table", dependencies: ["MPI"], path: "Sources/Examples/shared-table"),

        // OSU micro-benchmarks in Swift; their C twins live beside them in benchmarks/osu/c.
        .target(name: "OSUSupport", dependencies: ["MPI"], path: "benchmarks/osu/swift/Support"),
        .executableTarget(name: "osu-latency", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/latency"),
        .executableTarget(name: "osu-bw", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/bw"),
        .executableTarget(name: "osu-bibw", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/bibw"),
        .executableTarget(name: "osu-allreduce", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/allreduce"),
        .executableTarget(name: "osu-io", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/io"),
        .executableTarget(name: "osu-put", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/put"),
        .executableTarget(name: "osu-get", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/get"),
        .executableTarget(name: "osu-iallreduce", dependencies: ["MPI", "OSUSupport"], path: "benchmarks/osu/swift/iallreduce"),

        // Launcher benchmarks (the scripts beside them compare with mpirun, xargs, parallel).
        .executableTarget(name: "bench-allocation", dependencies: ["Launcher"], path: "benchmarks/launcher/allocation"),
        .executableTarget(name: "bench-scheduler", dependencies: ["Launcher"], path: "benchmarks/scheduler", exclude: ["run.sh"]),

        // A program of MPI checks that the tests run under real mpirun on 1-4 ranks.
        .executableTarget(name: "mpi-checks", dependencies: ["MPI"], path: "Tests/Programs/mpi-checks"),
        .testTarget(name: "MPITests", dependencies: ["MPI"]),
        .testTarget(name: "LauncherTests", dependencies: ["Launcher", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "LauncherRunTests",
            dependencies: ["Launcher", "API", .product(name: "Yams", package: "Yams"), "cohort", "cohort-spawner", "cohort-rsh", "cohort-rank-env", "hello", "montecarlo-pi", "heat2d", "ring"]
        ),
        .testTarget(
            name: "MPIRunTests",
            dependencies: ["mpi-checks", "hello", "ring", "montecarlo-pi", "heat2d", "halo", "shared-table"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
