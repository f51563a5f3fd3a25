import Contracts
import Foundation
import Invoicing

/// Drafts an invoice for each shipment whose payment was captured, and asks for credit
/// notes when money goes back (docs/ARCHITECTURE.md, *Invoices*).
///
/// Keyed by order (oms.invoicing.state keeps the facts an invoice needs), it writes
/// complete documents without numbers to oms.invoices.requests, keyed by legal entity:
/// ``InvoiceNumberingStage`` is the one writer of each entity's series. An invoice is
/// worth exactly what was captured for its shipment (the units' worth from
/// ``OrderAmounts``, shipping on the first), so invoices less credit notes always equal
/// money captured less money refunded.
public struct InvoicingStage: Stage {
    /// `invoicing`.
    public let name = "invoicing"
    /// Placed orders (the facts), shipments (their units), payment outcomes (captured:
    /// invoice; refunded: credit note) and accepted address changes (the ship-to printed).
    public let inputTopics = [OrderPlaced.topic, ShipmentCreated.topic, PaymentCaptured.topic, ShippingAddressChanged.topic]
    /// oms.invoicing.state.
    public let changelogTopic: String? = InvoicingState.topic
    /// The entities, tax table and classes.
    public let rules: InvoicingRules
    /// The tax table (read at start-up; ``BusinessRules/validate()`` checked it); nil
    /// without entities.
    public let table: TaxTable?
    /// FX reference rates, for entities booking in another currency.
    public let rates: FXRates?

    /// Creates the stage, reading the tax table and FX file the rules name.
    public init(rules: InvoicingRules) {
        self.rules = rules
        table = rules.entities.isEmpty ? nil : try? TaxTable.load(path: rules.taxTable)
        rates = rules.fxRates.flatMap { try? FXRates.load(path: $0) }
    }

    /// Folds the input into the order's facts; drafts what became due.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard let orderId = InvoiceDrafting.orderId(of: input.event) else {
            if InvoiceDrafting.ignored(input.event) { return .none }
            throw .rejected("invoicing does not handle \(input.envelope.type)")
        }
        var current: InvoicingState?
        if case .invoicingState(let stored) = state.value(orderId) { current = stored }
        guard let table else {
            if rules.entities.isEmpty { return .none }
            throw .rejected("invoicing.taxTable \(rules.taxTable) could not be read")
        }
        let drafting = InvoiceDrafting(rules: rules, table: table, rates: rates)
        let step = try drafting.advance(current, orderId: orderId, on: input.event, now: input.now)
        var outcome = StageOutcome(outputs: step.requests.map { StageOutput($0) })
        if let next = step.state, next != current { outcome.stateChanges = [.put(next.event)] }
        return outcome
    }
}

/// The invoicing stage's rules as pure functions.
public struct InvoiceDrafting: Sendable {
    /// Entities, table, classes.
    public var rules: InvoicingRules
    /// Tax rates.
    public var table: TaxTable
    /// FX rates for book currencies.
    public var rates: FXRates?

    /// Drafting with these rules.
    public init(rules: InvoicingRules, table: TaxTable, rates: FXRates? = nil) {
        self.rules = rules
        self.table = table
        self.rates = rates
    }

    /// What one input does to an order's invoicing.
    public struct Step: Sendable, Hashable {
        /// The new state (nil: unchanged).
        public var state: InvoicingState?
        /// Invoice and credit note requests.
        public var requests: [Event]
    }

    static func orderId(of event: Event) -> String? {
        switch event {
        case .orderPlaced(let e): e.orderId
        case .shipmentCreated(let e): e.orderId
        case .paymentCaptured(let e): e.orderId
        case .paymentRefunded(let e): e.orderId
        case .shippingAddressChanged(let e): e.orderId
        default: nil
        }
    }

    /// Inputs that call for no document: failed outcomes, voids, and order changes other
    /// than a new address (cancelled units are simply never captured, so never invoiced).
    static func ignored(_ event: Event) -> Bool {
        switch event {
        case .paymentCaptureFailed, .paymentRefundFailed, .paymentVoided, .paymentVoidFailed, .orderCancelled, .cancelRejected, .orderLinesCancelled,
            .orderChangeRejected:
            true
        default: false
        }
    }

