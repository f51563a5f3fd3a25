import Contracts
import Foundation

/// The ERP feed: turns placed orders, shipments, return decisions and receipts, and
/// refunds into rows with documented columns on oms.erp.feed, the topic a brand's ERP
/// reads (or `oms erp export` turns into a daily file per entity).
///
/// Stateless: a row's id is its business id, so a replayed input writes the same row
/// again and readers (and the export) keep one per id.
public struct ERPFeedStage: Stage {
    /// `erp-feed`.
    public let name = "erp-feed"
    /// Placed orders, shipments, return events and payment commands.
    public let inputTopics = [OrderPlaced.topic, ShipmentCreated.topic, ReturnAuthorized.topic, RefundPayment.topic]
    /// None.
    public let changelogTopic: String? = nil

    /// Creates the stage.
    public init() {}

    /// The input's row, if it is one the feed carries.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        if let record = ERPFeed.record(for: input.envelope) { return .emit(record.event) }
        if ERPFeed.ignored(input.event) { return .none }
        throw .rejected("erp-feed does not handle \(input.envelope.type)")
    }
}

/// The ERP feed's rows and files, as pure functions.
public enum ERPFeed {
    /// Each entity's columns, in file order (docs/OPERATIONS.md, *ERP feed*).
    public static let columns: [ERPEntity: [String]] = [
        .orders: [
            "order_id", "channel", "external_order_id", "placed_at", "currency", "subtotal", "discount", "shipping", "tax", "total",
            "tax_included", "lines", "units", "customer_id", "ship_to_country",
        ],
        .shipments: ["shipment_id", "order_id", "location", "carrier", "service", "tracking_number", "units", "created_at"],
        .returns: ["return_id", "order_id", "status", "rma", "units", "reason", "at"],
        .refunds: ["refund_id", "order_id", "return_id", "currency", "amount", "reason", "requested_at"],
    ]

    /// The row an input makes; nil for inputs the feed does not carry.
    public static func record(for envelope: Envelope) -> ERPRecord? {
        switch envelope.event {
        case .orderPlaced(let e):
            let t = e.totals
            return ERPRecord(entity: .orders, id: e.orderId, orderId: e.orderId, at: e.placedAt, columns: [
                "order_id": e.orderId, "channel": e.channel, "external_order_id": e.externalOrderId, "placed_at": RFC3339.format(e.placedAt),
                "currency": e.currency.code, "subtotal": t.subtotal.decimalString, "discount": t.discount.decimalString,
                "shipping": t.shipping.decimalString, "tax": t.tax.decimalString, "total": t.total.decimalString,
                "tax_included": String(t.taxIncluded), "lines": String(e.lines.count), "units": String(e.lines.map(\.quantity).reduce(0, +)),
                // The channel's customer id, not the address: the ERP matches its own debtor.
                "customer_id": e.customer.id ?? "", "ship_to_country": e.shippingAddress.country.code,
            ])
        case .shipmentCreated(let e):
            return ERPRecord(entity: .shipments, id: e.shipmentId, orderId: e.orderId, at: e.createdAt, columns: [
                "shipment_id": e.shipmentId, "order_id": e.orderId, "location": e.location, "carrier": e.carrier, "service": e.service,
                "tracking_number": e.trackingNumber, "units": String(e.lines.map(\.quantity).reduce(0, +)), "created_at": RFC3339.format(e.createdAt),
            ])
        case .returnAuthorized(let e):
            return returnRow(e.orderId, e.returnId, "authorized", rma: e.rma, units: e.lines.map(\.quantity).reduce(0, +),
                             reason: Set(e.lines.map(\.reason)).sorted().joined(separator: " "), at: envelope.time)
        case .returnRejected(let e):
            return returnRow(e.orderId, e.returnId, "rejected", rma: "", units: 0, reason: e.reasons.map(\.code).joined(separator: " "), at: e.rejectedAt)
        case .returnNeedsReview(let e):
            return returnRow(e.orderId, e.returnId, "review", rma: e.rma, units: 0, reason: e.reason.code, at: e.at)
        case .returnExpired(let e):
            return returnRow(e.orderId, e.returnId, "expired", rma: e.rma, units: 0, reason: "rma_expired", at: e.expiredAt)
        case .exchangeReplacedByRefund(let e):
            return returnRow(e.orderId, e.returnId, "exchange_refunded", rma: "", units: 0, reason: e.reason.code, at: e.decidedAt)
        case .returnReceived(let e):
            return returnRow(e.orderId, e.returnId, "received", rma: e.rma, units: e.lines.map(\.quantity).reduce(0, +),
                             reason: Set(e.lines.map(\.disposition.rawValue)).sorted().joined(separator: " "), at: e.receivedAt)
        case .refundPayment(let e):
            // A return's refund is identified by the return; a goodwill refund by its event.
            // An exchange's refunds (a cheaper replacement's difference, a credit going back
            // to the order it came from) are named by what they are, next to it.
            let id = e.returnId.map { e.reason.code.hasPrefix("exchange_") ? "return/\($0)/\(e.orderId)/\(e.reason.code)" : "return/\($0)" } ?? envelope.id
            return ERPRecord(entity: .refunds, id: id, orderId: e.orderId, at: e.requestedAt, columns: [
                "refund_id": id, "order_id": e.orderId, "return_id": e.returnId ?? "", "currency": e.amount.currency.code,
                "amount": e.amount.decimalString, "reason": e.reason.code, "requested_at": RFC3339.format(e.requestedAt),
            ])
        default:
            return nil
        }
    }

