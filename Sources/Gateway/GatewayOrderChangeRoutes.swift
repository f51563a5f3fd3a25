import Contracts
import Foundation
import Hummingbird
import Workers

extension GatewayRoutes {
    static let appeaseOrder = Route(method: "POST", path: "/v1/orders/{orderId}/appeasements")
    static let approveReturn = Route(method: "POST", path: "/v1/orders/{orderId}/returns/{returnId}/approve")
    static let changeAddress = Route(method: "POST", path: "/v1/orders/{orderId}/address")
    static let cancelLines = Route(method: "POST", path: "/v1/orders/{orderId}/lines/cancel")
}

extension Gateway {
    /// Customer service's changes to an order in flight: goodwill refunds, approval of a
    /// late return's refund, a new ship-to address, cancelled units. Bearer token,
    /// `Idempotency-Key`; the stage that owns the fact decides each one and the view's
    /// timeline shows the decision (docs/RULES.md, *Appeasements*, *Address changes and
    /// line cancels*).
    func orderChangeRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        add(GatewayRoutes.appeaseOrder, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in try await self.appeaseOrder(call) }
        add(GatewayRoutes.changeAddress, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in try await self.changeAddress(call) }
        add(GatewayRoutes.cancelLines, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in try await self.cancelLines(call) }
        add(GatewayRoutes.approveReturn, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in try await self.approveReturn(call) }
        return routes
    }

    /// `POST /v1/orders/{orderId}/appeasements`: a goodwill refund, decided by payment within its limits.
    private func appeaseOrder(_ call: Call) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        struct Body: Decodable {
            var amount: String
            var reason: String
            var message: String?
            var requestedBy: String
            var role: String
            var lineId: String?
            var storeCredit: Bool?
        }
        let body = try call.decode(Body.self)
        let view = try self.view(call.parameter("orderId"))
        try Self.nonEmpty(body.requestedBy, "requestedBy")
        try Self.nonEmpty(body.role, "role")
        try Self.nonEmpty(body.reason, "reason")
        let amount: Money
        do {
            amount = try Money.parse(body.amount, currency: view.currency)
        } catch {
            throw .invalidBody("$.amount: \(error) (a decimal amount in the order's currency, \(view.currency.code))")
        }
        guard amount.minorUnits > 0 else { throw .invalidBody("$.amount must be more than 0") }
        if let lineId = body.lineId, !view.lines.contains(where: { $0.lineId == lineId }) {
            throw Self.unknownLine(lineId, in: view, at: "lineId")
        }
        let id = Self.eventID(call, GatewayRoutes.appeaseOrder)
        let appeasementId = "apz-" + id.prefix(13)
        let command = AppeaseOrder(
            orderId: view.orderId, appeasementId: appeasementId, amount: amount,
            reason: Reason(code: body.reason, message: body.message ?? "goodwill refund"), requestedBy: body.requestedBy, role: body.role,
            lineId: body.lineId, requestedAt: Date(), storeCredit: body.storeCredit)
        return try await accept(command.event, id: id, orderId: view.orderId) { $0.appeasementId = appeasementId }
    }

    /// `POST /v1/orders/{orderId}/address`: a new ship-to address, decided by shipping.
    private func changeAddress(_ call: Call) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        struct Body: Decodable {
            var shippingAddress: Address
            var requestedBy: String
        }
        let body = try call.decode(Body.self)
        let view = try self.view(call.parameter("orderId"))
        try Self.nonEmpty(body.requestedBy, "requestedBy")
        let problems = AddressRules.problems(body.shippingAddress)
        guard problems.isEmpty else { throw .invalidBody("$.shippingAddress: \(problems.joined(separator: "; "))") }
        // Shipping decides (it alone knows whether a label was bought); an order
        // whose parcels left is refused here at once.
        if let shipment = view.shipments.first {
            throw GatewayError(
                status: 409, code: "label_bought",
                message: "order \(view.orderId) has shipment \(shipment.shipmentId) with \(shipment.carrier) \(shipment.trackingNumber): its parcel goes to the address on its label")
        }
        let command = UpdateShippingAddress(orderId: view.orderId, shippingAddress: body.shippingAddress, requestedBy: body.requestedBy, requestedAt: Date())
        return try await accept(command.event, id: Self.eventID(call, GatewayRoutes.changeAddress), orderId: view.orderId)
    }

    /// `POST /v1/orders/{orderId}/lines/cancel`: units cancelled, decided by allocation and shipping.
    private func cancelLines(_ call: Call) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        struct Body: Decodable {
            struct Line: Decodable {
                var lineId: String
                var quantity: Int
            }
            var lines: [Line]
            var requestedBy: String
            var reason: String?
            var message: String?
        }
        let body = try call.decode(Body.self)
        let view = try self.view(call.parameter("orderId"))
        try Self.nonEmpty(body.requestedBy, "requestedBy")
        guard !body.lines.isEmpty else { throw .invalidBody("$.lines is empty: name at least one line and the units to cancel") }
        for (index, line) in body.lines.enumerated() {
            guard let progress = view.lineProgress.first(where: { $0.lineId == line.lineId }) else {
                throw Self.unknownLine(line.lineId, in: view, at: "lines.\(index).lineId")
            }
            guard line.quantity >= 1 else { throw .invalidBody("$.lines.\(index).quantity must be at least 1") }
            let left = progress.unitsLeft
            if line.quantity > left {
                throw GatewayError(
                    status: 409, code: progress.shipped > 0 ? "already_shipped" : "more_than_left",
                    message: "line \(line.lineId): \(progress.ordered) ordered, \(progress.shipped) shipped, \(progress.cancelled ?? 0) cancelled: at most \(left) can be cancelled")
            }
        }
        let id = Self.eventID(call, GatewayRoutes.cancelLines)
        let changeId = "chg-" + id.prefix(13)
        let command = CancelOrderLines(
            orderId: view.orderId, changeId: changeId, lines: body.lines.map { LineQuantity(lineId: $0.lineId, quantity: $0.quantity) },
            requestedBy: body.requestedBy, reason: Reason(code: body.reason ?? "customer_request", message: body.message ?? "cancelled through the gateway"),
            requestedAt: Date())
        return try await accept(command.event, id: id, orderId: view.orderId) { $0.changeId = changeId }
    }

    /// `POST /v1/orders/{orderId}/returns/{returnId}/approve`: the refund of a late return, approved.
    private func approveReturn(_ call: Call) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        struct Body: Decodable {
            var approvedBy: String
            var note: String?
        }
        let body = try call.decode(Body.self)
        let view = try self.view(call.parameter("orderId"))
        try Self.nonEmpty(body.approvedBy, "approvedBy")
        let returnId = call.parameter("returnId")
        guard let ret = view.returns.first(where: { $0.returnId == returnId }) else {
            throw GatewayError(status: 404, code: "not_found", message: "order \(view.orderId) has no return \(returnId)")
        }
        guard ret.status == .review else {
            throw GatewayError(
                status: 409, code: "not_in_review", message: "return \(returnId) is \(ret.status.rawValue): only a return received after its RMA expired waits for approval")
        }
        let command = ApproveReturnRefund(orderId: view.orderId, returnId: returnId, approvedBy: body.approvedBy, note: body.note, requestedAt: Date())
        return try await accept(command.event, id: Self.eventID(call, GatewayRoutes.approveReturn), orderId: view.orderId) { $0.returnId = returnId }
    }

}
