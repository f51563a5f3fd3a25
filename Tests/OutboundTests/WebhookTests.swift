import AsyncHTTPClient
import Contracts
import Foundation
import Kafka
import Testing

@testable import Outbound
@testable import oms

/// Webhook subscriptions' rules, retries and book-keeping as pure functions, and the
/// poster against a local receiver that verifies signatures.
@Suite("Webhooks")
struct WebhookTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func subscription(_ id: String, types: [String] = ["*"], status: WebhookStatus = .active, created: Date = t0) -> WebhookSubscription {
        WebhookSubscription(subscriptionId: id, url: "https://brand.example/hooks", eventTypes: types, status: status, createdAt: created, updatedAt: created)
    }

    /// A subscribable event of order `order` (a delivery, simple to build).
    static func placed(_ order: String, at time: Date = t0.addingTimeInterval(60)) -> Envelope {
        let delivered = ShipmentDelivered(
            orderId: order, shipmentId: "S-\(order)", carrier: "ups", trackingNumber: "1Z\(order)", rawStatus: "D", deliveredAt: time)
        return Envelope(id: "evt-\(order)", source: "test", time: time, event: delivered.event)
    }

    static let source = KafkaTopicPartition(topic: ShipmentDelivered.topic, partition: 2)

    @Test("subscriptions: URL and event types are checked; secrets are derived per subscription and key")
    func subscriptionRules() throws {
        #expect(throws: ContractError.self) { try WebhookEvents.validate(url: "ftp://x.example/h", eventTypes: ["*"]) }
        #expect(throws: ContractError.self) { try WebhookEvents.validate(url: "https://x.example/h", eventTypes: []) }
        #expect(throws: ContractError.self) { try WebhookEvents.validate(url: "https://x.example/h", eventTypes: ["oms.inventory.reserve"]) }
        try WebhookEvents.validate(url: "https://x.example/h", eventTypes: ["oms.order.placed", "oms.shipment.created"])
        let id = WebhookEvents.newSubscriptionID()
        #expect(id.hasPrefix("wh_") && id.count == 19 && id != WebhookEvents.newSubscriptionID())
        // An add retried with the same Idempotency-Key names the same subscription.
        let keyed = WebhookEvents.subscriptionID(idempotencyKey: "add-1")
        #expect(keyed == WebhookEvents.subscriptionID(idempotencyKey: "add-1") && keyed != WebhookEvents.subscriptionID(idempotencyKey: "add-2"))
        #expect(keyed.hasPrefix("wh_") && keyed.count == 19)
        let secret = WebhookEvents.signingSecret(subscriptionID: id, signingKey: "key-one-0123456789")
        #expect(secret.hasPrefix("whsec_") && secret.count == 70)
        #expect(secret == WebhookEvents.signingSecret(subscriptionID: id, signingKey: "key-one-0123456789"))
        #expect(secret != WebhookEvents.signingSecret(subscriptionID: id, signingKey: "key-two-0123456789"))
        #expect(WebhookEvents.topics.contains(OrderPlaced.topic) && WebhookEvents.topics.contains(ShipmentCreated.topic))
        #expect(WebhookEvents.topic(of: OrderPlaced.eventType) == OrderPlaced.topic)
        #expect(WebhookEvents.topic(of: ReserveInventory.eventType) == nil)
    }

    @Test("a subscription wants the types it names, only while active and only events not older than itself")
    func wants() {
        let event = Self.placed("o1")
        #expect(Self.subscription("wh_a").wants(event.type, at: event.time))
        #expect(Self.subscription("wh_a", types: ["oms.tracking.delivered"]).wants(event.type, at: event.time))
        #expect(!Self.subscription("wh_a", types: ["oms.shipment.created"]).wants(event.type, at: event.time))
        #expect(!Self.subscription("wh_a", status: .disabled).wants(event.type, at: event.time))
        #expect(!Self.subscription("wh_a", created: event.time.addingTimeInterval(1)).wants(event.type, at: event.time))
        #expect(!Self.subscription("wh_a").wants(ReserveInventory.eventType, at: event.time))
    }

    @Test("retries: a refusal waits at least Retry-After; past the window it fails; 4xx is final; a lost answer is retried with the same id")
    func retries() {
        let policy = RetryPolicy(baseDelay: .seconds(1), maxDelay: .seconds(3600), maxAttempts: .max, maxElapsed: .seconds(86_400))
        let attempting = OutboundDelivery(
            connector: "webhooks", commandId: "wh_a/e1", commandType: "oms.tracking.delivered.v1", orderId: "o1", idempotencyKey: "wh_a/e1",
            state: .attempting, attempts: 3, sourceOffset: 5, updatedAt: Self.t0, firstAttemptAt: Self.t0)
        let now = Self.t0.addingTimeInterval(100)
        let limited = WebhookRetries.settle(attempting, after: .retry(after: .seconds(30), reason: "HTTP 429"), now: now, policy: policy, jitter: 0)
        #expect(limited.state == .retrying && limited.nextAttemptAt == now.addingTimeInterval(30) && limited.reason == "HTTP 429")
        let backoff = WebhookRetries.settle(attempting, after: .retry(after: nil, reason: "HTTP 503"), now: now, policy: policy, jitter: 0.999)
        #expect(backoff.state == .retrying && backoff.nextAttemptAt! > now.addingTimeInterval(3.9) && backoff.nextAttemptAt! <= now.addingTimeInterval(4))
        let lost = WebhookRetries.settle(attempting, after: .unknown(reason: "timed out"), now: now, policy: policy, jitter: 0)
        #expect(lost.state == .retrying && lost.idempotencyKey == "wh_a/e1")
        let late = Self.t0.addingTimeInterval(86_400)
        let failed = WebhookRetries.settle(attempting, after: .retry(after: nil, reason: "HTTP 503"), now: late, policy: policy, jitter: 0)
        #expect(failed.state == .failed && failed.nextAttemptAt == nil && failed.reason!.contains("gave up after 3 attempts"))
        let refused = WebhookRetries.settle(attempting, after: .rejected(status: 410, reason: "gone"), now: now, policy: policy, jitter: 0)
        #expect(refused.state == .rejected && refused.status == 410)
        let delivered = WebhookRetries.settle(limited, after: .delivered(reference: nil), now: now, policy: policy, jitter: 0)
        #expect(delivered.state == .delivered && delivered.reason == nil && delivered.nextAttemptAt == nil)
        // Disabled only after a failure for good and a day without success.
        #expect(WebhookRetries.disables(failed: failed, lastSuccess: nil, now: late, disableAfter: .seconds(86_400)))
        #expect(!WebhookRetries.disables(failed: failed, lastSuccess: late.addingTimeInterval(-60), now: late, disableAfter: .seconds(86_400)))
        #expect(!WebhookRetries.disables(failed: refused, lastSuccess: nil, now: late, disableAfter: .seconds(86_400)))
    }

    @Test("book: one delivery per subscription that wants the event, none for final ledger entries, a retrying one when it is due")
    func fanOut() {
        var book = WebhookBook()
        let subscriptions = [Self.subscription("wh_a"), Self.subscription("wh_b", types: ["oms.shipment.created"]), Self.subscription("wh_c")]
        let done = OutboundDelivery(
            connector: "webhooks", commandId: "wh_c/evt-o1", commandType: "oms.tracking.delivered.v1", orderId: "o1", idempotencyKey: "wh_c/evt-o1",
            state: .delivered, attempts: 1, sourceOffset: 10, updatedAt: Self.t0)
        var waiting = done
        waiting.commandId = "wh_a/evt-o2"
        waiting.state = .retrying
        waiting.nextAttemptAt = Self.t0.addingTimeInterval(500)
        book.load([2: [done.commandId: done, waiting.commandId: waiting]], partitions: [2])
        #expect(book.lastSuccess["wh_c"] == Self.t0)
        #expect(book.read(Self.placed("o1"), from: Self.source, offset: 10, subscriptions: subscriptions, now: Self.t0) == 1)
        #expect(book.read(Self.placed("o2"), from: Self.source, offset: 11, subscriptions: subscriptions, now: Self.t0) == 2)
        // Read again (a re-read after a rebalance): nothing new.
        #expect(book.read(Self.placed("o1"), from: Self.source, offset: 10, subscriptions: subscriptions, now: Self.t0) == 0)
        #expect(book.jobs.keys.sorted() == ["wh_a/evt-o1", "wh_a/evt-o2", "wh_c/evt-o2"])
        let due = book.due(now: Self.t0, limit: 8).map(\.deliveryID).sorted()
        #expect(due == ["wh_a/evt-o1", "wh_c/evt-o2"])
        #expect(book.due(now: Self.t0.addingTimeInterval(500), limit: 8).map(\.deliveryID) == ["wh_a/evt-o2"])
    }

    @Test("book: the commit offset stays at the oldest event with an unfinished delivery")
    func commitOffsets() {
        var book = WebhookBook()
        let subscriptions = [Self.subscription("wh_a")]
        book.pass(Self.source, offset: 9)
        #expect(book.offsetsToCommit().map(\.offset) == [10])
        book.read(Self.placed("o1"), from: Self.source, offset: 10, subscriptions: subscriptions, now: Self.t0)
        book.read(Self.placed("o2"), from: Self.source, offset: 11, subscriptions: subscriptions, now: Self.t0)
        #expect(book.offsetsToCommit().map(\.offset) == [])  // still 10: nothing moved
        let jobs = book.due(now: Self.t0, limit: 8).sorted { $0.offset < $1.offset }
        let second = Self.entry(for: jobs[1], state: .delivered)
        book.settle(jobs[1], entry: second, pause: nil, now: Self.t0)
        #expect(book.offsetsToCommit().isEmpty)
        var retrying = Self.entry(for: jobs[0], state: .retrying)
        retrying.nextAttemptAt = Self.t0.addingTimeInterval(60)
        book.settle(jobs[0], entry: retrying, pause: .seconds(60), now: Self.t0)
        #expect(book.offsetsToCommit().isEmpty)
        #expect(book.due(now: Self.t0.addingTimeInterval(30), limit: 8).isEmpty)
        let again = book.due(now: Self.t0.addingTimeInterval(61), limit: 8)
        #expect(again.map(\.deliveryID) == ["wh_a/evt-o1"])
        book.settle(again[0], entry: Self.entry(for: again[0], state: .delivered), pause: nil, now: Self.t0)
        #expect(book.offsetsToCommit().map(\.offset) == [12])
        #expect(book.pending == 0)
    }

    @Test("book: a failing subscription gets one probe at a time after its pause; the others go on")
    func breaker() {
        var book = WebhookBook()
        let subscriptions = [Self.subscription("wh_a"), Self.subscription("wh_b")]
        for index in 0..<4 {
            book.read(Self.placed("o\(index)"), from: Self.source, offset: Int64(index), subscriptions: subscriptions, now: Self.t0)
        }
        let first = book.due(now: Self.t0, limit: 2)
        #expect(first.count == 2)
        for job in first {
            var entry = Self.entry(for: job, state: .retrying)
            entry.nextAttemptAt = Self.t0.addingTimeInterval(1)
            book.settle(job, entry: entry, pause: job.subscriptionID == "wh_a" ? .seconds(10) : nil, now: Self.t0)
        }
        // The oldest event's two deliveries went first, and both failed.
        #expect(Set(first.map(\.subscriptionID)) == ["wh_a", "wh_b"])
        #expect(book.failures(of: "wh_a") == 1 && book.failures(of: "wh_b") == 1)
        // wh_a rests 10 s; wh_b, without a pause, gets one probe, not its three waiting deliveries.
        let next = book.due(now: Self.t0.addingTimeInterval(2), limit: 8)
        #expect(next.map(\.subscriptionID) == ["wh_b"])
        // After its pause wh_a gets one probe; wh_b's probe is still in flight.
        let later = book.due(now: Self.t0.addingTimeInterval(11), limit: 8)
        #expect(later.map(\.subscriptionID) == ["wh_a"])
        // A success closes the breaker: the rest of wh_b goes at once.
        book.settle(next[0], entry: Self.entry(for: next[0], state: .delivered), pause: nil, now: Self.t0)
        #expect(book.due(now: Self.t0.addingTimeInterval(12), limit: 8).filter { $0.subscriptionID == "wh_b" }.count == 3)
    }

    @Test("book: a subscription that turns up after events it wants were read makes the connector read them again, and only it gets deliveries")
    func lateSubscription() {
        var book = WebhookBook()
        let early = Self.subscription("wh_a")
        #expect(book.rewinds(for: [early]).isEmpty, "the first call learns the subscriptions")
        for index in 0..<20 {
            // Two events a second, from t0 + 60 s.
            let event = Self.placed("o\(index)", at: Self.t0.addingTimeInterval(60 + Double(index) / 2))
            book.read(event, from: Self.source, offset: Int64(100 + index), subscriptions: [early], now: Self.t0.addingTimeInterval(70))
        }
        #expect(book.rewinds(for: [early]).isEmpty)
        // Created at t0 + 68 s: events from t0 + 63 s (the skew) on are read again, from offset 106.
        let late = Self.subscription("wh_b", created: Self.t0.addingTimeInterval(68))
        #expect(book.rewinds(for: [early, late]).map(\.offset) == [106])
        #expect(book.rewinds(for: [early, late]).isEmpty, "once only")
        var added = 0
        for index in 6..<20 {
            let event = Self.placed("o\(index)", at: Self.t0.addingTimeInterval(60 + Double(index) / 2))
            added += book.read(event, from: Self.source, offset: Int64(100 + index), subscriptions: [early, late], now: Self.t0.addingTimeInterval(71))
        }
        // wh_a's deliveries are already waiting; wh_b gets the events not older than itself.
        #expect(added == 4)
        #expect(book.jobs.keys.filter { $0.hasPrefix("wh_b/") }.count == 4)
        // A disabled newcomer makes no one read again.
        #expect(book.rewinds(for: [early, late, Self.subscription("wh_c", status: .disabled, created: Self.t0)]).isEmpty)
    }

    static func entry(for job: WebhookJob, state: DeliveryState) -> OutboundDelivery {
        var entry = WebhookConnector.attempting(job, now: t0)
        entry.state = state
        return entry
    }

    @Test("poster: a CloudEvents body signed with the subscription's secret, the delivery id as webhook-id; a refused signature is final, a 503 retried")
    func poster() async throws {
        try await withChannels { channels, base in
            let key = "signing-key-0123456789"
            var subscription = Self.subscription("wh_0011223344556677")
            subscription.url = "\(base)/hooks/crm"
            channels.setSecret(WebhookEvents.signingSecret(subscriptionID: subscription.subscriptionId, signingKey: key), forHook: "crm")
            let poster = WebhookPoster(http: HTTPExchange(client: .shared, timeout: .seconds(5)), signingKey: key)
            let event = Self.placed("o9")
            let first = await poster.post(event, to: subscription, attempt: 1) {}
            let second = await poster.post(event, to: subscription, attempt: 2) {}
            #expect(first == .delivered(reference: nil) && second == .delivered(reference: nil))
            #expect(channels.ledger.webhookCalls == ["wh_0011223344556677/evt-o9": 2])
            #expect(channels.ledger.webhookEffects == ["wh_0011223344556677/evt-o9": 1])
            #expect(channels.ledger.badSignatures == 0)
            // Another key signs differently: the receiver refuses it, for good.
            let wrong = WebhookPoster(http: HTTPExchange(client: .shared), signingKey: "another-key-0123456789")
            #expect(await wrong.post(event, to: subscription, attempt: 1) {} == .rejected(status: 401, reason: "signature does not verify"))
            channels.setFaults { $0.downHooks = ["crm"] }
            guard case .retry = await poster.post(Self.placed("o10"), to: subscription, attempt: 1, pointOfNoReturn: {}) else {
                Issue.record("a 503 is not retried")
                return
            }
        }
    }
}
