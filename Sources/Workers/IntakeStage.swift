import Contracts
import Foundation

/// Turns channel payloads (oms.orders.inbound) into `OrderPlaced`, or `OrderRejected`
/// with every reason found; a channel change notification that cancels becomes a
/// `CancelOrder` command.
///
/// Dedupe is by business identity: the idempotency key of an order payload is
/// `channel/externalOrderId`, so a marketplace re-sending the order (Shopify retries a
/// webhook up to 8 times over 4 hours) is skipped by the runtime however many event ids
/// it arrives under, for as long as `worker.idempotency.retention.s` keeps the key.
/// A payload no adapter can read is dead-lettered (the adapter's error is the reason).
public struct IntakeStage: Stage {
    /// `intake`.
    public let name = "intake"
    /// oms.orders.inbound.
    public let inputTopics = [InboundChannelOrder.topic]
    /// The product catalog, looked up by SKU.
    public let globalTables = [CatalogProduct.topic]
    /// The rules.
    public let rules: IntakeRules

    /// Creates the stage.
    public init(rules: IntakeRules) {
        self.rules = rules
    }

    /// `channel/externalOrderId` for orders; the event id for change notifications,
    /// which repeat the order's key.
    public func idempotencyKey(for input: Envelope) -> String {
        if case .inboundChannelOrder(let inbound) = input.event, !inbound.format.carriesChange {
            return inbound.partitionKey
        }
        return input.id
    }

    /// Decodes, validates and places or rejects the order.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard case .inboundChannelOrder(let inbound) = input.event else {
            throw .rejected("intake reads \(InboundChannelOrder.eventType) only, not \(input.envelope.type)")
        }
        let decoded: ChannelInput
        do {
            decoded = try ChannelAdapters.decode(format: inbound.format, body: inbound.payload)
        } catch {
            throw .rejected("\(inbound.format.rawValue) payload: \(error.description)")
        }
        switch decoded {
        case .change(.cancel(let command)):
            return .emit(command.event)
        case .change(.statusChanged):
            return .none
        case .change(.edited(let edit)):
            guard edit.externalOrderId == inbound.externalOrderId else {
                throw .rejected("the change is for order \(edit.externalOrderId), the record for \(inbound.externalOrderId)")
            }
            return StageOutcome(outputs: Self.commands(for: edit, channel: inbound.channel).map { StageOutput($0) })
        case .order(var order):
            // A Shopify body names no shop: the gateway chose the channel from the
            // webhook's X-Shopify-Shop-Domain (one channel per shop) and keyed the record so.
            if inbound.format == .shopifyOrder { order.channel = inbound.channel }
            guard order.channel == inbound.channel, order.externalOrderId == inbound.externalOrderId else {
                throw .rejected(
                    "payload is order \(order.channel)/\(order.externalOrderId) but the record is keyed \(inbound.partitionKey)")
            }
            let reasons = Self.validate(order, rules: rules) { sku in
                if case .catalogProduct(let product) = state.table(CatalogProduct.topic, key: sku) { return product }
                return nil
            }
            let placed = OrderPlaced(order: order)
            if reasons.isEmpty { return .emit(placed.event) }
            let rejected = OrderRejected(
                orderId: placed.orderId, channel: order.channel, externalOrderId: order.externalOrderId, reasons: reasons,
                rejectedAt: input.now)
            return .emit(rejected.event)
        }
    }

    /// The commands an operator would send for a channel's edit: a cancel; or a new
    /// ship-to address (shipping ignores an unchanged one) and a line cancel per unit
    /// removed, whose change id names the unit (`channel:<channel>/<line>/<n>`), so that
    /// every later webhook repeating the edit is decided once.
    public static func commands(for edit: ChannelOrderEdit, channel: String) -> [Event] {
        let orderId = DeterministicID.orderID(channel: channel, externalOrderID: edit.externalOrderId)
        let requestedBy = "channel:\(channel)"
        if let reason = edit.cancelled {
            return [CancelOrder(orderId: orderId, requestedBy: requestedBy, reason: reason, requestedAt: edit.changedAt).event]
        }
        var commands: [Event] = []
        if let address = edit.shippingAddress {
            commands.append(UpdateShippingAddress(orderId: orderId, shippingAddress: address, requestedBy: requestedBy, requestedAt: edit.changedAt).event)
        }
        let reason = Reason(code: "channel_edit", message: "removed in \(channel)")
        for line in edit.removed where line.quantity > 0 {
            for unit in 1...line.quantity {
                commands.append(CancelOrderLines(
                    orderId: orderId, changeId: "\(requestedBy)/\(line.lineId)/\(unit)", lines: [LineQuantity(lineId: line.lineId, quantity: 1)],
                    requestedBy: requestedBy, reason: reason, requestedAt: edit.changedAt
                ).event)
            }
        }
        return commands
    }

    /// Every rule an order breaks, in a stable order; empty when it may be placed.
    public static func validate(_ order: CanonicalOrder, rules: IntakeRules, product: (String) -> CatalogProduct?) -> [Reason] {
        var reasons: [Reason] = []
        func add(_ code: String, _ message: String) { reasons.append(Reason(code: code, message: message)) }

        if order.lines.isEmpty { add("no_lines", "the order has no lines") }
        if !rules.currencies.contains(order.currency.code) {
            add("currency_unsupported", "currency \(order.currency.code) is not one of \(rules.currencies.joined(separator: ", "))")
        }
        let country = order.shippingAddress.country.code
        for line in order.lines {
            let label = "line \(line.lineId) (\(line.sku))"
            if line.quantity < 1 { add("quantity_invalid", "\(label): quantity \(line.quantity) is not a positive integer") }
            guard let item = product(line.sku) else {
                add("sku_unknown", "\(label): SKU is not in the catalog")
                continue
            }
            if item.sellable == false { add("sku_not_sellable", "\(label): SKU is not sellable") }
            if let launch = item.launchDate, order.placedAt < launch, item.preorder != true {
                add("sku_not_launched", "\(label): SKU launches \(RFC3339.format(launch))")
            }
            if item.blockedCountries.contains(where: { $0.code == country }) {
                add("destination_blocked", "\(label): SKU may not ship to \(country)")
            }
        }
        if let problem = totalsProblem(order) { add("totals_mismatch", problem) }
        if let pickup = order.pickupLocation, pickup.isEmpty { add("pickup_location_invalid", "pickup location is empty") }
        reasons += AddressRules.problems(order.shippingAddress).map { Reason(code: "address_incomplete", message: "shipping address: \($0)") }
        return reasons
    }

    /// Whether prices × quantities + shipping + tax − discounts make the total, within one
    /// minor unit of the currency (channels round per line); tax is not added when the
    /// prices include it.
    static func totalsProblem(_ order: CanonicalOrder) -> String? {
        var expected: Int64 = 0
        var lineDiscounts: Int64 = 0
        var lineTaxes: Int64 = 0
        for line in order.lines {
            let (amount, overflow) = line.unitPrice.minorUnits.multipliedReportingOverflow(by: Int64(line.quantity))
            if overflow { return "line \(line.lineId): price × quantity overflows" }
            expected &+= amount
            lineDiscounts &+= line.discount.minorUnits
            lineTaxes &+= line.tax.minorUnits
        }
        // The order-level discount and tax include the lines' ones; take the larger so a
        // channel that reports only one of them is still checked.
        let discount = max(lineDiscounts, order.totals.discount.minorUnits)
        let tax = order.totals.taxIncluded ? 0 : max(lineTaxes, order.totals.tax.minorUnits)
        expected = expected &+ order.shipping.amount.minorUnits &+ tax &- discount
        let total = order.totals.total.minorUnits
        guard abs(expected - total) > 1 else { return nil }
        let currency = order.currency
        return "lines, shipping, tax and discounts make \(Money(minorUnits: expected, currency: currency)) but the total is \(order.totals.total)"
    }
}

