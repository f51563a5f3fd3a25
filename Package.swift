// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "OrderFleet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "oms", targets: ["oms"]),
        .library(name: "Kafka", targets: ["Kafka"]),
        .library(name: "Contracts", targets: ["Contracts"]),
        .library(name: "Workers", targets: ["Workers"]),
        .library(name: "Fleet", targets: ["Fleet"]),
        .library(name: "Gateway", targets: ["Gateway"]),
        .library(name: "Outbound", targets: ["Outbound"]),
        .library(name: "Invoicing", targets: ["Invoicing"]),
    ],
    // OTLP export of the tracing spans (swift-otel) costs CI several minutes of build, so
    // it is opt-in: `swift build --traits OTLP`. Without it spans go to whatever tracer is
    // bootstrapped (none in production builds: the no-op tracer).
    traits: [
        .trait(name: "OTLP", description: "Export tracing spans with OTLP/HTTP (swift-otel) when OTEL_EXPORTER_OTLP_ENDPOINT is set"),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/CoreOffice/XMLCoder", from: "0.18.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // Only its OTLP/HTTP exporter: the gRPC one would bring grpc-swift into the build.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        .systemLibrary(
            name: "CKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(
            name: "Kafka",
            dependencies: [
                "CKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // The system's libcrypto (OpenSSL 3) for SHA-1, SHA-256 and HMAC: swift-crypto
        // would compile a second BoringSSL (~360 C files) beside swift-nio-ssl's, about
        // 70 s of every clean build here.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "Digests",
            dependencies: ["COpenSSL"]
        ),
        .target(
            name: "Contracts",
            dependencies: ["Digests"]
        ),
        .target(
            name: "Workers",
            dependencies: [
                "Contracts",
                "Invoicing",
                "Digests",
            ]
        ),
        .target(
            name: "StageMachine",
            dependencies: ["Contracts", "Workers"]
        ),
        // The runtime's reference stages (pass-through, counting) and a seeded generator:
        // `oms worker passthrough|counter`, the benchmarks, the demo's mix and the tests.
        .target(
            name: "ReferenceStages",
            dependencies: ["Contracts", "Workers"]
        ),
        // The tests' kit, linked into no product: brokers (the embedded cluster, the shared
        // noida-db, `KAFKA_BROKERS`), topic and runner fixtures, polling on a condition,
        // a recording tracer, local servers and HTTP to the servers a test starts.
        .target(
            name: "OrderFleetTesting",
            dependencies: [
                "Kafka",
                "Contracts",
                "Workers",
                "Fleet",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "Fleet",
            dependencies: [
                "Kafka",
                "Contracts",
                "Workers",
                "StageMachine",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                "Digests",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "Gateway",
            dependencies: [
                "Kafka",
                "Contracts",
                "Workers",
                "Fleet",
                "Invoicing",
                "Digests",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "Outbound",
            dependencies: [
                "Kafka",
                "Contracts",
                "Workers",
                "Fleet",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Mustache", package: "swift-mustache"),
                "Digests",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "Invoicing",
            dependencies: [
                "Contracts",
                .product(name: "XMLCoder", package: "XMLCoder"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .executableTarget(
            name: "oms",
            dependencies: [
                "Kafka",
                "Contracts",
                "Workers",
                "Invoicing",
                "Fleet",
                "Gateway",
                "Outbound",
                "ReferenceStages",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OTLP"])),
            ]
        ),
        .testTarget(
            name: "KafkaTests",
            dependencies: [
                "Kafka",
                "Contracts",
                "Workers",
                "Invoicing",
                "Fleet",
                "Gateway",
                "Outbound",
                "oms",
                "OrderFleetTesting",
                "ReferenceStages",
                "StageMachine",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "Digests",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .testTarget(
            name: "OutboundTests",
            dependencies: [
                "Outbound",
                "oms",
                "Fleet",
                "Contracts",
                "Workers",
                "OrderFleetTesting",
                "ReferenceStages",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .testTarget(
            name: "GatewayRouteTests",
            dependencies: [
                "Gateway",
                "Kafka",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "SimulationTests",
            dependencies: ["StageMachine", "Workers", "Contracts", "OrderFleetTesting", "ReferenceStages"]
        ),
        .testTarget(
            name: "WorkersTests",
            dependencies: ["Workers", "Contracts", "Invoicing", "OrderFleetTesting", "ReferenceStages"]
        ),
        .testTarget(
            name: "InvoicingTests",
            dependencies: ["Invoicing", "Contracts"]
        ),
        .testTarget(
            name: "ContractsTests",
            dependencies: [
                "Contracts",
                "Digests",
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [.copy("Fixtures")]
        ),
    ]
)

// Our own modules are compiled with the optimizer in debug builds too: the tests run the
// stages for minutes (the simulation's thousands of seeds, the 2,000-order demo), several
// times slower at -Onone. Dependencies stay unoptimized. `OMS_ONONE=1 swift build` turns
// it off for step-by-step debugging.
if Context.environment["OMS_ONONE"] == nil {
    let optimized: Set = ["Kafka", "Digests", "Contracts", "Workers", "StageMachine", "Invoicing", "Fleet", "Gateway", "Outbound", "ReferenceStages", "oms", "SimulationTests"]
    for target in package.targets where optimized.contains(target.name) {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-O"], .when(configuration: .debug))]
    }
}
