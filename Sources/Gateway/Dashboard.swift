import Contracts
import Fleet
import Foundation
import Kafka
import Synchronization
import Workers

/// The operations dashboard at `/`: one server-rendered page, no scripts, no external
/// resources, charts as inline SVG. It refreshes itself every `refreshSeconds`.
final class Dashboard: Sendable {
    /// Per stage: records per second since the last render and lag now.
    struct StageLoad: Sendable {
        var stage: String
        var perSecond: Double
        var lag: Int64
    }

    static let refreshSeconds = 10

    /// Committed offsets per stage at the previous render, for throughput.
    private let previous = Mutex<[String: (at: ContinuousClock.Instant, committed: Int64)]>([:])

    /// Each pipeline stage's consumer lag and throughput, from the brokers' committed offsets.
    func stageLoads(kafka: KafkaConfiguration) async -> [StageLoad] {
        guard let admin = try? KafkaAdmin(configuration: kafka) else { return [] }
        var loads: [StageLoad] = []
        for stage in StageRegistry.names.sorted() {
            let inputs = TopicCatalog.topics.filter { $0.readers.contains(stage) && !$0.name.hasSuffix(".state") }.map(\.name)
            // Only partitions the group has consumed: a stage also reads global tables
            // (e.g. allocation the levels), which have no committed offsets.
            guard let lags = try? await admin.lag(group: "oms.\(stage)", topics: inputs, timeout: .seconds(5)).filter({ $0.committed != nil }) else { continue }
            let committed = lags.reduce(Int64(0)) { $0 + max($1.committed ?? 0, 0) }
            let now = ContinuousClock.now
            let rate = previous.withLock { previous -> Double in
                defer { previous[stage] = (now, committed) }
                guard let last = previous[stage] else { return 0 }
                let seconds = max((now - last.at).seconds, 0.001)
                return Double(max(committed - last.committed, 0)) / seconds
            }
            loads.append(StageLoad(stage: stage, perSecond: rate, lag: lags.reduce(0) { $0 + $1.lag }))
        }
        return loads
    }

