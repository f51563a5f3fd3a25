import ArgumentParser
import Contracts
import Foundation

/// `oms orders`: operator commands on one order, sent to oms.orders.commands.
struct OrdersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orders",
        abstract: "Operator commands on an order (oms.orders.commands).",
        subcommands: [ReleaseCommand.self, CancelCommand.self]
    )

    struct ReleaseCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "release",
            abstract: "Release an order held for fraud review; it proceeds as approved.",
            discussion: "An order that is not held is dead-lettered by the payment stage with the reason."
        )

        @OptionGroup var client: ClientOptions
        @Argument(help: "The order id.") var orderId: String
        @Option(help: "Who releases it (kept in the decision).") var by: String
        @Option(help: "Review note.") var note: String?

        func run() async throws {
            let command = ReleaseHold(orderId: orderId, releasedBy: by, note: note, requestedAt: Date())
            try await OrdersCommand.send(command.event, client: client)
            print("release of \(orderId) sent to \(ReleaseHold.topic)")
        }
    }

    struct CancelCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cancel",
            abstract: "Cancel an order: a held order is declined and its authorization voided; allocation releases every reservation."
        )

        @OptionGroup var client: ClientOptions
        @Argument(help: "The order id.") var orderId: String
        @Option(help: "Who cancels it.") var by: String
        @Option(help: "Reason code, e.g. fraud or customer_request.") var reason = "operator"
        @Option(help: "Reason text.") var message = "cancelled by an operator"

        func run() async throws {
            let command = CancelOrder(orderId: orderId, requestedBy: by, reason: Reason(code: reason, message: message), requestedAt: Date())
            try await OrdersCommand.send(command.event, client: client)
            print("cancel of \(orderId) sent to \(CancelOrder.topic)")
        }
    }

    static func send(_ event: Event, client: ClientOptions) async throws {
        let envelope = Envelope(id: UUID().uuidString.lowercased(), source: "oms/cli", time: Date(), event: event)
        try await ImportFile.produce([envelope], client: client)
    }
}
