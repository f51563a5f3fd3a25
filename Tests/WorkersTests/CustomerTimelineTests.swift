import Contracts
import Foundation
import Testing

@testable import Workers

private typealias F = PipelineFixtures

@Suite("CRM feed: customer timelines")
struct CustomerTimelineTests {
    static func view(
        _ orderId: String, status: OrderStatus = .delivered, total: Int64 = 5_000, currency: CurrencyCode = .usd, email: String? = "Ann@Example.com ",
        placedAt: Date = F.now, updatedAt: Date = F.now, refunds: [Int64] = [], returns: [String] = [], sent: [String] = ["confirmed"]
    ) -> OrderView {
        let money = { (minor: Int64) in Money(minorUnits: minor, currency: currency) }
        return OrderView(
            orderId: orderId, channel: "web", externalOrderId: "W-\(orderId)", status: status, currency: currency,
            totals: OrderTotals(subtotal: money(total), discount: money(0), shipping: money(0), tax: money(0), total: money(total), taxIncluded: false),
            lines: [], payments: refunds.map { PaymentEntry(kind: .refund, amount: money($0), at: updatedAt) }, shipments: [], tracking: [],
            returns: returns.map { ReturnSummary(returnId: $0, status: .received, lines: []) },
            history: [HistoryEntry(eventId: "e-\(orderId)", eventType: "oms.order.placed.v1", at: placedAt, status: .placed)], lineProgress: [],
            customerEmail: email, statusSince: placedAt, notificationsSent: sent, updatedAt: updatedAt)
    }

    static func fact(_ view: OrderView) throws -> CustomerOrderFact {
        try #require(CustomerTimelines.fact(from: view))
    }

    @Test("a customer is known by the normalized address, under an id that does not contain it; no address, no fact")
    func identity() throws {
        let fact = try Self.fact(Self.view("o-1"))
        #expect(fact.email == "ann@example.com")
        #expect(fact.customerId == CustomerTimelines.customerId(email: "ANN@example.com"))
        #expect(!fact.customerId.contains("ann"))
        #expect(fact.customerId != CustomerTimelines.customerId(email: "bob@example.com"))
        #expect(CustomerTimelines.fact(from: Self.view("o-2", email: nil)) == nil)
        #expect(CustomerTimelines.fact(from: Self.view("o-3", email: "  ")) == nil)
    }

    @Test("orders, refunds, returns and messages add up; lifetime value per currency leaves out cancelled, rejected and declined orders")
    func lifetimeValue() throws {
        var timeline: CustomerTimeline?
        let views = [
            Self.view("o-1", total: 5_000, placedAt: F.now, refunds: [1_200], returns: ["r-1"], sent: ["confirmed", "shipped/s-1", "refunded/r-1"]),
            Self.view("o-2", total: 3_000, currency: .eur, placedAt: F.now.addingTimeInterval(60)),
            Self.view("o-3", status: .cancelled, total: 9_900, placedAt: F.now.addingTimeInterval(120)),
            Self.view("o-4", status: .declined, total: 100, placedAt: F.now.addingTimeInterval(180)),
            Self.view("o-5", total: 700, placedAt: F.now.addingTimeInterval(240)),
        ]
        for view in views {
            let next: CustomerTimeline = try #require(CustomerTimelines.fold(timeline, fact: try Self.fact(view), now: F.now))
            timeline = next
        }
        let result = try #require(timeline)
        #expect(result.orders.map(\.orderId) == ["o-5", "o-4", "o-3", "o-2", "o-1"], "newest placed first")
        #expect(result.lifetime.value == [Money(minorUnits: 3_000, currency: .eur), Money(minorUnits: 5_000 - 1_200 + 700, currency: .usd)])
        #expect(result.lifetime.orders == 5 && result.lifetime.returns == 1 && result.lifetime.notifications == 7)
        #expect(result.orders.last?.refunded == Money(minorUnits: 1_200, currency: .usd))
        #expect(result.firstOrderAt == F.now && result.lastOrderAt == F.now.addingTimeInterval(240))
        #expect(result.older.orders == 0)
    }

