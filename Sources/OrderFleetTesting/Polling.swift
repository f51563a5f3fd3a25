/// Polls `condition` every `interval` until it holds or `timeout` passes; whether it
/// held. Tests wait on conditions this way, never on a fixed sleep.
public func waitUntil(
    timeout: Duration = .seconds(60), interval: Duration = .milliseconds(200), _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}
