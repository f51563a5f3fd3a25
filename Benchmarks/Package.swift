// swift-tools-version: 6.1
// Micro-benchmarks of the record path with regression thresholds (ordo-one/benchmark).
// A package of its own, so that neither the build of OrderFleet nor its tests pay for
// the benchmark package: `cd Benchmarks && swift package benchmark` (docs/BENCHMARKS.md).
import PackageDescription

let package = Package(
    name: "OrderFleetBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "OrderFleet", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "RecordPath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Contracts", package: "OrderFleet"),
                .product(name: "Workers", package: "OrderFleet"),
            ],
            path: "Benchmarks/RecordPath",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
