import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle

/// The HTTP endpoints every worker serves: `/metrics` (Prometheus text format),
/// `/healthz` (200 while every stage runs or restores) and `/readyz` (200 once every
/// stage has restored its state and processes).
public enum HealthServer {
    /// The server as a service of the worker's service group.
    ///
    /// - Parameter onListening: called with the bound port (useful with port 0).
    public static func make(
        host: String, port: Int, registry: PrometheusCollectorRegistry, statuses: [RunnerStatus], logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some Service {
        let router = Router()
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
        router.get("healthz") { _, _ in
            report(statuses, ok: statuses.allSatisfy(\.isHealthy))
        }
        router.get("readyz") { _, _ in
            report(statuses, ok: statuses.allSatisfy(\.isReady))
        }
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "oms"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// One line per stage: `stage phase partitions=N`.
    private static func report(_ statuses: [RunnerStatus], ok: Bool) -> Response {
        let body = statuses.map { "\($0.stage) \($0.phase.rawValue) partitions=\($0.partitions)" }.joined(separator: "\n") + "\n"
        return Response(
            status: ok ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body))
        )
    }
}
