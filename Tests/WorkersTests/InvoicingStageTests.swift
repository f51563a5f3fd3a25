import Contracts
import Foundation
import Invoicing
import Testing
import Workers

private typealias F = PipelineFixtures

/// The invoicing stages as pure functions: `InvoiceDrafting` (an invoice per captured
/// shipment worth exactly its capture, a credit request per refund) and
/// `InvoiceNumbering` (gap-free numbers per series, replays answered with the same
/// documents, credit notes against the order's invoices, oldest first).
@Suite struct InvoicingStageTests {
    static let table = try! TaxTable.parse(
        """
        country,region,tax_class,rate_bp,category,prices,rounding
        US,,standard,500,S,exclusive,per_line
        US,,zero,0,Z,,
        US,NY,standard,400,S,,
        DE,,standard,1900,S,inclusive,per_invoice
        DE,,reduced,700,S,,
        DE,,zero,0,Z,,
        """, file: "test")

    static func entity(_ id: String, country: String, markets: [String] = []) -> LegalEntity {
        LegalEntity(
            id: id, name: "Brand \(id.uppercased())", taxId: id == "de" ? "DE123456789" : "NY-ST-1234567",
            address: Address(name: "Brand", lines: ["1 Main St"], city: "City", postalCode: "10001", country: try! CountryCode(country)),
            markets: markets, invoicePrefix: id.uppercased(), creditNotePrefix: "\(id.uppercased())C")
    }

    static let rules = InvoicingRules(entities: [entity("de", country: "DE", markets: ["DE", "AT"]), entity("us", country: "US")], taxClasses: ["SKU-B": "reduced"])
    let drafting = InvoiceDrafting(rules: InvoicingStageTests.rules, table: InvoicingStageTests.table)

    /// Two lines with New York's 4 % charged by the channel, exclusive prices.
    static func usOrder() -> OrderPlaced {
        F.placed(F.order(
            lines: [F.line("1", "SKU-A", quantity: 2, price: 1_000, tax: 80), F.line("2", "SKU-B", quantity: 1, price: 2_501, tax: 100)],
            shipping: 500, tax: 180))
    }

    static func shipment(_ id: String, _ order: OrderPlaced, _ lines: [(String, String, Int)]) -> ShipmentCreated {
        ShipmentCreated(
            shipmentId: id, orderId: order.orderId, location: "WH-1", carrier: "ups", service: "ground", trackingNumber: "T-\(id)", labelRef: "l",
            lines: lines.map { F.shipmentLine($0.0, $0.1, $0.2) }, promisedDate: F.now, estimatedDelivery: F.now, atRisk: false, createdAt: F.now)
    }

    static func captured(_ shipment: ShipmentCreated, amount: Int64, currency: CurrencyCode = .usd) -> PaymentCaptured {
        PaymentCaptured(
            orderId: shipment.orderId, commandId: "cap-\(shipment.shipmentId)", shipmentId: shipment.shipmentId,
            amount: Money(minorUnits: amount, currency: currency), provider: "stripe", capturedAt: F.now)
    }

    func run(_ events: [Event], orderId: String) throws -> (state: InvoicingState?, requests: [InvoiceRequested], credits: [CreditNoteRequested]) {
        var state: InvoicingState?
        var requests: [InvoiceRequested] = []
        var credits: [CreditNoteRequested] = []
        for event in events {
            let step = try drafting.advance(state, orderId: orderId, on: event, now: F.now)
            if let next = step.state { state = next }
            for request in step.requests {
                if case .invoiceRequested(let r) = request { requests.append(r) }
                if case .creditNoteRequested(let c) = request { credits.append(c) }
            }
        }
        return (state, requests, credits)
    }

