import CKafka
import Synchronization

/// Clients created and neither closed by their owner nor destroyed (destruction runs on a
/// background queue after the last reference goes).
let unclosedClients = Atomic<Int>(0)

/// Facts about the linked librdkafka.
public enum KafkaLibrary {
    /// librdkafka's version string, e.g. `2.0.2`.
    public static var version: String { String(cString: rd_kafka_version_str()) }

    /// How many clients (producers, consumers, admin clients, an embedded cluster's host)
    /// are open: neither closed (a consumer left its group, a producer flushed) nor
    /// destroyed.
    public static var openClients: Int { unclosedClients.load(ordering: .relaxed) }

    /// Hands memory freed by clients back to the system: glibc keeps the pages of freed
    /// buffers for reuse, so after reading whole partitions (a restore) the process would
    /// otherwise keep the read's peak as its footprint.
    public static func releaseFreedMemory() { ckafka_release_free_memory() }

    /// Waits until at most `remaining` clients are open (e.g. 1: the embedded cluster's
    /// host), so that nothing a process still runs writes after its last words. True if
    /// that happened within `timeout`.
    public static func waitForClientsToClose(leaving remaining: Int = 0, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while openClients > remaining {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