    /// Applies one input.
    public func advance(_ current: InvoicingState?, orderId: String, on event: Event, now: Date) throws(StageFailure) -> Step {
        var state = current ?? InvoicingState(orderId: orderId, lines: [], shipments: [], waiting: [], invoiced: [], updatedAt: now)
        var requests: [Event] = []
        switch event {
        case .orderPlaced(let order):
            guard state.totals == nil else { return Step(state: nil, requests: []) }
            state.channel = order.channel
            state.lines = order.lines
            state.totals = order.totals
            // An address change read first is the newer address.
            state.shipTo = state.shipTo ?? order.shippingAddress
            state.billTo = order.billingAddress
            state.buyerEmail = order.customer.email
            if order.payment.status == .captured, let entity = rules.entity(for: order.shippingAddress.country), entity.invoiceAt == .payment {
                requests.append(try invoiceWholeOrder(&state, entity: entity, now: now))
            }
        case .shippingAddressChanged(let change):
            // Accepted before any label, so before any shipment's invoice; the country
            // (and so the entity and the taxes) cannot change.
            state.shipTo = change.shippingAddress
        case .shipmentCreated(let shipment):
            guard !state.shipments.contains(where: { $0.shipmentId == shipment.shipmentId }) else { return Step(state: nil, requests: []) }
            state.shipments.append(ParcelRecord(shipmentId: shipment.shipmentId, location: shipment.location, lines: shipment.lines))
        case .paymentCaptured(let captured):
            guard !state.invoiced.contains(captured.shipmentId), !state.waiting.contains(captured.shipmentId) else { return Step(state: nil, requests: []) }
            state.waiting.append(captured.shipmentId)
        case .paymentRefunded(let refund):
            guard state.totals != nil else {
                throw .rejected("refund \(refund.commandId) read before order \(orderId): nothing to credit it against yet")
            }
            guard let entity = rules.entity(for: state.shipTo?.country) else { return Step(state: nil, requests: []) }
            requests.append(CreditNoteRequested(
                legalEntity: entity.id, orderId: orderId, cause: "refund:\(refund.commandId)", amount: refund.amount, requestedAt: refund.refundedAt
            ).event)
            return Step(state: nil, requests: requests)
        default:
            return Step(state: nil, requests: [])
        }
        requests += try invoiceDue(&state, now: now)
        state.updatedAt = now
        return Step(state: state, requests: requests)
    }

    /// Drafts the invoices of captured shipments whose order and units are known now.
    private func invoiceDue(_ state: inout InvoicingState, now: Date) throws(StageFailure) -> [Event] {
        guard let totals = state.totals, let shipTo = state.shipTo else { return [] }
        var requests: [Event] = []
        for shipmentId in state.waiting {
            guard let parcel = state.shipments.first(where: { $0.shipmentId == shipmentId }) else { continue }
            state.waiting.removeAll { $0 == shipmentId }
            if state.invoiced.contains(Self.wholeOrder) {
                // The order was invoiced whole when it was paid.
                state.invoiced.append(shipmentId)
                continue
            }
            guard let entity = rules.entity(for: shipTo.country) else {
                // No entity sells to that country: nothing to number, nothing to wait for.
                state.invoiced.append(shipmentId)
                continue
            }
            let earlier = state.shipments.filter { state.invoiced.contains($0.shipmentId) }
            let document = try draft(state, parcel: parcel, earlier: earlier, totals: totals, shipTo: shipTo, entity: entity, cause: "shipment:\(parcel.shipmentId)", now: now)
            state.invoiced.append(shipmentId)
            requests.append(InvoiceRequested(legalEntity: entity.id, orderId: state.orderId, document: document, requestedAt: now).event)
        }
        return requests
    }

    /// The marker in ``InvoicingState/invoiced`` of an order invoiced whole at payment.
    static let wholeOrder = "order"

