import Foundation
import Testing

@testable import Contracts

private func usd(_ minor: Int64) -> Money { Money(minorUnits: minor, currency: .usd) }
private func eur(_ minor: Int64) -> Money { Money(minorUnits: minor, currency: .eur) }

/// Totals must add up in every realistic fixture; a failure here means the adapter mis-read an amount.
private func expectTotalsConsistent(_ order: CanonicalOrder, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let t = order.totals
    var expected = try t.subtotal.subtracting(t.discount).adding(t.shipping)
    if !t.taxIncluded { expected = try expected.adding(t.tax) }
    #expect(expected == t.total, sourceLocation: sourceLocation)
}

@Suite struct ShopifyAdapterTests {
    @Test func decodesRealisticOrder() throws {
        let order = try ShopifyOrderAdapter.decode(try Fixtures.bytes("shopify_orders_create.json"))
        #expect(order.channel == "shopify")
        #expect(order.externalOrderId == "5678901234567")
        #expect(order.customer == Customer(id: "7012345678901", email: "jon.snow@example.com"))
        #expect(order.currency == .usd)
        #expect(order.lines == [
            OrderLine(lineId: "13579246801357", sku: "CLOAK-BLK-M", quantity: 1, unitPrice: usd(8990), discount: usd(1000), tax: usd(680)),
            OrderLine(lineId: "13579246801358", sku: "SOCK-GRY", quantity: 2, unitPrice: usd(1250), discount: usd(0), tax: usd(100)),
        ])
        #expect(order.shipping == ShippingCharge(method: "Express Shipping", amount: usd(700)))
        #expect(order.serviceLevel == .expedited)
        #expect(order.totals == OrderTotals(subtotal: usd(11490), discount: usd(1000), shipping: usd(700), tax: usd(780), total: usd(11970), taxIncluded: false))
        #expect(order.shippingAddress == Address(
            name: "Jon Snow", lines: ["350 Fifth Avenue", "Floor 34"], city: "New York", region: "NY", postalCode: "10118",
            country: try CountryCode("US"), phone: "+1 212-555-0100", email: "jon.snow@example.com"))
        #expect(order.billingAddress?.lines == ["1 Wall Street"])
        #expect(order.billingAddress?.phone == nil)
        #expect(order.payment == PaymentAuthorization(status: .authorized, amount: usd(11970), reference: order.externalOrderId), "the Shopify order id: its transactions are where its money moves")
        #expect(order.placedAt == (try date("2026-03-01T13:15:30Z")))
        try expectTotalsConsistent(order)
        let placed = OrderPlaced(order: order)
        #expect(placed.orderId == DeterministicID.orderID(channel: "shopify", externalOrderID: "5678901234567"))
    }

    /// `orders/updated`: the address now and the units order edits removed
    /// (`quantity` − `current_quantity`); `orders/cancelled`: the cancel and its reason.
    @Test func shopifyEditsAreReadAsTheOrderNow() throws {
        let updated = try Fixtures.edited("shopify_orders_create.json") { o in
            var items = o["line_items"] as? [[String: Any]] ?? []
            items[0]["current_quantity"] = 1
            items[1]["current_quantity"] = 0
            o["line_items"] = items
            var address = o["shipping_address"] as? [String: Any] ?? [:]
            address["address1"] = "9 Other Rd"
            o["shipping_address"] = address
            o["updated_at"] = "2026-12-05T10:00:00Z"
        }
        guard case .change(.edited(let edit)) = try ChannelAdapters.decode(format: .shopifyOrderUpdated, body: updated) else {
            Issue.record("an orders/updated body is an edit")
            return
        }
        #expect(edit.externalOrderId == "5678901234567" && edit.cancelled == nil)
        #expect(edit.removed == [LineQuantity(lineId: "13579246801358", quantity: 2)], "the cloak kept its unit, both socks were removed")
        #expect(edit.shippingAddress?.lines.contains("9 Other Rd") == true)
        #expect(edit.changedAt == RFC3339.parse("2026-12-05T10:00:00Z"))
        // Before API 2023-01 there is no current_quantity: nothing was removed.
        guard case .change(.edited(let plain)) = try ChannelAdapters.decode(format: .shopifyOrderUpdated, body: try Fixtures.bytes("shopify_orders_create.json")) else {
            Issue.record("an orders/updated body is an edit")
            return
        }
        #expect(plain.removed.isEmpty)

        let cancelled = try Fixtures.edited("shopify_orders_create.json") { o in
            o["cancelled_at"] = "2026-12-05T11:00:00Z"
            o["cancel_reason"] = "customer"
        }
        guard case .change(.edited(let cancel)) = try ChannelAdapters.decode(format: .shopifyOrderCancelled, body: cancelled) else {
            Issue.record("an orders/cancelled body is an edit")
            return
        }
        #expect(cancel.cancelled?.code == "channel_customer")
        #expect(throws: ContractError.self) {
            try ChannelAdapters.decode(format: .shopifyOrderCancelled, body: try Fixtures.bytes("shopify_orders_create.json"))
        }
    }

    @Test func extraFieldsAreIgnored() throws {
        let base = try ShopifyOrderAdapter.decode(try Fixtures.bytes("shopify_orders_create.json"))
        let body = try Fixtures.edited("shopify_orders_create.json") { o in
            o["brand_new_field"] = ["nested": [1, 2, 3]]
            var items = o["line_items"] as? [[String: Any]] ?? []
            items[0]["properties"] = [["name": "engraving", "value": "JS"]]
            o["line_items"] = items
        }
        #expect(try ShopifyOrderAdapter.decode(body) == base)
    }

    /// Sets `line_items[0][key]` to the JSON literal `json`, or removes the key when `json` is nil.
    static func lineItemEdit(_ key: String, _ json: String?) -> (inout [String: Any]) throws -> Void {
        { o in
            var items = o["line_items"] as? [[String: Any]] ?? []
            if let json {
                items[0][key] = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
            } else {
                items[0].removeValue(forKey: key)
            }
            o["line_items"] = items
        }
    }

    @Test(arguments: [
        ("quantity", "-1" as String?, "line_items[0].quantity", "must be at least 1"),
        ("quantity", "0", "line_items[0].quantity", "must be at least 1"),
        ("quantity", #""1""#, "line_items[0].quantity", "expected an integer, found string"),
        ("quantity", "1.5", "line_items[0].quantity", "expected an integer, found '1.5'"),
        ("sku", "null", "line_items[0].sku", "line item has no SKU; it cannot be fulfilled"),
        ("sku", #""""#, "line_items[0].sku", "line item has no SKU; it cannot be fulfilled"),
        ("price", #""abc""#, "line_items[0].price", "invalid amount 'abc': expected a digit"),
        ("price", #""-1.00""#, "line_items[0].price", "must not be negative"),
        ("price", #""89.901""#, "line_items[0].price", "invalid amount '89.901': more than 2 decimal places for this currency"),
        ("price", #"{"amount": "1"}"#, "line_items[0].price", "expected a decimal amount, found object"),
        ("price", nil, "line_items[0].price", "required field is missing"),
    ])
    func rejectsBadLineItems(key: String, json: String?, path: String, reason: String) throws {
        let body = try Fixtures.edited("shopify_orders_create.json", Self.lineItemEdit(key, json))
        #expect(contractError { _ = try ShopifyOrderAdapter.decode(body) } == .invalidField(path: path, reason: reason))
    }

    @Test func hugeNumbersAreErrorsNotTraps() throws {
        // JSONSerialization cannot write these, so splice the text.
        let text = String(decoding: try Fixtures.bytes("shopify_orders_create.json"), as: UTF8.self)
        let hugeQuantity = text.replacingOccurrences(of: #""quantity": 2"#, with: #""quantity": 99999999999999999999999"#)
        #expect(contractError { _ = try ShopifyOrderAdapter.decode(Array(hugeQuantity.utf8)) }
            == .invalidField(path: "line_items[1].quantity", reason: "integer '99999999999999999999999' is out of range"))
        // Fits in Int but quantity × price overflows Int64.
        let maxQuantity = text.replacingOccurrences(of: #""quantity": 2"#, with: #""quantity": 9223372036854775807"#)
        let overflow = contractError { _ = try ShopifyOrderAdapter.decode(Array(maxQuantity.utf8)) }
        guard case .invalidField(let path, let reason)? = overflow else {
            Issue.record("got \(String(describing: overflow))")
            return
        }
        #expect(path == "lines[1].quantity")
        #expect(reason.contains("overflow"))
        let hugePrice = text.replacingOccurrences(of: #""total_price": "119.70""#, with: #""total_price": 1e400"#)
        #expect(throws: ContractError.self) { try ShopifyOrderAdapter.decode(Array(hugePrice.utf8)) }
        let bigPrice = text.replacingOccurrences(of: #""total_price": "119.70""#, with: #""total_price": "92233720368547758.08""#)
        #expect(throws: ContractError.self) { try ShopifyOrderAdapter.decode(Array(bigPrice.utf8)) }
    }

    @Test func rejectsStructuralProblems() throws {
        let cases: [(String, (inout [String: Any]) -> Void, ContractError)] = [
            ("no line items", { $0.removeValue(forKey: "line_items") }, .invalidField(path: "line_items", reason: "required field is missing")),
            ("empty line items", { $0["line_items"] = [Any]() }, .invalidField(path: "line_items", reason: "an order needs at least one line")),
            ("line items not array", { $0["line_items"] = "many" }, .invalidField(path: "line_items", reason: "expected an array, found string")),
            ("no shipping address", { $0.removeValue(forKey: "shipping_address") }, .invalidField(path: "shipping_address", reason: "required for a shippable order")),
            ("bad currency", { $0["currency"] = "XYZ" }, .invalidField(path: "currency", reason: "'XYZ' is not a known ISO 4217 currency code")),
            ("no id", { $0.removeValue(forKey: "id") }, .invalidField(path: "id", reason: "required field is missing")),
            ("negative id", { $0["id"] = -5 }, .invalidField(path: "id", reason: "expected a non-empty string or unsigned integer id, found number")),
            ("bad created_at", { $0["created_at"] = "1 March 2026" }, .invalidField(path: "created_at", reason: "'1 March 2026' is not an RFC 3339 date-time")),
            ("refunded", { $0["financial_status"] = "refunded" }, .invalidField(path: "financial_status", reason: "'refunded' is not a status a new order can have")),
            ("bad country", { o in
                var a = o["shipping_address"] as? [String: Any] ?? [:]
                a["country_code"] = "XX"
                o["shipping_address"] = a
            }, .invalidField(path: "shipping_address.country_code", reason: "'XX' is not an ISO 3166-1 alpha-2 country code")),
            ("no city", { o in
                var a = o["shipping_address"] as? [String: Any] ?? [:]
                a["city"] = 12
                o["shipping_address"] = a
            }, .invalidField(path: "shipping_address.city", reason: "expected a string, found number")),
        ]
        for (name, edit, expected) in cases {
            let body = try Fixtures.edited("shopify_orders_create.json", edit)
            #expect(contractError { _ = try ShopifyOrderAdapter.decode(body) } == expected, "\(name)")
        }
        #expect(contractError { _ = try ShopifyOrderAdapter.decode(Array("[1,2]".utf8)) }
            == .invalidField(path: "$", reason: "expected an object, found array"))
    }

    @Test func rejectsNonUTF8() throws {
        var bytes = try Fixtures.bytes("shopify_orders_create.json")
        let index = try #require(bytes.firstIndex(of: UInt8(ascii: "J")))
        bytes[index] = 0xFF
        #expect(contractError { _ = try ShopifyOrderAdapter.decode(bytes) } == .payloadNotUTF8(byteOffset: index))
    }

    @Test func rejectsOversizedBodiesBeforeParsing() throws {
        // 10 MB of something that is not even JSON: the size check must fire first.
        let huge = [UInt8](repeating: UInt8(ascii: "["), count: 10_000_000)
        #expect(contractError { _ = try ShopifyOrderAdapter.decode(huge) } == .payloadTooLarge(size: 10_000_000, limit: 1 << 20))
        #expect(contractError { _ = try CanonicalOrderAdapter.decode(huge) } == .payloadTooLarge(size: 10_000_000, limit: 1 << 20))
        #expect(contractError { _ = try EasyPostTrackerAdapter.decode(huge) } == .payloadTooLarge(size: 10_000_000, limit: 1 << 20))
        let fixture = try Fixtures.bytes("shopify_orders_create.json")
        let small = AdapterLimits(maxBodyBytes: 512)
        #expect(contractError { _ = try ShopifyOrderAdapter.decode(fixture, limits: small) } == .payloadTooLarge(size: fixture.count, limit: 512))
        #expect(throws: Never.self) { try ShopifyOrderAdapter.decode(Data(fixture), limits: AdapterLimits(maxBodyBytes: fixture.count)) }
    }
}

@Suite struct AmazonAdapterTests {
    @Test func decodesOrderWithItems() throws {
        let order = try AmazonOrderAdapter.decode(try Fixtures.bytes("amazon_order.json"))
        #expect(order.channel == "amazon")
        #expect(order.externalOrderId == "902-3159896-1390916")
        #expect(order.currency == .eur)
        #expect(order.lines == [
            OrderLine(lineId: "45678901234567", sku: "MUG-WHT-300", quantity: 2, unitPrice: eur(1495), discount: eur(300), tax: eur(477)),
            OrderLine(lineId: "45678901234568", sku: "COASTER-SET-4", quantity: 1, unitPrice: eur(3300), discount: eur(0), tax: eur(527)),
        ])
        #expect(order.totals == OrderTotals(subtotal: eur(6290), discount: eur(300), shipping: eur(495), tax: eur(1083), total: eur(6485), taxIncluded: true))
        #expect(order.shipping == ShippingCharge(method: "Std DE Dom_1", amount: eur(495)))
        #expect(order.shippingAddress == Address(
            name: "Max Mustermann", lines: ["Musterstraße 12", "Hinterhaus"], city: "München", region: "Bayern",
            postalCode: "80331", country: try CountryCode("DE"), phone: "+49 89 1234567", email: "x3yz7k@marketplace.amazon.de"))
        #expect(order.customer == Customer(id: nil, email: "x3yz7k@marketplace.amazon.de"))
        #expect(order.payment == PaymentAuthorization(status: .captured, amount: eur(6485), reference: "902-3159896-1390916"))
        #expect(order.placedAt == (try date("2026-03-02T11:23:45Z")))
        #expect(order.promisedDeliveryDate == (try date("2026-03-06T22:59:59Z")))
        #expect(order.serviceLevel == .standard)
        try expectTotalsConsistent(order)
    }

    @Test func acceptsThePayloadWrapper() throws {
        let plain = try AmazonOrderAdapter.decode(try Fixtures.bytes("amazon_order.json"))
        let inner = try JSONSerialization.jsonObject(with: Data(try Fixtures.bytes("amazon_order.json")))
        let wrapped = Array(try JSONSerialization.data(withJSONObject: ["payload": inner]))
        #expect(try AmazonOrderAdapter.decode(wrapped) == plain)
    }

    static func itemEdit(_ key: String, _ value: Any) -> (inout [String: Any]) -> Void {
        { o in
            var items = o["OrderItems"] as? [[String: Any]] ?? []
            items[0][key] = value
            o["OrderItems"] = items
        }
    }

    @Test func rejectsBadOrders() throws {
        let cases: [(String, (inout [String: Any]) -> Void, ContractError)] = [
            ("pending", { $0["OrderStatus"] = "Pending" }, .invalidField(path: "OrderStatus", reason: "'Pending' orders are not accepted (Amazon withholds price and address until Unshipped)")),
            ("zero qty", Self.itemEdit("QuantityOrdered", 0), .invalidField(path: "OrderItems[0].QuantityOrdered", reason: "must be at least 1")),
            ("negative qty", Self.itemEdit("QuantityOrdered", -3), .invalidField(path: "OrderItems[0].QuantityOrdered", reason: "must be at least 1")),
            ("indivisible", Self.itemEdit("ItemPrice", ["CurrencyCode": "EUR", "Amount": "29.91"]), .invalidField(path: "OrderItems[0].ItemPrice", reason: "29.91 EUR does not divide evenly by quantity 2")),
            ("currency mix", Self.itemEdit("ItemTax", ["CurrencyCode": "USD", "Amount": "1.00"]), .invalidField(path: "OrderItems[0].ItemTax.CurrencyCode", reason: "USD differs from order currency EUR")),
            ("amount type", Self.itemEdit("ItemPrice", ["CurrencyCode": "EUR", "Amount": true]), .invalidField(path: "OrderItems[0].ItemPrice.Amount", reason: "expected a decimal amount, found boolean")),
            ("no items", { $0["OrderItems"] = [Any]() }, .invalidField(path: "OrderItems", reason: "an order needs at least one line")),
            ("no sku", Self.itemEdit("SellerSKU", ""), .invalidField(path: "OrderItems[0].SellerSKU", reason: "must not be empty")),
            ("no total", { $0.removeValue(forKey: "OrderTotal") }, .invalidField(path: "OrderTotal", reason: "required field is missing")),
            ("bad country", { o in
                var a = o["ShippingAddress"] as? [String: Any] ?? [:]
                a["CountryCode"] = "GER"
                o["ShippingAddress"] = a
            }, .invalidField(path: "ShippingAddress.CountryCode", reason: "'GER' is not an ISO 3166-1 alpha-2 country code")),
        ]
        for (name, edit, expected) in cases {
            let body = try Fixtures.edited("amazon_order.json", edit)
            #expect(contractError { _ = try AmazonOrderAdapter.decode(body) } == expected, "\(name)")
        }
    }

    @Test func buyerCancellationBecomesCancelCommand() throws {
        let change = try AmazonOrderChangeAdapter.decode(try Fixtures.bytes("amazon_order_change_cancel.json"))
        #expect(change == .cancel(CancelOrder(
            orderId: DeterministicID.orderID(channel: "amazon", externalOrderID: "902-3159896-1390916"),
            requestedBy: "amazon:buyer", reason: Reason(code: "buyer_requested_cancel", message: "Buyer Requested Cancel"),
            requestedAt: try date("2026-03-02T12:04:58Z"))))
    }

    /// The Orders API shape nests the flag with the buyer's reason; it wins over the generic ChangeReason.
    @Test func nestedBuyerCancelReasonIsUsed() throws {
        let body = try Fixtures.edited("amazon_order_change_cancel.json") { o in
            var payload = o["Payload"] as? [String: Any] ?? [:]
            var change = payload["OrderChangeNotification"] as? [String: Any] ?? [:]
            var summary = change["Summary"] as? [String: Any] ?? [:]
            summary["OrderItems"] = [[
                "OrderItemId": "45678901234567", "SellerSKU": "MUG-WHT-300", "Quantity": 2,
                "BuyerRequestedCancel": ["IsBuyerRequestedCancel": "true", "BuyerCancelReason": "Found a better price"],
            ]]
            change["Summary"] = summary
            change["OrderChangeTrigger"] = ["TimeOfOrderChange": "2026-03-02T12:04:58Z", "ChangeReason": "Other"]
            payload["OrderChangeNotification"] = change
            o["Payload"] = payload
        }
        guard case .cancel(let cancel) = try AmazonOrderChangeAdapter.decode(body) else {
            Issue.record("expected a cancel")
            return
        }
        #expect(cancel.reason == Reason(code: "buyer_requested_cancel", message: "Found a better price"))
    }

    @Test func buyerChangeWithoutCancelIsAStatusChange() throws {
        let body = try Fixtures.edited("amazon_order_change_cancel.json") { o in
            var payload = o["Payload"] as? [String: Any] ?? [:]
            var change = payload["OrderChangeNotification"] as? [String: Any] ?? [:]
            var summary = change["Summary"] as? [String: Any] ?? [:]
            summary["OrderItems"] = [["OrderItemId": "45678901234567", "SellerSKU": "MUG-WHT-300", "Quantity": 2]]
            change["Summary"] = summary
            change["OrderChangeTrigger"] = ["TimeOfOrderChange": "2026-03-02T12:04:58Z", "ChangeReason": "Buyer updated gift message"]
            payload["OrderChangeNotification"] = change
            o["Payload"] = payload
        }
        guard case .statusChanged(let status) = try AmazonOrderChangeAdapter.decode(body) else {
            Issue.record("expected a status change")
            return
        }
        #expect(status.status == "Unshipped")
    }

    @Test func statusChangeIsNotACommand() throws {
        let change = try AmazonOrderChangeAdapter.decode(try Fixtures.bytes("amazon_order_change_status.json"))
        #expect(change == .statusChanged(ChannelOrderStatusChange(
            channel: "amazon", externalOrderId: "902-3159896-1390916",
            orderId: DeterministicID.orderID(channel: "amazon", externalOrderID: "902-3159896-1390916"),
            status: "Shipped", changedAt: try date("2026-03-03T08:59:30Z"))))
    }

    @Test func amazonCancellationBecomesCancelCommand() throws {
        let body = try Fixtures.edited("amazon_order_change_status.json") { o in
            var payload = o["Payload"] as? [String: Any] ?? [:]
            var change = payload["OrderChangeNotification"] as? [String: Any] ?? [:]
            var summary = change["Summary"] as? [String: Any] ?? [:]
            summary["OrderStatus"] = "Canceled"
            change["Summary"] = summary
            change.removeValue(forKey: "OrderChangeTrigger")
            payload["OrderChangeNotification"] = change
            o["Payload"] = payload
        }
        guard case .cancel(let cancel) = try AmazonOrderChangeAdapter.decode(body) else {
            Issue.record("expected a cancel")
            return
        }
        #expect(cancel.reason.code == "channel_cancelled")
        #expect(cancel.requestedBy == "amazon")
        #expect(cancel.requestedAt == (try date("2026-03-03T09:00:00Z")))
    }

    @Test func rejectsOtherNotifications() throws {
        let wrongType = try Fixtures.edited("amazon_order_change_cancel.json") { $0["NotificationType"] = "ANY_OFFER_CHANGED" }
        #expect(contractError { _ = try AmazonOrderChangeAdapter.decode(wrongType) }
            == .invalidField(path: "NotificationType", reason: "'ANY_OFFER_CHANGED' is not ORDER_CHANGE"))
        let noPayload = try Fixtures.edited("amazon_order_change_cancel.json") { $0.removeValue(forKey: "Payload") }
        #expect(contractError { _ = try AmazonOrderChangeAdapter.decode(noPayload) }
            == .invalidField(path: "Payload", reason: "required field is missing"))
    }
}

