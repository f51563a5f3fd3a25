import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// Intake's rules as pure functions (`IntakeStage.validate`, `AddressRules.problems`) and
/// the stage run through `StageDriver` with the catalog as a global table: a valid order
/// is placed under its deterministic order id; each business rule (unknown, unsellable,
/// unlaunched or blocked SKU, totals off by more than one minor unit, unsupported
/// currency, incomplete address) rejects with its code, every reason at once; a channel
/// re-send under a new event id is a duplicate; unreadable payloads and records keyed
/// for another order are dead-lettered; Amazon change notifications become commands.
@Suite struct IntakeTests {
    let rules = IntakeRules(currencies: ["USD", "EUR"])
    let catalog: [String: CatalogProduct] = [
        "SKU-A": F.product("SKU-A"),
        "SKU-B": F.product("SKU-B", sellable: nil),
        "SKU-OFF": F.product("SKU-OFF", sellable: false),
        "SKU-SOON": F.product("SKU-SOON", launchDate: F.placedAt.addingTimeInterval(60)),
        "SKU-NOUS": F.product("SKU-NOUS", blocked: ["US", "CU"]),
    ]

    func validate(_ order: CanonicalOrder) -> [Reason] {
        IntakeStage.validate(order, rules: rules) { catalog[$0] }
    }

    func driver() -> StageDriver<IntakeStage> {
        var driver = StageDriver(stage: IntakeStage(rules: rules))
        driver.tables[CatalogProduct.topic] = catalog.mapValues(\.event)
        return driver
    }

    // MARK: validate

    @Test func validOrderBreaksNoRule() {
        let order = F.order(lines: [F.line("1", "SKU-A", quantity: 2), F.line("2", "SKU-B", quantity: 1, price: 250)])
        #expect(validate(order) == [])
    }

    @Test func unknownSkuIsRejectedNamingTheLine() throws {
        let reasons = validate(F.order(lines: [F.line("7", "SKU-GHOST")]))
        #expect(F.codes(reasons) == ["sku_unknown"])
        let message = try #require(reasons.first?.message)
        #expect(message.contains("line 7"))
        #expect(message.contains("SKU-GHOST"))
    }

    @Test func notSellableSkuIsRejectedButUnsetSellableIsAllowed() {
        #expect(F.codes(validate(F.order(lines: [F.line("1", "SKU-OFF")]))) == ["sku_not_sellable"])
        #expect(validate(F.order(lines: [F.line("1", "SKU-B")])) == [], "sellable nil means sellable")
    }

    @Test func launchDateIsComparedWithPlacedAtNotWithProcessingTime() {
        let launch = F.placedAt.addingTimeInterval(60)
        // Placed a minute before launch: rejected, although the launch is before `now`.
        #expect(launch < F.now)
        #expect(F.codes(validate(F.order(lines: [F.line("1", "SKU-SOON")]))) == ["sku_not_launched"])
        // Placed exactly at launch, or after: accepted.
        #expect(validate(F.order(lines: [F.line("1", "SKU-SOON")], placedAt: launch)) == [])
        #expect(validate(F.order(lines: [F.line("1", "SKU-SOON")], placedAt: launch.addingTimeInterval(1))) == [])
    }

    @Test func blockedDestinationIsRejectedOnlyForThatCountry() throws {
        let reasons = validate(F.order(lines: [F.line("1", "SKU-NOUS")]))
        #expect(F.codes(reasons) == ["destination_blocked"])
        #expect(try #require(reasons.first).message.contains("US"))
        let toCanada = F.order(
            lines: [F.line("1", "SKU-NOUS")],
            shippingAddress: F.address(country: "CA", postalCode: "K1A 0B1", region: "ON", city: "Ottawa"))
        #expect(validate(toCanada) == [])
    }

    @Test(arguments: [-1, 1] as [Int64])
    func totalWithinOneMinorUnitIsAccepted(offBy: Int64) {
        // 2 × 10.00 + 5.00 shipping = 25.00.
        #expect(validate(F.order(total: 2_500 + offBy)) == [])
    }

