import Contracts
import Foundation

/// One payment command as a provider sees it: what to do, how much, against which
/// payment.
public struct PaymentRequest: Sendable, Hashable {
    /// What the provider is asked to do.
    public enum Operation: String, Sendable, Hashable {
        /// Take authorized money (CapturePayment).
        case capture
        /// Give captured money back (RefundPayment).
        case refund
        /// Release an uncaptured authorization (VoidPayment).
        case void
    }

    /// What to do.
    public var operation: Operation
    /// The order.
    public var orderId: String
    /// The command's event id: the cause every call for it carries.
    public var commandId: String
    /// How much; nil for a void (the whole authorization).
    public var amount: Money?
    /// The provider's payment (a PaymentIntent id, a PSP reference).
    public var reference: String?
    /// The order's channel, which picks the provider.
    public var channel: String?
    /// Whether a capture whose authorization has expired is re-authorized (the command
    /// asks it, or its channel is in `payments.reauthorize`).
    public var reauthorize = false

    /// The request a payment command stands for; nil for any other event.
    public init?(command: Envelope) {
        commandId = command.id
        switch command.event {
        case .capturePayment(let capture):
            (operation, orderId, amount, reference, channel) = (.capture, capture.orderId, capture.amount, capture.authorizationReference, capture.channel)
            reauthorize = capture.reauthorize == true
        case .refundPayment(let refund):
            (operation, orderId, amount, reference, channel) = (.refund, refund.orderId, refund.amount, refund.authorizationReference, refund.channel)
        case .voidPayment(let void):
            (operation, orderId, amount, reference, channel) = (.void, void.orderId, nil, void.authorizationReference, void.channel)
        default:
            return nil
        }
    }
}

/// A payment service provider's API, as the payments connector uses it.
///
/// Like every ``OutboundEndpoint``, an adapter sends ``OutboundCall/idempotencyKey`` in
/// the form the provider honours and awaits ``OutboundCall/pointOfNoReturn`` right before
/// the request leaves. A refusal names its ``PaymentFailure`` through
/// ``PaymentProviderAnswer/refused(_:status:message:)`` so the outcome event can say why.
public protocol PaymentProvider: Sendable {
    /// The name in configuration, metrics and outcome events, e.g. `stripe`.
    var name: String { get }
    /// Performs the request once.
    func execute(_ request: PaymentRequest, call: OutboundCall) async -> CallResult
    /// Asks the provider whether a call whose answer was lost took effect.
    func lookUp(_ request: PaymentRequest, call: OutboundCall) async -> Reconciliation
    /// Whether a call the provider accepted is confirmed later (by a webhook the gateway
    /// turns into the outcome event) rather than by its answer.
    var confirmsLater: Bool { get }
}

extension PaymentProvider {
    /// The answer says what happened.
    public var confirmsLater: Bool { false }
}

/// How provider adapters phrase a refusal, so the failure class survives the ledger
/// (which keeps a reason string) and reaches the outcome event.
public enum PaymentProviderAnswer {
    /// A final refusal: `<failure>: <the provider's message>`.
    public static func refused(_ failure: PaymentFailure, status: Int?, message: String) -> CallResult {
        .rejected(status: status, reason: "\(failure.rawValue): \(message)")
    }

    /// A capture taken on a new payment because the order's authorization had expired:
    /// the ledger's reference names the new payment, so the outcome event can.
    public static func reauthorized(payment: String) -> CallResult {
        .delivered(reference: reference(reauthorizedAs: payment))
    }

    /// The ledger reference of a capture taken on the new payment `payment`.
    public static func reference(reauthorizedAs payment: String) -> String { reauthorizedPrefix + payment }

    /// The new payment of a reference written by ``reauthorized(payment:)``, else nil.
    public static func reauthorization(in reference: String?) -> String? {
        guard let reference, reference.hasPrefix(reauthorizedPrefix) else { return nil }
        return String(reference.dropFirst(reauthorizedPrefix.count))
    }

    private static let reauthorizedPrefix = "reauthorized:"

    /// The failure class and message of a ledger reason written by ``refused(_:status:message:)``;
    /// reasons in any other form are `invalid_request` with the whole text.
    public static func failure(in reason: String) -> (PaymentFailure, String) {
        PaymentFailure.of(ledgerReason: reason)
    }
}

/// The payments connector's endpoint: picks each command's provider by the order's
/// channel (`payments.channels.<channel>`, else `payments.default`) and hands the
/// command to it. A channel mapped to `channel` is one whose marketplace moves the money
/// itself: its commands are skipped.
public struct PaymentRouter: OutboundEndpoint {
    /// Where a channel's commands go.
    public enum Route: Sendable, Hashable {
        /// The provider with this name.
        case provider(String)
        /// The channel captures and refunds itself (a marketplace): nothing to call.
        case channel
    }

    /// `payments`.
    public let name = "payments"
    /// The providers by name.
    public var providers: [String: any PaymentProvider]
    /// Routes by channel.
    public var channels: [String: Route]
    /// The route of channels not listed; nil makes their commands a configuration error.
    public var fallback: Route?
    /// Channels whose expired authorizations are re-authorized (`payments.reauthorize`):
    /// their checkout saved the card for later, off-session payments.
    public var reauthorizing: Set<String>

    /// A router.
    public init(providers: [String: any PaymentProvider], channels: [String: Route], fallback: Route?, reauthorizing: Set<String> = []) {
        self.providers = providers
        self.channels = channels
        self.fallback = fallback
        self.reauthorizing = reauthorizing
    }

