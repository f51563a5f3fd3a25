import AsyncHTTPClient
import Contracts
import Foundation
import OrderFleetTesting
import Synchronization
import Testing

@testable import Outbound
@testable import oms

/// The channel endpoints against local servers that speak Shopify's, SP-API's and
/// OrderFleet's webhook formats (``LocalChannels``), through the connector runtime's
/// ``CommandProcessor`` with an in-memory ledger.
@Suite("Channel endpoints")
struct ChannelEndpointTests {
    @Test("Shopify: a shipment becomes one fulfillment with its tracking; the same command again calls nothing")
    func shopifyFulfillment() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("5001", lines: ["11": 2, "12": 1])
            let processor = Harness.processor(Harness.shopify(base, channels: channels))
            let command = Harness.ship(order: "5001", lines: [("11", 2)], tracking: "1Z001")
            let first = try await processor.settle(command, offset: 7)
            #expect(first.entry.state == .delivered)
            #expect(first.entry.reference != nil)
            let again = try await processor.settle(command, offset: 7)
            #expect(again == .alreadySettled(first.entry))
            #expect(channels.ledger.fulfillments == ["1Z001": 1])
        }
    }

    @Test("Shopify: an answer lost after the fulfillment is reconciled by reading the order's fulfillments, not by a second POST")
    func shopifyLostAnswer() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("5002", lines: ["21": 1])
            channels.setFaults { $0.loseAnswerEvery = 1; $0.holdAnswer = .seconds(2) }
            let processor = Harness.processor(Harness.shopify(base, channels: channels, timeout: .milliseconds(400)))
            let settled = try await processor.settle(Harness.ship(order: "5002", lines: [("21", 1)], tracking: "1Z002"), offset: 1)
            #expect(settled.entry.state == .delivered)
            #expect(settled.entry.reason == "reconciled: the endpoint has it")
            #expect(channels.ledger.lostAnswers == 1)
            #expect(channels.ledger.fulfillments == ["1Z002": 1])
        }
    }

    @Test("Shopify: a lost answer followed by an outage: the asks wait at the open breaker and reconcile once it is back, not give up")
    func lostAnswerThenOutage() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("5004", lines: ["21": 1])
            channels.setFaults { $0.loseAnswerEvery = 1; $0.holdAnswer = .seconds(2) }
            // The endpoint goes down right after it applied the fulfillment, for 2 s.
            let outage = Task {
                while channels.ledger.fulfillments.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
                channels.setFaults { $0.down = true }
                try await Task.sleep(for: .seconds(2))
                channels.setFaults { $0.down = false }
            }
            // Six asks 20 ms apart would all meet the outage; behind a breaker that opens
            // after two failures for a second, they reach past it.
            let processor = CommandProcessor(
                connector: "channels", endpoint: Harness.shopify(base, channels: channels, timeout: .milliseconds(400)),
                gate: EndpointGate(limit: 2, breaker: CircuitBreaker(threshold: 2, openFor: .seconds(1))),
                policy: RetryPolicy(baseDelay: .milliseconds(20), maxDelay: .milliseconds(20), maxAttempts: 6, maxElapsed: .seconds(60)),
                ledger: MemoryLedger())
            let settled = try await processor.settle(Harness.ship(order: "5004", lines: [("21", 1)], tracking: "1Z004"), offset: 1)
            try await outage.value
            #expect(settled.entry.state == .delivered, "\(settled.entry.reason ?? "")")
            #expect(settled.entry.reason == "reconciled: the endpoint has it")
            #expect(channels.ledger.refused >= 1, "an ask met the outage")
            #expect(channels.ledger.fulfillments == ["1Z004": 1])
        }
    }

    @Test("Shopify: 429 with Retry-After and a full call bucket slows the sync down and loses nothing")
    func shopifyRateLimited() async throws {
        try await withChannels { channels, base in
            channels.setFaults { $0.rateLimitEvery = 3 }
            let processor = Harness.processor(Harness.shopify(base, channels: channels))
            let started = ContinuousClock.now
            for index in 0..<6 {
                channels.addShopifyOrder("60\(index)", lines: ["1": 1])
                let settled = try await processor.settle(Harness.ship(order: "60\(index)", lines: [("1", 1)], tracking: "T60\(index)"), offset: Int64(index))
                #expect(settled.entry.state == .delivered)
            }
            #expect(channels.ledger.refused >= 3)
            #expect(channels.ledger.fulfillments.count == 6 && channels.ledger.fulfillments.values.allSatisfy { $0 == 1 })
            // Each refusal asked for a second's pause (Retry-After: 1.0), and got it.
            #expect(ContinuousClock.now - started >= .seconds(Int64(channels.ledger.refused)))
        }
    }

    @Test("Shopify: an endpoint that is down recovers with nothing lost")
    func shopifyDownThenUp() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("7001", lines: ["1": 1])
            channels.setFaults { $0.down = true }
            let processor = Harness.processor(Harness.shopify(base, channels: channels), maxAttempts: 1_000)
            let settling = Task { try await processor.settle(Harness.ship(order: "7001", lines: [("1", 1)], tracking: "T7001"), offset: 0) }
            try await Task.sleep(for: .seconds(3))
            // The circuit breaker (3 failures, open 500 ms) spaces the calls out.
            let refused = channels.ledger.refused
            #expect(refused >= 3 && refused <= 20)
            channels.setFaults { $0.down = false }
            let settled = try await settling.value
            #expect(settled.entry.state == .delivered)
            #expect(channels.ledger.fulfillments == ["T7001": 1])
        }
    }

    @Test("Shopify: refusals carry Shopify's own message (unknown order, cancel after a fulfillment, bad token); a cancel already done is done")
    func shopifyRejections() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("8001", lines: ["1": 1])
            channels.addShopifyOrder("8002", lines: ["1": 1])
            let processor = Harness.processor(Harness.shopify(base, channels: channels))
            let unknown = try await processor.settle(Harness.ship(order: "9999", lines: [("1", 1)], tracking: "T9"), offset: 0)
            #expect(unknown.entry.state == .rejected)
            #expect(unknown.entry.status == 404)
            #expect(unknown.entry.reason == "Not Found")

            let cancel = try await processor.settle(Harness.cancel(order: "8001", id: "c1"), offset: 1)
            #expect(cancel.entry.state == .delivered)
            // A second cancel (a predecessor's, unseen) finds the order cancelled: done, once.
            let twice = try await processor.settle(Harness.cancel(order: "8001", id: "c2"), offset: 2)
            #expect(twice.entry.state == .delivered)
            #expect(channels.ledger.cancellations == ["8001": 1])
            _ = try await processor.settle(Harness.ship(order: "8002", lines: [("1", 1)], tracking: "T82"), offset: 3)
            let late = try await processor.settle(Harness.cancel(order: "8002", id: "c3"), offset: 4)
            #expect(late.entry.state == .rejected)
            #expect(late.entry.status == 422)
            #expect(late.entry.reason == "Cannot cancel an order that has fulfillments")

            let wrongToken = ShopifyChannel(shop: "local", baseURL: base, accessToken: "wrong", http: HTTPExchange(client: .shared))
            let denied = try await Harness.processor(wrongToken).settle(Harness.ship(order: "8001", lines: [("1", 1)], tracking: "T8"), offset: 3)
            #expect(denied.entry.state == .rejected)
            #expect(denied.entry.reason?.contains("Invalid API key or access token") == true)
        }
    }

    @Test("Shopify: a shipment fulfilled by a call no ledger entry tells of is found by its tracking number, not fulfilled again")
    func shopifyUnseenPredecessor() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("8201", lines: ["1": 1])
            let command = Harness.ship(order: "8201", lines: [("1", 1)], tracking: "T8201")
            _ = try await Harness.processor(Harness.shopify(base, channels: channels)).settle(command, offset: 0)
            // Another process with an empty ledger (as after a rebalance that overtook a
            // member still at work) gets the same command.
            let again = try await Harness.processor(Harness.shopify(base, channels: channels)).settle(command, offset: 0)
            #expect(again.entry.state == .delivered)
            #expect(channels.ledger.fulfillments == ["T8201": 1])
            let refund = Harness.refund(order: "8201", minorUnits: 500)
            _ = try await Harness.processor(Harness.shopify(base, channels: channels)).settle(refund, offset: 1)
            let refundAgain = try await Harness.processor(Harness.shopify(base, channels: channels)).settle(refund, offset: 1)
            #expect(refundAgain.entry.state == .delivered)
            #expect(channels.ledger.refunds.values.reduce(0, +) == 1)
        }
    }

    @Test("Shopify: a refund notes its idempotency key; a lost answer is found by it")
    func shopifyRefund() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("8101", lines: ["1": 1])
            channels.setFaults { $0.loseAnswerEvery = 1; $0.holdAnswer = .seconds(2) }
            let processor = Harness.processor(Harness.shopify(base, channels: channels, timeout: .milliseconds(400)))
            let command = Harness.refund(order: "8101", minorUnits: 1_250)
            let settled = try await processor.settle(command, offset: 0)
            #expect(settled.entry.state == .delivered)
            #expect(channels.ledger.refunds == [processor.idempotencyKey(for: command): 1])
        }
    }

    @Test("SP-API: a shipment confirmation; a lost answer reconciled from getOrderItems; cancels are skipped, saying why")
    func amazon() async throws {
        try await withChannels { channels, base in
            channels.setFaults { $0.loseAnswerEvery = 2; $0.holdAnswer = .seconds(2) }
            let endpoint = AmazonChannel(baseURL: base, marketplaceID: "A1PA6795UKMFR9", accessToken: channels.token, http: HTTPExchange(client: .shared, timeout: .milliseconds(400)))
            let processor = Harness.processor(endpoint)
            let first = try await processor.settle(Harness.ship(order: "302-1", lines: [("i1", 1)], tracking: "A1", channel: "amazon"), offset: 0)
            let second = try await processor.settle(Harness.ship(order: "302-2", lines: [("i2", 2)], tracking: "A2", channel: "amazon"), offset: 1)
            #expect(first.entry.state == .delivered && second.entry.state == .delivered)
            #expect(channels.ledger.lostAnswers == 1)
            #expect(channels.ledger.confirmations.values.allSatisfy { $0 == 1 } && channels.ledger.confirmations.count == 2)
            let cancel = try await processor.settle(Harness.cancel(order: "302-1", id: "c", channel: "amazon"), offset: 2)
            #expect(cancel.entry.state == .skipped)
            #expect(cancel.entry.reason?.contains("feeds") == true)
        }
    }

    @Test("webhook: signed, keyed; a lost answer is sent again under the same key and applied once")
    func webhook() async throws {
        try await withChannels { channels, base in
            channels.setFaults { $0.loseAnswerEvery = 1; $0.holdAnswer = .seconds(1) }
            let endpoint = WebhookChannel(url: "\(base)/hooks/brand", secret: channels.secret, http: HTTPExchange(client: .shared, timeout: .milliseconds(300)))
            let processor = Harness.processor(endpoint)
            let command = Harness.ship(order: "w1", lines: [("1", 1)], tracking: "W1", channel: "brand")
            // Every answer is lost: the runtime keeps re-sending the same key until the
            // ceiling, and the receiver applies it once.
            let settled = try await processor.settle(command, offset: 0)
            #expect(settled.entry.state == .failed)
            let key = processor.idempotencyKey(for: command)
            #expect(channels.ledger.webhookCalls[key, default: 0] >= 2)
            #expect(channels.ledger.webhookEffects == [key: 1])
            #expect(channels.ledger.badSignatures == 0)
            channels.setFaults { $0.loseAnswerEvery = 0 }
            let redriven = try await processor.settle(command, offset: 9)
            #expect(redriven.entry.state == .delivered)
            #expect(channels.ledger.webhookEffects == [key: 1])
        }
    }

    @Test("the router skips channels without a sync and gates each channel apart")
    func router() async throws {
        let router = ChannelRouter(channels: ["shopify": WebhookChannel(url: "http://127.0.0.1:1/", secret: "s", http: HTTPExchange(client: .shared))])
        let pos = Harness.ship(order: "p1", lines: [("1", 1)], tracking: "P1", channel: "pos")
        let skipped = try await Harness.processor(router).settle(pos, offset: 0)
        #expect(skipped.entry.state == .skipped)
        #expect(skipped.entry.reason == "channel pos has no sync configured")
        #expect(router.gateKey(for: pos) == "channels/pos")
    }

    @Test("the signature scheme: verifies, and refuses a changed body, another secret and an old timestamp")
    func signature() {
        let body = Data(#"{"a":1}"#.utf8)
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        let header = OutboundSignature.sign(body: body, timestamp: 1_780_000_000, secret: "k")
        #expect(OutboundSignature.verify(header, body: body, secret: "k", now: now))
        #expect(!OutboundSignature.verify(header, body: Data(#"{"a":2}"#.utf8), secret: "k", now: now))
        #expect(!OutboundSignature.verify(header, body: body, secret: "other", now: now))
        #expect(!OutboundSignature.verify(header, body: body, secret: "k", now: now.addingTimeInterval(301)))
        #expect(!OutboundSignature.verify("t=1780000000,v1=zz", body: body, secret: "k", now: now))
    }
}

