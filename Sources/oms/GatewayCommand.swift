import ArgumentParser
import Configuration
import Fleet
import Foundation
import Gateway
import Logging
import ServiceLifecycle

/// `oms gateway`: the HTTP gateway (webhooks in, order and stock queries out).
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Serve the HTTP gateway: channel and carrier webhooks, order commands, order and stock queries (docs/openapi.yaml).",
        discussion: """
            Settings as for `oms worker` (Kafka, SASL/TLS, http.host, log.level) plus the gateway.* keys \
            (webhook secrets, body limit, Kafka timeout; docs/OPERATIONS.md). The port is http.port, default 8080 here. \
            Run as many as you like behind a load balancer: the gateway keeps no state Kafka does not have.
            """
    )

    @Option(help: "A JSON config file; environment variables override it.")
    var config: String?

    @Option(help: "Bootstrap servers; overrides kafka.brokers / KAFKA_BROKERS.")
    var brokers: String?

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        if let brokers { environment["KAFKA_BROKERS"] = brokers }
        if environment["HTTP_PORT"] == nil { environment["HTTP_PORT"] = "8080" }
        let worker: WorkerConfiguration
        let settings: GatewayConfiguration
        do {
            let reader = try await WorkerConfiguration.reader(environment: environment, file: config)
            worker = try WorkerConfiguration(reader: reader)
            settings = try GatewayConfiguration(reader: reader)
        } catch {
            throw ValidationError(error.description)
        }
        guard let port = worker.httpPort else {
            throw ValidationError("configuration key http.port (HTTP_PORT): the gateway needs a port; -1 is only for workers")
        }
        let registry = WorkerOptions.bootstrap(logLevel: worker.logLevel)
        let logger = Logger(label: "oms.gateway")
        let gateway = try Gateway(configuration: settings, kafka: worker.kafka, registry: registry, logger: logger)
        let service = gateway.service(host: worker.httpHost, port: port) { port in
            logger.info("gateway listening", metadata: ["port": "\(port)"])
        }
        var services: [any Service] = [service]
        // First, so that it stops last (a group stops in reverse) and sends the final spans.
        if let export = try TracingExport.service(worker, defaultServiceName: "oms-gateway", logger: logger) { services.insert(export, at: 0) }
        try await ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}
