// swift-tools-version:6.1
import PackageDescription

let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
let serviceLifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")

let package = Package(
    name: "vigil",
    platforms: [.macOS(.v15)],  // only so that Mutex and Atomic compile on macOS
    products: [
        .executable(name: "vigil", targets: ["vigil"]),
        .library(name: "VigilCore", targets: ["VigilCore"]),
        .library(name: "Collectors", targets: ["Collectors"]),
        .library(name: "VigilJournal", targets: ["VigilJournal"]),
        .library(name: "VigilAgent", targets: ["VigilAgent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CIsal", providers: [.apt(["libisal-dev"])]),
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(name: "CThreads"),
        .systemLibrary(name: "CClock"),
        .systemLibrary(name: "CYAML", providers: [.apt(["libyaml-dev"])]),
        .target(name: "VigilCore", dependencies: ["CIsal", "CThreads", "CClock", logging]),
        .target(name: "Collectors", dependencies: ["VigilCore", "CClock", "CSystemd", logging], path: "collectors"),
        .target(
            name: "VigilForward",
            dependencies: [
                "VigilCore", logging, nioCore, nioPosix, nioSSL, serviceLifecycle,
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        // The strict forward-protocol receiver for tests and benchmarks; not part of the `vigil` product.
        .target(
            name: "VigilForwardTestSupport",
            dependencies: ["VigilForward", "VigilCore", nioCore, nioPosix, nioSSL]
        ),
        .executableTarget(name: "forward-receiver", dependencies: ["VigilForwardTestSupport"]),
        .executableTarget(name: "forward-bench", dependencies: ["VigilForward", "VigilForwardTestSupport", logging]),
        .target(
            name: "VigilJournal",
            dependencies: [
                "CSystemd", "VigilCore", "VigilForward", logging, serviceLifecycle,
            ]
        ),
        .target(
            name: "VigilAgent",
            dependencies: [
                "VigilCore", "Collectors", "VigilForward", "VigilJournal", "CYAML", "CMalloc", logging, nioCore,
                nioPosix,
                nioHTTP1,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "vigil",
            dependencies: ["VigilAgent", "CMalloc"],
            // Segments aligned to 64 KiB, so that the kernel loads the binary at a 64 KiB boundary: its
            // fault-around maps code in 64 KiB runs, and the runs a scrape's code falls into are then the
            // same on every start. With a random 4 KiB alignment, more code stayed resident on some starts.
            linkerSettings: [.unsafeFlags(["-Xlinker", "-z", "-Xlinker", "max-page-size=0x10000"])]
        ),
        .testTarget(name: "VigilCoreTests", dependencies: ["VigilCore"]),
        .testTarget(
            name: "CollectorsTests",
            dependencies: ["Collectors", "VigilCore", "CClock", "CSystemd", logging],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "VigilForwardTests",
            dependencies: ["VigilForward", "VigilForwardTestSupport", "VigilCore", logging]
        ),
        .testTarget(
            name: "VigilJournalTests",
            dependencies: [
                "VigilJournal", "VigilForward", "VigilForwardTestSupport", "VigilCore", "CSystemd", logging,
                serviceLifecycle,
            ]
        ),
        .testTarget(
            name: "VigilAgentTests",
            dependencies: ["VigilAgent", "VigilCore", "Collectors", "VigilJournal", "VigilForward"]
        ),
    ]
)

let upcomingFeatures = ["ExistentialAny", "MemberImportVisibility", "InternalImportsByDefault"]
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + upcomingFeatures.map { .enableUpcomingFeature($0) }
}
