import ArgumentParser
import Contracts
import Fleet
import Foundation
import Kafka

/// `oms channels`: what the channels are told.
struct ChannelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channels",
        abstract: "Work with what the channels are told (stock feeds).",
        subcommands: [Resync.self]
    )

    /// `oms channels resync`: every SKU's stock sent to its channels again.
    struct Resync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send stock to the channels again, whatever was sent (after a channel lost or changed its listings).",
            discussion: """
                Writes one StockResync per SKU known to inventory (or per --sku) to oms.stockfeed.requests; the stock-feed \
                stage answers each with a StockUpdate per channel feed (or for --channel only), which the stock connector \
                performs. Prints how many requests it wrote.
                """
        )

        @Option(help: "Only this channel (as in the stock feed rules).")
        var channel: String?

        @Option(help: "Only these SKUs (repeatable). Default: every SKU in oms.inventory.levels.")
        var sku: [String] = []

        @OptionGroup var client: ClientOptions

        func run() async throws {
            let kafka = try client.kafkaConfiguration(clientID: "oms-channels-resync")
            var skus = sku
            if skus.isEmpty {
                for case .inventoryLevel(let level) in try await GlobalTable.snapshot(topic: InventoryLevel.topic, kafka: kafka).values {
                    skus.append(level.sku)
                }
            }
            let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka))
            let now = Date()
            // One id per SKU, channel and minute: a resync repeated by mistake within the
            // minute is one request for readers that dedupe on ce_id.
            let minute = Int(now.timeIntervalSince1970 / 60)
            for sku in Set(skus).sorted() {
                let request = StockResync(sku: sku, channel: channel, requestedAt: now)
                let id = DeterministicID.eventID(inputEventID: "resync/\(sku)/\(channel ?? "*")/\(minute)", stage: "oms-channels-resync", outputIndex: 0)
                try await producer.enqueue(try KafkaProducerMessage(Envelope(id: id, source: "oms/channels-resync", time: now, event: request.event), topic: StockResync.topic))
            }
            try await producer.flush()
            try await producer.close()
            print("\(Set(skus).count) SKUs asked to be sent again\(channel.map { " to \($0)" } ?? " to every channel feed")")
        }
    }
}
