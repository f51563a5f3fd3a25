import Contracts
import Foundation

/// Folds the order, fulfilment, inventory, returns and dead-letter streams into report
/// buckets (`ReportBucket`) in the compacted topic oms.reports, its changelog.
///
/// Each instance folds the partitions it owns, so a bucket is kept per input partition
/// (`bucket@p<N>`) and a reader adds the partitions up (``ReportBuckets``). Money is
/// kept per currency and never added across currencies. Durations go into power-of-two
/// second histograms, so percentiles can be merged across partitions and days.
public struct ReportStage: Stage {
    /// `report`.
    public let name = "report"
    /// Everything a report counts.
    public let inputTopics = [
        OrderPlaced.topic, OrderRejected.topic, OrderAllocated.topic, InventoryResult.topic, OrderCancelled.topic,
        ShipmentCreated.topic, ShipmentDelivered.topic, ReturnAuthorized.topic, RefundPayment.topic, SLAAlert.topic,
        TopicCatalog.deadLetterTopic, PaymentCaptured.topic, InvoiceIssued.topic, FulfilmentProgressed.topic,
    ]
    /// oms.reports.
    public let changelogTopic: String? = ReportBucket.topic

    /// Creates the stage.
    public init() {}

    /// Adds one event to its buckets.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        let changes = ReportFold.fold(input.event, partition: input.partition, at: input.envelope.time) { state.value($0) }
        return StageOutcome(outputs: [], stateChanges: changes)
    }
}

/// The report stage's logic as a pure function of an event and the buckets it touches.
public enum ReportFold {
    /// Report names as stored; `_order` keeps per-order facts the fulfilment report
    /// needs later (placed time, promise) until the order is done.
    public enum Name {
        /// Orders, revenue and units per hour, channel and currency.
        public static let orders = "orders"
        /// Shipping and delivery times, on-time rate, delays per day.
        public static let fulfilment = "fulfilment"
        /// SLA breaches per day and status.
        public static let sla = "sla"
        /// Per SKU: shipped, returned, restocked, written off, backordered units.
        public static let sku = "sku"
        /// Refused reservations per SKU and location.
        public static let stockouts = "stockouts"
        /// Returned units per SKU and reason.
        public static let returns = "returns"
        /// Refunds per day and currency.
        public static let refunds = "refunds"
        /// Money authorized at checkout and moved by the payment provider, per day and currency.
        public static let payments = "payments"
        /// Invoices and credit notes per day, legal entity and currency.
        public static let invoices = "invoices"
        /// Tax invoiced (less credited) per day, entity, currency, category and rate.
        public static let taxes = "taxes"
        /// Dead letters per stage and reason.
        public static let deadLetters = "deadletters"
        /// Fulfilment requests per day and location: answers, short picks, withdrawals,
        /// time to pick; and backorders filled, with their age, per day (`-` location).
        public static let locations = "locations"
        /// When each backordered order line started waiting, internal.
        public static let backorder = "_backorder"
        /// Per-order facts, internal.
        public static let order = "_order"
    }

    /// The state changes `event` makes, reading current buckets with `value`.
    public static func fold(_ event: Event, partition: Int32, at time: Date, value: @escaping (String) -> Event?) -> [StateChange] {
        var buckets = Buckets(partition: partition, time: time, value: value)
        switch event {
        case .orderPlaced, .orderRejected: ordered(event, into: &buckets)
        case .paymentCaptured, .paymentCaptureFailed, .paymentRefunded, .paymentRefundFailed, .refundPayment: paid(event, into: &buckets)
        case .invoiceIssued: invoiced(event, into: &buckets)
        case .orderBackordered, .orderPartiallyAllocated, .inventoryResult, .fulfilmentProgressed, .fulfilmentShort, .fulfilmentOverdue: stocked(event, into: &buckets)
        case .orderCancelled, .shipmentCreated, .shipmentDelivered, .shipmentDelayed: shipped(event, into: &buckets)
        case .returnAuthorized, .returnReceived: returned(event, into: &buckets)
        case .slaAlert, .deadLetter: alerted(event, into: &buckets)
        default: break
        }
        return buckets.changes
    }

