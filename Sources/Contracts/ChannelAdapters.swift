import Foundation

/// What a channel payload turns into: a new order, or a change to one the channel already sent.
public enum ChannelInput: Sendable, Hashable, Codable {
    /// A new order for intake.
    case order(CanonicalOrder)
    /// A change notification for an existing order.
    case change(ChannelOrderChange)
}

/// A channel-side change to an order already received.
public enum ChannelOrderChange: Sendable, Hashable, Codable {
    /// The buyer or the channel cancelled; becomes a command on `oms.orders.commands`.
    case cancel(CancelOrder)
    /// Any other status change, kept for the order view and operators.
    case statusChanged(ChannelOrderStatusChange)
    /// The order as the channel holds it now (an edit, or a cancel), for intake to turn
    /// into the commands an operator would send: its body names no channel.
    case edited(ChannelOrderEdit)
}

/// An order as a channel holds it after an edit: what intake turns into commands.
public struct ChannelOrderEdit: Sendable, Hashable, Codable {
    /// Channel order id.
    public var externalOrderId: String
    /// Set when the channel cancelled the order.
    public var cancelled: Reason?
    /// The ship-to address now.
    public var shippingAddress: Address?
    /// Units removed from each line since it was placed (cumulative, not this edit's).
    public var removed: [LineQuantity]
    /// When the channel changed it.
    public var changedAt: Date

    /// Memberwise initializer.
    public init(externalOrderId: String, cancelled: Reason?, shippingAddress: Address?, removed: [LineQuantity], changedAt: Date) {
        self.externalOrderId = externalOrderId
        self.cancelled = cancelled
        self.shippingAddress = shippingAddress
        self.removed = removed
        self.changedAt = changedAt
    }
}

/// A channel status change that needs no command (e.g. Amazon `Shipped` for an FBA order).
public struct ChannelOrderStatusChange: Sendable, Hashable, Codable {
    /// Sales channel.
    public var channel: String
    /// Channel order id.
    public var externalOrderId: String
    /// OMS order id derived from channel and external id.
    public var orderId: String
    /// The channel's new status value, verbatim.
    public var status: String
    /// When the channel says it changed.
    public var changedAt: Date

    /// Memberwise initializer.
    public init(channel: String, externalOrderId: String, orderId: String, status: String, changedAt: Date) {
        self.channel = channel
        self.externalOrderId = externalOrderId
        self.orderId = orderId
        self.status = status
        self.changedAt = changedAt
    }
}

extension ChannelFormat {
    /// Whether the format carries a change to an order the channel sent before (not an
    /// order): its records repeat the order's key, so they are told apart by event id.
    public var carriesChange: Bool {
        switch self {
        case .amazonOrderChange, .shopifyOrderUpdated, .shopifyOrderCancelled: true
        case .shopifyOrder, .amazonOrder, .posSale, .canonical: false
        }
    }
}

/// Dispatches an inbound payload to the adapter its format names.
public enum ChannelAdapters {
    /// Decodes `body` as `format`.
    public static func decode<Body: Collection>(
        format: ChannelFormat, body: Body, limits: AdapterLimits = .default
    ) throws(ContractError) -> ChannelInput where Body.Element == UInt8 {
        switch format {
        case .shopifyOrder: return .order(try ShopifyOrderAdapter.decode(body, limits: limits))
        case .amazonOrder: return .order(try AmazonOrderAdapter.decode(body, limits: limits))
        case .amazonOrderChange: return .change(try AmazonOrderChangeAdapter.decode(body, limits: limits))
        case .shopifyOrderUpdated: return .change(.edited(try ShopifyOrderAdapter.edit(body, cancel: false, limits: limits)))
        case .shopifyOrderCancelled: return .change(.edited(try ShopifyOrderAdapter.edit(body, cancel: true, limits: limits)))
        case .posSale: return .order(try POSSaleAdapter.decode(body, limits: limits))
        case .canonical: return .order(try CanonicalOrderAdapter.decode(body, limits: limits))
        }
    }
}

