import ArgumentParser
import Fleet
import Foundation
import Logging
import Outbound
import ServiceLifecycle

/// `oms connector <name>…`: outbound connectors, each in its consumer group `oms.<name>`.
struct ConnectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connector",
        abstract: "Run outbound connectors: perform commands on external systems (channels, email, SMS) and deliver subscribed webhooks.",
        discussion: """
            Each connector consumes its command topic in the group oms.<name> and calls its external system once per \
            command, reconciling after a crash (docs/ARCHITECTURE.md, "The outbound side"). Settings as for `oms worker`, \
            plus connector.*, channels.*, email.*, sms.* and webhooks.* (docs/OPERATIONS.md). Connectors: \(ConnectorCatalog.names.joined(separator: ", ")).
            """
    )

    @Argument(help: "The connectors to run.")
    var names: [String]

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        guard !names.isEmpty else { throw ValidationError("name a connector: \(ConnectorCatalog.names.joined(separator: ", "))") }
        guard Set(names).count == names.count else { throw ValidationError("a connector is named twice") }
        let (reader, configuration) = try await options.load()
        let logger = Logger(label: "oms.connector")
        // Before the connectors make their HTTP clients: async-http-client keeps the tracer
        // bootstrapped when a client is made, for its own client spans.
        let export = try TracingExport.service(configuration, defaultServiceName: "oms-connector", logger: logger)
        let connectors: [(service: any Service, status: RunnerStatus)]
        do {
            connectors = try names.map { name throws(ConfigurationError) in
                try ConnectorCatalog.service(name, reader: reader, configuration: configuration, logger: logger)
            }
        } catch {
            throw ValidationError(error.description)
        }
        let registry = WorkerOptions.bootstrap(logLevel: configuration.logLevel)
        var services = connectors.map(\.service)
        // First, so that it stops last (a group stops in reverse) and sends the final spans.
        if let export { services.insert(export, at: 0) }
        if let port = configuration.httpPort {
            services.append(HealthServer.make(host: configuration.httpHost, port: port, registry: registry, statuses: connectors.map(\.status), logger: logger) { port in
                logger.info("serving /metrics, /healthz, /readyz", metadata: ["port": "\(port)"])
            })
        }
        try await ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}