    @Test("store credit granted on orders adds up per currency; none, no field")
    func storeCredit() throws {
        var credited = Self.view("o-1")
        credited.storeCredit = Money(minorUnits: 500, currency: .usd)
        var more = Self.view("o-2", placedAt: F.now.addingTimeInterval(60))
        more.storeCredit = Money(minorUnits: 250, currency: .usd)
        var timeline: CustomerTimeline?
        for view in [credited, more, Self.view("o-3", placedAt: F.now.addingTimeInterval(120))] {
            let next: CustomerTimeline = try #require(CustomerTimelines.fold(timeline, fact: try Self.fact(view), now: F.now))
            timeline = next
        }
        #expect(timeline?.lifetime.storeCredit == [Money(minorUnits: 750, currency: .usd)])
        #expect(timeline?.orders.first { $0.orderId == "o-1" }?.storeCredit == Money(minorUnits: 500, currency: .usd))
        let plain = try #require(CustomerTimelines.fold(nil, fact: try Self.fact(Self.view("o-9")), now: F.now))
        #expect(plain.lifetime.storeCredit == nil)
    }

    @Test("a later view of an order replaces the earlier one; a repeated or stale one changes nothing")
    func laterViewsWin() throws {
        let placed = try Self.fact(Self.view("o-1", status: .placed, updatedAt: F.now))
        let delivered = try Self.fact(Self.view("o-1", status: .delivered, updatedAt: F.now.addingTimeInterval(100)))
        let first = try #require(CustomerTimelines.fold(nil, fact: placed, now: F.now))
        let second = try #require(CustomerTimelines.fold(first, fact: delivered, now: F.now))
        #expect(second.orders.map(\.status) == [.delivered])
        #expect(second.lifetime.orders == 1)
        #expect(CustomerTimelines.fold(second, fact: delivered, now: F.now) == nil, "the same view again")
        #expect(CustomerTimelines.fold(second, fact: placed, now: F.now) == nil, "an older view, redelivered")
    }

    @Test("beyond the kept orders the oldest are only counted, and a late view of one of them is not counted twice")
    func boundedTimeline() throws {
        var timeline: CustomerTimeline?
        let kept = CustomerTimelines.keptOrders
        for index in 0...(kept + 1) {
            let view = Self.view(String(format: "o-%04d", index), total: 100, placedAt: F.now.addingTimeInterval(Double(index)))
            let next: CustomerTimeline = try #require(CustomerTimelines.fold(timeline, fact: try Self.fact(view), now: F.now))
            timeline = next
        }
        let full = try #require(timeline)
        #expect(full.orders.count == kept)
        #expect(full.orders.last?.orderId == "o-0002")
        #expect(full.older.orders == 2 && full.older.value == [Money(minorUnits: 200, currency: .usd)])
        #expect(full.lifetime.orders == kept + 2 && full.lifetime.value == [Money(minorUnits: 100 * Int64(kept + 2), currency: .usd)])
        let late = try Self.fact(Self.view("o-0000", status: .returned, total: 100, updatedAt: F.now.addingTimeInterval(9_999)))
        #expect(CustomerTimelines.fold(full, fact: late, now: F.now) == nil)
    }

    @Test("through both stages: views become facts keyed by customer, and facts fold into the changelog's timeline")
    func throughTheStages() throws {
        var facts = StageDriver(stage: CustomerFactsStage())
        var timelines = StageDriver(stage: CustomerTimelineStage())
        let inputs = [Self.view("o-1", status: .placed), Self.view("o-1", status: .shipped, updatedAt: F.now.addingTimeInterval(5)), Self.view("o-9", email: nil)]
        var written: [CustomerTimeline] = []
        for (index, view) in inputs.enumerated() {
            let result = facts.handle(F.envelope("v-\(index)", view.event), offset: Int64(index), now: F.now)
            for output in result.outputs {
                #expect(output.topic == CustomerOrderFact.topic)
                #expect(output.envelope.key == CustomerTimelines.customerId(email: "ann@example.com"))
                let folded = timelines.handle(output.envelope, offset: Int64(index), now: F.now)
                for record in folded.stateRecords {
                    if case .customerTimeline(let timeline)? = record.envelope?.event { written.append(timeline) }
                }
            }
        }
        #expect(written.map { $0.orders.map(\.status) } == [[.placed], [.shipped]], "one timeline per change; the view without an address is in none")
        let alien = facts.handle(F.envelope("x", F.level("SKU-A", []).event), offset: 9, now: F.now)
        #expect(F.failure(alien) != nil)
    }
}