    @Test func anEntityThatInvoicesAtPaymentInvoicesAnOrderPaidAtCheckoutWholeWhenPlaced() throws {
        var us = Self.entity("us", country: "US")
        us.invoiceAt = .payment
        let drafting = InvoiceDrafting(rules: InvoicingRules(entities: [us]), table: Self.table)
        func run(_ events: [Event], orderId: String) throws -> [Event] {
            var state: InvoicingState?
            var requests: [Event] = []
            for event in events {
                let step = try drafting.advance(state, orderId: orderId, on: event, now: F.now)
                if let next = step.state { state = next }
                requests += step.requests
            }
            return requests
        }
        let base = Self.usOrder()
        var paidOrder = F.order(
            channel: "amazon", lines: base.lines, shipping: 500, tax: 180,
            payment: PaymentAuthorization(status: .captured, amount: base.totals.total, reference: "AMZ-1"))
        paidOrder.externalOrderId = "AMZ-1"
        let paid = F.placed(paidOrder)
        let shipment = Self.shipment("s-1", paid, [("1", "SKU-A", 2), ("2", "SKU-B", 1)])
        let refund = PaymentRefunded(
            orderId: paid.orderId, commandId: "ref-1", returnId: "r-1", amount: F.money(1_000), provider: "channel", refundedAt: F.now)
        let requests = try run([paid.event, shipment.event, Self.captured(shipment, amount: 1).event, refund.event], orderId: paid.orderId)
        let invoices = requests.compactMap { if case .invoiceRequested(let r) = $0 { r } else { nil } }
        #expect(invoices.count == 1, "one invoice, at placement; nothing more for its shipments")
        let invoice = try #require(invoices.first).document
        #expect(invoice.cause == "order:\(paid.orderId)")
        #expect(invoice.grossTotal == paid.totals.total, "worth what was paid: every line and the shipping")
        #expect(invoice.taxTotal.minorUnits == 180, "the channel's tax")
        #expect(requests.contains { if case .creditNoteRequested(let c) = $0 { c.amount == F.money(1_000) } else { false } })

        // An authorized order of the same entity is paid per capture: invoiced per capture.
        let authorized = Self.usOrder()
        let parcel = Self.shipment("s-2", authorized, [("1", "SKU-A", 2), ("2", "SKU-B", 1)])
        let perCapture = try run([authorized.event, parcel.event, Self.captured(parcel, amount: authorized.totals.total.minorUnits).event], orderId: authorized.orderId)
        let documents = perCapture.compactMap { if case .invoiceRequested(let r) = $0 { r.document } else { nil } }
        #expect(documents.map(\.cause) == ["shipment:s-2"])
        // The default entity invoices a paid order only as its money is captured.
        let byShipment = try self.run([paid.event, shipment.event], orderId: paid.orderId)
        #expect(byShipment.requests.isEmpty)
    }

    @Test func eachCapturedShipmentIsInvoicedForExactlyWhatWasCaptured() throws {
        let order = Self.usOrder()
        let amounts = OrderAmounts(lines: order.lines, totals: order.totals)
        let first = Self.shipment("s-1", order, [("1", "SKU-A", 1), ("2", "SKU-B", 1)])
        let second = Self.shipment("s-2", order, [("1", "SKU-A", 1)])
        let firstAmount = amounts.value(of: first.lines, after: [:]) + amounts.shipping
        let secondAmount = amounts.value(of: second.lines, after: ["1": 1])
        let result = try run(
            [order.event, first.event, Self.captured(first, amount: firstAmount).event, second.event, Self.captured(second, amount: secondAmount).event,
             Self.captured(first, amount: firstAmount).event],
            orderId: order.orderId)
        #expect(result.requests.count == 2, "a replayed capture asks for nothing")
        let invoices = result.requests.map(\.document)
        #expect(invoices.map(\.grossTotal.minorUnits) == [firstAmount, secondAmount])
        #expect(invoices.allSatisfy { $0.netTotal.minorUnits + $0.taxTotal.minorUnits == $0.grossTotal.minorUnits })
        #expect(firstAmount + secondAmount == order.totals.total.minorUnits)
        // The channel's 1.80 of tax, on the units that carried it; shipping was not taxed.
        #expect(invoices.map(\.taxTotal.minorUnits) == [40 + 100, 40])
        #expect(result.requests.allSatisfy { $0.legalEntity == "us" && $0.document.sequence == 0 && $0.document.number.isEmpty })
        #expect(invoices[0].lines.map(\.lineId).contains("shipping") || invoices[0].lines.count == 3, "shipping goes on the first invoice")
        #expect(invoices[0].cause == "shipment:s-1" && invoices[0].pricesIncludeTax == false)
        #expect(invoices[0].seller.name == "Brand US" && invoices[0].buyer.email == "ada@example.com")
        // Numbered, each passes the Peppol BIS 3.0 structural rules.
        var store = Store()
        for request in result.requests {
            let issued = try store.issue(request)
            let violations = PeppolCheck.check(try UBLDocument.xml(issued[0]))
            #expect(violations.isEmpty, "\(issued[0].number): \(violations)")
        }
    }

    @Test func anAddressChangedBeforeTheLabelIsTheOneInvoicedEvenWhenReadFirst() throws {
        let order = Self.usOrder()
        let moved = F.address(postalCode: "10002", lines: ["9 New St"], city: "New York")
        let change = ShippingAddressChanged(orderId: order.orderId, shippingAddress: moved, requestedBy: "customer", changedAt: F.now).event
        let first = Self.shipment("s-1", order, [("1", "SKU-A", 2), ("2", "SKU-B", 1)])
        let amount = order.totals.total.minorUnits
        for events in [[order.event, change], [change, order.event]] {
            let result = try run(events + [first.event, Self.captured(first, amount: amount).event], orderId: order.orderId)
            #expect(result.requests.first?.document.buyer.address == moved, "no billing address: the buyer is addressed where the goods go")
            #expect(result.requests.first?.legalEntity == "us")
        }
        #expect(InvoicingStage(rules: Self.rules).inputTopics.contains(ShippingAddressChanged.topic))
    }

