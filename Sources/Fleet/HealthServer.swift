import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle

/// The HTTP endpoints every worker and the gateway serve: `/metrics` (Prometheus text
/// format), `/healthz` (200 while every stage runs, restores or retries) and `/readyz`
/// (200 once every stage has restored its state and processes, and every extra check
/// says ready). One implementation for both, so they answer alike.
public enum HealthServer {
    /// Something beside the stages with its own say in readiness (the gateway: its
    /// tables read and Kafka reachable).
    public struct Check: Sendable {
        /// The line's first word on `/healthz` and `/readyz`.
        public var name: String
        /// Whether it is ready.
        public var isReady: @Sendable () -> Bool
        /// What it reports after its name, e.g. `tables=loaded kafka=reachable`.
        public var detail: @Sendable () -> String

        /// A check called `name`.
        public init(name: String, isReady: @escaping @Sendable () -> Bool, detail: @escaping @Sendable () -> String) {
            self.name = name
            self.isReady = isReady
            self.detail = detail
        }
    }

    /// The server as a service of the worker's service group.
    ///
    /// - Parameter onListening: called with the bound port (useful with port 0).
    public static func make(
        host: String, port: Int, registry: PrometheusCollectorRegistry, statuses: [RunnerStatus], logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some Service {
        let router = Router()
        addRoutes(to: router, registry: registry, statuses: statuses)
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "oms"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// Adds `/metrics`, `/healthz` and `/readyz` to `router`.
    public static func addRoutes<Context: RequestContext>(
        to router: some RouterMethods<Context>, registry: PrometheusCollectorRegistry, statuses: [RunnerStatus], checks: [Check] = []
    ) {
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
        router.get("healthz") { _, _ in
            report(statuses, checks, ok: statuses.allSatisfy(\.isHealthy))
        }
        router.get("readyz") { _, _ in
            report(statuses, checks, ok: statuses.allSatisfy(\.isReady) && checks.allSatisfy { $0.isReady() })
        }
    }

    /// One line per check (`name detail`), then one per stage (`stage phase partitions=N`,
    /// and `kafka=unreachable` while it is).
    private static func report(_ statuses: [RunnerStatus], _ checks: [Check], ok: Bool) -> Response {
        let lines = checks.map { "\($0.name) \($0.detail())" } + statuses.map {
            "\($0.stage) \($0.phase.rawValue) partitions=\($0.partitions)" + ($0.kafkaReachable ? "" : " kafka=unreachable")
        }
        return Response(
            status: ok ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: lines.joined(separator: "\n") + "\n"))
        )
    }
}
