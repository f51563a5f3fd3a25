import ArgumentParser
import Configuration
import Fleet
import Foundation
import Kafka
import Logging
import Metrics
import ReferenceStages
import Prometheus
import ServiceLifecycle
import Workers

/// `oms worker <stage>`: one stage in its consumer group; start more for more throughput.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run one stage as a worker of its consumer group (oms.<stage>).",
        discussion: "Settings come from environment variables and --config (docs/OPERATIONS.md). Stages: \(StageCatalog.names.joined(separator: ", "))."
    )

    @Argument(help: "The stage to run.")
    var stage: String

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        try await options.launch(stages: [stage])
    }
}

/// `oms fleet`: every stage in one process, for small installs and the demo.
struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Run several stages in one process (default: every pipeline stage).",
        discussion: "Settings as for `oms worker`; one /metrics, /healthz and /readyz for all."
    )

    @Option(name: .customLong("stage"), help: "A stage to run (repeatable). Default: \(StageCatalog.pipeline.joined(separator: ", ")).")
    var stages: [String] = []

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        let names = stages.isEmpty ? StageCatalog.pipeline : stages
        guard Set(names).count == names.count else {
            throw ValidationError("a stage is named twice; two copies in one process would fence each other (same transactional id)")
        }
        try await options.launch(stages: names)
    }
}

/// Options of the commands that run stages.
struct WorkerOptions: ParsableArguments {
    @Option(help: "A JSON config file; environment variables override it.")
    var config: String?

    @Option(help: "Bootstrap servers; overrides kafka.brokers / KAFKA_BROKERS.")
    var brokers: String?

    /// Loads the configuration, builds the stages and runs them with the health server
    /// until SIGTERM or SIGINT; a stage's fatal error ends the process non-zero.
    func launch(stages names: [String]) async throws {
        let (reader, configuration) = try await load()
        let stages = try names.map { try StageCatalog.make($0, reader: reader) }
        let registry = Self.bootstrap(logLevel: configuration.logLevel)
        let logger = Logger(label: "oms.worker")

        var services: [any Service] = []
        // First, so that it stops last (a group stops in reverse) and sends the final spans.
        if let export = try TracingExport.service(configuration, defaultServiceName: "oms-worker", logger: logger) { services.append(export) }
        var statuses: [RunnerStatus] = []
        for stage in stages {
            let (runner, status) = Self.runner(for: stage, configuration: configuration, logger: logger)
            services.append(runner)
            statuses.append(status)
        }
        if let port = configuration.httpPort {
            services.append(HealthServer.make(host: configuration.httpHost, port: port, registry: registry, statuses: statuses, logger: logger) { port in
                logger.info("serving /metrics, /healthz, /readyz", metadata: ["port": "\(port)"])
            })
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    /// The configuration reader (environment over `--config`) and the worker settings;
    /// a wrong setting is a usage error naming its key.
    func load() async throws -> (ConfigReader, WorkerConfiguration) {
        var environment = ProcessInfo.processInfo.environment
        if let brokers { environment["KAFKA_BROKERS"] = brokers }
        do {
            let reader = try await WorkerConfiguration.reader(environment: environment, file: config)
            return (reader, try WorkerConfiguration(reader: reader))
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// Sends logs to standard error at `logLevel` and metrics to a Prometheus registry
    /// (once per process), returning the registry `/metrics` serves.
    static func bootstrap(logLevel: Logger.Level) -> PrometheusCollectorRegistry {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    static func runner(for stage: some Stage, configuration: WorkerConfiguration, logger: Logger) -> (any Service, RunnerStatus) {
        let runner = StageRunner(stage: stage, configuration: configuration, logger: logger)
        return (runner, runner.status)
    }
}

/// The stages `oms worker` and `oms fleet` can run, by name: the pipeline's
/// (``StageRegistry``) and two for tests and benchmarks.
enum StageCatalog {
    /// The order pipeline's stages, which `oms fleet` runs by default.
    static var pipeline: [String] { StageRegistry.names }

    /// Stages for tests and benchmarks.
    static let testStages = ["passthrough", "counter"]

    /// Every name `make` accepts.
    static var names: [String] { pipeline + testStages }

    /// Builds the stage called `name`; test stages read their topics from the config
    /// (`passthrough.input`, `passthrough.output`, `counter.input`, `counter.state`,
    /// `counter.output`, and `<stage>.name` to run a second copy under another group).
    static func make(_ name: String, reader: ConfigReader) throws -> any Stage {
        func setting(_ key: String) -> String? { reader.string(forKey: ConfigKey(key)) }
        switch name {
        case "passthrough":
            let defaults = PassThroughStage()
            return PassThroughStage(
                name: setting("passthrough.name") ?? defaults.name,
                input: setting("passthrough.input") ?? defaults.inputTopics[0],
                output: setting("passthrough.output") ?? defaults.outputTopic
            )
        case "counter":
            let defaults = CountingStage()
            return CountingStage(
                name: setting("counter.name") ?? defaults.name,
                input: setting("counter.input") ?? defaults.inputTopics[0],
                changelog: setting("counter.state") ?? defaults.changelogTopic!,
                output: setting("counter.output") ?? defaults.outputTopic
            )
        default:
            guard StageRegistry.names.contains(name) else {
                throw ValidationError("unknown stage '\(name)'; stages: \(names.joined(separator: ", "))")
            }
            let rules: BusinessRules
            do {
                rules = try RulesFile.load(path: setting(RulesFile.key) ?? RulesFile.defaultPath)
            } catch {
                throw ValidationError(error.description)
            }
            return try StageRegistry.stages(named: [name], rules: rules)[0]
        }
    }
}