    @Test func aCaptureReadBeforeItsShipmentOrOrderWaitsForThem() throws {
        let order = Self.usOrder()
        let shipment = Self.shipment("s-1", order, [("1", "SKU-A", 2), ("2", "SKU-B", 1)])
        let capture = Self.captured(shipment, amount: order.totals.total.minorUnits)
        let result = try run([capture.event, shipment.event, order.event], orderId: order.orderId)
        #expect(result.requests.count == 1 && result.requests[0].document.grossTotal == order.totals.total)
        #expect(result.state?.waiting == [] && result.state?.invoiced == ["s-1"])
    }

    @Test func euInclusivePricesWithoutChannelTaxAreTaxedFromTheTable() throws {
        let german = Address(name: "Käthe", lines: ["Hauptstr. 1"], city: "Berlin", postalCode: "10115", country: try CountryCode("DE"))
        let order = F.placed(F.order(
            lines: [F.line("1", "SKU-A", quantity: 1, price: 11_900, currency: .eur), F.line("2", "SKU-B", quantity: 3, price: 1_070, currency: .eur)],
            shipping: 0, taxIncluded: true, currency: .eur, shippingAddress: german))
        let shipment = Self.shipment("s-1", order, [("1", "SKU-A", 1), ("2", "SKU-B", 3)])
        let result = try run([order.event, shipment.event, Self.captured(shipment, amount: order.totals.total.minorUnits, currency: .eur).event], orderId: order.orderId)
        let invoice = try #require(result.requests.first?.document)
        #expect(result.requests.first?.legalEntity == "de")
        #expect(invoice.grossTotal.minorUnits == 11_900 + 3_210 && invoice.pricesIncludeTax)
        // 19 % within 119.00 and 7 % (the SKU's reduced class) within 32.10.
        #expect(Set(invoice.taxes.map(\.taxRateBasisPoints)) == [1_900, 700])
        #expect(invoice.taxes.first { $0.taxRateBasisPoints == 1_900 }?.taxAmount.minorUnits == 1_900)
        #expect(invoice.taxes.first { $0.taxRateBasisPoints == 700 }?.taxAmount.minorUnits == 210)
    }

    @Test func aRefundAsksForACreditNoteOfItsAmount() throws {
        let order = Self.usOrder()
        let refund = PaymentRefunded(
            orderId: order.orderId, commandId: "ref-1", returnId: "r-1", amount: F.money(1_234), provider: "stripe", refundedAt: F.now)
        let result = try run([order.event, refund.event], orderId: order.orderId)
        #expect(result.credits == [CreditNoteRequested(legalEntity: "us", orderId: order.orderId, cause: "refund:ref-1", amount: F.money(1_234), requestedAt: F.now)])
        #expect(throws: StageFailure.self) { _ = try drafting.advance(nil, orderId: order.orderId, on: refund.event, now: F.now) }
    }

    // MARK: Numbering

    /// The numbering stage's state as its changelog partition holds it.
    struct Store {
        var values: [String: Event] = [:]
        var issued: [Invoice] = []
        let numbering = InvoiceNumbering(rules: InvoicingStageTests.rules)

        func series(_ entity: String, _ name: String) -> InvoiceSeriesState? {
            if case .invoiceSeriesState(let s)? = values["\(entity)/\(name)"] { return s }
            return nil
        }

        func order(_ entity: String, _ orderId: String) -> InvoicedOrder? {
            if case .invoicedOrder(let o)? = values["\(entity)/order/\(orderId)"] { return o }
            return nil
        }

        /// Applies a step; `keep` of its state changes survive (a crash cuts the rest).
        mutating func apply(_ step: InvoiceNumbering.Step, keep: Int? = nil) {
            issued += step.issued
            for change in step.changes.prefix(keep ?? step.changes.count) {
                if case .put(let value) = change { values[change.key] = value }
            }
        }

        mutating func issue(_ request: InvoiceRequested, keep: Int? = nil) throws -> [Invoice] {
            let step = try numbering.issue(request, series: series, order: order(request.legalEntity, request.orderId))
            apply(step, keep: keep)
            return step.issued
        }

        mutating func credit(_ request: CreditNoteRequested, keep: Int? = nil) throws -> [Invoice] {
            let step = try numbering.credit(request, series: series, order: order(request.legalEntity, request.orderId))
            apply(step, keep: keep)
            return step.issued
        }
    }