    /// Orders, revenue and units per hour; rejections; the facts later reports need; authorizations.
    private static func ordered(_ event: Event, into buckets: inout Buckets) {
        switch event {
        case .orderPlaced(let order):
            let hour = hourKey(order.placedAt)
            buckets.add(Name.orders, "\(hour)/\(order.channel)/\(order.currency.code)", [
                "orders": 1, "revenue": order.totals.total.minorUnits, "units": Int64(order.lines.reduce(0) { $0 + $1.quantity }),
            ])
            var facts: [String: Int64] = ["placedAt": order.placedAt.millisecondsSince1970]
            if let promise = order.promisedDeliveryDate { facts["promise"] = promise.millisecondsSince1970 }
            buckets.merge(Name.order, order.orderId, facts)
            if order.payment.status == .authorized {
                buckets.add(Name.payments, "\(dayKey(order.placedAt))/\(order.payment.amount.currency.code)", [
                    "authorized": 1, "authorizedAmount": order.payment.amount.minorUnits,
                ])
            }
        case .orderRejected(let rejected):
            buckets.add(Name.orders, "\(hourKey(rejected.rejectedAt))/\(rejected.channel)/-", ["rejected": 1])
        default:
            break
        }
    }

    /// Money the payment provider moved, and refunds asked for.
    private static func paid(_ event: Event, into buckets: inout Buckets) {
        switch event {
        case .paymentCaptured(let e):
            buckets.add(Name.payments, "\(dayKey(e.capturedAt))/\(e.amount.currency.code)", ["captured": 1, "capturedAmount": e.amount.minorUnits])
        case .paymentCaptureFailed(let e):
            buckets.add(Name.payments, "\(dayKey(e.failedAt))/\(e.amount.currency.code)", ["captureFailed": 1, "captureFailedAmount": e.amount.minorUnits])
        case .paymentRefunded(let e):
            buckets.add(Name.payments, "\(dayKey(e.refundedAt))/\(e.amount.currency.code)", ["refunded": 1, "refundedAmount": e.amount.minorUnits])
        case .paymentRefundFailed(let e):
            buckets.add(Name.payments, "\(dayKey(e.failedAt))/\(e.amount.currency.code)", ["refundFailed": 1, "refundFailedAmount": e.amount.minorUnits])
        case .refundPayment(let refund):
            buckets.add(Name.refunds, "\(dayKey(refund.requestedAt))/\(refund.amount.currency.code)", ["refunds": 1, "amount": refund.amount.minorUnits])
        default:
            break
        }
    }

    /// Invoices and credit notes, and the tax on them.
    private static func invoiced(_ event: Event, into buckets: inout Buckets) {
        switch event {
        case .invoiceIssued(let issued):
            let invoice = issued.invoice
            let day = dayKey(invoice.issuedAt)
            let prefix = invoice.kind == .invoice ? "invoiced" : "credited"
            buckets.add(Name.invoices, "\(day)/\(invoice.legalEntity)/\(invoice.currency.code)", [
                invoice.kind == .invoice ? "invoices" : "creditNotes": 1, "\(prefix)Gross": invoice.grossTotal.minorUnits,
                "\(prefix)Net": invoice.netTotal.minorUnits, "\(prefix)Tax": invoice.taxTotal.minorUnits,
            ])
            let sign: Int64 = invoice.kind == .invoice ? 1 : -1
            for tax in invoice.taxes {
                buckets.add(Name.taxes, "\(day)/\(invoice.legalEntity)/\(invoice.currency.code)/\(tax.taxCategory)/\(tax.taxRateBasisPoints)", [
                    "taxable": sign * tax.taxableAmount.minorUnits, "tax": sign * tax.taxAmount.minorUnits,
                ])
            }
        default:
            break
        }
    }

    /// Backorders, refused reservations and the locations that confirm their work.
    private static func stocked(_ event: Event, into buckets: inout Buckets) {
        switch event {
        case .orderBackordered(let backordered):
            for line in backordered.lines { buckets.add(Name.sku, line.sku, ["backorderedUnits": Int64(line.quantity)]) }
            waiting(backordered.orderId, backordered.lines, since: backordered.decidedAt, in: &buckets)
        case .orderPartiallyAllocated(let decision):
            waiting(decision.orderId, decision.backordered, since: decision.decidedAt, in: &buckets)
        case .inventoryResult(let result) where result.outcome == .backorderFilled:
            // The age of a backorder: from its first decision to the first stock that came for it.
            let line = "\(result.orderId)/\(result.lineId)"
            if let since = buckets.values(Name.backorder, line)?["since"] {
                let day = dayKey(buckets.time)
                buckets.add(Name.locations, "\(day)/-", ["backorderFills": 1, histogramKey("backorder", seconds: (buckets.time.millisecondsSince1970 - since) / 1000): 1])
                buckets.delete(Name.backorder, line)
            }
        case .fulfilmentProgressed(let progress):
            located(progress, in: &buckets)
        case .fulfilmentShort(let short) where short.cause != .withdrawn:
            let units = Int64(short.lines.reduce(0) { $0 + $1.quantity })
            buckets.add(Name.locations, "\(dayKey(short.decidedAt))/\(short.location)", short.cause == .shortPick ? ["shortPicks": 1, "shortUnits": units] : ["rejected": 1])
        case .fulfilmentOverdue(let overdue):
            buckets.add(Name.locations, "\(dayKey(overdue.detectedAt))/\(overdue.location)", ["overdue": 1])
        case .inventoryResult(let result) where result.outcome == .refused:
            buckets.add(Name.stockouts, "\(result.sku)/\(result.location)", ["refusals": 1, "units": Int64(result.quantity)])
        default:
            break
        }
    }

