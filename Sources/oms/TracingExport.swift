import Fleet
import Foundation
import Logging
import ServiceLifecycle
#if OTLP
import ArgumentParser
import OTel
#endif

/// Turns on the export of tracing spans for the commands that run services (workers,
/// fleet, gateway, connectors). Off unless `otel.exporter.otlp.endpoint` is set, and
/// compiled in only with the package trait `OTLP`, whose swift-otel dependency would
/// otherwise cost every build several minutes (docs/OPERATIONS.md, "Tracing").
enum TracingExport {
    /// Bootstraps the OTLP/HTTP tracer (once per process) and returns the service that
    /// batches and sends its spans, to run in the command's service group; nil when
    /// export is off, or asked for but not built in (which is logged).
    static func service(_ configuration: WorkerConfiguration, defaultServiceName: String, logger: Logger) throws -> (any Service)? {
        guard let endpoint = configuration.otlpEndpoint else { return nil }
        #if OTLP
        var settings = OTel.Configuration.default
        settings.serviceName = configuration.serviceName ?? defaultServiceName
        // Logs go to standard error and metrics to /metrics as before: spans only.
        settings.logs.enabled = false
        settings.metrics.enabled = false
        // The OTLPHTTP trait of swift-otel is the one built; OTEL_EXPORTER_OTLP_PROTOCOL
        // could still ask for gRPC, which bootstrap then refuses.
        settings.traces.otlpExporter.protocol = .httpProtobuf
        // swift-otel reads OpenTelemetry's variables itself (the endpoint as a base URL,
        // /v1/traces appended); the key may come from the config file instead.
        var environment = ProcessInfo.processInfo.environment
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        // swift-otel stops the process with a fatal error when asked for an exporter it
        // was built without; a usage error says what to change instead.
        for key in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
            if let value = environment[key], value != "http/protobuf" {
                throw ValidationError("\(key)=\(value): this oms exports with OTLP/HTTP only (http/protobuf); unset it")
            }
        }
        let service = try OTel.bootstrap(configuration: settings, environment: environment)
        logger.info("exporting tracing spans with OTLP/HTTP", metadata: ["endpoint": "\(endpoint)", "service": "\(settings.serviceName)"])
        return service
        #else
        logger.warning(
            "otel.exporter.otlp.endpoint is set, but this oms was built without the OTLP package trait (swift build --traits OTLP): no spans are exported",
            metadata: ["endpoint": "\(endpoint)"])
        return nil
        #endif
    }
}