/// Builders shared by the endpoint tests.
enum Harness {
    static func processor(_ endpoint: any OutboundEndpoint, maxAttempts: Int = 4) -> CommandProcessor {
        CommandProcessor(
            connector: "channels", endpoint: endpoint, gate: EndpointGate(limit: 2, breaker: CircuitBreaker(threshold: 3, openFor: .milliseconds(500))),
            policy: RetryPolicy(baseDelay: .milliseconds(50), maxDelay: .milliseconds(200), maxAttempts: maxAttempts, maxElapsed: .seconds(60)),
            ledger: MemoryLedger())
    }

    static func shopify(_ base: String, channels: LocalChannels, timeout: Duration = .seconds(5)) -> ShopifyChannel {
        ShopifyChannel(shop: "local.myshopify.com", baseURL: base, accessToken: channels.token, http: HTTPExchange(client: .shared, timeout: timeout))
    }

    static func ship(order: String, lines: [(String, Int)], tracking: String, channel: String = "shopify") -> Envelope {
        let fact = ChannelFact(
            id: "ship/\(tracking)", action: .ship, shipmentId: "S-\(tracking)", carrier: "ups", trackingNumber: tracking,
            lines: lines.map { ShipmentLine(lineId: $0.0, sku: "SKU-\($0.0)", quantity: $0.1) }, at: Date(timeIntervalSince1970: 1_780_000_000))
        return envelope(ChannelUpdate(orderId: "oms-\(order)", channel: channel, externalOrderId: order, fact: fact), id: "cmd-ship-\(tracking)")
    }

