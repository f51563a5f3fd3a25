import Foundation

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

/// Runs `work` on a thread of its own (with a 16 MiB stack) and returns what it returns.
/// For synchronous work that lasts: minutes of it on Swift's cooperative pool (two threads
/// on a two-core machine) starve every other test in the process, and waiting there for a
/// process starves the in-process servers it talks to. Not on Dispatch's global queue
/// either: on Linux that adds threads for blocked ones only slowly.
public func onOwnThread<Value: Sendable, Failure: Error>(_ work: @escaping @Sendable () throws(Failure) -> Value) async throws(Failure) -> Value {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, Failure>, Never>) in
        let thread = Thread { continuation.resume(returning: Result { () throws(Failure) -> Value in try work() }) }
        thread.stackSize = 16 << 20
        thread.start()
    }
    return try result.get()
}
