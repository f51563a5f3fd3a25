import Contracts
import Foundation

/// Reads the files operators feed the catalog and stock from (`oms catalog import`,
/// `oms stock import`): CSV with a header row, or JSON. Errors name the row and column.
public enum DataImport {
    /// A row or field that cannot be read.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// 1-based line of the file (the header is line 1); 0 for the whole file.
        public var line: Int
        /// What is wrong.
        public var reason: String
        /// `line 3: …`.
        public var description: String { line > 0 ? "line \(line): \(reason)" : reason }
    }

    /// Catalog CSV columns; `sku`, `title` and `weight_grams` are required.
    public static let catalogColumns = [
        "sku", "title", "weight_grams", "length_mm", "width_mm", "height_mm", "launch_date", "blocked_countries", "hazmat",
        "prices", "sellable", "ship_from_store", "drop_ship_supplier", "category", "preorder",
    ]

    /// Products from a catalog file: a JSON array of `oms.catalog.product.v1` objects, or
    /// CSV with ``catalogColumns`` (`blocked_countries` space- or `|`-separated,
    /// `prices` as `US=USD 19.99|EU=EUR 18.50`, dates RFC 3339).
    public static func products(_ data: Data, json: Bool) throws(Failure) -> [CatalogProduct] {
        if json {
            do {
                return try EventCodec.decode([CatalogProduct].self, from: Array(data))
            } catch {
                throw Failure(line: 0, reason: "not a JSON array of catalog products: \(error.description)")
            }
        }
        var products: [CatalogProduct] = []
        for row in try rows(data, required: ["sku", "title", "weight_grams"]) {
            func field(_ name: String) -> String { row.fields[name]?.trimmingCharacters(in: .whitespaces) ?? "" }
            func int(_ name: String) throws(Failure) -> Int {
                let text = field(name)
                if text.isEmpty { return 0 }
                guard let value = Int(text), value >= 0 else { throw Failure(line: row.line, reason: "\(name) '\(text)' is not a whole number ≥ 0") }
                return value
            }
            func bool(_ name: String) throws(Failure) -> Bool? {
                switch field(name).lowercased() {
                case "": return nil
                case "true", "yes", "1": return true
                case "false", "no", "0": return false
                case let other: throw Failure(line: row.line, reason: "\(name) '\(other)' is not true or false")
                }
            }
            let sku = field("sku")
            guard !sku.isEmpty else { throw Failure(line: row.line, reason: "sku is empty") }
            var launch: Date?
            if !field("launch_date").isEmpty {
                guard let date = RFC3339.parse(field("launch_date")) else {
                    throw Failure(line: row.line, reason: "launch_date '\(field("launch_date"))' is not an RFC 3339 time")
                }
                launch = date
            }
            var blocked: [CountryCode] = []
            for code in field("blocked_countries").split(whereSeparator: { $0 == "|" || $0 == " " }) {
                do { blocked.append(try CountryCode(String(code))) } catch {
                    throw Failure(line: row.line, reason: "blocked_countries: \(error.description)")
                }
            }
            var prices: [RegionPrice] = []
            for entry in field("prices").split(separator: "|").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
                let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                let amount = parts.count == 2 ? parts[1].split(separator: " ") : []
                guard parts.count == 2, amount.count == 2 else {
                    throw Failure(line: row.line, reason: "prices entry '\(entry)' is not REGION=CUR AMOUNT")
                }
                do {
                    let currency = try CurrencyCode(String(amount[0]))
                    prices.append(RegionPrice(region: String(parts[0]), price: try Money.parse(String(amount[1]), currency: currency)))
                } catch {
                    throw Failure(line: row.line, reason: "prices entry '\(entry)': \(error.description)")
                }
            }
            let supplier = field("drop_ship_supplier")
            let category = field("category")
            products.append(CatalogProduct(
                sku: sku, title: field("title"), weightGrams: try int("weight_grams"),
                dimensions: Dimensions(lengthMm: try int("length_mm"), widthMm: try int("width_mm"), heightMm: try int("height_mm")),
                launchDate: launch, blockedCountries: blocked, hazmat: try bool("hazmat") ?? false, prices: prices,
                sellable: try bool("sellable"), shipFromStore: try bool("ship_from_store"),
                dropShipSupplier: supplier.isEmpty ? nil : supplier, category: category.isEmpty ? nil : category, preorder: try bool("preorder")))
        }
        return products
    }

    /// Fulfilment answer CSV columns; `update_id`, `order_id`, `location` and `kind` are
    /// required. Rows with the same `update_id` make one answer: each row with a `line_id`
    /// adds a line, each with `weight_grams` a parcel.
    public static let fulfilmentColumns = [
        "update_id", "order_id", "location", "kind", "request_id", "line_id", "quantity", "weight_grams", "carrier", "service", "tracking_number",
        "reason", "occurred_at",
    ]

    /// Locations' answers from a file: CSV with ``fulfilmentColumns``, or a JSON array of
    /// `oms.fulfilment.update.v1` objects. Each answer must be complete for its kind
    /// (``Contracts/FulfilmentUpdate/problem``).
    public static func fulfilmentUpdates(_ data: Data, json: Bool, now: Date) throws(Failure) -> [FulfilmentUpdate] {
        if json {
            let updates: [FulfilmentUpdate]
            do {
                updates = try EventCodec.decode([FulfilmentUpdate].self, from: Array(data))
            } catch {
                throw Failure(line: 0, reason: "not a JSON array of fulfilment updates: \(error.description)")
            }
            for (index, update) in updates.enumerated() {
                if let problem = update.problem { throw Failure(line: 0, reason: "entry \(index): \(problem)") }
            }
            return updates
        }
        var updates: [FulfilmentUpdate] = []
        var firstLine: [String: Int] = [:]
        for row in try rows(data, required: ["update_id", "order_id", "location", "kind"]) {
            func field(_ name: String) -> String? {
                let value = row.fields[name]?.trimmingCharacters(in: .whitespaces) ?? ""
                return value.isEmpty ? nil : value
            }
            guard let updateId = field("update_id"), let orderId = field("order_id"), let location = field("location") else {
                throw Failure(line: row.line, reason: "update_id, order_id and location must not be empty")
            }
            guard let kind = field("kind").flatMap(FulfilmentUpdateKind.init(rawValue:)) else {
                throw Failure(line: row.line, reason: "kind '\(field("kind") ?? "")' is not one of \(FulfilmentUpdateKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var occurredAt = now
            if let text = field("occurred_at") {
                guard let date = RFC3339.parse(text) else { throw Failure(line: row.line, reason: "occurred_at '\(text)' is not an RFC 3339 time") }
                occurredAt = date
            }
            let index: Int
            if let existing = updates.firstIndex(where: { $0.updateId == updateId }) {
                index = existing
                let update = updates[index]
                guard update.orderId == orderId, update.location == location, update.kind == kind else {
                    throw Failure(line: row.line, reason: "update \(updateId) was \(update.kind.rawValue) for \(update.orderId) at \(update.location) on line \(firstLine[updateId] ?? 0)")
                }
            } else {
                firstLine[updateId] = row.line
                updates.append(FulfilmentUpdate(
                    updateId: updateId, orderId: orderId, location: location, kind: kind, requestId: field("request_id"), carrier: field("carrier"),
                    service: field("service"), trackingNumber: field("tracking_number"),
                    reason: field("reason").map { Reason(code: "location_rejected", message: $0) }, occurredAt: occurredAt))
                index = updates.count - 1
            }
            if let lineId = field("line_id") {
                guard let quantity = field("quantity").flatMap({ Int($0) }), quantity >= 0 else {
                    throw Failure(line: row.line, reason: "quantity '\(field("quantity") ?? "")' is not a whole number ≥ 0")
                }
                updates[index].lines = (updates[index].lines ?? []) + [LineQuantity(lineId: lineId, quantity: quantity)]
            }
            if let weight = field("weight_grams") {
                guard let grams = Int(weight), grams >= 1 else { throw Failure(line: row.line, reason: "weight_grams '\(weight)' is not a whole number ≥ 1") }
                updates[index].parcels = (updates[index].parcels ?? []) + [PackedParcel(weightGrams: grams)]
            }
        }
        for update in updates {
            if let problem = update.problem { throw Failure(line: firstLine[update.updateId] ?? 0, reason: "update \(update.updateId): \(problem)") }
        }
        return updates
    }

    /// One stock count per SKU and location.
    public struct StockCount: Sendable, Hashable, Codable {
        /// SKU.
        public var sku: String
        /// Location id.
        public var location: String
        /// Units on hand.
        public var onHand: Int
        /// Units never promised; nil leaves the location's current value.
        public var safetyStock: Int?

        /// Creates a count.
        public init(sku: String, location: String, onHand: Int, safetyStock: Int? = nil) {
            self.sku = sku
            self.location = location
            self.onHand = onHand
            self.safetyStock = safetyStock
        }

        /// The absolute adjustment that sets this count, from `source` at `sequence`.
        public func adjustment(source: String, sequence: Int64) -> AdjustInventory {
            AdjustInventory(
                sku: sku, location: location, mode: .absolute, quantity: onHand, source: source, sourceSequence: sequence,
                safetyStock: safetyStock)
        }
    }

    /// Stock counts from CSV (`sku,location,on_hand[,safety_stock]`) or a JSON array of
    /// `{"sku","location","onHand","safetyStock"}`.
    public static func stock(_ data: Data, json: Bool) throws(Failure) -> [StockCount] {
        if json {
            let counts: [StockCount]
            do {
                counts = try EventCodec.decode([StockCount].self, from: Array(data))
            } catch {
                throw Failure(line: 0, reason: "not a JSON array of stock counts: \(error.description)")
            }
            for (index, count) in counts.enumerated() where count.onHand < 0 || (count.safetyStock ?? 0) < 0 || count.sku.isEmpty || count.location.isEmpty {
                throw Failure(line: 0, reason: "entry \(index): sku and location must not be empty, onHand and safetyStock not negative")
            }
            return counts
        }
        var counts: [StockCount] = []
        for row in try rows(data, required: ["sku", "location", "on_hand"]) {
            func field(_ name: String) -> String { row.fields[name]?.trimmingCharacters(in: .whitespaces) ?? "" }
            guard !field("sku").isEmpty, !field("location").isEmpty else { throw Failure(line: row.line, reason: "sku and location must not be empty") }
            guard let onHand = Int(field("on_hand")), onHand >= 0 else {
                throw Failure(line: row.line, reason: "on_hand '\(field("on_hand"))' is not a whole number ≥ 0")
            }
            var safety: Int?
            if !field("safety_stock").isEmpty {
                guard let value = Int(field("safety_stock")), value >= 0 else {
                    throw Failure(line: row.line, reason: "safety_stock '\(field("safety_stock"))' is not a whole number ≥ 0")
                }
                safety = value
            }
            counts.append(StockCount(sku: field("sku"), location: field("location"), onHand: onHand, safetyStock: safety))
        }
        return counts
    }

    /// RFC 4180 rows keyed by the header's column names (lowercased), with their line.
    static func rows(_ data: Data, required: [String]) throws(Failure) -> [(line: Int, fields: [String: String])] {
        let records = parseCSV(String(decoding: data, as: UTF8.self))
        guard let header = records.first?.fields.map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) else {
            throw Failure(line: 0, reason: "the file is empty; the first line must name the columns")
        }
        for column in required where !header.contains(column) {
            throw Failure(line: 1, reason: "column '\(column)' is missing (columns: \(header.joined(separator: ",")))")
        }
        var rows: [(line: Int, fields: [String: String])] = []
        for record in records.dropFirst() {
            if record.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            guard record.fields.count <= header.count else {
                throw Failure(line: record.line, reason: "\(record.fields.count) fields but the header names \(header.count)")
            }
            var fields: [String: String] = [:]
            for (index, value) in record.fields.enumerated() { fields[header[index]] = value }
            rows.append((record.line, fields))
        }
        return rows
    }

    /// Splits CSV text into records: quoted fields may hold commas, newlines and `""`.
    static func parseCSV(_ text: String) -> [(line: Int, fields: [String])] {
        var records: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field = ""
        var quoted = false
        var line = 1
        var recordLine = 1
        var iterator = Array(text.unicodeScalars).makeIterator()
        var pending: Unicode.Scalar?
        func next() -> Unicode.Scalar? {
            if let scalar = pending { pending = nil; return scalar }
            return iterator.next()
        }
        while let scalar = next() {
            if quoted {
                if scalar == "\"" {
                    if let following = next() {
                        if following == "\"" { field.unicodeScalars.append("\"") } else { quoted = false; pending = following }
                    } else {
                        quoted = false
                    }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"": quoted = true
            case ",":
                fields.append(field)
                field = ""
            case "\r": continue
            case "\n":
                fields.append(field)
                records.append((recordLine, fields))
                fields = []
                field = ""
                line += 1
                recordLine = line
            default: field.unicodeScalars.append(scalar)
            }
        }
        if !field.isEmpty || !fields.isEmpty {
            fields.append(field)
            records.append((recordLine, fields))
        }
        return records
    }
}