    /// The invoice of an order paid at checkout, for an entity that invoices at payment
    /// (``InvoiceMoment/payment``): every line and the shipping, worth the order's total.
    private func invoiceWholeOrder(_ state: inout InvoicingState, entity: LegalEntity, now: Date) throws(StageFailure) -> Event {
        let everything = ParcelRecord(
            shipmentId: Self.wholeOrder, location: "", lines: state.lines.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) })
        let document = try draft(
            state, parcel: everything, earlier: [], totals: state.totals!, shipTo: state.shipTo!, entity: entity, cause: "order:\(state.orderId)", now: now)
        state.invoiced.append(Self.wholeOrder)
        return InvoiceRequested(legalEntity: entity.id, orderId: state.orderId, document: document, requestedAt: now).event
    }

    /// The shipment's invoice, without its number. Each line (shipping included, on the
    /// first invoice) is worth what was captured for its units (``OrderAmounts``), so the
    /// invoice's gross is the capture. The tax within it: for tax-exclusive prices what
    /// the units were charged above their net price (the channel's tax, with any
    /// order-level tax shared out as the capture shares it); for tax-inclusive prices the
    /// channel's line tax, or the table's rate when the channel gave none.
    func draft(
        _ state: InvoicingState, parcel: ParcelRecord, earlier: [ParcelRecord], totals: OrderTotals, shipTo: Address, entity: LegalEntity, cause: String,
        now: Date
    ) throws(StageFailure) -> Invoice {
        let currency = totals.total.currency
        var worths = Self.lineWorths(state, parcel: parcel, earlier: earlier, totals: totals)
        if earlier.isEmpty, let shipping = Self.shippingWorth(state, totals: totals) { worths.append(shipping) }
        let quantities = worths.map { worth in
            let n = Int64(worth.line.quantity)
            let unit = (worth.gross + n - 1) / n
            let line = OrderLine(
                lineId: worth.line.lineId, sku: worth.line.sku, quantity: worth.line.quantity, unitPrice: Money(minorUnits: unit, currency: currency),
                discount: Money(minorUnits: unit * n - worth.gross, currency: currency), tax: Money(minorUnits: worth.tax ?? 0, currency: currency))
            return InvoicedQuantity(line: line, quantity: worth.line.quantity, description: worth.line.sku == Self.shippingSKU ? "Shipping" : worth.line.sku)
        }
        // A supply with no tax within it (exclusive prices, nothing charged above net) is
        // zero-rated; the others take their class, `standard` by default.
        let untaxed = Set(worths.filter { !totals.taxIncluded && $0.tax == 0 }.map(\.line.lineId))
        let classes = rules.taxClasses
        let classOf = Dictionary(worths.map { ($0.line.sku, untaxed.contains($0.line.lineId)) }, uniquingKeysWith: { $0 && $1 })
        let request = ShipmentInvoiceRequest(
            legalEntity: entity.id, series: LegalEntity.invoiceSeries, seller: entity.party,
            buyer: InvoiceParty(name: (state.billTo ?? shipTo).name, address: state.billTo ?? shipTo, email: state.buyerEmail),
            orderId: state.orderId, cause: cause, issuedAt: now, shipTo: shipTo, lines: quantities,
            currency: currency, pricesIncludeTax: true,
            taxClass: { sku in classOf[sku] == true ? InvoicingRules.zeroClass : classes[sku] ?? TaxTable.standardClass },
            bookCurrency: try bookCurrency(entity, currency: currency, on: now))
        do {
            var draft = try Invoice.draft(forShipment: request, table: table)
            draft.pricesIncludeTax = totals.taxIncluded
            return draft
        } catch {
            throw .rejected("invoice for \(cause): \(error.description)")
        }
    }

    /// What a line of the invoice is worth (what its units were captured for) and the tax
    /// within that, when it is known here (nil: the table's rate, taken out of the gross).
    typealias Worth = (line: OrderLine, gross: Int64, tax: Int64?)

    /// The shipment's lines: each worth what its units were captured for after the units
    /// of earlier shipments; for tax-exclusive prices the tax is what was charged above
    /// their net price, for tax-inclusive prices the channel's line tax, shared the same way.
    static func lineWorths(_ state: InvoicingState, parcel: ParcelRecord, earlier: [ParcelRecord], totals: OrderTotals) -> [Worth] {
        let amounts = OrderAmounts(lines: state.lines, totals: totals)
        var counted = unitsByLine(earlier.flatMap(\.lines))
        var worths: [Worth] = []
        for shipped in parcel.lines where shipped.quantity > 0 {
            guard let ordered = state.lines.first(where: { $0.lineId == shipped.lineId }) else { continue }
            let before = counted[shipped.lineId, default: 0]
            counted[shipped.lineId, default: 0] += shipped.quantity
            let gross = amounts.value(lineId: shipped.lineId, units: shipped.quantity, after: before)
            // The units' share of an amount of the whole line, as OrderAmounts shares its total.
            func share(_ amount: Int64) -> Int64 {
                let quantity = Int64(max(ordered.quantity, 1))
                let upTo = { (units: Int) in quantity.dividingFullWidth(amount.multipliedFullWidth(by: Int64(min(units, ordered.quantity)))).quotient }
                return upTo(before + shipped.quantity) - upTo(before)
            }
            let tax: Int64? = totals.taxIncluded
                ? (ordered.tax.minorUnits > 0 ? share(ordered.tax.minorUnits) : nil)
                : max(0, gross - share(ordered.unitPrice.minorUnits * Int64(ordered.quantity) - ordered.discount.minorUnits))
            worths.append((OrderLine(lineId: shipped.lineId, sku: shipped.sku, quantity: shipped.quantity, unitPrice: ordered.unitPrice,
                                     discount: ordered.discount, tax: ordered.tax), gross, tax))
        }
        return worths
    }

    /// Shipping, on the first invoice: worth the shipping charge. For tax-exclusive prices
    /// the capture spread any shipping tax over the goods, so none is left in it; for
    /// tax-inclusive prices the order's tax beyond its lines' is shipping's.
    static func shippingWorth(_ state: InvoicingState, totals: OrderTotals) -> Worth? {
        guard totals.shipping.minorUnits > 0 else { return nil }
        let currency = totals.total.currency
        let lineTax = state.lines.reduce(Int64(0)) { $0 + $1.tax.minorUnits }
        let tax: Int64? = totals.taxIncluded ? (totals.tax.minorUnits > lineTax ? totals.tax.minorUnits - lineTax : nil) : 0
        return (OrderLine(lineId: "shipping", sku: shippingSKU, quantity: 1, unitPrice: totals.shipping, discount: .zero(currency), tax: .zero(currency)),
                totals.shipping.minorUnits, tax)
    }

    /// The SKU the shipping line is invoiced under (its tax class in `taxClasses`).
    static let shippingSKU = "shipping"

    private func bookCurrency(_ entity: LegalEntity, currency: CurrencyCode, on day: Date) throws(StageFailure) -> BookCurrency? {
        guard let code = entity.bookCurrency, code != currency.code else { return nil }
        guard let book = try? CurrencyCode(code), let rates, rates.base == book else {
            throw .rejected("entity \(entity.id) books in \(code) but invoicing.fxRates has no rates into it")
        }
        // Units of the book currency per unit of the order's: the table's own rate.
        guard let rate = rates.rate(for: currency, on: ReportFold.dayKey(day)) else {
            throw .rejected("no \(currency.code) → \(code) rate on or before \(ReportFold.dayKey(day)) in \(rules.fxRates ?? "invoicing.fxRates")")
        }
        do {
            return try BookCurrency(currency: book, rate: "\(rate.value)")
        } catch {
            throw .rejected("\(error.description)")
        }
    }
}

