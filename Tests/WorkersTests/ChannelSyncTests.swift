import Contracts
import Foundation
import Testing

@testable import Workers

private typealias F = PipelineFixtures

@Suite("Channel sync")
struct ChannelSyncTests {
    let placed = F.placed(F.order(channel: "shopify", externalOrderId: "820982911946154508"))
    var orderId: String { placed.orderId }

    func shipment(_ id: String, tracking: String) -> ShipmentCreated {
        ShipmentCreated(
            shipmentId: id, orderId: orderId, location: "WH-1", carrier: "ups", service: "ground", trackingNumber: tracking, labelRef: "L",
            lines: [F.shipmentLine("1", "SKU-A", 2)], promisedDate: F.now, estimatedDelivery: F.now, atRisk: false, createdAt: F.now)
    }

    @Test("a shipment, a cancel and a refund each become one command for the order's channel, whatever the replays")
    func oneCommandPerFact() throws {
        var driver = StageDriver(stage: ChannelSyncStage())
        let cancel = OrderCancelled(orderId: orderId, requestedBy: "ops", reason: Reason(code: "customer_request", message: "asked"), cancelledAt: F.now)
        let refund = RefundPayment(orderId: orderId, returnId: "r-1", amount: F.money(1_000), reason: Reason(code: "return", message: "returned"), requestedAt: F.now)
        let inputs: [Event] = [placed.event, shipment("s-1", tracking: "1Z1").event, shipment("s-1", tracking: "1Z1").event, cancel.event, refund.event]
        var commands: [ChannelUpdate] = []
        for (index, event) in inputs.enumerated() {
            // The repeated shipment comes under another event id: the fact is told once anyway.
            let result = driver.handle(F.envelope("c-\(index)", event), offset: Int64(index), now: F.now)
            commands += F.events(result).compactMap { if case .channelUpdate(let update) = $0 { update } else { nil } }
        }
        #expect(commands.map(\.fact.id) == ["ship/s-1", "cancel", "refund/r-1"])
        #expect(commands.allSatisfy { $0.channel == "shopify" && $0.externalOrderId == "820982911946154508" })
        #expect(commands[0].fact.trackingNumber == "1Z1" && commands[0].fact.lines.map(\.quantity) == [2])
        #expect(commands[2].fact.amount == F.money(1_000))
        // The same input again (a replay) is skipped by its key.
        let replay = driver.handle(F.envelope("c-1", inputs[1]), offset: 1, now: F.now)
        #expect(replay.kind == .duplicate)
    }

    @Test("a shipment read before its placed order waits and is told once the order is read")
    func shipmentBeforeOrder() {
        let waiting = ChannelSync.advance(nil, orderId: orderId, placed: shipment("s-1", tracking: "T").event, fact: ChannelSync.fact(in: F.envelope("e1", shipment("s-1", tracking: "T").event))?.fact)
        #expect(waiting.commands.isEmpty)
        #expect(waiting.state?.pending.map(\.id) == ["ship/s-1"])
        let told = ChannelSync.advance(waiting.state, orderId: orderId, placed: placed.event, fact: nil)
        #expect(told.commands.map(\.fact.id) == ["ship/s-1"])
        #expect(told.state?.pending.isEmpty == true && told.state?.told == ["ship/s-1"])
        #expect(told.commands.first?.channel == "shopify")
    }

    @Test("refused cancels, captures and voids on the stage's topics are consumed and tell nothing; other events are refused")
    func ignoredAndRefused() {
        var driver = StageDriver(stage: ChannelSyncStage())
        let capture = CapturePayment(orderId: orderId, shipmentId: "s-1", amount: F.money(100), requestedAt: F.now)
        #expect(F.events(driver.handle(F.envelope("p", capture.event), offset: 0, now: F.now)).isEmpty)
        let refused = CancelRejected(orderId: orderId, requestedBy: "ops", reasons: [Reason(code: "shipped", message: "too late")], rejectedAt: F.now)
        let result = driver.handle(F.envelope("r", refused.event), offset: 2, now: F.now)
        #expect(F.failure(result) == nil && F.events(result).isEmpty)
        let alien = driver.handle(F.envelope("x", F.level("SKU-A", []).event), offset: 1, now: F.now)
        #expect(F.failure(alien) != nil)
    }
}
