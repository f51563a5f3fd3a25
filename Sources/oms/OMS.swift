import ArgumentParser
import Foundation
import Kafka

/// `oms`: the one OrderFleet executable.
@main
struct OMS: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "oms",
        abstract: "OrderFleet: an order management system on Apache Kafka.",
        subcommands: [
            DemoCommand.self,
            BrokerCommand.self,
            ProduceCommand.self,
            ConsumeCommand.self,
            TopicsCommand.self,
            WorkerCommand.self,
            FleetCommand.self,
            ConnectorCommand.self,
            ChannelsCommand.self,
            WebhooksCommand.self,
            ERPCommand.self,
            GatewayCommand.self,
            DeadLetterCommand.self,
            CatalogCommand.self,
            FulfilmentCommand.self,
            StockCommand.self,
            OrdersCommand.self,
            ReportCommand.self,
            BenchCommand.self,
            StageBenchCommand.self,
            PipelineBenchCommand.self,
            VersionCommand.self,
        ]
    )

    /// Standard output goes out line by line, also into a file or a pipe, where it would
    /// otherwise wait in a block buffer until exit (a script reading `oms broker`'s
    /// bootstrap address would wait forever).
    static func main() async {
        lineBufferStandardOutput()
        exitWhenParentEndsIfAsked()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version of oms and of librdkafka.")

    func run() {
        print("oms \(OMS.version)")
        print("librdkafka \(KafkaLibrary.version)")
    }
}
