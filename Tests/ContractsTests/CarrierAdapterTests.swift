import Foundation
import Testing

@testable import Contracts

@Suite struct CarrierAdapterTests {
    @Test(arguments: [
        ("pre_transit", TrackingStatus.preTransit), ("in_transit", .inTransit), ("out_for_delivery", .outForDelivery),
        ("delivered", .delivered), ("available_for_pickup", .availableForPickup), ("return_to_sender", .returnToSender),
        ("failure", .failedAttempt), ("cancelled", .cancelled), ("error", .exception), ("unknown", .unknown),
        ("teleported", .unknown), ("", .unknown), ("Delivered", .unknown),
    ])
    func easyPostStatusTable(raw: String, expected: TrackingStatus) {
        #expect(TrackingStatus.fromEasyPost(raw) == expected)
    }

    @Test(arguments: [
        ("InfoReceived", nil as String?, TrackingStatus.preTransit), ("Pending", nil, .preTransit),
        ("InTransit", "InTransit_001", .inTransit), ("OutForDelivery", nil, .outForDelivery),
        ("AttemptFail", "AttemptFail_001", .failedAttempt), ("Delivered", "Delivered_001", .delivered),
        ("AvailableForPickup", nil, .availableForPickup), ("Exception", "Exception_001", .exception),
        ("Exception", "Exception_010", .returnToSender), ("Exception", "Exception_011", .returnToSender),
        ("Expired", nil, .exception), ("Lost", nil, .unknown), ("delivered", nil, .unknown),
    ])
    func afterShipTagTable(tag: String, subtag: String?, expected: TrackingStatus) {
        #expect(TrackingStatus.fromAfterShip(tag: tag, subtag: subtag) == expected)
    }