/// Shopify `orders/create` webhook body (REST Admin API Order resource).
///
/// Prices are decimal strings in the shop currency (`currency`); line
/// `total_discount` and `tax_lines[].price` are per line, for the whole quantity.
public enum ShopifyOrderAdapter {
    /// The channel name written to canonical orders.
    public static let channel = "shopify"

    /// Decodes an order body.
    public static func decode<Body: Collection>(_ body: Body, limits: AdapterLimits = .default) throws(ContractError)
        -> CanonicalOrder where Body.Element == UInt8
    {
        let root = try JSONObjectReader(try limits.parse(body), path: "$")
        let currency = try root.currency("currency")
        let externalID = try root.identifier("id")
        let orderEmail = try root.optionalText("email")
        let contactEmail = try root.optionalText("contact_email")
        let customerObject = try root.optionalObject("customer")
        let customerEmail = try customerObject?.optionalText("email")
        let customer = Customer(
            id: try customerObject.map { o throws(ContractError) in try o.identifier("id") },
            email: orderEmail ?? contactEmail ?? customerEmail)

        var lines: [OrderLine] = []
        for item in try root.objects("line_items") {
            guard let sku = try item.optionalText("sku") else {
                throw .invalidField(path: item.at("sku"), reason: "line item has no SKU; it cannot be fulfilled")
            }
            let quantity = try item.integer("quantity")
            guard quantity >= 1 else { throw .invalidField(path: item.at("quantity"), reason: "must be at least 1") }
            var taxes: [Money] = []
            for tax in try item.objects("tax_lines", required: false) {
                taxes.append(try tax.nonNegativeMoney("price", currency))
            }
            lines.append(
                OrderLine(
                    lineId: try item.identifier("id"), sku: sku, quantity: quantity,
                    unitPrice: try item.nonNegativeMoney("price", currency),
                    discount: try item.nonNegativeMoney("total_discount", currency, default: true),
                    tax: try sum(taxes, currency: currency, path: item.at("tax_lines"))))
        }
        guard !lines.isEmpty else { throw .invalidField(path: "line_items", reason: "an order needs at least one line") }

        let shippingLines = try root.objects("shipping_lines", required: false)
        var shippingAmounts: [Money] = []
        for line in shippingLines { shippingAmounts.append(try line.nonNegativeMoney("price", currency)) }
        let shippingTotal = try sum(shippingAmounts, currency: currency, path: "shipping_lines")
        let method = try shippingLines.first?.optionalText("title")
        let methodCode = try shippingLines.first?.optionalText("code")

        let subtotal: Money
        if let given = try root.optionalMoney("total_line_items_price", currency) {
            subtotal = given
        } else {
            var extended: [Money] = []
            for line in lines {
                do { extended.append(try line.unitPrice.multiplied(by: line.quantity)) } catch {
                    throw .invalidField(path: "line_items", reason: error.description)
                }
            }
            subtotal = try sum(extended, currency: currency, path: "line_items")
        }
        let total = try root.nonNegativeMoney("total_price", currency)
        let totals = OrderTotals(
            subtotal: subtotal,
            discount: try root.nonNegativeMoney("total_discounts", currency, default: true),
            shipping: shippingTotal,
            tax: try root.nonNegativeMoney("total_tax", currency, default: true),
            total: total,
            taxIncluded: try root.bool("taxes_included") ?? false)

        guard let shippingObject = try root.optionalObject("shipping_address") else {
            throw .invalidField(path: "shipping_address", reason: "required for a shippable order")
        }
        let shippingAddress = try address(shippingObject, email: customer.email)
        let billingAddress = try root.optionalObject("billing_address").map { o throws(ContractError) in
            try address(o, email: customer.email)
        }
        let order = CanonicalOrder(
            channel: channel, externalOrderId: externalID, customer: customer, lines: lines,
            shipping: ShippingCharge(method: method, amount: shippingTotal), totals: totals, currency: currency,
            shippingAddress: shippingAddress, billingAddress: billingAddress,
            payment: PaymentAuthorization(
                status: try paymentStatus(root), amount: total, reference: externalID),
            placedAt: try root.date("created_at"),
            serviceLevel: ServiceLevel(shippingText: [methodCode, method].compactMap { $0 }.joined(separator: " ")))
        try order.validateShape()
        return order
    }