@Suite struct POSAndCanonicalAdapterTests {
    @Test func decodesPOSSale() throws {
        let order = try POSSaleAdapter.decode(try Fixtures.bytes("pos_sale.json"))
        #expect(order.channel == "pos")
        #expect(order.externalOrderId == "berlin-mitte:R-2026-000123")
        #expect(order.lines == [
            OrderLine(lineId: "1", sku: "TEE-BLK-M", quantity: 2, unitPrice: eur(1999), discount: eur(200), tax: eur(606)),
            OrderLine(lineId: "2", sku: "CAP-RED", quantity: 1, unitPrice: eur(1450), discount: eur(0), tax: eur(232)),
        ])
        #expect(order.totals == OrderTotals(subtotal: eur(5448), discount: eur(200), shipping: eur(495), tax: eur(838), total: eur(6581), taxIncluded: false))
        #expect(order.payment == PaymentAuthorization(status: .captured, amount: eur(6581), reference: "TX-77-0001"))
        #expect(order.shippingAddress.lines == ["Torstraße 1", "3. OG"])
        #expect(order.shippingAddress.email == "kunde@example.de")
        #expect(order.placedAt == (try date("2026-03-01T09:15:00Z")))
        try expectTotalsConsistent(order)
    }

    @Test func rejectsBadPOSSales() throws {
        let cases: [(String, (inout [String: Any]) -> Void, ContractError)] = [
            ("qty", { o in
                var items = o["items"] as? [[String: Any]] ?? []
                items[1]["quantity"] = -2
                o["items"] = items
            }, .invalidField(path: "items[1].quantity", reason: "must be at least 1")),
            ("status", { o in
                var p = o["payment"] as? [String: Any] ?? [:]
                p["status"] = "paid"
                o["payment"] = p
            }, .invalidField(path: "payment.status", reason: "unknown payment status 'paid'")),
            ("level", { $0["serviceLevel"] = "warp" }, .invalidField(path: "serviceLevel", reason: "unknown service level 'warp'")),
            ("country", { o in
                var a = o["shipTo"] as? [String: Any] ?? [:]
                a["country"] = "Germany"
                o["shipTo"] = a
            }, .invalidField(path: "shipTo.country", reason: "'Germany' is not an ISO 3166-1 alpha-2 country code")),
            ("empty", { $0["items"] = [Any]() }, .invalidField(path: "items", reason: "an order needs at least one line")),
        ]
        for (name, edit, expected) in cases {
            let body = try Fixtures.edited("pos_sale.json", edit)
            #expect(contractError { _ = try POSSaleAdapter.decode(body) } == expected, "\(name)")
        }
    }

    @Test func decodesCanonicalOrder() throws {
        let order = try CanonicalOrderAdapter.decode(try Fixtures.bytes("canonical_order.json"))
        #expect(order.channel == "zalando")
        #expect(order.lines.map(\.sku) == ["SHOE-41"])
        #expect(order.placedAt == (try date("2026-03-01T09:00:00.250Z")))
        #expect(order.totals.taxIncluded)
        #expect(order.billingAddress == nil)
        try expectTotalsConsistent(order)
        // The canonical format is the Swift type's own JSON: re-encoding round-trips.
        #expect(try CanonicalOrderAdapter.decode(try EventCodec.encode(order)) == order)
    }

    @Test func rejectsBadCanonicalOrders() throws {
        let negative = try Fixtures.edited("canonical_order.json") { o in
            var lines = o["lines"] as? [[String: Any]] ?? []
            lines[0]["quantity"] = -1
            o["lines"] = lines
        }
        #expect(contractError { _ = try CanonicalOrderAdapter.decode(negative) }
            == .invalidField(path: "lines[0].quantity", reason: "must be at least 1"))
        let mixed = try Fixtures.edited("canonical_order.json") { o in
            var lines = o["lines"] as? [[String: Any]] ?? []
            lines[0]["tax"] = ["minorUnits": 5, "currency": "USD"]
            o["lines"] = lines
        }
        #expect(contractError { _ = try CanonicalOrderAdapter.decode(mixed) }
            == .invalidField(path: "lines[0].tax", reason: "currency USD differs from order currency EUR"))
        let empty = try Fixtures.edited("canonical_order.json") { $0["lines"] = [Any]() }
        #expect(contractError { _ = try CanonicalOrderAdapter.decode(empty) }
            == .invalidField(path: "lines", reason: "an order needs at least one line"))
        let wrongType = try Fixtures.edited("canonical_order.json") { $0["serviceLevel"] = 3 }
        #expect(throws: ContractError.self) { try CanonicalOrderAdapter.decode(wrongType) }
        #expect(contractError { _ = try CanonicalOrderAdapter.decode([0x7B, 0xFE, 0x7D]) } == .payloadNotUTF8(byteOffset: 1))
    }

    @Test func dispatchByFormat() throws {
        let cases: [(ChannelFormat, String)] = [
            (.shopifyOrder, "shopify_orders_create.json"), (.amazonOrder, "amazon_order.json"),
            (.posSale, "pos_sale.json"), (.canonical, "canonical_order.json"),
        ]
        for (format, fixture) in cases {
            guard case .order(let order) = try ChannelAdapters.decode(format: format, body: try Fixtures.bytes(fixture)) else {
                Issue.record("\(format) did not produce an order")
                continue
            }
            #expect(!order.lines.isEmpty)
        }
        guard case .change(.cancel) = try ChannelAdapters.decode(format: .amazonOrderChange, body: try Fixtures.bytes("amazon_order_change_cancel.json")) else {
            Issue.record("ORDER_CHANGE did not produce a cancel")
            return
        }
        // A payload decoded with the wrong adapter is an error, not a half-filled order.
        #expect(throws: ContractError.self) { try ChannelAdapters.decode(format: .shopifyOrder, body: try Fixtures.bytes("amazon_order.json")) }
    }
}