    /// Shipments, deliveries, delays and cancels: the fulfilment report and shipped units.
    private static func shipped(_ event: Event, into buckets: inout Buckets) {
        switch event {
        case .orderCancelled(let cancelled):
            buckets.add(Name.fulfilment, dayKey(cancelled.cancelledAt), ["cancelled": 1])
            buckets.delete(Name.order, cancelled.orderId)
        case .shipmentCreated(let shipment):
            for line in shipment.lines { buckets.add(Name.sku, line.sku, ["shippedUnits": Int64(line.quantity)]) }
            var update: [String: Int64] = ["shipments": 1, "atRisk": shipment.atRisk ? 1 : 0]
            if shipment.atRisk { buckets.merge(Name.order, shipment.orderId, ["atRisk": 1]) }
            let facts = buckets.values(Name.order, shipment.orderId)
            if let placed = facts?["placedAt"], facts?["shippedAt"] == nil {
                update["shippedOrders"] = 1
                update[histogramKey("ship", seconds: (shipment.createdAt.millisecondsSince1970 - placed) / 1000)] = 1
                buckets.merge(Name.order, shipment.orderId, ["shippedAt": shipment.createdAt.millisecondsSince1970])
            }
            if facts?["promise"] == nil { buckets.merge(Name.order, shipment.orderId, ["promise": shipment.promisedDate.millisecondsSince1970]) }
            buckets.add(Name.fulfilment, dayKey(shipment.createdAt), update)
        case .shipmentDelivered(let delivery):
            var update: [String: Int64] = ["deliveredShipments": 1]
            if let facts = buckets.values(Name.order, delivery.orderId), let placed = facts["placedAt"] {
                let late = facts["promise"].map { delivery.deliveredAt.millisecondsSince1970 > $0 } ?? false
                update["delivered"] = 1
                update[late ? "late" : "onTime"] = 1
                update[histogramKey("deliver", seconds: (delivery.deliveredAt.millisecondsSince1970 - placed) / 1000)] = 1
                // The order's first delivery decides on-time; later parcels only count as shipments.
                buckets.delete(Name.order, delivery.orderId)
            }
            buckets.add(Name.fulfilment, dayKey(delivery.deliveredAt), update)
        case .shipmentDelayed(let delay):
            buckets.add(Name.fulfilment, dayKey(delay.detectedAt), ["delayed": 1])
        default:
            break
        }
    }

    /// Returned, restocked and written-off units.
    private static func returned(_ event: Event, into buckets: inout Buckets) {
        switch event {
        case .returnAuthorized(let authorized):
            for line in authorized.lines {
                buckets.add(Name.returns, "\(line.sku)/\(line.reason)", ["units": Int64(line.quantity), "returns": 1])
                buckets.add(Name.sku, line.sku, ["returnedUnits": Int64(line.quantity)])
            }
        case .returnReceived(let received):
            for line in received.lines {
                buckets.add(Name.sku, line.sku, [line.disposition == .restock ? "restockedUnits" : "writtenOffUnits": Int64(line.quantity)])
            }
        default:
            break
        }
    }

    /// SLA breaches and dead letters.
    private static func alerted(_ event: Event, into buckets: inout Buckets) {
        switch event {
        case .slaAlert(let alert):
            buckets.add(Name.sla, "\(dayKey(alert.detectedAt))/\(alert.status.rawValue)", ["breaches": 1])
        case .deadLetter(let letter):
            buckets.add(Name.deadLetters, "\(letter.stage)/\(reasonCode(letter.error))", ["count": 1])
        default:
            break
        }
    }