/// Numbers the documents of the legal entities it owns: each entity's series lives in
/// one partition of oms.invoices.requests, so this stage is the one writer of its
/// numbers, and a number is taken in the same step that writes the document
/// (`InvoiceIssued`, compacted oms.invoices) and the series' new last number
/// (oms.invoicing.series): in exactly-once mode they commit together. In at-least-once
/// a crash keeps a prefix of the step's writes to the changelog partition (the series
/// record first, then the order's `InvoicedOrder`); a replay finds the document in the
/// order's record, or its number among the series' recent assignments, and writes the
/// same document again. So numbers run 1, 2, 3… per series with no gap and no repeat.
public struct InvoiceNumberingStage: Stage {
    /// `invoice-numbering`.
    public let name = "invoice-numbering"
    /// oms.invoices.requests.
    public let inputTopics = [InvoiceRequested.topic]
    /// oms.invoicing.series: the series and, per order, its documents.
    public let changelogTopic: String? = InvoiceSeriesState.topic
    /// The entities (their prefixes).
    public let rules: InvoicingRules

    /// Creates the stage.
    public init(rules: InvoicingRules) {
        self.rules = rules
    }

    /// Numbers a requested invoice, or credits the order's invoices.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        let numbering = InvoiceNumbering(rules: rules)
        let step: InvoiceNumbering.Step
        switch input.event {
        case .invoiceRequested(let request):
            step = try numbering.issue(request, series: series(state), order: order(state, request.legalEntity, request.orderId))
        case .creditNoteRequested(let request):
            step = try numbering.credit(request, series: series(state), order: order(state, request.legalEntity, request.orderId))
        default:
            throw .rejected("invoice-numbering does not handle \(input.envelope.type)")
        }
        return StageOutcome(outputs: step.issued.map { StageOutput(InvoiceIssued(orderId: $0.orderId, invoice: $0).event) }, stateChanges: step.changes)
    }

    private func series(_ state: StageState) -> (String, String) -> InvoiceSeriesState? {
        { entity, series in
            if case .invoiceSeriesState(let stored) = state.value("\(entity)/\(series)") { return stored }
            return nil
        }
    }

    private func order(_ state: StageState, _ entity: String, _ orderId: String) -> InvoicedOrder? {
        if case .invoicedOrder(let stored) = state.value("\(entity)/order/\(orderId)") { return stored }
        return nil
    }
}

