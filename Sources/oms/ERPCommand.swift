import ArgumentParser
import Contracts
import Fleet
import Foundation
import Logging
import Workers

/// `oms erp`: the ERP feed as files.
struct ERPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erp",
        abstract: "The ERP feed as daily files.",
        subcommands: [Export.self]
    )

    /// `oms erp export`: one day's file per entity.
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one day's ERP files: orders, shipments, returns and refunds, as CSV and/or JSON Lines.",
            discussion: """
                Reads oms.erp.feed (written by the erp-feed stage) from its beginning to its end and writes, for each entity, \
                the rows whose time falls on --day (UTC), one per business id, to <dir>/<entity>-<day>.csv and/or .jsonl \
                (columns: docs/OPERATIONS.md, "ERP feed"). Files are written whole under a temporary name and then renamed, \
                so an ERP polling the directory never reads half a file; running it again rewrites the same files. Prints \
                one line per file with its row count.
                """
        )

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case csv, jsonl, both
        }

        @Option(help: "The day, yyyy-MM-dd (UTC). Default: yesterday.")
        var day: String?

        @Option(help: "Only these entities (repeatable): \(ERPEntity.allCases.map(\.rawValue).joined(separator: ", ")).")
        var entity: [ERPEntity] = []

        @Option(help: "csv, jsonl or both.")
        var format: Format = .both

        @Option(help: "Directory to write into (created if missing).")
        var dir: String = "."

        @OptionGroup var client: ClientOptions

        func validate() throws {
            if let day, day.count != 10 || RFC3339.parse(day + "T00:00:00Z") == nil {
                throw ValidationError("--day '\(day)' is not a day (yyyy-MM-dd)")
            }
        }

        func run() async throws {
            let day = day ?? RFC3339.formatDate(Date().addingTimeInterval(-86_400))
            let kafka = try client.kafkaConfiguration(clientID: "oms-erp-export")
            let messages = try await TopicScan.records(of: [ERPRecord.topic], kafka: kafka, logger: Logger(label: "oms.erp"))
            let records = messages.compactMap { message -> ERPRecord? in
                guard let envelope = try? Envelope.decode(message.eventRecord), case .erpRecord(let record) = envelope.event else { return nil }
                return record
            }
            let directory = URL(fileURLWithPath: dir)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for entity in entity.isEmpty ? ERPEntity.allCases : entity {
                let rows = ERPFeed.rows(records, entity: entity, day: day)
                var files: [(String, String)] = []
                if format != .jsonl { files.append(("csv", ERPFeed.csv(rows, entity: entity))) }
                if format != .csv { files.append(("jsonl", ERPFeed.jsonLines(rows, entity: entity))) }
                for (suffix, text) in files {
                    let target = directory.appendingPathComponent("\(entity.rawValue)-\(day).\(suffix)")
                    let partial = directory.appendingPathComponent(".\(entity.rawValue)-\(day).\(suffix).partial")
                    try Data(text.utf8).write(to: partial)
                    _ = try? FileManager.default.removeItem(at: target)
                    try FileManager.default.moveItem(at: partial, to: target)
                    print("\(target.path)\t\(rows.count) rows")
                }
            }
        }
    }
}

extension ERPEntity: ExpressibleByArgument {}