    /// Decodes an `orders/updated` (`cancel` false) or `orders/cancelled` body: the
    /// ship-to address and the units each line lost to order edits (`quantity` −
    /// `current_quantity`), or the cancel with its `cancel_reason`.
    public static func edit<Body: Collection>(_ body: Body, cancel: Bool, limits: AdapterLimits = .default) throws(ContractError)
        -> ChannelOrderEdit where Body.Element == UInt8
    {
        let root = try JSONObjectReader(try limits.parse(body), path: "$")
        let externalID = try root.identifier("id")
        let changedAt: Date
        if let updated = try root.optionalDate("updated_at") { changedAt = updated } else { changedAt = try root.date("created_at") }
        if cancel {
            guard try root.optionalText("cancelled_at") != nil else {
                throw .invalidField(path: root.at("cancelled_at"), reason: "an orders/cancelled body names when the order was cancelled")
            }
            let code = try root.optionalText("cancel_reason") ?? "other"
            return ChannelOrderEdit(
                externalOrderId: externalID, cancelled: Reason(code: "channel_\(code)", message: "cancelled in Shopify (\(code))"), shippingAddress: nil,
                removed: [], changedAt: changedAt)
        }
        var removed: [LineQuantity] = []
        for item in try root.objects("line_items") {
            let quantity = try item.integer("quantity")
            // Without current_quantity (API versions before 2023-01) nothing was removed.
            guard let current = try item.optionalInteger("current_quantity"), current < quantity else { continue }
            guard current >= 0 else { throw .invalidField(path: item.at("current_quantity"), reason: "must not be negative") }
            removed.append(LineQuantity(lineId: try item.identifier("id"), quantity: quantity - current))
        }
        let email = try root.optionalText("email")
        let shippingAddress = try root.optionalObject("shipping_address").map { o throws(ContractError) in try address(o, email: email) }
        return ChannelOrderEdit(
            externalOrderId: externalID, cancelled: nil, shippingAddress: shippingAddress, removed: removed, changedAt: changedAt)
    }

    static func paymentStatus(_ root: JSONObjectReader) throws(ContractError) -> PaymentAuthorizationStatus {
        let status = try root.optionalText("financial_status") ?? "pending"
        switch status {
        case "pending": return .pending
        case "authorized": return .authorized
        case "paid": return .captured
        case "partially_paid": return .partiallyCaptured
        case "voided": return .voided
        default:
            throw .invalidField(
                path: root.at("financial_status"), reason: "'\(status)' is not a status a new order can have")
        }
    }

    static func address(_ o: JSONObjectReader, email: String?) throws(ContractError) -> Address {
        let first = try o.optionalText("first_name")
        let last = try o.optionalText("last_name")
        let joined = [first, last].compactMap { $0 }.joined(separator: " ")
        guard let name = try o.optionalText("name") ?? (joined.isEmpty ? nil : joined) else {
            throw .invalidField(path: o.at("name"), reason: "address has no recipient name")
        }
        let lines = [try o.optionalText("company"), try o.optionalText("address1"), try o.optionalText("address2")]
            .compactMap { $0 }
        guard try o.optionalText("address1") != nil else {
            throw .invalidField(path: o.at("address1"), reason: "required field is missing")
        }
        let provinceCode = try o.optionalText("province_code")
        let province = try o.optionalText("province")
        return Address(
            name: name, lines: lines, city: try o.nonEmptyString("city"),
            region: provinceCode ?? province,
            postalCode: try o.optionalText("zip"), country: try o.country("country_code"),
            phone: try o.optionalText("phone"), email: email)
    }
}