    /// Backordered lines start waiting at their first decision; later decisions keep that time.
    private static func waiting(_ orderId: String, _ lines: [BackorderedLine], since: Date, in buckets: inout Buckets) {
        for line in lines where buckets.values(Name.backorder, "\(orderId)/\(line.lineId)") == nil {
            buckets.merge(Name.backorder, "\(orderId)/\(line.lineId)", ["since": since.millisecondsSince1970])
        }
    }

    /// A request's move, counted for its location's day; the time to pack (or ship, or
    /// hold for pick-up) from the request.
    private static func located(_ progress: FulfilmentProgressed, in buckets: inout Buckets) {
        let field: String? = switch progress.status {
        case .requested: "requests"
        case .accepted: "accepted"
        case .picked: nil
        case .packed: "packed"
        case .shipped: "ownLabel"
        case .readyForPickup: "readyForPickup"
        case .pickedUp: "pickedUp"
        case .withdrawn: "withdrawn"
        case .cancelled: "cancelled"
        }
        guard let field else { return }
        var deltas: [String: Int64] = [field: 1]
        if [.packed, .shipped, .readyForPickup].contains(progress.status) {
            deltas[histogramKey("pick", seconds: (progress.at.millisecondsSince1970 - progress.requestedAt.millisecondsSince1970) / 1000)] = 1
        }
        buckets.add(Name.locations, "\(dayKey(progress.at))/\(progress.location)", deltas)
    }

    /// The bucket a duration falls in: `<kind>_<b>` holds durations of at most 2^b seconds.
    public static func histogramKey(_ kind: String, seconds: Int64) -> String {
        var bound = 0
        while bound < 40, (Int64(1) << bound) < max(seconds, 0) { bound += 1 }
        return "\(kind)_\(bound)"
    }

    /// A dead letter's reason as a short, stable code: its text up to the first detail
    /// (quote, colon, digit), so "unknown tracking number 1Z…" groups as one reason.
    public static func reasonCode(_ error: String) -> String {
        let cut = error.firstIndex { ":'\"(0123456789".contains($0) } ?? error.endIndex
        let code = error[..<cut].trimmingCharacters(in: .whitespaces).prefix(60)
        return code.isEmpty ? "other" : code.replacingOccurrences(of: "/", with: "-")
    }

    /// `2026-11-26T01` (UTC).
    public static func hourKey(_ date: Date) -> String { String(RFC3339.format(date).prefix(13)) }
    /// `2026-11-26` (UTC).
    public static func dayKey(_ date: Date) -> String { String(RFC3339.format(date).prefix(10)) }

    /// The buckets one event touches, read once and written once.
    struct Buckets {
        let partition: Int32
        /// The input's time: a replay writes the same bucket.
        let time: Date
        let value: (String) -> Event?
        private var touched: [String: ReportBucket?] = [:]
        private var order: [String] = []

        init(partition: Int32, time: Date, value: @escaping (String) -> Event?) {
            self.partition = partition
            self.time = time
            self.value = value
        }

        private func key(_ report: String, _ bucket: String) -> String { "\(report)/\(bucket)@p\(partition)" }

        func values(_ report: String, _ bucket: String) -> [String: Int64]? {
            let key = key(report, bucket)
            if let change = touched[key] { return change?.values }
            if case .reportBucket(let stored) = value(key) { return stored.values }
            return nil
        }

        /// Adds `deltas` to the bucket's counters.
        mutating func add(_ report: String, _ bucket: String, _ deltas: [String: Int64]) {
            var values = self.values(report, bucket) ?? [:]
            for (name, delta) in deltas where delta != 0 { values[name, default: 0] += delta }
            put(report, bucket, values)
        }

        /// Sets the bucket's fields to these values, keeping the others.
        mutating func merge(_ report: String, _ bucket: String, _ fields: [String: Int64]) {
            put(report, bucket, (self.values(report, bucket) ?? [:]).merging(fields) { $1 })
        }

        mutating func delete(_ report: String, _ bucket: String) {
            let key = key(report, bucket)
            guard values(report, bucket) != nil else { return }
            if touched[key] == nil { order.append(key) }
            touched[key] = .some(nil)
        }

        private mutating func put(_ report: String, _ bucket: String, _ values: [String: Int64]) {
            let key = key(report, bucket)
            if touched[key] == nil { order.append(key) }
            touched[key] = ReportBucket(report: report, bucket: "\(bucket)@p\(partition)", values: values, updatedAt: time)
        }

        var changes: [StateChange] {
            order.map { key in
                if case .some(.some(let bucket)) = touched[key] { return .put(bucket.event) }
                return .delete(key: key)
            }
        }
    }
}