    @Test func vocabularyIsExactlyTheDesignList() {
        #expect(TrackingStatus.allCases.map(\.rawValue) == [
            "pre_transit", "in_transit", "out_for_delivery", "available_for_pickup", "delivered", "failed_attempt",
            "return_to_sender", "exception", "cancelled", "unknown",
        ])
    }

    @Test func easyPostTrackerUpdated() throws {
        let update = try EasyPostTrackerAdapter.decode(try Fixtures.bytes("easypost_tracker_updated.json"))
        #expect(update.source == .easypost)
        #expect(update.externalEventId == "evt_3c2a0e28d7f111ee9d4a3b1f8c5e6a7b")
        #expect(update.carrier == "usps", "EasyPost names carriers USPS, UPS; OMS carrier codes are lowercase")
        #expect(update.trackingNumber == "9400100000000000000000")
        #expect(update.status == .outForDelivery)
        #expect(update.rawStatus == "out_for_delivery")
        #expect(update.occurredAt == (try date("2026-03-04T15:01:00Z")))
        #expect(update.location == TrackingLocation(city: "NEW YORK", region: "NY", postalCode: "10118", country: nil))
        #expect(update.message == "Out for Delivery")
        #expect(update.estimatedDelivery == (try date("2026-03-04T22:00:00Z")))
        // Details arrive unordered; checkpoints are sorted oldest first.
        #expect(update.checkpoints.map(\.status) == [.preTransit, .inTransit, .outForDelivery])
        #expect(update.checkpoints.first?.message == "Shipping Label Created, USPS Awaiting Item")
        let partitionKey = update.partitionKey
        #expect(partitionKey == "usps/9400100000000000000000")
    }

    @Test func easyPostUnknownStatusKeepsRaw() throws {
        let body = try Fixtures.edited("easypost_tracker_updated.json") { o in
            var result = o["result"] as? [String: Any] ?? [:]
            result["status"] = "held_at_customs_forever"
            result["tracking_details"] = [Any]()
            o["result"] = result
        }
        let update = try EasyPostTrackerAdapter.decode(body)
        #expect(update.status == .unknown)
        #expect(update.rawStatus == "held_at_customs_forever")
        #expect(update.checkpoints.isEmpty)
        #expect(update.occurredAt == (try date("2026-03-04T15:02:10Z")))
    }

    @Test func easyPostHostile() throws {
        let cases: [(String, (inout [String: Any]) -> Void, ContractError)] = [
            ("other event", { $0["description"] = "batch.updated" }, .invalidField(path: "description", reason: "'batch.updated' is not a tracker event")),
            ("no result", { $0.removeValue(forKey: "result") }, .invalidField(path: "result", reason: "required field is missing")),
            ("no code", { o in
                var r = o["result"] as? [String: Any] ?? [:]
                r.removeValue(forKey: "tracking_code")
                o["result"] = r
            }, .invalidField(path: "result.tracking_code", reason: "required field is missing")),
            ("details not array", { o in
                var r = o["result"] as? [String: Any] ?? [:]
                r["tracking_details"] = ["status": "delivered"]
                o["result"] = r
            }, .invalidField(path: "result.tracking_details", reason: "expected an array, found object")),
            ("bad datetime", { o in
                var r = o["result"] as? [String: Any] ?? [:]
                var details = r["tracking_details"] as? [[String: Any]] ?? []
                details[1]["datetime"] = 1_772_700_000
                r["tracking_details"] = details
                o["result"] = r
            }, .invalidField(path: "result.tracking_details[1].datetime", reason: "expected a string, found number")),
        ]
        for (name, edit, expected) in cases {
            let body = try Fixtures.edited("easypost_tracker_updated.json", edit)
            #expect(contractError { _ = try EasyPostTrackerAdapter.decode(body) } == expected, "\(name)")
        }
    }

    @Test func afterShipWebhook() throws {
        let update = try AfterShipTrackingAdapter.decode(try Fixtures.bytes("aftership_webhook.json"))
        #expect(update.source == .aftership)
        #expect(update.externalEventId == "6f0b8b1e-4a5c-4e8e-9c3d-2b7a1f0e9d8c")
        #expect(update.carrier == "ups")
        #expect(update.trackingNumber == "1Z999AA10123456784")
        #expect(update.status == .returnToSender)
        #expect(update.rawStatus == "Exception/Exception_011")
        // The last checkpoint has no offset: read as UTC.
        #expect(update.occurredAt == (try date("2026-03-05T04:45:00Z")))
        #expect(update.estimatedDelivery == (try date("2026-03-06T00:00:00Z")))
        #expect(update.message == "Returned to sender")
        #expect(update.location == TrackingLocation(city: "NEW YORK", region: "NY", postalCode: "10001", country: "USA"))
        #expect(update.checkpoints.map(\.rawStatus) == ["InTransit/InTransit_001", "Exception/Exception_011"])
        #expect(update.checkpoints.first?.occurredAt == (try date("2026-03-03T02:00:00Z")))
    }

    @Test func afterShipHostile() throws {
        let noMsg = try Fixtures.edited("aftership_webhook.json") { $0.removeValue(forKey: "msg") }
        #expect(contractError { _ = try AfterShipTrackingAdapter.decode(noMsg) } == .invalidField(path: "msg", reason: "required field is missing"))
        let tagType = try Fixtures.edited("aftership_webhook.json") { o in
            var msg = o["msg"] as? [String: Any] ?? [:]
            msg["tag"] = ["InTransit"]
            o["msg"] = msg
        }
        #expect(contractError { _ = try AfterShipTrackingAdapter.decode(tagType) } == .invalidField(path: "msg.tag", reason: "expected a string, found array"))
        let unknownTag = try Fixtures.edited("aftership_webhook.json") { o in
            var msg = o["msg"] as? [String: Any] ?? [:]
            msg["tag"] = "Teleported"
            msg["subtag"] = NSNull()
            msg["checkpoints"] = [Any]()
            o["msg"] = msg
        }
        let update = try AfterShipTrackingAdapter.decode(unknownTag)
        #expect(update.status == .unknown)
        #expect(update.rawStatus == "Teleported")
        #expect(update.occurredAt == (try date("2026-03-05T10:00:00Z")))
        #expect(contractError { _ = try AfterShipTrackingAdapter.decode([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) } == .payloadNotUTF8(byteOffset: 2))
    }

    @Test func genericFormat() throws {
        let update = try GenericTrackingAdapter.decode(try Fixtures.bytes("generic_tracking.json"))
        #expect(update == CarrierTrackingUpdate(
            source: .generic, externalEventId: "dhl-evt-1", carrier: "dhl", trackingNumber: "JD014600006281230704",
            status: .inTransit, rawStatus: "transit", occurredAt: try date("2026-03-02T08:00:00Z"),
            location: TrackingLocation(city: "Leipzig", country: "DE"), message: "Arrived at hub",
            estimatedDelivery: try date("2026-03-03T18:00:00Z"),
            checkpoints: [TrackingCheckpoint(
                status: .inTransit, rawStatus: "transit", occurredAt: try date("2026-03-02T08:00:00Z"),
                location: TrackingLocation(city: "Leipzig", country: "DE"), message: "Arrived at hub")]))
        let odd = try Fixtures.edited("generic_tracking.json") { o in
            o["status"] = "Zugestellt"
            o.removeValue(forKey: "rawStatus")
        }
        let unknown = try GenericTrackingAdapter.decode(odd)
        #expect(unknown.status == .unknown)
        #expect(unknown.rawStatus == "Zugestellt")
        let missing = try Fixtures.edited("generic_tracking.json") { $0.removeValue(forKey: "occurredAt") }
        #expect(contractError { _ = try GenericTrackingAdapter.decode(missing) } == .invalidField(path: "occurredAt", reason: "required field is missing"))
        let huge = [UInt8](repeating: 0x20, count: 10_000_000)
        #expect(contractError { _ = try GenericTrackingAdapter.decode(huge) } == .payloadTooLarge(size: 10_000_000, limit: 1 << 20))
        #expect(contractError { _ = try AfterShipTrackingAdapter.decode(huge) } == .payloadTooLarge(size: 10_000_000, limit: 1 << 20))
    }

    @Test func normalizedUpdatesTravelInTheEnvelope() throws {
        let update = try AfterShipTrackingAdapter.decode(try Fixtures.bytes("aftership_webhook.json"))
        let envelope = Envelope(id: "gw-1", source: "oms/gateway", time: update.occurredAt, event: update.event)
        let record = try envelope.record()
        #expect(record.key == "ups/1Z999AA10123456784")
        #expect(envelope.topic == "oms.tracking.inbound")
        #expect(try Envelope.decode(record) == envelope)
    }
}
