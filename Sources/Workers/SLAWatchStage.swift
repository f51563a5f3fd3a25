import Contracts
import Foundation

/// Alerts when an order stays in a state longer than its SLA, once per breach, and
/// reports the recovery when it leaves the state.
///
/// It reads the order views (oms.orders.state) and keeps, per open order, the status,
/// when it was entered and the rules already alerted (oms.sla.state). A timer checks
/// the deadlines of every open order of the partitions it owns.
public struct SLAWatchStage: Stage {
    /// `sla-watch`.
    public let name = "sla-watch"
    /// oms.orders.state.
    public let inputTopics = [OrderView.topic]
    /// oms.sla.state.
    public let changelogTopic: String? = SLAWatchState.topic
    /// The limits.
    public let rules: SLARules

    /// Creates the stage.
    public init(rules: SLARules) {
        self.rules = rules
    }

    /// Checks deadlines this often.
    public var tickInterval: Duration? { .seconds(rules.checkIntervalSeconds) }

    /// Follows an order's status.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard case .orderView(let view) = input.event else {
            throw .rejected("sla-watch reads \(OrderView.eventType) only, not \(input.envelope.type)")
        }
        var current: SLAWatchState?
        if case .slaWatchState(let stored) = state.value(view.orderId) { current = stored }
        let step = SLAWatch.follow(current, view: view, now: input.now)
        var outcome = StageOutcome(outputs: step.outputs.map { StageOutput($0) })
        switch (current, step.state) {
        case (_, let next?) where next != current: outcome.stateChanges = [.put(next.event)]
        case (.some, nil): outcome.stateChanges = [.delete(key: view.orderId)]
        default: break
        }
        return outcome
    }

    /// Alerts for every deadline passed and not alerted yet.
    public func tick(now: Date, state: KeyedState) -> [TimerFiring] {
        var firings: [TimerFiring] = []
        state.forEach { _, value in
            guard case .slaWatchState(let watched) = value else { return }
            let (alerts, next) = SLAWatch.due(watched, rules: rules.rules, now: now)
            guard !alerts.isEmpty else { return }
            let id = "sla/\(watched.orderId)/\(watched.status.rawValue)/\(watched.since.millisecondsSince1970)/\(next.alerted.joined(separator: ","))"
            firings.append(TimerFiring(id: id, outcome: StageOutcome(outputs: alerts.map { StageOutput($0.event) }, stateChanges: [.put(next.event)])))
        }
        return firings.sorted { $0.id < $1.id }
    }
}

/// SLA watch's logic, as pure functions.
public enum SLAWatch {
    /// Statuses no SLA applies to: the order is done.
    public static let finalStatuses: Set<OrderStatus> = [.rejected, .declined, .cancelled, .delivered, .returned, .partiallyReturned]

    /// The watch state after a view update, and recoveries of breaches the order left.
    public static func follow(_ current: SLAWatchState?, view: OrderView, now: Date) -> (state: SLAWatchState?, outputs: [Event]) {
        if let current, current.status == view.status, current.since == view.statusSince {
            var same = current
            same.promisedDeliveryDate = view.promisedDeliveryDate
            return (same, [])
        }
        let recoveries = (current?.alerted ?? []).map { rule in
            SLARecovered(orderId: view.orderId, rule: rule, status: current!.status, since: current!.since, recoveredAt: view.statusSince).event
        }
        if finalStatuses.contains(view.status) { return (nil, recoveries) }
        let next = SLAWatchState(
            orderId: view.orderId, status: view.status, since: view.statusSince, promisedDeliveryDate: view.promisedDeliveryDate, alerted: [])
        return (next, recoveries)
    }

    /// Alerts due at `now` for one order, and its state with them recorded.
    public static func due(_ watched: SLAWatchState, rules: [SLARule], now: Date) -> (alerts: [SLAAlert], state: SLAWatchState) {
        var state = watched
        var alerts: [SLAAlert] = []
        for rule in rules where rule.status == watched.status && !watched.alerted.contains(rule.name) {
            guard let deadline = rule.deadline(since: watched.since, promise: watched.promisedDeliveryDate), deadline <= now else { continue }
            state.alerted.append(rule.name)
            alerts.append(SLAAlert(
                orderId: watched.orderId, rule: rule.name, status: watched.status, since: watched.since,
                thresholdSeconds: max(0, Int(deadline.timeIntervalSince(watched.since))), severity: rule.severity, detectedAt: now))
        }
        return (alerts, state)
    }
}