/// Whether an address is complete enough to ship to in its country.
public enum AddressRules {
    /// Countries whose addresses have no postal code (or do not need one to deliver).
    static let noPostalCode: Set<String> = [
        "AE", "AG", "AO", "AW", "BF", "BI", "BJ", "BO", "BS", "BW", "BZ", "CD", "CF", "CG", "CI", "CK", "CM", "DJ",
        "DM", "ER", "FJ", "GA", "GD", "GH", "GM", "GQ", "GY", "HK", "IE", "KI", "KM", "KN", "KP", "LY", "ML", "MO",
        "MR", "MW", "NR", "NU", "QA", "RW", "SB", "SC", "SL", "SR", "ST", "SY", "TD", "TF", "TG", "TK", "TL", "TO",
        "TV", "UG", "VU", "YE", "ZW",
    ]
    /// Countries where carriers need the state or province.
    static let regionRequired: Set<String> = ["US", "CA", "AU", "BR", "MX", "IN", "CN", "JP", "AR", "MY"]
    /// Postal code formats checked strictly (uppercased, spaces kept as given).
    static let postalPatterns: [String: String] = [
        "US": #"^\d{5}(-\d{4})?$"#,
        "CA": #"^[A-Z]\d[A-Z] ?\d[A-Z]\d$"#,
        "DE": #"^\d{5}$"#,
        "FR": #"^\d{5}$"#,
        "NL": #"^\d{4} ?[A-Z]{2}$"#,
        "GB": #"^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$"#,
        "JP": #"^\d{3}-?\d{4}$"#,
        "AU": #"^\d{4}$"#,
    ]

    /// What is missing or malformed; empty when complete.
    public static func problems(_ address: Address) -> [String] {
        var problems: [String] = []
        let country = address.country.code
        if address.name.trimmingCharacters(in: .whitespaces).isEmpty { problems.append("name is missing") }
        if !address.lines.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            problems.append("street is missing")
        }
        if address.city.trimmingCharacters(in: .whitespaces).isEmpty { problems.append("city is missing") }
        let postal = address.postalCode?.trimmingCharacters(in: .whitespaces).uppercased() ?? ""
        if postal.isEmpty {
            if !noPostalCode.contains(country) { problems.append("postal code is missing (required in \(country))") }
        } else if let pattern = postalPatterns[country], postal.range(of: pattern, options: .regularExpression) == nil {
            problems.append("postal code '\(postal)' is not valid in \(country)")
        }
        if regionRequired.contains(country), (address.region ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            problems.append("state or region is missing (required in \(country))")
        }
        return problems
    }
}