    static func request(order: String, shipment: String, gross: Int64) -> InvoiceRequested {
        let line = InvoiceLine(
            lineId: "1", sku: "SKU-A", description: "SKU-A", quantity: 1, unitPrice: F.money(gross), netAmount: F.money(gross), taxCategory: "Z",
            taxRateBasisPoints: 0, taxAmount: F.money(0))
        let document = Invoice(
            invoiceId: "", number: "", kind: .invoice, legalEntity: "us", series: LegalEntity.invoiceSeries, sequence: 0, issuedAt: F.now,
            orderId: order, cause: "shipment:\(shipment)", seller: entity("us", country: "US").party, buyer: InvoiceParty(name: "Ada"),
            currency: .usd, pricesIncludeTax: false, rounding: .perLine, reverseCharge: false, lines: [line],
            taxes: [TaxSubtotal(taxCategory: "Z", taxRateBasisPoints: 0, taxableAmount: F.money(gross), taxAmount: F.money(0))],
            netTotal: F.money(gross), taxTotal: F.money(0), grossTotal: F.money(gross))
        return InvoiceRequested(legalEntity: "us", orderId: order, document: document, requestedAt: F.now)
    }

    @Test func numbersRunWithoutGapsAndAReplayGetsItsDocumentBack() throws {
        var store = Store()
        let first = try store.issue(Self.request(order: "o-1", shipment: "s-1", gross: 1_000))
        let second = try store.issue(Self.request(order: "o-2", shipment: "s-2", gross: 2_000))
        let third = try store.issue(Self.request(order: "o-1", shipment: "s-3", gross: 500))
        #expect((first + second + third).map(\.sequence) == [1, 2, 3])
        let year = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: F.now).year!
        #expect(first[0].number == "US-\(year)-000001" && first[0].invoiceId == "us/invoices/1")
        let before = store.values
        #expect(try store.issue(Self.request(order: "o-2", shipment: "s-2", gross: 2_000)) == second)
        #expect(store.values == before, "a replay changes no state")
        #expect(store.series("us", LegalEntity.invoiceSeries)?.last == 3)
    }

    @Test func aCrashBetweenTheSeriesAndTheOrderRecordGivesTheSameNumberAgain() throws {
        var store = Store()
        _ = try store.issue(Self.request(order: "o-1", shipment: "s-1", gross: 1_000))
        // Only the series record (the first change) reached the changelog.
        let lost = try store.issue(Self.request(order: "o-2", shipment: "s-2", gross: 2_000), keep: 1)
        let replayed = try store.issue(Self.request(order: "o-2", shipment: "s-2", gross: 2_000))
        #expect(replayed == lost)
        let next = try store.issue(Self.request(order: "o-3", shipment: "s-3", gross: 3_000))
        #expect(next.map(\.sequence) == [3])
        // Nothing reached it: the same number is taken again, as the output was deterministic.
        let unsaved = try store.issue(Self.request(order: "o-4", shipment: "s-4", gross: 4_000), keep: 0)
        #expect(try store.issue(Self.request(order: "o-4", shipment: "s-4", gross: 4_000)) == unsaved)
        #expect(Set(store.issued.map(\.number)).count == 4 && store.issued.map(\.sequence).max() == 4)
    }

    @Test func aRefundIsCreditedAgainstTheOrdersInvoicesOldestFirst() throws {
        var store = Store()
        let invoices = try store.issue(Self.request(order: "o-1", shipment: "s-1", gross: 1_000))
            + store.issue(Self.request(order: "o-1", shipment: "s-2", gross: 2_000))
        let credit = CreditNoteRequested(legalEntity: "us", orderId: "o-1", cause: "refund:r-1", amount: F.money(1_500), requestedAt: F.now)
        let notes = try store.credit(credit)
        #expect(notes.map(\.kind) == [.creditNote, .creditNote])
        #expect(notes.map(\.correctedInvoice) == invoices.map(\.number))
        #expect(notes.map(\.grossTotal.minorUnits) == [1_000, 500])
        #expect(notes.map(\.sequence) == [1, 2] && notes[0].number.hasPrefix("USC-"))
        #expect(try store.credit(credit) == notes, "a replayed refund credits nothing more")
        let tooMuch = CreditNoteRequested(legalEntity: "us", orderId: "o-1", cause: "refund:r-2", amount: F.money(1_501), requestedAt: F.now)
        #expect(throws: StageFailure.self) { _ = try store.credit(tooMuch) }
        let rest = try store.credit(CreditNoteRequested(legalEntity: "us", orderId: "o-1", cause: "refund:r-3", amount: F.money(1_500), requestedAt: F.now))
        #expect(rest.map(\.grossTotal.minorUnits) == [1_500] && rest[0].sequence == 3)
        let issued = store.issued.filter { $0.kind == .invoice }.map(\.grossTotal.minorUnits).reduce(0, +)
        let credited = Set(store.issued.filter { $0.kind == .creditNote }).map(\.grossTotal.minorUnits).reduce(0, +)
        #expect(issued - credited == 0)
    }
}
