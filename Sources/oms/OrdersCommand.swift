import ArgumentParser
import Contracts
import Fleet
import Foundation

/// `oms orders`: look at orders (oms.orders.state) and send operator commands
/// (oms.orders.commands).
struct OrdersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orders",
        abstract: "Show and list orders (oms.orders.state); release or cancel one (oms.orders.commands).",
        subcommands: [ShowCommand.self, ListCommand.self, ReleaseCommand.self, CancelCommand.self]
    )

    struct ShowCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Print an order's view: status, lines, payments, shipments, returns and its timeline.",
            discussion: "Reads oms.orders.state (the view stage's output). Exits 1 if the order is not there."
        )

        @OptionGroup var client: ClientOptions
        @Argument(help: "The order id.") var orderId: String
        @Flag(help: "Print the view as JSON (the event payload).") var json = false

        func run() async throws {
            let views = try await OrdersCommand.views(client)
            guard let view = views[orderId] else {
                throw ValidationError("order \(orderId) is not in \(OrderView.topic) (\(views.count) orders are)")
            }
            print(json ? try OrdersCommand.json(view) : OrderViewText.render(view))
        }
    }

    struct ListCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List orders, newest change first, optionally only those in one status.",
            discussion: "Statuses: \(OrderStatus.allCases.map(\.rawValue).joined(separator: ", ")). Reads oms.orders.state."
        )

        @OptionGroup var client: ClientOptions
        @Option(help: "Only orders in this status, e.g. held.") var status: String?
        @Option(help: "Only orders of this channel.") var channel: String?
        @Option(help: "At most this many.") var limit = 50

        func validate() throws {
            if let status, OrderStatus(rawValue: status) == nil {
                throw ValidationError("--status '\(status)' is not a status; use one of \(OrderStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() async throws {
            let wanted = status.flatMap(OrderStatus.init(rawValue:))
            let views = try await OrdersCommand.views(client).values
                .filter { (wanted == nil || $0.status == wanted) && (channel == nil || $0.channel == channel) }
                .sorted { ($0.updatedAt, $0.orderId) > ($1.updatedAt, $1.orderId) }
            print(OrderViewText.table(Array(views.prefix(limit))))
            if views.count > limit { print("… \(views.count - limit) more (--limit)") }
        }
    }

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
            abstract: "Cancel an order: accepted while no shipment exists (reservations released, authorization voided), else rejected.",
            discussion: "The shipping stage decides; the outcome is on oms.orders.cancellations and in `oms orders show`."
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

    /// Every order view, by order id.
    static func views(_ client: ClientOptions) async throws -> [String: OrderView] {
        let values = try await GlobalTable.snapshot(topic: OrderView.topic, kafka: try client.kafkaConfiguration(clientID: "oms-orders"))
        return values.compactMapValues { if case .orderView(let view) = $0 { return view } else { return nil } }
    }

    static func json(_ view: OrderView) throws -> String {
        let encoder = EventCodec.makeEncoder()
        encoder.outputFormatting.insert(.prettyPrinted)
        return String(decoding: try encoder.encode(view), as: UTF8.self)
    }

    static func send(_ event: Event, client: ClientOptions) async throws {
        let envelope = Envelope(id: UUID().uuidString.lowercased(), source: "oms/cli", time: Date(), event: event)
        try await ImportFile.produce([envelope], client: client)
    }
}
