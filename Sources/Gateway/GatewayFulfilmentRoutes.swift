import Contracts
import Foundation
import Hummingbird
import Workers

extension Gateway {
    /// Locations' answers to fulfilment requests (a WMS, a 3PL, a store app, a vendor),
    /// signed with a per-location secret.
    func fulfilmentRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        let secrets = configuration
        add(GatewayRoutes.fulfilmentUpdates, to: routes, signature: SignatureCheck(kind: .omsHex, header: .omsSignature) { call throws(GatewayError) in
            let location = call.parameter("location")
            guard let secret = secrets.locationSecrets[location] else {
                throw GatewayError(status: 404, code: "not_found", message: "location '\(location)' is not configured (gateway.location.secrets)")
            }
            return secret
        }, dedupe: .idempotencyKey) { call throws(GatewayError) in
            let update = try Self.fulfilmentUpdate(call.decode(FulfilmentAnswer.self), location: call.parameter("location"))
            // The location's own update id names the event, so a resent answer is one answer.
            return try await self.accept(update.event, id: update.derivedEventId, orderId: update.orderId) { $0.location = update.location }
        }
        return routes
    }

    /// The body of `POST /v1/locations/{location}/fulfilment`.
    struct FulfilmentAnswer: Decodable {
        var updateId: String
        var orderId: String
        var kind: FulfilmentUpdateKind
        var requestId: String?
        var lines: [LineQuantity]?
        var parcels: [PackedParcel]?
        var carrier: String?
        var service: String?
        var trackingNumber: String?
        var reason: Reason?
        var occurredAt: Date?
    }

    /// The answer as an event, or 400 naming what a kind of answer lacks.
    static func fulfilmentUpdate(_ answer: FulfilmentAnswer, location: String) throws(GatewayError) -> FulfilmentUpdate {
        let update = FulfilmentUpdate(
            updateId: answer.updateId, orderId: answer.orderId, location: location, kind: answer.kind, requestId: answer.requestId, lines: answer.lines,
            parcels: answer.parcels, carrier: answer.carrier, service: answer.service, trackingNumber: answer.trackingNumber, reason: answer.reason,
            occurredAt: answer.occurredAt ?? Date())
        if let problem = update.problem { throw .invalidBody(problem) }
        return update
    }
}
