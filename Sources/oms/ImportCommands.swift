import ArgumentParser
import Contracts
import Fleet
import Foundation
import Kafka
import Workers

/// `oms catalog import FILE`: products into the compacted oms.catalog.products.
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Feed the product catalog (oms.catalog.products).",
        subcommands: [CatalogImportCommand.self]
    )
}

struct CatalogImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import products from a CSV or JSON file (docs/RULES.md#catalog-files).",
        discussion: "CSV columns: \(DataImport.catalogColumns.joined(separator: ",")). A JSON file is an array of oms.catalog.product.v1 objects. Nothing is produced if any row is wrong."
    )

    @OptionGroup var client: ClientOptions

    @Argument(help: "The file (.csv or .json).")
    var file: String

    func run() async throws {
        let products: [CatalogProduct]
        do {
            products = try DataImport.products(try ImportFile.read(file), json: ImportFile.isJSON(file))
        } catch let failure as DataImport.Failure {
            throw ValidationError("\(file): \(failure)")
        }
        let envelopes = products.map { product in
            Envelope(
                id: DeterministicID.uuidV5(namespace: ImportFile.namespace, name: "catalog/\(product.sku)/\(UUID().uuidString)"),
                source: "oms/catalog-import", time: Date(), event: product.event)
        }
        try await ImportFile.produce(envelopes, client: client)
        print("imported \(products.count) product(s) into \(CatalogProduct.topic)")
    }
}

/// `oms stock import FILE`: absolute stock counts as inventory adjustments.
struct StockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stock",
        abstract: "Feed stock counts to the inventory stage (oms.inventory.commands).",
        subcommands: [StockImportCommand.self]
    )
}

struct StockImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Set on-hand (and safety stock) per SKU and location from a CSV or JSON file.",
        discussion: "CSV columns: sku,location,on_hand[,safety_stock]. Each row becomes an absolute AdjustInventory; inventory ignores a count whose --sequence is not newer than the last one applied for that SKU and location."
    )

    @OptionGroup var client: ClientOptions

    @Argument(help: "The file (.csv or .json).")
    var file: String

    @Option(help: "Source system named in the adjustments.")
    var source = "oms-stock-import"

    @Option(help: "Source sequence number of this count (default: the current time in milliseconds).")
    var sequence: Int64?

    func run() async throws {
        let counts: [DataImport.StockCount]
        do {
            counts = try DataImport.stock(try ImportFile.read(file), json: ImportFile.isJSON(file))
        } catch let failure as DataImport.Failure {
            throw ValidationError("\(file): \(failure)")
        }
        let sequence = sequence ?? Date().millisecondsSince1970
        let envelopes = counts.map { count in
            let adjustment = count.adjustment(source: source, sequence: sequence)
            return Envelope(
                id: DeterministicID.uuidV5(namespace: ImportFile.namespace, name: "stock/\(source)/\(count.sku)/\(count.location)/\(sequence)"),
                source: "oms/stock-import", time: Date(), event: adjustment.event)
        }
        try await ImportFile.produce(envelopes, client: client)
        print("sent \(counts.count) stock count(s) to \(AdjustInventory.topic) (source \(source), sequence \(sequence))")
    }
}

/// `oms fulfilment import FILE`: locations' answers from a file (vendors that send files).
struct FulfilmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fulfilment",
        abstract: "Feed locations' answers to fulfilment requests (oms.fulfilment.inbound).",
        subcommands: [FulfilmentImportCommand.self]
    )
}

struct FulfilmentImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import locations' answers (accepted, picked, packed, shipped, ...) from a CSV or JSON file (docs/RULES.md#fulfilment-files).",
        discussion: "CSV columns: \(DataImport.fulfilmentColumns.joined(separator: ",")); rows with the same update_id make one answer. Nothing is produced if any answer is wrong; an answer imported twice is applied once."
    )

    @OptionGroup var client: ClientOptions

    @Argument(help: "The file (.csv or .json).")
    var file: String

    func run() async throws {
        let updates: [FulfilmentUpdate]
        do {
            updates = try DataImport.fulfilmentUpdates(try ImportFile.read(file), json: ImportFile.isJSON(file), now: Date())
        } catch let failure as DataImport.Failure {
            throw ValidationError("\(file): \(failure)")
        }
        let envelopes = updates.map { Envelope(id: $0.derivedEventId, source: "oms/fulfilment-import", time: Date(), event: $0.event) }
        try await ImportFile.produce(envelopes, client: client)
        print("imported \(updates.count) answer(s) into \(FulfilmentUpdate.topic)")
    }
}

enum ImportFile {
    static let namespace = UUID(uuidString: "6c3f1c5e-2b8e-4f7a-9d41-0f2a7e9b1c55")!

    static func isJSON(_ path: String) -> Bool { path.lowercased().hasSuffix(".json") }

    static func read(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
        return data
    }

    /// Produces every envelope to its topic and waits for the acknowledgements.
    static func produce(_ envelopes: [Envelope], client: ClientOptions) async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: client.kafkaConfiguration()))
        for envelope in envelopes {
            try await producer.enqueue(try KafkaProducerMessage(envelope, topic: envelope.topic))
        }
        try await producer.close()
    }
}