/// The numbering stage's rules as pure functions.
public struct InvoiceNumbering: Sendable {
    /// Entities and prefixes.
    public var rules: InvoicingRules
    /// How many recent assignments a series record keeps: a crash can cut off at most the
    /// last request's documents (an order's credit notes, one per invoice), and the
    /// replay finds their numbers here.
    static let listed = 50

    /// Numbering with these rules.
    public init(rules: InvoicingRules) {
        self.rules = rules
    }

    /// What one request comes to.
    public struct Step: Sendable, Hashable {
        /// Documents issued (again, for a replay).
        public var issued: [Invoice]
        /// The series and the order's documents.
        public var changes: [StateChange]
    }

    /// Numbers `request`'s document; a cause the order already has gets its document back.
    public func issue(
        _ request: InvoiceRequested, series: (String, String) -> InvoiceSeriesState?, order: InvoicedOrder?
    ) throws(StageFailure) -> Step {
        let document = request.document
        if let issued = order?.documents.first(where: { $0.cause == document.cause }) { return Step(issued: [issued], changes: []) }
        var counters = Counters(rules: rules, entity: request.legalEntity, stored: series)
        let invoice = try counters.number(document)
        var documents = order ?? InvoicedOrder(legalEntity: request.legalEntity, orderId: request.orderId, documents: [], updatedAt: document.issuedAt)
        documents.documents.append(invoice)
        documents.updatedAt = document.issuedAt
        return Step(issued: [invoice], changes: counters.changes + [.put(documents.event)])
    }