    /// The route of a request's channel.
    public func route(for request: PaymentRequest) -> Route? {
        request.channel.flatMap { channels[$0] } ?? fallback
    }

    /// The command as its provider is to perform it.
    func request(for command: Envelope) -> PaymentRequest? {
        guard var request = PaymentRequest(command: command) else { return nil }
        if let channel = request.channel, reauthorizing.contains(channel) { request.reauthorize = true }
        return request
    }

    /// The provider that handles `command`, if one does.
    public func provider(for command: Envelope) -> (any PaymentProvider)? {
        guard let request = PaymentRequest(command: command), case .provider(let name) = route(for: request) else { return nil }
        return providers[name]
    }

    /// Hands the command to its provider; answers for itself when there is nothing the
    /// provider could do with it.
    public func perform(_ call: OutboundCall) async -> CallResult {
        guard let request = request(for: call.command) else {
            return .rejected(status: nil, reason: "\(call.command.type) is not a payment command")
        }
        switch route(for: request) {
        case .channel?:
            return .skipped(reason: "channel \(request.channel ?? "?") moves the money itself")
        case .provider(let name)?:
            guard let provider = providers[name] else {
                return .rejected(status: nil, reason: "provider '\(name)' is not configured (payments.providers)")
            }
            guard request.reference?.isEmpty == false else {
                return PaymentProviderAnswer.refused(.invalidRequest, status: nil, message: "the order has no usable payment reference to \(request.operation.rawValue) against: \(request.reference ?? "none")")
            }
            return await provider.execute(request, call: call)
        case nil:
            return .rejected(status: nil, reason: "no payment provider for channel \(request.channel ?? "(none)"): add it to payments.routes (channel=provider) or set payments.default")
        }
    }

    /// Asks the command's provider.
    public func reconcile(_ call: OutboundCall) async -> Reconciliation {
        guard let request = request(for: call.command), let provider = provider(for: call.command) else {
            return .didNotHappen
        }
        return await provider.lookUp(request, call: call)
    }

    /// One gate (concurrency, breaker) per provider.
    public func gateKey(for command: Envelope) -> String {
        provider(for: command).map { "payments/\($0.name)" } ?? name
    }

    /// The outcome events of a settled payment command (docs/EVENTS.md,
    /// `oms.payments.outcomes`): captured, refunded or voided when the provider did it;
    /// the failure with its class when it refused, gave up or could not tell. Nothing
    /// for a command skipped or not settled yet, nor for one a provider that
    /// ``PaymentProvider/confirmsLater`` accepted (its webhook tells).
    public func outcomes(of command: Envelope, entry: OutboundDelivery) -> [Event] {
        guard let request = PaymentRequest(command: command), case .provider(let provider) = route(for: request) else { return [] }
        let at = entry.updatedAt
        let failure: (PaymentFailure, String)
        switch entry.state {
        case .delivered:
            // Accepted for later: the provider's notification tells the outcome.
            if providers[provider]?.confirmsLater == true { return [] }
            return [Self.success(command, provider: provider, reference: entry.reference, at: at)].compactMap { $0 }
        case .rejected:
            failure = PaymentProviderAnswer.failure(in: entry.reason ?? "rejected")
        case .failed:
            failure = (.providerUnavailable, entry.reason ?? "retries exhausted")
        case .unknown:
            failure = (.outcomeUnknown, entry.reason ?? "outcome unknown")
        case .attempting, .retrying, .skipped:
            return []
        }
        return [Self.failed(command, provider: provider, failure: failure.0, message: failure.1, at: at)].compactMap { $0 }
    }

    private static func success(_ command: Envelope, provider: String, reference: String?, at: Date) -> Event? {
        switch command.event {
        case .capturePayment(let c):
            PaymentCaptured(
                orderId: c.orderId, commandId: command.id, shipmentId: c.shipmentId, amount: c.amount, provider: provider,
                providerReference: PaymentProviderAnswer.reauthorization(in: reference) ?? reference, capturedAt: at,
                reauthorization: PaymentProviderAnswer.reauthorization(in: reference)
            ).event
        case .refundPayment(let r):
            PaymentRefunded(
                orderId: r.orderId, commandId: command.id, returnId: r.returnId, amount: r.amount, provider: provider,
                providerReference: reference, refundedAt: at
            ).event
        case .voidPayment(let v):
            PaymentVoided(orderId: v.orderId, commandId: command.id, provider: provider, providerReference: reference, voidedAt: at).event
        default:
            nil
        }
    }

    private static func failed(_ command: Envelope, provider: String, failure: PaymentFailure, message: String, at: Date) -> Event? {
        switch command.event {
        case .capturePayment(let c):
            PaymentCaptureFailed(
                orderId: c.orderId, commandId: command.id, shipmentId: c.shipmentId, amount: c.amount, provider: provider,
                failure: failure, message: message, failedAt: at
            ).event
        case .refundPayment(let r):
            PaymentRefundFailed(
                orderId: r.orderId, commandId: command.id, returnId: r.returnId, amount: r.amount, provider: provider,
                failure: failure, message: message, failedAt: at
            ).event
        case .voidPayment(let v):
            PaymentVoidFailed(orderId: v.orderId, commandId: command.id, provider: provider, failure: failure, message: message, failedAt: at).event
        default:
            nil
        }
    }
}
