extension DeliveryState {
    /// Final states that a re-delivered command never touches again.
    public var isDone: Bool { self == .delivered || self == .skipped }
    /// Final states an operator acts on (an alert and a dead letter, re-driven with
    /// `oms dlq replay` or, for payments, the gateway's retry endpoint).
    public var needsOperator: Bool { self == .rejected || self == .failed || self == .unknown }
}
