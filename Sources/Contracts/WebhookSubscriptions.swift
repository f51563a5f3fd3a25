import Digests
import Foundation

/// The events a brand's own systems can subscribe to with a webhook, and the rules a
/// subscription must follow; shared by `oms webhooks`, the gateway's operator endpoints
/// and the webhooks connector.
public enum WebhookEvents {
    /// The event types that can be subscribed to (`oms.order.placed`, …): the facts of an
    /// order's life a brand system acts on, not the fleet's internal commands and state.
    public static var subscribable: [EventType] { events.map { $0.eventType } }

    /// The topics that hold the subscribable events, sorted.
    public static var topics: [String] { Set(events.map { $0.topic }).sorted() }

    private static let events: [any ContractEvent.Type] = [
        OrderPlaced.self, OrderRejected.self, OrderAllocated.self, OrderBackordered.self, OrderCancelled.self,
        ShipmentCreated.self, TrackingUpdated.self, ShipmentDelivered.self, ShipmentDelayed.self,
        ReturnAuthorized.self, ReturnRejected.self, ReturnReceived.self, RefundPayment.self,
        PaymentCaptured.self, PaymentCaptureFailed.self, PaymentRefunded.self, PaymentRefundFailed.self, InvoiceIssued.self,
    ]

    /// The subscribable type names.
    public static var names: [String] { subscribable.map(\.name) }

    /// Checks a subscription's URL and event types; the error says what is wrong.
    public static func validate(url: String, eventTypes: [String]) throws(ContractError) {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = parsed.host, !host.isEmpty
        else {
            throw .invalidField(path: "url", reason: "'\(url)' is not an http or https URL")
        }
        guard !eventTypes.isEmpty else {
            throw .invalidField(path: "eventTypes", reason: "name at least one event type, or * for all: \(names.joined(separator: ", "))")
        }
        for type in eventTypes where type != "*" && !names.contains(type) {
            throw .invalidField(path: "eventTypes", reason: "'\(type)' cannot be subscribed to; types: \(names.joined(separator: ", ")), or *")
        }
    }

    /// A new subscription id: `wh_` and 16 random hex digits.
    public static func newSubscriptionID() -> String {
        "wh_" + Hex.encode((0..<8).map { _ in UInt8.random(in: 0...255) })
    }

    /// The id of a subscription added with an `Idempotency-Key`: `wh_` and the first 16 hex
    /// digits of the key's SHA-256, so a retried add writes the same subscription again,
    /// whichever gateway instance takes it.
    public static func subscriptionID(idempotencyKey: String) -> String {
        "wh_" + Hex.encode(Digests.sha256(Array(idempotencyKey.utf8)).prefix(8))
    }

    /// The subscription's signing secret, `whsec_` and 64 hex digits: HMAC-SHA256 of its id
    /// under the fleet's signing key (`webhooks.signing.key`). Derived, so no secret is
    /// ever written to Kafka; whoever holds the key can show it again.
    public static func signingSecret(subscriptionID: String, signingKey: String) -> String {
        "whsec_" + Hex.encode(Digests.hmacSHA256(key: Array(signingKey.utf8), Array(subscriptionID.utf8)))
    }
}

extension WebhookSubscription {
    /// Whether an event of `type` written at `time` is delivered to it: it is active, the
    /// event is not older than the subscription, and it names the type (or `*`).
    public func wants(_ type: EventType, at time: Date) -> Bool {
        status == .active && time >= createdAt && (eventTypes.contains("*") || eventTypes.contains(type.name))
            && WebhookEvents.subscribable.contains(type)
    }

    /// The id of its delivery of the event `eventID`: the ledger's command id and the
    /// `webhook-id` every attempt carries.
    public func deliveryID(of eventID: String) -> String { "\(subscriptionId)/\(eventID)" }
}
