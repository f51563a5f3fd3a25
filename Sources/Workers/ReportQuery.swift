import Contracts
import Foundation

/// A report as rows: what `oms report`, the gateway's `/v1/reports/{name}` and the
/// dashboard show. Cells are text or numbers; money stays per currency (with FX rates,
/// base-currency columns and tables come next to it).
public struct ReportTable: Sendable, Hashable, Encodable {
    /// One value.
    public enum Cell: Sendable, Hashable, Encodable, CustomStringConvertible {
        /// Text.
        case text(String)
        /// A count or an amount in minor units.
        case integer(Int64)
        /// A rate or a mean.
        case decimal(Double)

        public var description: String {
            switch self {
            case .text(let text): text
            case .integer(let value): String(value)
            case .decimal(let value): String(format: "%.3f", value)
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let text): try container.encode(text)
            case .integer(let value): try container.encode(value)
            case .decimal(let value): try container.encode((value * 1000).rounded() / 1000)
            }
        }
    }

    /// The report's name.
    public var name: String
    /// Column names.
    public var columns: [String]
    /// Rows, each as long as `columns`.
    public var rows: [[Cell]]

    /// Creates a table.
    public init(name: String, columns: [String], rows: [[Cell]]) {
        self.name = name
        self.columns = columns
        self.rows = rows
    }

    private enum CodingKeys: String, CodingKey { case name, columns, rows }

    /// `{"name", "columns", "rows": [{column: value}]}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(columns, forKey: .columns)
        let objects = rows.map { Dictionary(uniqueKeysWithValues: zip(columns, $0)) }
        try container.encode(objects, forKey: .rows)
    }

    /// Aligned columns for a terminal.
    public var text: String {
        let all = [columns] + rows.map { $0.map(\.description) }
        let widths = columns.indices.map { index in all.map { $0[index].count }.max() ?? 0 }
        return all.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    /// RFC 4180 CSV.
    public var csv: String {
        func field(_ text: String) -> String {
            text.contains(where: { ",\"\n".contains($0) }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        return ([columns] + rows.map { $0.map(\.description) }).map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }
}

/// The reports, read from the buckets of oms.reports: partitions added up, filtered by
/// day and channel.
public struct ReportQuery: Sendable {
    /// The report names `report(_:)` knows.
    public static let names = ["orders", "fulfilment", "inventory", "returns", "payments", "invoices", "pipeline"]

    /// Buckets by report, then by bucket (partition suffix removed), values added up.
    let merged: [String: [String: [String: Int64]]]
    /// Per-order facts of open orders.
    let openOrders: [String: [String: Int64]]

    /// Merges the buckets of every partition.
    public init(buckets: some Sequence<ReportBucket>) {
        var merged: [String: [String: [String: Int64]]] = [:]
        var open: [String: [String: Int64]] = [:]
        for bucket in buckets {
            let name = bucket.bucket.range(of: "@p", options: .backwards).map { String(bucket.bucket[..<$0.lowerBound]) } ?? bucket.bucket
            if bucket.report == ReportFold.Name.order {
                open[name] = bucket.values
                continue
            }
            for (key, value) in bucket.values { merged[bucket.report, default: [:]][name, default: [:]][key, default: 0] += value }
        }
        self.merged = merged
        openOrders = open
    }

    /// Days are `yyyy-MM-dd`; both ends included.
    public struct Filter: Sendable {
        /// First day.
        public var from: String?
        /// Last day.
        public var to: String?
        /// One channel only (orders report).
        public var channel: String?
        /// Orders per hour instead of per day.
        public var hourly: Bool

        /// No filter.
        public init(from: String? = nil, to: String? = nil, channel: String? = nil, hourly: Bool = false) {
            self.from = from
            self.to = to
            self.channel = channel
            self.hourly = hourly
        }

        func includes(day: String) -> Bool { (from.map { day >= $0 } ?? true) && (to.map { day <= $0 } ?? true) }
    }

    /// The report `name`; `onHand` and `reserved` (per SKU, from oms.inventory.levels)
    /// complete the inventory report; with `rates` the money tables also show the base
    /// currency (``orders(_:rates:)``, ``refunds(_:rates:)``). Nil for an unknown name.
    public func report(
        _ name: String, filter: Filter = Filter(), now: Date = Date(), onHand: [String: Int] = [:], reserved: [String: Int] = [:], rates: FXRates? = nil
    ) -> [ReportTable]? {
        switch name {
        case "orders": [orders(filter, rates: rates)] + (rates.map { [ordersInBase(filter, rates: $0)] } ?? [])
        case "fulfilment": [fulfilment(filter), lateOrders(now: now), locations(filter), backorders(filter)]
        case "inventory": [inventory(onHand: onHand, reserved: reserved), stockouts()]
        case "returns": [returns(), refunds(filter, rates: rates)] + (rates.map { [refundsInBase(filter, rates: $0)] } ?? [])
        case "payments": [payments(filter)]
        case "invoices": [invoices(filter), taxes(filter)]
        case "pipeline": [deadLetters(), slaBreaches(filter)]
        default: nil
        }
    }

    private func buckets(_ report: String) -> [(String, [String: Int64])] {
        (merged[report] ?? [:]).sorted { $0.key < $1.key }
    }

    /// Per day (or hour), channel and currency: orders, revenue, average order value,
    /// units, rejected.
    ///
    /// With `rates`, each row also gets the base currency, the rate used and its date, and
    /// the revenue and average order value (rounded half-even) in the base currency. The
    /// row's own figures stay per currency, so the conversion can be checked against
    /// them; a row whose currency has no rate on or before its day shows `none` as the
    /// rate and `not converted` as the amounts rather than a 0 that would read as no
    /// money. ``ordersInBase(_:rates:)`` adds the currencies up.
    public func orders(_ filter: Filter, rates: FXRates? = nil) -> ReportTable {
        let rows = ordersRows(filter)
        var columns = [filter.hourly ? "hour" : "day", "channel", "currency", "orders", "revenue", "averageOrderValue", "units", "rejected"]
        if rates != nil { columns += ["baseCurrency", "fxRate", "fxDate", "revenueBase", "averageOrderValueBase"] }
        return ReportTable(
            name: "orders", columns: columns,
            rows: rows.map { row in
                let orders = row.values["orders"] ?? 0
                let revenue = row.values["revenue"] ?? 0
                var cells: [ReportTable.Cell] = [
                    .text(row.period), .text(row.channel), .text(row.currency), .integer(orders), .integer(revenue),
                    .integer(orders > 0 ? revenue / orders : 0), .integer(row.values["units"] ?? 0), .integer(row.values["rejected"] ?? 0),
                ]
                if let rates {
                    let converted = FXConverted(revenue, row.currency, day: String(row.period.prefix(10)), rates: rates)
                    cells += converted.baseCells + [converted.cell, converted.average(over: orders)]
                }
                return cells
            })
    }

    /// Per day (or hour) and channel, all currencies added up in the base currency:
    /// orders, revenue, average order value, units, rejected, and how many orders are
    /// missing from the revenue because their currency has no rate for the day (the
    /// `orders` table names them). The one number per channel an operator compares
    /// across days; never summed from an amount that could not be converted.
    public func ordersInBase(_ filter: Filter, rates: FXRates) -> ReportTable {
        var sums: [String: (orders: Int64, revenue: Int64, converted: Int64, units: Int64, rejected: Int64)] = [:]
        for row in ordersRows(filter) {
            let orders = row.values["orders"] ?? 0
            var sum = sums["\(row.period)/\(row.channel)"] ?? (0, 0, 0, 0, 0)
            sum.orders += orders
            sum.units += row.values["units"] ?? 0
            sum.rejected += row.values["rejected"] ?? 0
            if let amount = FXConverted(row.values["revenue"] ?? 0, row.currency, day: String(row.period.prefix(10)), rates: rates).amount {
                sum.revenue += amount
                sum.converted += orders
            }
            sums["\(row.period)/\(row.channel)"] = sum
        }
        return ReportTable(
            name: "orders-base",
            columns: [filter.hourly ? "hour" : "day", "channel", "baseCurrency", "orders", "revenueBase", "averageOrderValueBase", "units", "rejected", "ordersNotConverted"],
            rows: sums.sorted { $0.key < $1.key }.map { key, sum in
                let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
                return [
                    .text(parts[0]), .text(parts[1]), .text(rates.base.code), .integer(sum.orders), .integer(sum.revenue),
                    .integer(FXRates.divideHalfEven(sum.revenue, by: sum.converted)), .integer(sum.units), .integer(sum.rejected), .integer(sum.orders - sum.converted),
                ]
            })
    }

    /// The orders buckets added up per period (day or hour), channel and currency.
    private func ordersRows(_ filter: Filter) -> [(period: String, channel: String, currency: String, values: [String: Int64])] {
        var rows: [String: [String: Int64]] = [:]
        for (bucket, values) in buckets(ReportFold.Name.orders) {
            let parts = bucket.split(separator: "/", maxSplits: 2).map(String.init)
            guard parts.count == 3 else { continue }
            let day = String(parts[0].prefix(10))
            guard filter.includes(day: day), filter.channel.map({ $0 == parts[1] }) ?? true else { continue }
            let period = filter.hourly ? parts[0] : day
            for (key, value) in values { rows["\(period)/\(parts[1])/\(parts[2])", default: [:]][key, default: 0] += value }
        }
        return rows.sorted { $0.key < $1.key }.map { key, values in
            let parts = key.split(separator: "/").map(String.init)
            return (parts[0], parts[1], parts[2], values)
        }
    }

    /// Per day: shipped and delivered orders, on-time rate, ship and delivery time
    /// percentiles (seconds, upper bounds of power-of-two buckets), delays, cancels.
    public func fulfilment(_ filter: Filter) -> ReportTable {
        ReportTable(
            name: "fulfilment",
            columns: ["day", "shippedOrders", "delivered", "onTime", "late", "onTimeRate", "shipP50s", "shipP90s", "shipP99s",
                      "deliverP50s", "deliverP90s", "deliverP99s", "delayed", "atRiskShipments", "cancelled"],
            rows: buckets(ReportFold.Name.fulfilment).filter { filter.includes(day: $0.0) }.map { day, values in
                let delivered = values["delivered"] ?? 0
                func p(_ kind: String, _ q: Double) -> ReportTable.Cell { .integer(Self.percentile(values, kind, q)) }
                return [
                    .text(day), .integer(values["shippedOrders"] ?? 0), .integer(delivered), .integer(values["onTime"] ?? 0), .integer(values["late"] ?? 0),
                    .decimal(delivered > 0 ? Double(values["onTime"] ?? 0) / Double(delivered) : 0),
                    p("ship", 0.5), p("ship", 0.9), p("ship", 0.99), p("deliver", 0.5), p("deliver", 0.9), p("deliver", 0.99),
                    .integer(values["delayed"] ?? 0), .integer(values["atRisk"] ?? 0), .integer(values["cancelled"] ?? 0),
                ]
            })
    }

    /// Per day and location that confirms its work: requests and their answers, the
    /// short-pick rate (short picks per request), withdrawals, SLA misses, time to pick.
    public func locations(_ filter: Filter) -> ReportTable {
        ReportTable(
            name: "locations",
            columns: ["day", "location", "requests", "accepted", "packed", "ownLabel", "readyForPickup", "pickedUp", "shortPicks", "shortUnits",
                      "shortPickRate", "rejected", "overdue", "withdrawn", "cancelled", "pickP50s", "pickP90s"],
            rows: buckets(ReportFold.Name.locations).compactMap { bucket, values -> [ReportTable.Cell]? in
                let parts = bucket.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2, parts[1] != "-", filter.includes(day: parts[0]) else { return nil }
                let requests = values["requests"] ?? 0
                func count(_ name: String) -> ReportTable.Cell { .integer(values[name] ?? 0) }
                return [
                    .text(parts[0]), .text(parts[1]), .integer(requests), count("accepted"), count("packed"), count("ownLabel"), count("readyForPickup"),
                    count("pickedUp"), count("shortPicks"), count("shortUnits"),
                    .decimal(requests > 0 ? Double(values["shortPicks"] ?? 0) / Double(requests) : 0), count("rejected"), count("overdue"),
                    count("withdrawn"), count("cancelled"), .integer(Self.percentile(values, "pick", 0.5)), .integer(Self.percentile(values, "pick", 0.9)),
                ]
            })
    }

    /// Per day: backordered lines that stock arrived for, and how long they had waited.
    public func backorders(_ filter: Filter) -> ReportTable {
        ReportTable(
            name: "backorders", columns: ["day", "filled", "ageP50s", "ageP90s", "ageP99s"],
            rows: buckets(ReportFold.Name.locations).compactMap { bucket, values -> [ReportTable.Cell]? in
                let parts = bucket.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2, parts[1] == "-", filter.includes(day: parts[0]) else { return nil }
                return [
                    .text(parts[0]), .integer(values["backorderFills"] ?? 0), .integer(Self.percentile(values, "backorder", 0.5)),
                    .integer(Self.percentile(values, "backorder", 0.9)), .integer(Self.percentile(values, "backorder", 0.99)),
                ]
            })
    }

    /// Open orders past their promise or shipped at risk, now.
    public func lateOrders(now: Date) -> ReportTable {
        let nowMs = now.millisecondsSince1970
        let rows = openOrders.sorted { $0.key < $1.key }.compactMap { orderId, facts -> [ReportTable.Cell]? in
            let late = (facts["promise"] ?? .max) < nowMs
            let atRisk = (facts["atRisk"] ?? 0) > 0
            guard late || atRisk else { return nil }
            return [.text(orderId), .text(late ? "late" : "at_risk"), .text(facts["promise"].map { RFC3339.format(Date(timeIntervalSince1970: Double($0) / 1000)) } ?? "")]
        }
        return ReportTable(name: "late-and-at-risk", columns: ["orderId", "state", "promise"], rows: rows)
    }

    /// Per SKU: shipped, backordered, refused reservations, returned, on hand, reserved, sell-through.
    public func inventory(onHand: [String: Int], reserved: [String: Int]) -> ReportTable {
        var refusals: [String: Int64] = [:]
        for (bucket, values) in buckets(ReportFold.Name.stockouts) {
            refusals[String(bucket.split(separator: "/").first ?? ""), default: 0] += values["refusals"] ?? 0
        }
        let skus = Set((merged[ReportFold.Name.sku] ?? [:]).keys).union(refusals.keys).union(onHand.keys).sorted()
        return ReportTable(
            name: "inventory", columns: ["sku", "shippedUnits", "backorderedUnits", "stockouts", "returnedUnits", "onHand", "reserved", "sellThrough"],
            rows: skus.map { sku in
                let values = merged[ReportFold.Name.sku]?[sku] ?? [:]
                let shipped = values["shippedUnits"] ?? 0
                let stock = Int64(onHand[sku] ?? 0)
                return [
                    .text(sku), .integer(shipped), .integer(values["backorderedUnits"] ?? 0), .integer(refusals[sku] ?? 0),
                    .integer(values["returnedUnits"] ?? 0), .integer(stock), .integer(Int64(reserved[sku] ?? 0)),
                    .decimal(shipped + stock > 0 ? Double(shipped) / Double(shipped + stock) : 0),
                ]
            })
    }

    /// Refused reservations per SKU and location.
    public func stockouts() -> ReportTable {
        ReportTable(
            name: "stockouts", columns: ["sku", "location", "refusals", "units"],
            rows: buckets(ReportFold.Name.stockouts).map { bucket, values in
                let parts = bucket.split(separator: "/", maxSplits: 1).map(String.init)
                return [.text(parts.first ?? ""), .text(parts.count > 1 ? parts[1] : ""), .integer(values["refusals"] ?? 0), .integer(values["units"] ?? 0)]
            })
    }

    /// Per SKU and reason: returned units and the return rate (returned / shipped units
    /// of the SKU); per SKU what came back to stock and what was written off.
    public func returns() -> ReportTable {
        let skus = merged[ReportFold.Name.sku] ?? [:]
        return ReportTable(
            name: "returns", columns: ["sku", "reason", "units", "returnRate", "restockedUnits", "writtenOffUnits"],
            rows: buckets(ReportFold.Name.returns).map { bucket, values in
                let parts = bucket.split(separator: "/", maxSplits: 1).map(String.init)
                let sku = parts.first ?? ""
                let shipped = skus[sku]?["shippedUnits"] ?? 0
                let units = values["units"] ?? 0
                return [
                    .text(sku), .text(parts.count > 1 ? parts[1] : ""), .integer(units), .decimal(shipped > 0 ? Double(units) / Double(shipped) : 0),
                    .integer(skus[sku]?["restockedUnits"] ?? 0), .integer(skus[sku]?["writtenOffUnits"] ?? 0),
                ]
            })
    }

    /// Refunds per day and currency; with `rates` also the base currency, the rate used,
    /// its date and the amount in the base currency, as in ``orders(_:rates:)``.
    public func refunds(_ filter: Filter, rates: FXRates? = nil) -> ReportTable {
        ReportTable(
            name: "refunds", columns: ["day", "currency", "refunds", "amount"] + (rates == nil ? [] : ["baseCurrency", "fxRate", "fxDate", "amountBase"]),
            rows: refundsRows(filter).map { day, currency, values in
                var cells: [ReportTable.Cell] = [.text(day), .text(currency), .integer(values["refunds"] ?? 0), .integer(values["amount"] ?? 0)]
                if let rates {
                    let converted = FXConverted(values["amount"] ?? 0, currency, day: day, rates: rates)
                    cells += converted.baseCells + [converted.cell]
                }
                return cells
            })
    }

    /// Per day, all currencies added up in the base currency: refunds, amount, and how
    /// many refunds are missing from the amount for want of a rate (the `refunds` table
    /// names their currency).
    public func refundsInBase(_ filter: Filter, rates: FXRates) -> ReportTable {
        var sums: [String: (refunds: Int64, amount: Int64, notConverted: Int64)] = [:]
        for (day, currency, values) in refundsRows(filter) {
            let refunds = values["refunds"] ?? 0
            var sum = sums[day] ?? (0, 0, 0)
            sum.refunds += refunds
            if let amount = FXConverted(values["amount"] ?? 0, currency, day: day, rates: rates).amount {
                sum.amount += amount
            } else {
                sum.notConverted += refunds
            }
            sums[day] = sum
        }
        return ReportTable(
            name: "refunds-base", columns: ["day", "baseCurrency", "refunds", "amountBase", "refundsNotConverted"],
            rows: sums.sorted { $0.key < $1.key }.map { day, sum in
                [.text(day), .text(rates.base.code), .integer(sum.refunds), .integer(sum.amount), .integer(sum.notConverted)]
            })
    }

    private func refundsRows(_ filter: Filter) -> [(day: String, currency: String, values: [String: Int64])] {
        buckets(ReportFold.Name.refunds).compactMap { bucket, values in
            let parts = bucket.split(separator: "/").map(String.init)
            guard parts.count == 2, filter.includes(day: parts[0]) else { return nil }
            return (parts[0], parts[1], values)
        }
    }

    /// Per day and currency: what checkouts authorized and what the payment provider
    /// captured, failed to capture, refunded and failed to refund (counts and minor units).
    public func payments(_ filter: Filter) -> ReportTable {
        let figures = [
            "authorized", "authorizedAmount", "captured", "capturedAmount", "captureFailed", "captureFailedAmount",
            "refunded", "refundedAmount", "refundFailed", "refundFailedAmount",
        ]
        return ReportTable(
            name: "payments", columns: ["day", "currency"] + figures,
            rows: buckets(ReportFold.Name.payments).compactMap { bucket, values in
                let parts = bucket.split(separator: "/").map(String.init)
                guard parts.count == 2, filter.includes(day: parts[0]) else { return nil }
                return [.text(parts[0]), .text(parts[1])] + figures.map { .integer(values[$0] ?? 0) }
            })
    }

    /// Per day, legal entity and currency: invoices and credit notes issued, their gross,
    /// net and tax (minor units), and what stays invoiced (gross less credited).
    public func invoices(_ filter: Filter) -> ReportTable {
        let figures = ["invoices", "invoicedGross", "invoicedNet", "invoicedTax", "creditNotes", "creditedGross", "creditedNet", "creditedTax"]
        return ReportTable(
            name: "invoices", columns: ["day", "entity", "currency"] + figures + ["netRevenue"],
            rows: buckets(ReportFold.Name.invoices).compactMap { bucket, values in
                let parts = bucket.split(separator: "/").map(String.init)
                guard parts.count == 3, filter.includes(day: parts[0]) else { return nil }
                let revenue = (values["invoicedGross"] ?? 0) - (values["creditedGross"] ?? 0)
                return parts.map { .text($0) } + figures.map { .integer(values[$0] ?? 0) } + [.integer(revenue)]
            })
    }

    /// Per day, legal entity, currency, tax category and rate (basis points): the taxable
    /// amount and the tax, credit notes subtracted.
    public func taxes(_ filter: Filter) -> ReportTable {
        ReportTable(
            name: "taxes", columns: ["day", "entity", "currency", "category", "rateBasisPoints", "taxable", "tax"],
            rows: buckets(ReportFold.Name.taxes).compactMap { bucket, values in
                let parts = bucket.split(separator: "/").map(String.init)
                guard parts.count == 5, filter.includes(day: parts[0]) else { return nil }
                return parts.prefix(4).map { .text($0) } + [.integer(Int64(parts[4]) ?? 0), .integer(values["taxable"] ?? 0), .integer(values["tax"] ?? 0)]
            })
    }

    /// Dead letters per stage and reason.
    public func deadLetters() -> ReportTable {
        ReportTable(
            name: "deadletters", columns: ["stage", "reason", "count"],
            rows: buckets(ReportFold.Name.deadLetters).map { bucket, values in
                let parts = bucket.split(separator: "/", maxSplits: 1).map(String.init)
                return [.text(parts.first ?? ""), .text(parts.count > 1 ? parts[1] : ""), .integer(values["count"] ?? 0)]
            })
    }

    /// SLA breaches per day and the status the order sat in.
    public func slaBreaches(_ filter: Filter) -> ReportTable {
        ReportTable(
            name: "sla-breaches", columns: ["day", "status", "breaches"],
            rows: buckets(ReportFold.Name.sla).compactMap { bucket, values -> [ReportTable.Cell]? in
                let parts = bucket.split(separator: "/").map(String.init)
                guard parts.count == 2, filter.includes(day: parts[0]) else { return nil }
                return [.text(parts[0]), .text(parts[1]), .integer(values["breaches"] ?? 0)]
            })
    }

    /// The `q` quantile of a `<kind>_<b>` histogram: the upper bound (2^b seconds) of the
    /// bucket that holds it; 0 when empty.
    public static func percentile(_ values: [String: Int64], _ kind: String, _ q: Double) -> Int64 {
        var counts: [(bound: Int, count: Int64)] = []
        for (key, count) in values where key.hasPrefix(kind + "_") {
            if let bound = Int(key.dropFirst(kind.count + 1)) { counts.append((bound, count)) }
        }
        let total = counts.reduce(0) { $0 + $1.count }
        guard total > 0 else { return 0 }
        let rank = Int64((Double(total) * q).rounded(.up))
        var seen: Int64 = 0
        for (bound, count) in counts.sorted(by: { $0.bound < $1.bound }) {
            seen += count
            if seen >= max(rank, 1) { return Int64(1) << bound }
        }
        return Int64(1) << (counts.map(\.bound).max() ?? 0)
    }
}

/// One report amount in the base currency, as the cells of a report row.
///
/// Rows without a currency (`-`: rejections only) hold no money, so their base amount
/// is 0 and their rate `-`, not `none`: nothing is missing from them.
struct FXConverted {
    /// The base amount in minor units; nil when not converted.
    let amount: Int64?
    /// `baseCurrency`, `fxRate` and `fxDate`.
    let baseCells: [ReportTable.Cell]

    init(_ minorUnits: Int64, _ code: String, day: String, rates: FXRates) {
        guard code != "-" || minorUnits != 0 else {
            amount = 0
            baseCells = [.text(rates.base.code), .text("-"), .text("")]
            return
        }
        guard let currency = try? CurrencyCode(code) else {
            amount = nil
            baseCells = [.text(rates.base.code), .text("none"), .text("")]
            return
        }
        switch rates.convert(Money(minorUnits: minorUnits, currency: currency), on: day) {
        case .converted(let money, let rate):
            amount = money.minorUnits
            baseCells = [.text(rates.base.code), .text(rate.value.description), .text(rate.date ?? "")]
        case .notConverted:
            amount = nil
            baseCells = [.text(rates.base.code), .text("none"), .text("")]
        }
    }

    /// `revenueBase` / `amountBase`.
    var cell: ReportTable.Cell { amount.map { .integer($0) } ?? .text("not converted") }

    /// The base amount per order, rounded half-even.
    func average(over count: Int64) -> ReportTable.Cell {
        amount.map { .integer(FXRates.divideHalfEven($0, by: count)) } ?? .text("not converted")
    }
}
