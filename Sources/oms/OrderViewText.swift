import Contracts
import Foundation

/// Plain-text renderings of order views for operators' terminals.
enum OrderViewText {
    /// One order, with everything the view holds.
    static func render(_ view: OrderView) -> String {
        var out: [String] = []
        out.append("order \(view.orderId)  \(view.channel)/\(view.externalOrderId)")
        out.append("status \(view.status.rawValue) since \(RFC3339.format(view.statusSince))")
        if let hold = view.paymentHold { out.append("payment hold (\(hold.code)): \(hold.message)") }
        if let totals = view.totals { out.append("total \(totals.total)  (shipping \(totals.shipping), tax \(totals.tax), discount \(totals.discount))") }
        if let promise = view.promisedDeliveryDate { out.append("promised \(RFC3339.format(promise))") }
        out.append("")
        out.append("lines         ordered allocated shipped delivered returned cancelled")
        for line in view.lineProgress {
            out.append("  \(pad("\(line.lineId) \(line.sku)", 12)) \(pad(line.ordered, 7)) \(pad(line.allocated, 9)) \(pad(line.shipped, 7)) \(pad(line.delivered, 9)) \(pad(line.returned, 8)) \(pad(line.cancelled ?? 0, 9))")
        }
        if !view.payments.isEmpty {
            out.append("payments")
            for entry in view.payments {
                out.append("  \(RFC3339.format(entry.at))  \(pad(entry.kind.rawValue, 14)) \(entry.amount)  \(entry.reference ?? "")\(entry.note.map { "  \($0)" } ?? "")")
            }
        }
        if !view.shipments.isEmpty {
            out.append("shipments")
            for shipment in view.shipments {
                let lines = shipment.lines.map { "\($0.quantity)×\($0.sku)" }.joined(separator: ", ")
                out.append("  \(shipment.shipmentId)  \(shipment.location) → \(shipment.carrier) \(shipment.trackingNumber)  \(shipment.status.rawValue)  [\(lines)]")
            }
        }
        if !view.returns.isEmpty {
            out.append("returns")
            for ret in view.returns {
                let lines = ret.lines.map { "\($0.quantity)×\($0.sku)" }.joined(separator: ", ")
                out.append("  \(ret.returnId)  \(ret.status)  \(ret.rma ?? "")  [\(lines)]\(ret.refund.map { "  refund \($0)" } ?? "")")
            }
        }
        if !view.tracking.isEmpty {
            out.append("tracking")
            for entry in view.tracking { out.append("  \(RFC3339.format(entry.at))  \(entry.shipmentId)  \(entry.status.rawValue) (\(entry.rawStatus))  \(entry.message ?? "")") }
        }
        out.append("timeline")
        for entry in view.history { out.append("  \(RFC3339.format(entry.at))  \(pad(entry.eventType, 34)) → \(entry.status.rawValue)  \(entry.eventId)\(entry.note.map { "\n      \($0)" } ?? "")") }
        return out.joined(separator: "\n")
    }

    /// One line per order.
    static func table(_ views: [OrderView]) -> String {
        var out = ["\(pad("ORDER", 36)) \(pad("STATUS", 19)) \(pad("CHANNEL", 10)) \(pad("EXTERNAL ID", 16)) \(pad("TOTAL", 14)) UPDATED"]
        for view in views {
            out.append("\(pad(view.orderId, 36)) \(pad(view.status.rawValue, 19)) \(pad(view.channel, 10)) \(pad(view.externalOrderId, 16)) \(pad(view.totals.map { "\($0.total)" } ?? "-", 14)) \(RFC3339.format(view.updatedAt))")
        }
        return out.joined(separator: "\n")
    }

    private static func pad(_ value: some CustomStringConvertible, _ width: Int) -> String {
        let text = value.description
        return text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