extension ServiceLevel {
    /// Best-effort service level from a channel's shipping method text; standard when unsure,
    /// because promising too fast is worse than too slow.
    init(shippingText: String) {
        let t = shippingText.lowercased()
        if t.contains("same day") || t.contains("same-day") || t.contains("sameday") {
            self = .sameDay
        } else if t.contains("next day") || t.contains("next-day") || t.contains("nextday") || t.contains("overnight") {
            self = .nextDay
        } else if t.contains("express") || t.contains("expedited") || t.contains("priority") || t.contains("second day")
            || t.contains("2-day") || t.contains("secondday")
        {
            self = .expedited
        } else {
            self = .standard
        }
    }
}

/// Amazon SP-API Orders API order (`getOrder` payload) with its `OrderItems`
/// (`getOrderItems` payload) merged in as an `OrderItems` array.
///
/// `ItemPrice` is the price for the whole quantity, so the unit price is
/// `ItemPrice / QuantityOrdered` and must divide exactly.
public enum AmazonOrderAdapter {
    /// The channel name written to canonical orders.
    public static let channel = "amazon"

    /// Order statuses that carry a full, payable order.
    static let acceptedStatuses: Set<String> = ["Unshipped", "PartiallyShipped", "Shipped"]

    /// Decodes an order body.
    public static func decode<Body: Collection>(_ body: Body, limits: AdapterLimits = .default) throws(ContractError)
        -> CanonicalOrder where Body.Element == UInt8
    {
        var root = try JSONObjectReader(try limits.parse(body), path: "$")
        if root.fields["AmazonOrderId"] == nil, let payload = try root.optionalObject("payload") {
            root = payload
        }
        let externalID = try root.nonEmptyString("AmazonOrderId")
        let status = try root.string("OrderStatus")
        guard acceptedStatuses.contains(status) else {
            throw .invalidField(
                path: root.at("OrderStatus"),
                reason: "'\(status)' orders are not accepted (Amazon withholds price and address until Unshipped)")
        }
        let orderTotal = try root.object("OrderTotal")
        let currency = try orderTotal.currency("CurrencyCode")
        let total = try orderTotal.nonNegativeMoney("Amount", currency)

        var lines: [OrderLine] = []
        var subtotals: [Money] = []
        var shippings: [Money] = []
        var discounts: [Money] = []
        var taxes: [Money] = []
        for item in try root.objects("OrderItems") {
            let sku = try item.nonEmptyString("SellerSKU")
            let quantity = try item.integer("QuantityOrdered")
            guard quantity >= 1 else { throw .invalidField(path: item.at("QuantityOrdered"), reason: "must be at least 1") }
            func amount(_ key: String) throws(ContractError) -> Money {
                guard let o = try item.optionalObject(key) else { return .zero(currency) }
                let c = try o.currency("CurrencyCode")
                guard c == currency else {
                    throw .invalidField(path: o.at("CurrencyCode"), reason: "\(c) differs from order currency \(currency)")
                }
                return try o.nonNegativeMoney("Amount", currency)
            }
            let itemPrice = try amount("ItemPrice")
            guard itemPrice.minorUnits % Int64(quantity) == 0 else {
                throw .invalidField(
                    path: item.at("ItemPrice"), reason: "\(itemPrice) does not divide evenly by quantity \(quantity)")
            }
            let tax = try amount("ItemTax")
            let discount = try amount("PromotionDiscount")
            lines.append(
                OrderLine(
                    lineId: try item.nonEmptyString("OrderItemId"), sku: sku, quantity: quantity,
                    unitPrice: Money(minorUnits: itemPrice.minorUnits / Int64(quantity), currency: currency),
                    discount: discount, tax: tax))
            subtotals.append(itemPrice)
            shippings.append(try amount("ShippingPrice"))
            discounts.append(discount)
            discounts.append(try amount("ShippingDiscount"))
            taxes.append(tax)
            taxes.append(try amount("ShippingTax"))
        }
        guard !lines.isEmpty else { throw .invalidField(path: "OrderItems", reason: "an order needs at least one line") }
        let shipping = try sum(shippings, currency: currency, path: "OrderItems")
        let subtotal = try sum(subtotals, currency: currency, path: "OrderItems")
        let discount = try sum(discounts, currency: currency, path: "OrderItems")
        // Amazon does not say whether ItemPrice includes tax; EU marketplaces
        // include VAT, the US does not. The order total tells which one it is.
        let taxExclusiveTotal = try subtotal.adding(shipping).subtracting(discount)

        let addressObject = try root.object("ShippingAddress")
        let buyer = try root.optionalObject("BuyerInfo")
        let email = try buyer?.optionalText("BuyerEmail")
        var addressLines: [String] = []
        for key in ["AddressLine1", "AddressLine2", "AddressLine3"] {
            if let line = try addressObject.optionalText(key) { addressLines.append(line) }
        }
        guard !addressLines.isEmpty else {
            throw .invalidField(path: addressObject.at("AddressLine1"), reason: "required field is missing")
        }
        let address = Address(
            name: try addressObject.nonEmptyString("Name"), lines: addressLines,
            city: try addressObject.nonEmptyString("City"),
            region: try addressObject.optionalText("StateOrRegion"),
            postalCode: try addressObject.optionalText("PostalCode"), country: try addressObject.country("CountryCode"),
            phone: try addressObject.optionalText("Phone"), email: email)
        let order = CanonicalOrder(
            channel: channel, externalOrderId: externalID,
            customer: Customer(id: nil, email: email), lines: lines,
            shipping: ShippingCharge(method: try root.optionalText("ShipServiceLevel"), amount: shipping),
            totals: OrderTotals(
                subtotal: subtotal, discount: discount, shipping: shipping,
                tax: try sum(taxes, currency: currency, path: "OrderItems"),
                total: total, taxIncluded: total == taxExclusiveTotal),
            currency: currency, shippingAddress: address, billingAddress: nil,
            payment: PaymentAuthorization(status: .captured, amount: total, reference: externalID),
            placedAt: try root.date("PurchaseDate"),
            promisedDeliveryDate: try root.optionalDate("LatestDeliveryDate"),
            serviceLevel: serviceLevel(try root.optionalText("ShipmentServiceLevelCategory")))
        try order.validateShape()
        return order
    }

