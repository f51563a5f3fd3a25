extension DeliveryState {
    /// Final states that a re-delivered command never touches again.
    public var isDone: Bool { self == .delivered || self == .skipped }
    /// Final states an operator acts on (an alert and a dead letter, re-driven with
    /// `oms dlq replay` or, for payments, the gateway's retry endpoint).
    public var needsOperator: Bool { self == .rejected || self == .failed || self == .unknown }
}

extension PaymentFailure {
    /// The failure class and the provider's message of a payments ledger reason
    /// (`<failure>: <message>`, as the payments connector writes a refusal); a reason in
    /// any other form is `invalid_request` with the whole text.
    public static func of(ledgerReason reason: String) -> (failure: PaymentFailure, message: String) {
        if let colon = reason.firstIndex(of: ":"), let failure = PaymentFailure(rawValue: String(reason[..<colon])) {
            return (failure, reason[reason.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return (.invalidRequest, reason)
    }
}

extension LineProgress {
    /// Units of the line neither shipped nor cancelled: what a line cancel may still take.
    public var unitsLeft: Int { ordered - shipped - (cancelled ?? 0) }
}
