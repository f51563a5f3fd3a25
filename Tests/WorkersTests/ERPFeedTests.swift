import Contracts
import Foundation
import Testing

@testable import Workers

private typealias F = PipelineFixtures

@Suite("ERP feed")
struct ERPFeedTests {
    let placed = F.placed(F.order(channel: "web", externalOrderId: "W-7"))

    func feed(_ events: [(String, Event)]) -> [ERPRecord] {
        var driver = StageDriver(stage: ERPFeedStage())
        var records: [ERPRecord] = []
        for (index, (id, event)) in events.enumerated() {
            let result = driver.handle(F.envelope(id, event, at: F.now), offset: Int64(index), now: F.now)
            #expect(result.outputs.allSatisfy { $0.topic == ERPRecord.topic && $0.envelope.key == placed.orderId })
            records += F.events(result).compactMap { if case .erpRecord(let record) = $0 { record } else { nil } }
        }
        return records
    }

    @Test("orders, shipments, returns and refunds become rows with every documented column; captures are not rows")
    func rows() throws {
        let shipment = ShipmentCreated(
            shipmentId: "s-1", orderId: placed.orderId, location: "WH-1", carrier: "ups", service: "ground", trackingNumber: "1Z, \"9\"", labelRef: "L",
            lines: [F.shipmentLine("1", "SKU-A", 2)], promisedDate: F.now, estimatedDelivery: F.now, atRisk: false, createdAt: F.now)
        let received = ReturnReceived(
            orderId: placed.orderId, returnId: "r-1", rma: "RMA-1",
            lines: [ReceivedReturnLine(lineId: "1", sku: "SKU-A", quantity: 1, disposition: .restock, location: "WH-1")], receivedAt: F.now)
        let refund = RefundPayment(orderId: placed.orderId, returnId: "r-1", amount: F.money(1_250), reason: Reason(code: "return", message: "m"), requestedAt: F.now)
        let goodwill = RefundPayment(orderId: placed.orderId, amount: F.money(300), reason: Reason(code: "goodwill", message: "m"), requestedAt: F.now)
        let capture = CapturePayment(orderId: placed.orderId, shipmentId: "s-1", amount: F.money(100), requestedAt: F.now)
        let records = feed([("p", placed.event), ("s", shipment.event), ("rr", received.event), ("rf", refund.event), ("g", goodwill.event), ("c", capture.event)])
        #expect(records.map(\.entity) == [.orders, .shipments, .returns, .refunds, .refunds])
        for record in records {
            #expect(Set(record.columns.keys) == Set(ERPFeed.columns[record.entity] ?? []), "\(record.entity) has exactly its documented columns")
        }
        #expect(records[0].columns["total"] == placed.totals.total.decimalString && records[0].columns["order_id"] == placed.orderId)
        #expect(records[1].columns["units"] == "2")
        #expect(records[2].id == "r-1/received" && records[2].columns["reason"] == "restock")
        #expect(records[3].id == "return/r-1" && records[3].columns["amount"] == "12.50")
        #expect(records[4].id == "g", "a goodwill refund is known by its event")
    }

    @Test("a day's file keeps one row per id (replays), only that day's, and quotes as RFC 4180; JSON Lines carry the same")
    func files() throws {
        let shipment = { (id: String, tracking: String, at: Date) in
            ShipmentCreated(
                shipmentId: id, orderId: placed.orderId, location: "WH-1", carrier: "ups", service: "ground", trackingNumber: tracking, labelRef: "L",
                lines: [F.shipmentLine("1", "SKU-A", 1)], promisedDate: at, estimatedDelivery: at, atRisk: false, createdAt: at)
        }
        let day = RFC3339.formatDate(F.now)
        let records = feed([
            ("a", shipment("s-1", "1Z, \"9\"", F.now).event), ("a2", shipment("s-1", "1Z, \"9\"", F.now).event),
            ("b", shipment("s-2", "T2", F.now.addingTimeInterval(-86_400)).event),
        ])
        let rows = ERPFeed.rows(records, entity: .shipments, day: day)
        #expect(rows.map(\.id) == ["s-1"])
        let csv = ERPFeed.csv(rows, entity: .shipments)
        let lines = csv.components(separatedBy: "\r\n")
        #expect(lines[0] == "shipment_id,order_id,location,carrier,service,tracking_number,units,created_at")
        #expect(lines[1].contains(",\"1Z, \"\"9\"\"\",1,"), "\(lines[1])")
        #expect(lines.count == 3 && lines[2].isEmpty)
        let json = ERPFeed.jsonLines(rows, entity: .shipments)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        #expect(object["tracking_number"] == "1Z, \"9\"" && object.count == ERPFeed.columns[.shipments]?.count)
        #expect(ERPFeed.rows(records, entity: .orders, day: day).isEmpty)
        #expect(ERPFeed.csv([], entity: .orders).hasPrefix("order_id,channel,"), "an empty day still has its header")
    }

    @Test("other events on its topics are refused")
    func refused() {
        var driver = StageDriver(stage: ERPFeedStage())
        #expect(F.failure(driver.handle(F.envelope("x", F.level("SKU-A", []).event), now: F.now)) != nil)
    }
}