    /// Credits `request.amount` against the order's invoices, oldest first: one credit
    /// note per invoice it touches, each split over that invoice's tax rates. Refused
    /// (a dead letter) when the order's invoices have less left to credit.
    public func credit(
        _ request: CreditNoteRequested, series: (String, String) -> InvoiceSeriesState?, order: InvoicedOrder?
    ) throws(StageFailure) -> Step {
        let documents = order?.documents ?? []
        let again = documents.filter { $0.cause.hasPrefix(request.cause + "/") }
        if !again.isEmpty { return Step(issued: again, changes: []) }
        let invoices = documents.filter { $0.kind == .invoice && $0.currency == request.amount.currency }
        let credited = { (invoice: Invoice) in documents.filter { $0.kind == .creditNote && $0.correctedInvoice == invoice.number } }
        let open = invoices.map { invoice in invoice.grossTotal.minorUnits - credited(invoice).reduce(0) { $0 + $1.grossTotal.minorUnits } }
        guard open.reduce(0, +) >= request.amount.minorUnits, request.amount.minorUnits > 0 else {
            throw .rejected(
                "\(request.cause): \(request.amount) to credit, but order \(request.orderId)'s invoices from \(request.legalEntity) have \(open.reduce(0, +)) minor units left")
        }
        var counters = Counters(rules: rules, entity: request.legalEntity, stored: series)
        var left = request.amount.minorUnits
        var issued: [Invoice] = []
        for (invoice, remaining) in zip(invoices, open) where left > 0 && remaining > 0 {
            let take = min(left, remaining)
            left -= take
            let draft: Invoice
            do {
                draft = try CreditNoteBuilder.draft(
                    against: invoice, earlier: credited(invoice), credit: .amount(Money(minorUnits: take, currency: invoice.currency)),
                    series: LegalEntity.creditNoteSeries, cause: "\(request.cause)/\(invoice.number)", issuedAt: request.requestedAt)
            } catch {
                throw .rejected("\(request.cause): credit note against \(invoice.number): \(error.description)")
            }
            issued.append(try counters.number(draft))
        }
        var order = order ?? InvoicedOrder(legalEntity: request.legalEntity, orderId: request.orderId, documents: [], updatedAt: request.requestedAt)
        order.documents += issued
        order.updatedAt = request.requestedAt
        return Step(issued: issued, changes: counters.changes + [.put(order.event)])
    }

    /// The series an entity's documents take their numbers from, as they change in one step.
    struct Counters {
        let rules: InvoicingRules
        let entity: String
        var touched: [String: InvoiceSeriesState] = [:]
        private var stored: [String: InvoiceSeriesState] = [:]

        init(rules: InvoicingRules, entity: String, stored: (String, String) -> InvoiceSeriesState?) {
            self.rules = rules
            self.entity = entity
            for series in [LegalEntity.invoiceSeries, LegalEntity.creditNoteSeries] { self.stored[series] = stored(entity, series) }
        }

        /// `document` with the next number of its series.
        mutating func number(_ document: Invoice) throws(StageFailure) -> Invoice {
            guard let owner = rules.entities.first(where: { $0.id == entity }) else {
                throw .rejected("legal entity '\(entity)' is not in invoicing.entities")
            }
            let prefix = owner.prefix(of: document.series)
            var series = touched[document.series] ?? stored[document.series]
                ?? InvoiceSeriesState(legalEntity: entity, series: document.series, prefix: prefix, last: 0, recent: [])
            let assignment: InvoiceAssignment
            if let earlier = series.recent.first(where: { $0.cause == document.cause }) {
                // Numbered before a crash that kept the series record but not the order's
                // (written after it, to the same partition): the same number again.
                assignment = earlier
            } else {
                series.last += 1
                let number = InvoiceNumber.format(prefix: series.prefix, sequence: series.last, issuedAt: document.issuedAt)
                assignment = InvoiceAssignment(cause: document.cause, sequence: series.last, number: number)
                series.recent = Array((series.recent + [assignment]).suffix(InvoiceNumbering.listed))
                touched[document.series] = series
            }
            return document.numbered(
                sequence: assignment.sequence, number: assignment.number, invoiceId: "\(entity)/\(document.series)/\(assignment.sequence)")
        }

        var changes: [StateChange] { touched.keys.sorted().map { .put(touched[$0]!.event) } }
    }
}
