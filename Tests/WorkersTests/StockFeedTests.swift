import Contracts
import Foundation
import OrderFleetTesting
import ReferenceStages
import Testing

@testable import Workers

private typealias F = PipelineFixtures

@Suite("Stock feed")
struct StockFeedTests {
    static let marketplace = StockFeedRules.ChannelFeed(channel: "marketplace", percent: 80, buffer: 1, max: 50, minIntervalSeconds: 30, locations: ["WH-1", "WH-2"])
    static let shop = StockFeedRules.ChannelFeed(channel: "shopify", minIntervalSeconds: 10)
    static let rules = StockFeedRules(channels: [marketplace, shop], checkIntervalSeconds: 5)

    static func level(_ stocks: [LocationStock]) -> InventoryLevel { F.level("SKU-A", stocks) }

    @Test("the quantity: share of available-to-sell over the feed's locations, minus the buffer, capped, never negative")
    func quantity() {
        let level = Self.level([F.stock("WH-1", onHand: 30, reserved: 5, safety: 5), F.stock("WH-2", onHand: 10), F.stock("STORE", onHand: 100)])
        #expect(StockFeed.availableToSell(level, locations: Self.marketplace.locations) == 30)
        #expect(StockFeed.quantity(of: level, for: Self.marketplace) == 23)  // ⌊30 × 0.8⌋ − 1
        #expect(StockFeed.quantity(of: level, for: Self.shop) == 130)
        let capped = StockFeedRules.ChannelFeed(channel: "c", max: 7)
        #expect(StockFeed.quantity(of: level, for: capped) == 7)
        let oversold = Self.level([F.stock("WH-1", onHand: 2, reserved: 5)])
        #expect(StockFeed.availableToSell(oversold, locations: nil) == 0)
        #expect(StockFeed.quantity(of: oversold, for: Self.marketplace) == 0)
    }

    @Test("never more than available-to-sell, for any level and feed (2,000 random cases)")
    func neverAboveAvailable() {
        var random = SplitMix64(seed: 7)
        for _ in 0..<2_000 {
            let stocks = (0..<Int(random.next() % 4)).map { index in
                F.stock("WH-\(index)", onHand: Int(random.next() % 50), reserved: Int(random.next() % 60), safety: Int(random.next() % 5))
            }
            let feed = StockFeedRules.ChannelFeed(
                channel: "c", percent: Int(random.next() % 101), buffer: Int(random.next() % 5), max: random.next() % 2 == 0 ? nil : Int(random.next() % 40),
                locations: random.next() % 2 == 0 ? nil : ["WH-0", "WH-2"])
            let level = Self.level(stocks)
            let shown = StockFeed.quantity(of: level, for: feed)
            #expect(shown >= 0 && shown <= StockFeed.availableToSell(level, locations: feed.locations))
        }
    }

