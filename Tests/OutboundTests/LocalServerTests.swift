import Foundation
import Hummingbird
import OrderFleetTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The test kit's local servers end gracefully whatever the test does: a test that fails
/// must fail alone, not trap the process its suites share.
@Suite("local test servers")
struct LocalServerTests {
    struct Failed: Error {}

    /// Opens `count` TCP connections to `port` that send nothing; returns their sockets.
    static func idleConnections(to port: Int, count: Int) -> [Int32] {
        (0..<count).compactMap { _ in
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { close(socket); return nil }
            return socket
        }
    }

    @Test("a body that throws while connections are still being accepted: the error comes back, the server is gone, nothing traps")
    func throwingBody() async throws {
        var sockets: [Int32] = []
        var bound = 0
        await #expect(throws: Failed.self) {
            try await withLocalServer({ onPort in
                Application(
                    router: Router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                    onServerRunning: { channel in onPort(channel.localAddress?.port ?? 0) })
            }) { port in
                bound = port
                sockets = Self.idleConnections(to: port, count: 200)
                throw Failed()
            }
        }
        #expect(sockets.count > 0)
        for socket in sockets { close(socket) }
        #expect(Self.idleConnections(to: bound, count: 1).isEmpty, "the server still accepts after the body ended")
    }
}
