import ArgumentParser
import Contracts
import Fleet
import Foundation
import Workers

/// `oms report <name>`: the report stage's aggregates from oms.reports.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Print a report: \(ReportQuery.names.joined(separator: ", ")).",
        discussion: """
            Reads oms.reports (written by the report stage) once to its end and adds up its partitions; \
            `inventory` also reads oms.inventory.levels. Money is in minor units and per currency; with an FX \
            rates file (--fx-rates, default \(FXRates.defaultPath) when it exists) `orders` and `returns` also show \
            it in the file's base currency, with tables summed over currencies (orders-base, refunds-base). \
            Durations (fulfilment) are seconds, upper bounds of power-of-two buckets.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, csv
    }

    @OptionGroup var client: ClientOptions
    @Argument(help: "The report: \(ReportQuery.names.joined(separator: ", ")).") var name: String
    @Option(help: "First day, yyyy-MM-dd (UTC).") var from: String?
    @Option(help: "Last day, yyyy-MM-dd (UTC).") var to: String?
    @Option(help: "Only this channel (orders).") var channel: String?
    @Flag(help: "Orders per hour instead of per day (orders).") var hourly = false
    @Option(help: "table, json or csv.") var format: Format = .table
    @Option(help: "FX rates CSV (date,currency,rate; first line '# base: EUR'); default \(FXRates.defaultPath) if it exists; 'none' for none.")
    var fxRates: String?

    func validate() throws {
        guard ReportQuery.names.contains(name) else {
            throw ValidationError("'\(name)' is not a report; reports: \(ReportQuery.names.joined(separator: ", "))")
        }
        for (flag, day) in [("--from", from), ("--to", to)] {
            if let day, day.count != 10 || RFC3339.parse(day + "T00:00:00Z") == nil {
                throw ValidationError("\(flag) '\(day)' is not a day (yyyy-MM-dd)")
            }
        }
    }

    /// The named file, else the default one if it is there; a named file that cannot be
    /// read is an error, as a silently missing base column would look like a bug.
    func loadRates() throws -> FXRates? {
        let path = fxRates ?? (FileManager.default.fileExists(atPath: FXRates.defaultPath) ? FXRates.defaultPath : nil)
        guard let path, path != "none" else { return nil }
        do {
            return try FXRates.load(path: path)
        } catch {
            throw ValidationError("--fx-rates: \(error.description)")
        }
    }

    func run() async throws {
        let rates = try loadRates()
        let kafka = try client.kafkaConfiguration(clientID: "oms-report")
        let buckets = try await GlobalTable.snapshot(topic: ReportBucket.topic, kafka: kafka).values.compactMap { event -> ReportBucket? in
            if case .reportBucket(let bucket) = event { return bucket } else { return nil }
        }
        var onHand: [String: Int] = [:]
        var reserved: [String: Int] = [:]
        if name == "inventory" {
            for case .inventoryLevel(let level) in try await GlobalTable.snapshot(topic: InventoryLevel.topic, kafka: kafka).values {
                onHand[level.sku] = level.locations.reduce(0) { $0 + $1.onHand }
                reserved[level.sku] = level.locations.reduce(0) { $0 + $1.reserved }
            }
        }
        let tables = ReportQuery(buckets: buckets).report(
            name, filter: .init(from: from, to: to, channel: channel, hourly: hourly), onHand: onHand, reserved: reserved, rates: rates) ?? []
        switch format {
        case .table: print(tables.map { "== \($0.name)\n\($0.rows.isEmpty ? "(no rows)" : $0.text)" }.joined(separator: "\n\n"))
        case .csv: print(tables.map { "# \($0.name)\n\($0.csv)" }.joined(separator: "\n"), terminator: "")
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(tables), as: UTF8.self))
        }
    }
}
