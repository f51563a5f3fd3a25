import Contracts
import Foundation

/// Which channels get stock feeds, and how much of the stock each may show.
public struct StockFeedRules: Sendable, Hashable, Codable {
    /// One channel's feed.
    public struct ChannelFeed: Sendable, Hashable, Codable {
        /// The channel, as in `OrderPlaced.channel`.
        public var channel: String
        /// Share of available-to-sell the channel may show, in percent (e.g. 80: never
        /// put all stock on a marketplace that oversells while it syncs).
        public var percent: Int
        /// Units held back after the share.
        public var buffer: Int
        /// Most units ever shown; nil: no cap.
        public var max: Int?
        /// At most one increase per SKU per this many seconds; a decrease goes at once.
        public var minIntervalSeconds: Int
        /// Locations whose stock counts; nil: every location.
        public var locations: [String]?

        /// A feed.
        public init(channel: String, percent: Int = 100, buffer: Int = 0, max: Int? = nil, minIntervalSeconds: Int = 30, locations: [String]? = nil) {
            self.channel = channel
            self.percent = percent
            self.buffer = buffer
            self.max = max
            self.minIntervalSeconds = minIntervalSeconds
            self.locations = locations
        }
    }

    /// The feeds; empty: none.
    public var channels: [ChannelFeed]
    /// How often held-back increases are checked.
    public var checkIntervalSeconds: Int

    /// Rules.
    public init(channels: [ChannelFeed] = [], checkIntervalSeconds: Int = 5) {
        self.channels = channels
        self.checkIntervalSeconds = checkIntervalSeconds
    }

    func problems(locations known: Set<String>) -> [String] {
        var problems: [String] = []
        if checkIntervalSeconds < 1 { problems.append("stockFeeds.checkIntervalSeconds: must be at least 1") }
        var seen = Set<String>()
        for (index, feed) in channels.enumerated() {
            let path = "stockFeeds.channels[\(index)]"
            if feed.channel.isEmpty { problems.append("\(path).channel: must not be empty") }
            if !seen.insert(feed.channel).inserted { problems.append("\(path).channel: '\(feed.channel)' has two feeds") }
            if !(0...100).contains(feed.percent) { problems.append("\(path).percent: \(feed.percent) is outside 0...100") }
            if feed.buffer < 0 { problems.append("\(path).buffer: must not be negative") }
            if let max = feed.max, max < 0 { problems.append("\(path).max: must not be negative") }
            if feed.minIntervalSeconds < 0 { problems.append("\(path).minIntervalSeconds: must not be negative") }
            for location in feed.locations ?? [] where !known.contains(location) {
                problems.append("\(path).locations: no location '\(location)'")
            }
        }
        return problems
    }
}

/// Feeds each channel what it may show of every SKU: available-to-sell over the
/// channel's locations (on hand − reserved − safety stock, never below zero), its share,
/// buffer and cap (``StockFeed/quantity(of:for:)``).
///
/// Reads the inventory changelog (oms.inventory.levels, co-partitioned by SKU), so every
/// change of a level is seen. A decrease goes out at once, so a channel never shows more
/// than the rules allow for longer than the connector takes; an increase is coalesced to
/// at most one update per SKU and channel per `minIntervalSeconds` (a timer sends what
/// was held back). `oms channels resync` (StockResync) sends a SKU again regardless.
public struct StockFeedStage: Stage {
    /// `stock-feed`.
    public let name = "stock-feed"
    /// Levels and resync requests.
    public let inputTopics = [InventoryLevel.topic, StockResync.topic]
    /// oms.stockfeed.state.
    public let changelogTopic: String? = StockFeedState.topic
    /// The feeds.
    public let rules: StockFeedRules

    /// A stage with `rules`.
    public init(rules: StockFeedRules) { self.rules = rules }

    /// Every `checkIntervalSeconds`, held-back increases that are due.
    public var tickInterval: Duration? { rules.channels.isEmpty ? nil : .seconds(rules.checkIntervalSeconds) }

    /// Follows a level or answers a resync.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        switch input.event {
        case .inventoryLevel(let level):
            var current: StockFeedState?
            if case .stockFeedState(let stored) = state.value(level.sku) { current = stored }
            return StockFeed.follow(level, state: current, rules: rules, now: input.now).outcome
        case .stockResync(let request):
            guard case .stockFeedState(let stored) = state.value(request.sku) else { return .none }
            return StockFeed.resync(stored, channel: request.channel, now: input.now).outcome
        case .inventoryReservation, .waitingLine:
            return .none
        default:
            throw .rejected("stock-feed does not handle \(input.envelope.type)")
        }
    }

    /// Increases held back long enough.
    public func tick(now: Date, state: KeyedState) -> [TimerFiring] {
        var firings: [TimerFiring] = []
        state.forEach { _, value in
            guard case .stockFeedState(let stored) = value else { return }
            let step = StockFeed.due(stored, rules: rules, now: now)
            guard !step.updates.isEmpty else { return }
            let id = "stock/\(stored.sku)/\(step.updates.map { "\($0.channel)=\($0.quantity)" }.joined(separator: ","))/\(Int(now.timeIntervalSince1970))"
            firings.append(TimerFiring(id: id, outcome: step.outcome))
        }
        return firings.sorted { $0.id < $1.id }
    }
}

/// Stock feed's rules, as pure functions.
public enum StockFeed {
    /// What one step comes to.
    public struct Step: Sendable, Hashable {
        /// The new state (nil: unchanged).
        public var state: StockFeedState?
        /// Updates to send.
        public var updates: [StockUpdate]