    private static func returnRow(_ orderId: String, _ returnId: String, _ status: String, rma: String, units: Int, reason: String, at: Date) -> ERPRecord {
        ERPRecord(entity: .returns, id: "\(returnId)/\(status)", orderId: orderId, at: at, columns: [
            "return_id": returnId, "order_id": orderId, "status": status, "rma": rma, "units": String(units), "reason": reason, "at": RFC3339.format(at),
        ])
    }

    /// Inputs of the stage's topics the feed does not carry (captures, voids; appeasement
    /// decisions, whose money is the refund's row).
    static func ignored(_ event: Event) -> Bool {
        switch event {
        case .capturePayment, .voidPayment, .orderAppeased, .appeasementRejected: true
        default: false
        }
    }

    /// The rows of `entity` whose time falls on `day` (UTC, `yyyy-MM-dd`), one per id
    /// (the last written wins), in time then id order.
    public static func rows(_ records: [ERPRecord], entity: ERPEntity, day: String) -> [ERPRecord] {
        var latest: [String: ERPRecord] = [:]
        for record in records where record.entity == entity && RFC3339.formatDate(record.at) == day { latest[record.id] = record }
        return latest.values.sorted { ($0.at, $0.id) < ($1.at, $1.id) }
    }

    /// The rows as CSV (RFC 4180: a header line, fields quoted when they hold a comma, a
    /// quote or a line break; CRLF line ends).
    public static func csv(_ rows: [ERPRecord], entity: ERPEntity) -> String {
        let names = columns[entity] ?? []
        var lines = [names.joined(separator: ",")]
        for row in rows { lines.append(names.map { quoted(row.columns[$0] ?? "") }.joined(separator: ",")) }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// The rows as JSON Lines: one object per row with the entity's columns (as strings).
    public static func jsonLines(_ rows: [ERPRecord], entity: ERPEntity) -> String {
        let names = columns[entity] ?? []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return rows.map { row in
            var object: [String: String] = [:]
            for name in names { object[name] = row.columns[name] ?? "" }
            // Encoding a [String: String] cannot fail.
            return String(decoding: (try? encoder.encode(object)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
        }.joined()
    }

    private static func quoted(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
