import Contracts
import Foundation
import StageMachine

/// `SIMULATION_TRACE=<order id>`: prints every visible record about that order, for
/// reading a failing seed.
enum Trace {
    static func print(_ world: World) {
        guard let wanted = ProcessInfo.processInfo.environment["SIMULATION_TRACE"] else { return }
        for topic in [OrderPlaced.topic, PaymentApproved.topic, ReserveInventory.topic, InventoryResult.topic, AllocationState.topic, OrderAllocated.topic, InventoryLevel.topic, TopicCatalog.idempotencyTopic] {
            for partition in 0..<world.broker.partitions {
                for record in world.broker.logs[TopicPartition(topic: topic, partition: partition)] ?? [] {
                    let visible = record.transaction.map { world.broker.state(of: $0) == .committed } ?? true
                    let text: String
                    switch record.value {
                    case .event(let envelope):
                        guard envelope.subject == wanted || (record.key ?? "").contains(wanted) else { continue }
                        text = "\(envelope.id.prefix(8)) \(Properties.fingerprint(envelope.event)) \(envelope.event.payload)"
                    case .intent(let records):
                        let texts = records.compactMap { r -> String? in
                            if case .output(_, let e) = r, e.subject == wanted { return "out \(e.id.prefix(8)) \(Properties.fingerprint(e.event))" }
                            if case .state(_, let k, let e) = r, k == wanted { return "state \(e.map { "\($0.event.payload)" } ?? "nil")" }
                            return nil
                        }
                        guard !texts.isEmpty else { continue }
                        text = "intent \(record.key ?? "") \(texts)"
                    case .tombstone:
                        guard (record.key ?? "").contains("~intent") || record.key == wanted else { continue }
                        text = "tombstone \(record.key ?? "")"
                    default: continue
                    }
                    Swift.print("\(topic)/\(partition)@\(record.offset)\(visible ? "" : " (invisible)"): \(text)")
                }
            }
        }
    }
}