        var outcome: StageOutcome {
            StageOutcome(outputs: updates.map { StageOutput($0.event) }, stateChanges: state.map { [.put($0.event)] } ?? [])
        }
    }

    /// Available-to-sell of `level` over `locations` (nil: all).
    public static func availableToSell(_ level: InventoryLevel, locations: [String]?) -> Int {
        level.locations.filter { locations?.contains($0.location) ?? true }.reduce(0) { $0 + max(0, $1.onHand - $1.reserved - $1.safetyStock) }
    }

    /// What `feed`'s channel may show of `level`: ⌊available × percent / 100⌋ − buffer,
    /// at most the cap, never below zero; so never more than available-to-sell.
    public static func quantity(of level: InventoryLevel, for feed: StockFeedRules.ChannelFeed) -> Int {
        let available = availableToSell(level, locations: feed.locations)
        let share = available * feed.percent / 100 - feed.buffer
        return max(0, min(share, feed.max ?? share))
    }

    /// The state after a new level: decreases sent at once, increases when the channel's
    /// interval since its last update has passed, else held back for ``due(_:rules:now:)``.
    public static func follow(_ level: InventoryLevel, state current: StockFeedState?, rules: StockFeedRules, now: Date) -> Step {
        var state = current ?? StockFeedState(sku: level.sku, channels: [], updatedAt: now)
        var updates: [StockUpdate] = []
        for feed in rules.channels {
            let target = quantity(of: level, for: feed)
            let available = availableToSell(level, locations: feed.locations)
            var entry = state.channels.first { $0.channel == feed.channel } ?? ChannelStock(channel: feed.channel, available: available, target: target)
            entry.target = target
            entry.available = available
            if entry.advertised != target, sendable(entry, feed: feed, now: now) {
                updates.append(StockUpdate(sku: level.sku, channel: feed.channel, quantity: target, availableToSell: available, reason: "change", decidedAt: now))
                entry.advertised = target
                entry.sentAt = now
            }
            state.channels.removeAll { $0.channel == feed.channel }
            state.channels.append(entry)
        }
        state.channels.sort { $0.channel < $1.channel }
        state.updatedAt = now
        return Step(state: state == current ? nil : state, updates: updates)
    }

    /// Held-back increases whose interval has passed.
    public static func due(_ current: StockFeedState, rules: StockFeedRules, now: Date) -> Step {
        var state = current
        var updates: [StockUpdate] = []
        for feed in rules.channels {
            guard let index = state.channels.firstIndex(where: { $0.channel == feed.channel }) else { continue }
            var entry = state.channels[index]
            guard entry.advertised != entry.target, sendable(entry, feed: feed, now: now) else { continue }
            updates.append(StockUpdate(sku: state.sku, channel: feed.channel, quantity: entry.target, availableToSell: entry.available, reason: "change", decidedAt: now))
            entry.advertised = entry.target
            entry.sentAt = now
            state.channels[index] = entry
        }
        guard !updates.isEmpty else { return Step(state: nil, updates: []) }
        state.updatedAt = now
        return Step(state: state, updates: updates)
    }

    /// Every channel's target again (or `channel`'s only), whatever was sent.
    public static func resync(_ current: StockFeedState, channel: String?, now: Date) -> Step {
        var state = current
        var updates: [StockUpdate] = []
        for index in state.channels.indices where channel == nil || state.channels[index].channel == channel {
            let entry = state.channels[index]
            updates.append(StockUpdate(sku: state.sku, channel: entry.channel, quantity: entry.target, availableToSell: entry.available, reason: "resync", decidedAt: now))
            state.channels[index].advertised = entry.target
            state.channels[index].sentAt = now
        }
        state.updatedAt = now
        return Step(state: updates.isEmpty ? nil : state, updates: updates)
    }

    /// A decrease (or a first update) goes at once; an increase once the interval passed.
    private static func sendable(_ entry: ChannelStock, feed: StockFeedRules.ChannelFeed, now: Date) -> Bool {
        guard let advertised = entry.advertised, let sentAt = entry.sentAt else { return true }
        if entry.target < advertised { return true }
        return now.timeIntervalSince(sentAt) >= TimeInterval(feed.minIntervalSeconds)
    }
}

extension StockFeedRules {
    private enum CodingKeys: String, CodingKey { case channels, checkIntervalSeconds }

    /// Decodes the rules; missing keys take their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            channels: try c.decodeIfPresent([ChannelFeed].self, forKey: .channels) ?? [],
            checkIntervalSeconds: try c.decodeIfPresent(Int.self, forKey: .checkIntervalSeconds) ?? 5)
    }
}

extension StockFeedRules.ChannelFeed {
    private enum CodingKeys: String, CodingKey { case channel, percent, buffer, max, minIntervalSeconds, locations }

    /// Decodes a feed; only `channel` is required.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            channel: try c.decode(String.self, forKey: .channel), percent: try c.decodeIfPresent(Int.self, forKey: .percent) ?? 100,
            buffer: try c.decodeIfPresent(Int.self, forKey: .buffer) ?? 0, max: try c.decodeIfPresent(Int.self, forKey: .max),
            minIntervalSeconds: try c.decodeIfPresent(Int.self, forKey: .minIntervalSeconds) ?? 30,
            locations: try c.decodeIfPresent([String].self, forKey: .locations))
    }
}