    @Test("a first level and every decrease go at once; increases are held for the interval, then sent by the timer")
    func coalescing() throws {
        let t0 = F.now
        let first = StockFeed.follow(Self.level([F.stock("WH-1", onHand: 20)]), state: nil, rules: Self.rules, now: t0)
        #expect(first.updates.map { "\($0.channel)=\($0.quantity)" } == ["marketplace=15", "shopify=20"])
        let state1 = try #require(first.state)

        let up = StockFeed.follow(Self.level([F.stock("WH-1", onHand: 25)]), state: state1, rules: Self.rules, now: t0.addingTimeInterval(5))
        #expect(up.updates.isEmpty, "an increase within the interval waits")
        let state2 = try #require(up.state)
        #expect(state2.channels.map(\.target) == [19, 25] && state2.channels.map(\.advertised) == [15, 20])

        let down = StockFeed.follow(Self.level([F.stock("WH-1", onHand: 10)]), state: state2, rules: Self.rules, now: t0.addingTimeInterval(6))
        #expect(down.updates.map { "\($0.channel)=\($0.quantity)" } == ["marketplace=7", "shopify=10"])
        #expect(down.updates.allSatisfy { $0.quantity <= $0.availableToSell })

        let up2 = StockFeed.follow(Self.level([F.stock("WH-1", onHand: 12)]), state: down.state, rules: Self.rules, now: t0.addingTimeInterval(7))
        let held = try #require(up2.state)
        #expect(StockFeed.due(held, rules: Self.rules, now: t0.addingTimeInterval(15)).updates.isEmpty)
        let shopDue = StockFeed.due(held, rules: Self.rules, now: t0.addingTimeInterval(16))
        #expect(shopDue.updates.map { "\($0.channel)=\($0.quantity)" } == ["shopify=12"])
        let marketDue = StockFeed.due(try #require(shopDue.state), rules: Self.rules, now: t0.addingTimeInterval(36))
        #expect(marketDue.updates.map { "\($0.channel)=\($0.quantity)" } == ["marketplace=8"])
        #expect(StockFeed.due(try #require(marketDue.state), rules: Self.rules, now: t0.addingTimeInterval(100)).updates.isEmpty)
    }

    @Test("resync sends every channel's target (or one channel's) whatever was sent")
    func resync() throws {
        let state = try #require(StockFeed.follow(Self.level([F.stock("WH-1", onHand: 20)]), state: nil, rules: Self.rules, now: F.now).state)
        #expect(StockFeed.resync(state, channel: nil, now: F.now).updates.map(\.reason) == ["resync", "resync"])
        #expect(StockFeed.resync(state, channel: "shopify", now: F.now).updates.map(\.quantity) == [20])
    }

    @Test("the stage: levels in, updates out; reservations and waiting lines ignored; the timer releases held increases; resync answered")
    func stage() throws {
        var driver = StageDriver(stage: StockFeedStage(rules: Self.rules))
        let first = driver.handle(F.envelope("l1", Self.level([F.stock("WH-1", onHand: 20)]).event), offset: 0, now: F.now)
        #expect(F.events(first).count == 2)
        let reservation = InventoryReservation(sku: "SKU-A", orderId: "o", lineId: "1", location: "WH-1", quantity: 1, reservedAt: F.now)
        #expect(F.events(driver.handle(F.envelope("r", reservation.event), offset: 1, now: F.now)).isEmpty)
        let waiting = WaitingLine(sku: "SKU-A", orderId: "o", lineId: "2", quantity: 1, locations: ["WH-1"], priority: 0, placedAt: F.now)
        let waited = driver.handle(F.envelope("w", waiting.event), offset: 1, now: F.now)
        #expect(F.events(waited).isEmpty && F.failure(waited) == nil, "a waiting line is not stock: ignored, not dead-lettered")
        #expect(F.events(driver.handle(F.envelope("l2", Self.level([F.stock("WH-1", onHand: 30)]).event), offset: 2, now: F.now)).isEmpty)
        let fired = driver.tick(now: F.now.addingTimeInterval(60))
        #expect(fired.flatMap { F.events($0) }.count == 2)
        let resync = driver.handle(F.envelope("s", StockResync(sku: "SKU-A", channel: "marketplace", requestedAt: F.now).event), offset: 3, now: F.now)
        let updates = F.events(resync).compactMap { if case .stockUpdate(let update) = $0 { update } else { nil } }
        #expect(updates.map(\.quantity) == [23] && updates.map(\.reason) == ["resync"])
    }

    @Test("rules: bad feeds are named")
    func rulesProblems() {
        let bad = StockFeedRules(channels: [
            .init(channel: "a", percent: 120), .init(channel: "a", buffer: -1, locations: ["NOWHERE"]),
        ], checkIntervalSeconds: 0)
        #expect(bad.problems(locations: ["WH-1"]) == [
            "stockFeeds.checkIntervalSeconds: must be at least 1",
            "stockFeeds.channels[0].percent: 120 is outside 0...100",
            "stockFeeds.channels[1].channel: 'a' has two feeds",
            "stockFeeds.channels[1].buffer: must not be negative",
            "stockFeeds.channels[1].locations: no location 'NOWHERE'",
        ])
    }
}