    static func serviceLevel(_ category: String?) -> ServiceLevel {
        switch category {
        case "SameDay": return .sameDay
        case "NextDay": return .nextDay
        case "Expedited", "SecondDay", "Priority": return .expedited
        default: return .standard
        }
    }
}

/// Amazon SP-API `ORDER_CHANGE` notification.
///
/// A `BuyerRequestedChange` whose items carry `IsBuyerRequestedCancel`
/// (or whose `ChangeReason` mentions a cancel), and an `OrderStatusChange`
/// to `Canceled`, become a ``CancelOrder``; every other change is a plain
/// status change.
public enum AmazonOrderChangeAdapter {
    /// Decodes a notification body.
    public static func decode<Body: Collection>(_ body: Body, limits: AdapterLimits = .default) throws(ContractError)
        -> ChannelOrderChange where Body.Element == UInt8
    {
        let root = try JSONObjectReader(try limits.parse(body), path: "$")
        let type = try root.string("NotificationType")
        guard type == "ORDER_CHANGE" else {
            throw .invalidField(path: root.at("NotificationType"), reason: "'\(type)' is not ORDER_CHANGE")
        }
        let change = try root.object("Payload").object("OrderChangeNotification")
        let externalID = try change.nonEmptyString("AmazonOrderId")
        let changeType = try change.string("OrderChangeType")
        let trigger = try change.optionalObject("OrderChangeTrigger")
        let triggerTime = try trigger?.optionalDate("TimeOfOrderChange")
        let changedAt: Date
        if let triggerTime { changedAt = triggerTime } else { changedAt = try root.date("EventTime") }
        let changeReason = try trigger?.optionalText("ChangeReason")
        let summary = try change.optionalObject("Summary")
        let status = try summary?.optionalText("OrderStatus") ?? changeType
        let orderID = DeterministicID.orderID(channel: AmazonOrderAdapter.channel, externalOrderID: externalID)

        var buyerCancelReason: String?
        var buyerCancelled = false
        for item in try summary?.objects("OrderItems", required: false) ?? [] {
            // The notification schema flags items with `IsBuyerRequestedCancel`; the
            // Orders API shape nests it with a reason in `BuyerRequestedCancel`. Accept both.
            if try item.bool("IsBuyerRequestedCancel") == true { buyerCancelled = true }
            guard let cancel = try item.optionalObject("BuyerRequestedCancel") else { continue }
            if try cancel.bool("IsBuyerRequestedCancel") == true {
                buyerCancelled = true
                let reason = try cancel.optionalText("BuyerCancelReason")
                buyerCancelReason = buyerCancelReason ?? reason
            }
        }
        let reasonMentionsCancel = changeReason?.lowercased().contains("cancel") ?? false
        switch changeType {
        case "BuyerRequestedChange" where buyerCancelled || reasonMentionsCancel:
            return .cancel(
                CancelOrder(
                    orderId: orderID, requestedBy: "amazon:buyer",
                    reason: Reason(
                        code: "buyer_requested_cancel",
                        message: buyerCancelReason ?? changeReason ?? "Buyer requested cancellation"),
                    requestedAt: changedAt))
        case "OrderStatusChange" where status == "Canceled":
            return .cancel(
                CancelOrder(
                    orderId: orderID, requestedBy: "amazon",
                    reason: Reason(code: "channel_cancelled", message: changeReason ?? "Order cancelled by Amazon"),
                    requestedAt: changedAt))
        case "BuyerRequestedChange", "OrderStatusChange":
            return .statusChanged(
                ChannelOrderStatusChange(
                    channel: AmazonOrderAdapter.channel, externalOrderId: externalID, orderId: orderID,
                    status: status, changedAt: changedAt))
        default:
            throw .invalidField(path: change.at("OrderChangeType"), reason: "unknown change type '\(changeType)'")
        }
    }
}