    /// The page.
    static func render(
        statuses: [String: Int], loads: [StageLoad], query: ReportQuery, onHand: [String: Int], reserved: [String: Int], now: Date
    ) -> String {
        let today = ReportQuery.Filter(from: ReportFold.dayKey(now), to: ReportFold.dayKey(now))
        let orders = query.orders(today)
        let payments = query.payments(today)
        let invoices = query.invoices(today)
        let late = query.lateOrders(now: now)
        let locations = query.locations(today)
        let backorders = query.backorders(today)
        // Out of stock (nothing left to promise), backordered or refused: what needs stock.
        let short = query.inventory(onHand: onHand, reserved: reserved).rows.filter { row in
            int(row[2]) > 0 || int(row[3]) > 0 || (onHand[row[0].description] != nil && int(row[5]) - int(row[6]) <= 0)
        }
        // The SKUs and reasons with the most returned units first.
        let returns = query.returns().rows.sorted { int($0[2]) > int($1[2]) }
        let deadLetters = query.deadLetters()
        let total = statuses.values.reduce(0, +)
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="refresh" content="\(refreshSeconds)">
            <title>OrderFleet operations</title>
            <style>
            body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #fafafa; }
            header { background: #17324d; color: #fff; padding: 0.8rem 1.5rem; }
            header h1 { margin: 0; font-size: 1.3rem; }
            header p { margin: 0.2rem 0 0; color: #dfe7ef; }
            main { display: grid; grid-template-columns: repeat(auto-fit, minmax(26rem, 1fr)); gap: 1rem; padding: 1rem 1.5rem; }
            section { background: #fff; border: 1px solid #d0d4d9; border-radius: 6px; padding: 0.8rem 1rem; }
            h2 { font-size: 1.05rem; margin: 0 0 0.5rem; }
            table { border-collapse: collapse; width: 100%; }
            th, td { text-align: left; padding: 0.2rem 0.4rem; border-bottom: 1px solid #e4e6e9; }
            td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
            a { color: #0b4f8a; }
            .empty { color: #4a4f55; font-style: italic; }
            svg text { font: 12px system-ui, sans-serif; fill: #1b1b1b; }
            </style>
            </head>
            <body>
            <header><h1>OrderFleet operations</h1><p>\(total) orders · updated \(escape(RFC3339.format(now))) · refreshes every \(refreshSeconds) s</p></header>
            <main>

            """
        html += section("Orders per state", id: "states", bars(statuses.sorted { $0.value > $1.value }.map { ($0.key, Double($0.value), String($0.value)) }, label: "orders per state"))
        html += section("Stages: throughput and lag", id: "stages", table(
            ["stage", "records/s", "lag"], loads.map { [$0.stage, String(format: "%.0f", $0.perSecond), String($0.lag)] }, numeric: [1, 2])
            + (loads.contains { $0.lag > 0 } ? bars(loads.map { ($0.stage, Double($0.lag), String($0.lag)) }, label: "consumer lag per stage") : ""))
        // Rejected orders have no currency: they are counted on a row of their own ("-").
        html += section("Orders today", id: "orders", table(
            ["channel", "currency", "orders", "rejected", "revenue", "avg"],
            orders.rows.map { [$0[1].description, $0[2].description, $0[3].description, $0[7].description, money($0[4], $0[2].description), money($0[5], $0[2].description)] },
            numeric: [2, 3, 4, 5]))
        // Columns of the payments report: day, currency, authorized, its amount, captured,
        // its amount, failed captures, their amount, refunded, its amount, failed refunds.
        html += section("Payments today", id: "payments", table(
            ["currency", "authorized", "captured", "failed captures", "refunded", "failed refunds"],
            payments.rows.map { row in
                let currency = row[1].description
                return [
                    currency, money(row[3], currency), money(row[5], currency), "\(row[6]) (\(money(row[7], currency)))", money(row[9], currency),
                    row[10].description,
                ]
            },
            numeric: [1, 2, 3, 4, 5]))
        // Columns of the invoices report: day, entity, currency, invoices, gross, net, tax,
        // credit notes, credited gross, net, tax, net revenue.
        html += section("Invoiced today", id: "invoices", table(
            ["entity", "currency", "invoices", "gross", "tax", "credit notes", "credited", "net revenue"],
            invoices.rows.map { row in
                let currency = row[2].description
                return [
                    row[1].description, currency, row[3].description, money(row[4], currency), money(row[6], currency), row[7].description,
                    money(row[8], currency), money(row[11], currency),
                ]
            },
            numeric: [2, 3, 4, 5, 6, 7]))
        html += section("Late and at-risk orders", id: "late", table(
            ["order", "state", "promise"],
            late.rows.prefix(50).map { ["<a href=\"/v1/orders/\(escape($0[0].description))\">\(escape($0[0].description))</a>", $0[1].description, $0[2].description] },
            escaped: true))
        // Columns of the locations report: day, location, requests, accepted, packed, own
        // label, ready for pick-up, picked up, short picks, short units, short-pick rate,
        // rejected, overdue, withdrawn, cancelled, pick p50, pick p90.
        html += section("Locations today", id: "locations", table(
            ["location", "requests", "packed", "own label", "short picks", "withdrawn", "SLA missed", "pick p50 s"],
            locations.rows.map { row in
                [row[1].description, row[2].description, row[4].description, row[5].description, "\(row[8]) (\(percent(row[10])))", row[13].description,
                 row[12].description, row[15].description]
            },
            numeric: [1, 2, 3, 4, 5, 6, 7])
            + (backorders.rows.first.map { "<p>Backorders filled today: \($0[1]), waited p50 \($0[2]) s, p90 \($0[3]) s.</p>\n" } ?? ""))
        html += section("Stock-outs and backorders", id: "stockouts", table(
            ["SKU", "on hand", "reserved", "backordered", "refused"],
            short.map { [$0[0].description, $0[5].description, $0[6].description, $0[2].description, $0[3].description] }, numeric: [1, 2, 3, 4]))
        html += section("Returns (top 15)", id: "returns", table(
            ["SKU", "reason", "units", "rate"], returns.prefix(15).map { [$0[0].description, $0[1].description, $0[2].description, percent($0[3])] }, numeric: [2, 3]))
        html += section("Dead letters", id: "deadletters", table(
            ["stage", "reason", "count"], deadLetters.rows.map { $0.map(\.description) }, numeric: [2]))
        html += "</main>\n</body>\n</html>\n"
        return html
    }

    private static func section(_ title: String, id: String, _ body: String) -> String {
        "<section aria-labelledby=\"\(id)\"><h2 id=\"\(id)\">\(escape(title))</h2>\n\(body)</section>\n"
    }

    private static func table(_ headers: [String], _ rows: [[String]], numeric: Set<Int> = [], escaped: Bool = false) -> String {
        guard !rows.isEmpty else { return "<p class=\"empty\">None.</p>\n" }
        var html = "<table><thead><tr>"
        for (index, header) in headers.enumerated() { html += "<th scope=\"col\"\(numeric.contains(index) ? " class=\"n\"" : "")>\(escape(header))</th>" }
        html += "</tr></thead><tbody>\n"
        for row in rows {
            html += "<tr>"
            for (index, cell) in row.enumerated() {
                html += "<td\(numeric.contains(index) ? " class=\"n\"" : "")>\(escaped ? cell : escape(cell))</td>"
            }
            html += "</tr>\n"
        }
        return html + "</tbody></table>\n"
    }

    /// Horizontal bars; the chart is an image with a text equivalent (the label and values).
    private static func bars(_ items: [(label: String, value: Double, text: String)], label: String) -> String {
        guard !items.isEmpty else { return "" }
        let rowHeight = 22
        let width = 420
        let labelWidth = 150
        let maximum = max(items.map(\.value).max() ?? 1, 1)
        let summary = items.map { "\($0.label) \($0.text)" }.joined(separator: ", ")
        var svg = "<svg role=\"img\" aria-label=\"\(escape(label)): \(escape(summary))\" width=\"100%\" viewBox=\"0 0 \(width) \(items.count * rowHeight + 4)\">"
        svg += "<title>\(escape(label))</title>"
        for (index, item) in items.enumerated() {
            let y = index * rowHeight + 2
            let barWidth = Int(Double(width - labelWidth - 60) * item.value / maximum)
            svg += "<text x=\"0\" y=\"\(y + 15)\">\(escape(item.label))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y + 3)\" width=\"\(max(barWidth, 1))\" height=\"16\" fill=\"#2a6cb0\"></rect>"
            svg += "<text x=\"\(labelWidth + max(barWidth, 1) + 6)\" y=\"\(y + 15)\">\(escape(item.text))</text>"
        }
        return svg + "</svg>\n"
    }

    /// Minor units as an amount of `currency` (its own number of decimals).
    private static func int(_ cell: ReportTable.Cell) -> Int64 {
        if case .integer(let value) = cell { value } else { 0 }
    }

    private static func money(_ cell: ReportTable.Cell, _ currency: String) -> String {
        guard case .integer(let minor) = cell, let code = try? CurrencyCode(currency) else { return cell.description }
        let exponent = code.minorUnitExponent
        return String(format: "%.\(exponent)f", Double(minor) / pow(10, Double(exponent)))
    }

    private static func percent(_ cell: ReportTable.Cell) -> String {
        guard case .decimal(let rate) = cell else { return cell.description }
        return String(format: "%.1f %%", rate * 100)
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
