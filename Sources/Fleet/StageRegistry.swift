import Workers

/// The order pipeline's stages, by name: the one list that `oms worker`, `oms fleet`,
/// `oms demo`, the benchmarks, the deployment manifests' test and the tests build from.
public enum StageRegistry {
    /// One stage: its name (its consumer group is `oms.<name>`) and how to build it from
    /// the business rules.
    public struct Entry: Sendable {
        /// The stage's name.
        public let name: String
        /// Builds the stage with `rules`.
        public let make: @Sendable (BusinessRules) -> any Stage
    }

    /// Every pipeline stage, in the order an order meets them (`report` last).
    public static let pipeline: [Entry] = [
        Entry(name: "intake") { IntakeStage(rules: $0.intake) },
        Entry(name: "payment") { PaymentStage(rules: $0.payment) },
        Entry(name: "fraud-velocity") { FraudVelocityStage(rules: $0.payment) },
        Entry(name: "inventory") { _ in InventoryStage() },
        Entry(name: "allocation") { AllocationStage(rules: $0) },
        Entry(name: "fulfilment") { FulfilmentStage(rules: $0) },
        Entry(name: "shipping") { ShippingStage(rules: $0) },
        Entry(name: "tracking") { TrackingStage(rules: $0.shipping) },
        Entry(name: "returns") { ReturnsStage(rules: $0) },
        Entry(name: "channel-sync") { _ in ChannelSyncStage() },
        Entry(name: "stock-feed") { StockFeedStage(rules: $0.stockFeeds) },
        Entry(name: "view") { OrderViewStage(rules: $0.notifications) },
        Entry(name: "customer-facts") { _ in CustomerFactsStage() },
        Entry(name: "customers") { _ in CustomerTimelineStage() },
        Entry(name: "erp-feed") { _ in ERPFeedStage() },
        Entry(name: "sla-watch") { SLAWatchStage(rules: $0.sla) },
        Entry(name: "invoicing") { InvoicingStage(rules: $0.invoicing) },
        Entry(name: "invoice-numbering") { InvoiceNumberingStage(rules: $0.invoicing) },
        Entry(name: "report") { _ in ReportStage() },
    ]

    /// The pipeline stages' names, in order.
    public static let names = pipeline.map(\.name)

    /// The pipeline stage called `name` built with `rules`; nil for another name.
    public static func stage(named name: String, rules: BusinessRules) -> (any Stage)? {
        pipeline.first { $0.name == name }?.make(rules)
    }

    /// The stages called `names`, in that order; throws naming the first unknown one.
    public static func stages(named names: [String], rules: BusinessRules) throws(UnknownStage) -> [any Stage] {
        try names.map { name throws(UnknownStage) in
            guard let stage = stage(named: name, rules: rules) else { throw UnknownStage(name: name) }
            return stage
        }
    }

    /// A name that is not a pipeline stage.
    public struct UnknownStage: Error, Sendable, CustomStringConvertible {
        /// The name asked for.
        public let name: String
        /// `unknown stage 'x'; stages: …`.
        public var description: String { "unknown stage '\(name)'; stages: \(StageRegistry.names.joined(separator: ", "))" }
    }
}