    @Test(arguments: [-2, 2, 1_000] as [Int64])
    func totalOffByMoreThanOneMinorUnitIsRejected(offBy: Int64) throws {
        let reasons = validate(F.order(total: 2_500 + offBy))
        #expect(F.codes(reasons) == ["totals_mismatch"])
        let message = try #require(reasons.first?.message)
        #expect(message.contains("25.00 USD"), "the message gives the expected total: \(message)")
    }

    @Test func includedTaxIsNotAddedButExclusiveTaxIs() {
        let lines = [F.line("1", "SKU-A", quantity: 2, tax: 300)]
        // Prices include the 3.00 tax: 20.00 + 5.00 = 25.00.
        #expect(validate(F.order(lines: lines, tax: 300, taxIncluded: true, total: 2_500)) == [])
        // The same figures with tax on top must total 28.00.
        #expect(F.codes(validate(F.order(lines: lines, tax: 300, taxIncluded: false, total: 2_500))) == ["totals_mismatch"])
        #expect(validate(F.order(lines: lines, tax: 300, taxIncluded: false, total: 2_800)) == [])
    }

    @Test func discountsAreSubtractedAndLineTaxCountsWhenTheOrderTaxIsMissing() {
        #expect(validate(F.order(discount: 300, total: 2_200)) == [])
        #expect(F.codes(validate(F.order(discount: 300, total: 2_500))) == ["totals_mismatch"])
        // Line taxes of 1.00 with an order-level tax of 0: the larger (1.00) is expected on top.
        let taxedLines = [F.line("1", "SKU-A", quantity: 2, tax: 100)]
        #expect(F.codes(validate(F.order(lines: taxedLines, tax: 0, total: 2_500))) == ["totals_mismatch"])
        #expect(validate(F.order(lines: taxedLines, tax: 0, total: 2_600)) == [])
    }

    @Test func unsupportedCurrencyIsRejected() throws {
        let gbp = F.currency("GBP")
        let order = F.order(lines: [F.line("1", "SKU-A", currency: gbp)], currency: gbp)
        let reasons = validate(order)
        #expect(F.codes(reasons) == ["currency_unsupported"])
        #expect(try #require(reasons.first).message.contains("GBP"))
        let eur = F.currency("EUR")
        #expect(validate(F.order(lines: [F.line("1", "SKU-A", currency: eur)], currency: eur)) == [])
    }

    @Test func emptyPickupLocationIsRejected() {
        #expect(F.codes(validate(F.order(pickupLocation: ""))) == ["pickup_location_invalid"])
        #expect(validate(F.order(pickupLocation: "STORE-NYC")) == [])
    }

    @Test func incompleteAddressIsRejectedWithItsProblem() throws {
        let reasons = validate(F.order(shippingAddress: F.address(postalCode: nil)))
        #expect(F.codes(reasons) == ["address_incomplete"])
        #expect(try #require(reasons.first).message == "shipping address: postal code is missing (required in US)")
    }

