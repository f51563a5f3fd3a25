import ServiceLifecycle

/// Runs a server a test starts (local receivers, an echo endpoint) for the length of
/// `body`: `make` builds it as a service that reports the port it bound; `body` gets
/// that port.
///
/// Whatever `body` does, returns or throws, the server is shut down gracefully and
/// awaited (it stops accepting and finishes the requests in hand, held answers
/// included). Cancelling it instead can drop a connection it accepted and had not yet
/// handled, which NIO treats as a programming error ("Deinited NIOAsyncWriter without
/// calling finish()") and traps on: the whole test process, every suite in it, would
/// die of one failing test.
public func withLocalServer<Value>(
    _ make: (_ onPort: @escaping @Sendable (Int) -> Void) -> any Service,
    _ body: (_ port: Int) async throws -> Value
) async throws -> Value {
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let group = ServiceGroup(services: [make { continuation.yield($0) }], logger: TestCluster.logger)
    let running = Task {
        // A server that fails to start ends the wait for its port.
        defer { continuation.finish() }
        try await group.run()
    }
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
    }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else {
        try await stop()
        throw CancellationError()
    }
    let value: Value
    do {
        value = try await body(port)
    } catch {
        try? await stop()
        throw error
    }
    try await stop()
    return value
}