    static func cancel(order: String, id: String, channel: String = "shopify") -> Envelope {
        let fact = ChannelFact(id: "cancel", action: .cancel, lines: [], reason: "customer_request", at: Date(timeIntervalSince1970: 1_780_000_000))
        return envelope(ChannelUpdate(orderId: "oms-\(order)", channel: channel, externalOrderId: order, fact: fact), id: "cmd-cancel-\(order)-\(id)")
    }

    static func refund(order: String, minorUnits: Int64) -> Envelope {
        let fact = ChannelFact(
            id: "refund/r1", action: .refund, lines: [], amount: Money(minorUnits: minorUnits, currency: .eur), reason: "return",
            at: Date(timeIntervalSince1970: 1_780_000_000))
        return envelope(ChannelUpdate(orderId: "oms-\(order)", channel: "shopify", externalOrderId: order, fact: fact), id: "cmd-refund-\(order)")
    }

    static func envelope(_ update: ChannelUpdate, id: String) -> Envelope {
        Envelope(id: id, source: "test", time: Date(timeIntervalSince1970: 1_780_000_000), event: update.event)
    }
}

/// A ledger in memory: what the Kafka ledger keeps, without Kafka.
final class MemoryLedger: DeliveryLedger, Sendable {
    private let entries = Mutex<[String: OutboundDelivery]>([:])
    func entry(for commandID: String) async -> OutboundDelivery? { entries.withLock { $0[commandID] } }
    func record(_ entry: OutboundDelivery) async throws { entries.withLock { $0[entry.commandId] = entry } }
}

/// Runs `body` with local channel receivers listening on a free port.
func withChannels(_ body: (LocalChannels, String) async throws -> Void) async throws {
    let channels = LocalChannels()
    try await withLocalServer({ onPort in channels.service { onPort($0) } }) { port in try await body(channels, "http://127.0.0.1:\(port)") }
}