    @Test func everyBrokenRuleIsReportedInAStableOrder() {
        let gbp = F.currency("GBP")
        let order = F.order(
            lines: [
                F.line("1", "SKU-GHOST", currency: gbp), F.line("2", "SKU-OFF", currency: gbp),
                F.line("3", "SKU-SOON", currency: gbp), F.line("4", "SKU-NOUS", currency: gbp),
            ],
            total: 99, currency: gbp, shippingAddress: F.address(postalCode: "ABCDE", region: nil))
        let reasons = validate(order)
        #expect(
            F.codes(reasons) == [
                "currency_unsupported", "sku_unknown", "sku_not_sellable", "sku_not_launched", "destination_blocked",
                "totals_mismatch", "address_incomplete", "address_incomplete",
            ])
        #expect(reasons.filter { $0.code == "address_incomplete" }.map(\.message) == [
            "shipping address: postal code 'ABCDE' is not valid in US",
            "shipping address: state or region is missing (required in US)",
        ])
        #expect(reasons.first { $0.code == "sku_not_sellable" }?.message.contains("line 2") == true)
    }

    // MARK: AddressRules

    @Test func completeAddressesHaveNoProblems() {
        #expect(AddressRules.problems(F.address()) == [])
        #expect(AddressRules.problems(F.address(postalCode: "11201-1234")) == [], "ZIP+4")
        #expect(AddressRules.problems(F.address(postalCode: " 11201 ")) == [], "surrounding spaces are trimmed")
        #expect(AddressRules.problems(F.address(country: "GB", postalCode: "sw1a 1aa", region: nil, city: "London")) == [])
        #expect(AddressRules.problems(F.address(country: "DE", postalCode: "20095", region: nil, city: "Hamburg")) == [])
        #expect(AddressRules.problems(F.address(country: "IE", postalCode: nil, region: nil, city: "Dublin")) == [],
            "Ireland needs no postal code")
        #expect(AddressRules.problems(F.address(country: "IE", postalCode: "D02 X285", region: nil, city: "Dublin")) == [],
            "a country without a pattern takes any postal code")
    }

    @Test func missingUSPostalCodeIsAProblem() {
        #expect(AddressRules.problems(F.address(postalCode: nil)) == ["postal code is missing (required in US)"])
        #expect(AddressRules.problems(F.address(postalCode: "   ")) == ["postal code is missing (required in US)"])
        #expect(AddressRules.problems(F.address(country: "DE", postalCode: nil, region: nil)) == ["postal code is missing (required in DE)"])
    }

    @Test(arguments: ["1234", "123456", "1120A", "11201-12", "11201 1234"])
    func malformedUSZipIsAProblem(zip: String) {
        #expect(AddressRules.problems(F.address(postalCode: zip)) == ["postal code '\(zip)' is not valid in US"])
    }

    @Test func missingRegionIsAProblemWhereCarriersNeedIt() {
        #expect(AddressRules.problems(F.address(region: nil)) == ["state or region is missing (required in US)"])
        #expect(AddressRules.problems(F.address(region: "  ")) == ["state or region is missing (required in US)"])
        #expect(AddressRules.problems(F.address(country: "DE", postalCode: "20095", region: nil)) == [], "not needed in DE")
    }

    @Test func missingNameStreetAndCityAreEachAProblem() {
        let address = F.address(name: " ", lines: ["", "  "], city: "")
        #expect(AddressRules.problems(address) == ["name is missing", "street is missing", "city is missing"])
        #expect(AddressRules.problems(F.address(lines: ["", "Apt 4"])) == [], "any non-empty street line will do")
    }

    // MARK: IntakeStage through StageDriver

    @Test func validOrderIsPlacedUnderItsDeterministicOrderId() throws {
        var driver = driver()
        let order = F.order()
        let input = F.envelope("in-1", try F.inbound(order).event)

        let result = driver.handle(input, now: F.now)
        #expect(result.kind == .processed)
        try #require(result.outputs.count == 1)
        guard case .orderPlaced(let placed) = result.outputs[0].envelope.event else {
            Issue.record("expected OrderPlaced, got \(result.outputs[0].envelope.event)")
            return
        }
        let orderId = DeterministicID.orderID(channel: "web", externalOrderID: "W-1001")
        #expect(placed.orderId == orderId)
        #expect(placed == OrderPlaced(order: order), "the placed order is the payload, unchanged")
        #expect(result.outputs[0].topic == OrderPlaced.topic)
        #expect(result.outputs[0].envelope.key == orderId)
        #expect(result.outputs[0].envelope.causationID == "in-1")
        #expect(result.stateRecords.isEmpty, "intake is stateless")
        #expect(result.idempotency?.key == "intake/web/W-1001", "dedupe is by channel and external order id")
    }

    @Test func brokenOrderIsRejectedWithEveryReason() throws {
        var driver = driver()
        let order = F.order(lines: [F.line("1", "SKU-OFF"), F.line("2", "SKU-GHOST")], total: 1)
        let result = driver.handle(F.envelope("in-1", try F.inbound(order).event), now: F.now)
        #expect(result.kind == .processed, "a rejection is a business outcome, not a failure")
        try #require(result.outputs.count == 1)
        #expect(result.outputs[0].topic == OrderRejected.topic)
        guard case .orderRejected(let rejected) = result.outputs[0].envelope.event else {
            Issue.record("expected OrderRejected, got \(result.outputs[0].envelope.event)")
            return
        }
        #expect(rejected.orderId == DeterministicID.orderID(channel: "web", externalOrderID: "W-1001"))
        #expect(rejected.channel == "web")
        #expect(rejected.externalOrderId == "W-1001")
        #expect(rejected.rejectedAt == F.now)
        #expect(F.codes(rejected.reasons) == ["sku_not_sellable", "sku_unknown", "totals_mismatch"])
    }

    @Test func productsAreLookedUpInTheCatalogTable() throws {
        var driver = StageDriver(stage: IntakeStage(rules: rules))
        let input = F.envelope("in-1", try F.inbound(F.order()).event)
        let result = driver.handle(input, now: F.now)
        guard case .orderRejected(let rejected)? = F.events(result).first else {
            Issue.record("without a catalog the SKU is unknown: expected a rejection, got \(F.events(result))")
            return
        }
        #expect(F.codes(rejected.reasons) == ["sku_unknown"])
    }

    @Test func resentOrderIsADuplicateWhateverItsEventId() throws {
        var driver = driver()
        let order = F.order()
        let stage = IntakeStage(rules: rules)
        let first = F.envelope("webhook-attempt-1", try F.inbound(order).event)
        let again = F.envelope("webhook-attempt-2", try F.inbound(order).event)
        #expect(stage.idempotencyKey(for: first) == "web/W-1001")
        #expect(stage.idempotencyKey(for: again) == stage.idempotencyKey(for: first))

        #expect(driver.handle(first, now: F.now).kind == .processed)
        let duplicate = driver.handle(again, offset: 1, now: F.now)
        #expect(duplicate.kind == .duplicate)
        #expect(duplicate.outputs.isEmpty)

        // Even a changed payload under the same business identity is the same order.
        var edited = order
        edited.lines[0].quantity = 3
        edited.totals.total = F.money(3_500)
        #expect(driver.handle(F.envelope("webhook-attempt-3", try F.inbound(edited).event), offset: 2, now: F.now).kind == .duplicate)

        // Another order of the same channel is not.
        let other = F.order(externalOrderId: "W-1002")
        #expect(driver.handle(F.envelope("webhook-other", try F.inbound(other).event), offset: 3, now: F.now).kind == .processed)
    }

    @Test func unreadablePayloadIsDeadLetteredAndNotRemembered() throws {
        var driver = driver()
        let garbage = InboundChannelOrder(
            channel: "web", format: .canonical, externalOrderId: "W-1001", payload: Data("{\"channel\": ".utf8), receivedAt: F.now)
        let result = driver.handle(F.envelope("in-bad", garbage.event), now: F.now)
        let failure = try #require(F.failure(result))
        guard case .rejected(let reason) = failure else {
            Issue.record("expected .rejected, got \(failure)")
            return
        }
        #expect(reason.hasPrefix("canonical payload:"))
        #expect(result.outputs.isEmpty)
        #expect(result.idempotency == nil)

        // The key was not recorded: the corrected order under the same identity is processed.
        let fixed = F.envelope("in-fixed", try F.inbound(F.order()).event)
        #expect(driver.handle(fixed, offset: 1, now: F.now).kind == .processed)
    }

    @Test func payloadThatFailsTheShapeCheckIsDeadLettered() throws {
        var order = F.order()
        order.lines = []
        var driver = driver()
        let result = driver.handle(F.envelope("in-1", try F.inbound(order).event), now: F.now)
        guard case .rejected(let reason)? = F.failure(result) else {
            Issue.record("expected a rejection, got \(result.kind)")
            return
        }
        #expect(reason.contains("lines"))
    }

    @Test func recordKeyedForAnotherOrderIsRejected() throws {
        var driver = driver()
        let order = F.order(externalOrderId: "W-1001")
        let mismatched = try F.inbound(order, externalOrderId: "W-9999")
        let result = driver.handle(F.envelope("in-1", mismatched.event), now: F.now)
        guard case .rejected(let reason)? = F.failure(result) else {
            Issue.record("expected a rejection, got \(result.kind)")
            return
        }
        #expect(reason.contains("web/W-1001"))
        #expect(reason.contains("web/W-9999"))
        #expect(result.outputs.isEmpty)

        let otherChannel = try F.inbound(order, channel: "shopify")
        guard case .rejected? = F.failure(driver.handle(F.envelope("in-2", otherChannel.event), offset: 1, now: F.now)) else {
            Issue.record("a record of another channel must be rejected too")
            return
        }
    }

    /// A brand with several Shopify shops: the gateway writes each shop's orders under
    /// the shop's channel (the body names no shop), and intake places them there.
    @Test func shopifyOrderTakesTheChannelTheGatewayChoseForItsShop() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let body = try Data(contentsOf: root.appendingPathComponent("Tests/ContractsTests/Fixtures/shopify_orders_create.json"))
        var driver = driver()
        for (offset, channel) in ["shopify-eu", "shopify"].enumerated() {
            let inbound = InboundChannelOrder(channel: channel, format: .shopifyOrder, externalOrderId: "5678901234567", payload: body, receivedAt: F.now)
            let result = driver.handle(F.envelope("in-\(channel)", inbound.event), offset: Int64(offset), now: F.now)
            #expect(result.kind == .processed, "shop \(channel): \(result.kind)")
            let orderId = DeterministicID.orderID(channel: channel, externalOrderID: "5678901234567")
            switch F.events(result).first {
            case .orderPlaced(let placed)?: #expect(placed.orderId == orderId && placed.channel == channel)
            case .orderRejected(let rejected)?: #expect(rejected.orderId == orderId && rejected.channel == channel)
            case let other: Issue.record("expected the order placed or rejected under \(channel), got \(String(describing: other))")
            }
        }
    }

    @Test func otherEventTypesAreRejected() {
        var driver = driver()
        let result = driver.handle(F.envelope("in-1", F.placed().event), now: F.now)
        guard case .rejected(let reason)? = F.failure(result) else {
            Issue.record("expected a rejection, got \(result.kind)")
            return
        }
        #expect(reason.contains("oms.order.placed"))
    }

    // MARK: Channel change notifications

    static func amazonChange(type: String, reason: String, status: String) -> InboundChannelOrder {
        let body = """
            {"NotificationType": "ORDER_CHANGE", "EventTime": "2026-03-01T11:30:00Z",
             "Payload": {"OrderChangeNotification": {"AmazonOrderId": "902-1", "OrderChangeType": "\(type)",
               "OrderChangeTrigger": {"TimeOfOrderChange": "2026-03-01T11:29:00Z", "ChangeReason": "\(reason)"},
               "Summary": {"OrderStatus": "\(status)", "OrderItems": [{"OrderItemId": "1", "SellerSKU": "SKU-A", "Quantity": 1}]}}}}
            """
        return InboundChannelOrder(
            channel: "amazon", format: .amazonOrderChange, externalOrderId: "902-1", payload: Data(body.utf8), receivedAt: F.now)
    }

    @Test func buyerCancelBecomesACancelCommandAndStatusChangesAreConsumed() throws {
        var driver = driver()
        let cancel = F.envelope("n-1", Self.amazonChange(type: "BuyerRequestedChange", reason: "Buyer Requested Cancel", status: "Unshipped").event)
        let result = driver.handle(cancel, now: F.now)
        #expect(result.kind == .processed)
        guard case .cancelOrder(let command)? = F.events(result).first else {
            Issue.record("expected CancelOrder, got \(F.events(result))")
            return
        }
        #expect(command.orderId == DeterministicID.orderID(channel: "amazon", externalOrderID: "902-1"))
        #expect(command.reason.code == "buyer_requested_cancel")
        #expect(result.outputs.first?.topic == CancelOrder.topic)

        // Change notifications repeat the order's key, so they dedupe by event id.
        let status = F.envelope("n-2", Self.amazonChange(type: "OrderStatusChange", reason: "Order status changed", status: "Shipped").event)
        #expect(IntakeStage(rules: rules).idempotencyKey(for: status) == "n-2")
        let statusResult = driver.handle(status, offset: 1, now: F.now)
        #expect(statusResult.kind == .processed, "a second notification for the order is not a duplicate")
        #expect(statusResult.outputs.isEmpty)
        #expect(driver.handle(status, offset: 2, now: F.now).kind == .duplicate)
    }
}