/// OrderFleet's store POS sale format ("endless aisle": sold in store, shipped to the customer).
///
/// ```json
/// {"storeId": "berlin-mitte", "saleId": "R-000123", "soldAt": "2026-03-01T10:15:00+01:00",
///  "currency": "EUR", "customer": {"id": "loyalty-889", "email": "kunde@example.de"},
///  "items": [{"sku": "TEE-BLK-M", "quantity": 2, "unitPrice": "19.99", "discount": "2.00", "tax": "6.06"}],
///  "shipping": {"method": "store-to-home", "amount": "4.95"},
///  "shipTo": {"name": "…", "lines": ["…"], "city": "…", "postalCode": "…", "country": "DE"},
///  "payment": {"status": "captured", "amount": "47.89", "reference": "TX-1"},
///  "serviceLevel": "standard", "total": "47.89", "taxIncluded": false}
/// ```
/// Amounts are decimal strings or numbers; `discount`, `tax`, `customer`,
/// `shipping`, `serviceLevel` and `taxIncluded` are optional.
public enum POSSaleAdapter {
    /// The channel name written to canonical orders.
    public static let channel = "pos"

    /// Decodes a sale body.
    public static func decode<Body: Collection>(_ body: Body, limits: AdapterLimits = .default) throws(ContractError)
        -> CanonicalOrder where Body.Element == UInt8
    {
        let root = try JSONObjectReader(try limits.parse(body), path: "$")
        let store = try root.nonEmptyString("storeId")
        let sale = try root.nonEmptyString("saleId")
        let currency = try root.currency("currency")
        let customerObject = try root.optionalObject("customer")
        let customer = Customer(
            id: try customerObject?.optionalText("id"), email: try customerObject?.optionalText("email"))
        var lines: [OrderLine] = []
        var extended: [Money] = []
        for (i, item) in try root.objects("items").enumerated() {
            let quantity = try item.integer("quantity")
            guard quantity >= 1 else { throw .invalidField(path: item.at("quantity"), reason: "must be at least 1") }
            let unit = try item.nonNegativeMoney("unitPrice", currency)
            do { extended.append(try unit.multiplied(by: quantity)) } catch {
                throw .invalidField(path: item.at("quantity"), reason: error.description)
            }
            lines.append(
                OrderLine(
                    lineId: String(i + 1), sku: try item.nonEmptyString("sku"), quantity: quantity, unitPrice: unit,
                    discount: try item.nonNegativeMoney("discount", currency, default: true),
                    tax: try item.nonNegativeMoney("tax", currency, default: true)))
        }
        guard !lines.isEmpty else { throw .invalidField(path: "items", reason: "an order needs at least one line") }
        let shippingObject = try root.optionalObject("shipping")
        let shipping = ShippingCharge(
            method: try shippingObject?.optionalText("method"),
            amount: try shippingObject?.nonNegativeMoney("amount", currency) ?? .zero(currency))
        let total = try root.nonNegativeMoney("total", currency)
        let payment = try root.object("payment")
        let statusText = try payment.string("status")
        guard let status = PaymentAuthorizationStatus(rawValue: statusText) else {
            throw .invalidField(path: payment.at("status"), reason: "unknown payment status '\(statusText)'")
        }
        let levelText = try root.optionalText("serviceLevel") ?? ServiceLevel.standard.rawValue
        guard let level = ServiceLevel(rawValue: levelText) else {
            throw .invalidField(path: root.at("serviceLevel"), reason: "unknown service level '\(levelText)'")
        }
        let shipTo = try root.object("shipTo")
        var addressLines: [String] = []
        for (i, line) in try shipTo.array("lines").enumerated() {
            guard case .string(let s) = line, !s.isEmpty else {
                throw .invalidField(path: "\(shipTo.at("lines"))[\(i)]", reason: "expected a non-empty string")
            }
            addressLines.append(s)
        }
        guard !addressLines.isEmpty else { throw .invalidField(path: shipTo.at("lines"), reason: "must not be empty") }
        let address = Address(
            name: try shipTo.nonEmptyString("name"), lines: addressLines, city: try shipTo.nonEmptyString("city"),
            region: try shipTo.optionalText("region"), postalCode: try shipTo.optionalText("postalCode"),
            country: try shipTo.country("country"), phone: try shipTo.optionalText("phone"),
            email: try shipTo.optionalText("email") ?? customer.email)
        var discounts: [Money] = []
        var taxes: [Money] = []
        for line in lines {
            discounts.append(line.discount)
            taxes.append(line.tax)
        }
        let order = CanonicalOrder(
            channel: channel, externalOrderId: "\(store):\(sale)", customer: customer, lines: lines,
            shipping: shipping,
            totals: OrderTotals(
                subtotal: try sum(extended, currency: currency, path: "items"),
                discount: try sum(discounts, currency: currency, path: "items"),
                shipping: shipping.amount,
                tax: try sum(taxes, currency: currency, path: "items"), total: total,
                taxIncluded: try root.bool("taxIncluded") ?? false),
            currency: currency, shippingAddress: address, billingAddress: nil,
            payment: PaymentAuthorization(
                status: status, amount: try payment.nonNegativeMoney("amount", currency),
                reference: try payment.optionalText("reference")),
            placedAt: try root.date("soldAt"), serviceLevel: level)
        try order.validateShape()
        return order
    }
}

/// The generic channel format: a ``CanonicalOrder`` as JSON, for channels we
/// do not have a dedicated adapter for (their own connector maps to it).
public enum CanonicalOrderAdapter {
    /// Decodes and shape-checks a canonical order body.
    public static func decode<Body: Collection>(_ body: Body, limits: AdapterLimits = .default) throws(ContractError)
        -> CanonicalOrder where Body.Element == UInt8
    {
        let size = body.count
        guard size <= limits.maxBodyBytes else { throw .payloadTooLarge(size: size, limit: limits.maxBodyBytes) }
        let order = try EventCodec.decode(CanonicalOrder.self, from: Array(body))
        try order.validateShape()
        return order
    }
}
