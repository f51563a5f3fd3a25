import CKafka
import Synchronization

/// librdkafka handles created and not yet destroyed (destruction runs on a background
/// queue after the last reference goes).
let liveClientHandles = Atomic<Int>(0)

/// Facts about the linked librdkafka.
public enum KafkaLibrary {
    /// librdkafka's version string, e.g. `2.0.2`.
    public static var version: String { String(cString: rd_kafka_version_str()) }

    /// How many clients (producers, consumers, admin clients, an embedded cluster's host)
    /// exist with their librdkafka handle not yet destroyed.
    public static var openClients: Int { liveClientHandles.load(ordering: .relaxed) }

    /// Hands memory freed by clients back to the system: glibc keeps the pages of freed
    /// buffers for reuse, so after reading whole partitions (a restore) the process would
    /// otherwise keep the read's peak as its footprint.
    public static func releaseFreedMemory() { ckafka_release_free_memory() }

    /// Waits until at most `remaining` clients are open (e.g. 1: the embedded cluster's
    /// host), so that a cluster stopped afterwards has no client left to complain that it
    /// is gone. True if that happened within `timeout`.
    public static func waitForClientsToClose(leaving remaining: Int = 0, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while openClients > remaining {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
