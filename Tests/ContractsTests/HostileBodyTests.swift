import Foundation
import Testing

@testable import Contracts

/// Every adapter, behind one signature, so hostile inputs are tried against all of them.
struct NamedAdapter: Sendable, CustomStringConvertible {
    let description: String
    let decode: @Sendable ([UInt8], AdapterLimits) throws -> Void

    static let all: [NamedAdapter] = [
        NamedAdapter(description: "shopify") { _ = try ShopifyOrderAdapter.decode($0, limits: $1) },
        NamedAdapter(description: "amazon") { _ = try AmazonOrderAdapter.decode($0, limits: $1) },
        NamedAdapter(description: "amazon-change") { _ = try AmazonOrderChangeAdapter.decode($0, limits: $1) },
        NamedAdapter(description: "pos") { _ = try POSSaleAdapter.decode($0, limits: $1) },
        NamedAdapter(description: "canonical") { _ = try CanonicalOrderAdapter.decode($0, limits: $1) },
        NamedAdapter(description: "easypost") { _ = try EasyPostTrackerAdapter.decode($0, limits: $1) },
        NamedAdapter(description: "aftership") { _ = try AfterShipTrackingAdapter.decode($0, limits: $1) },
        NamedAdapter(description: "generic-tracking") { _ = try GenericTrackingAdapter.decode($0, limits: $1) },
    ]
}

@Suite struct HostileBodyTests {
    static let tenMegabytes: [UInt8] = {
        // Valid-looking JSON so only the size check can stop it.
        let filler = String(repeating: "x", count: 10_000_000)
        return Array(#"{"padding":"\#(filler)"}"#.utf8)
    }()

    @Test(arguments: NamedAdapter.all)
    func tenMegabyteBodyIsRejectedBySize(adapter: NamedAdapter) {
        let size = Self.tenMegabytes.count
        #expect(contractError { try adapter.decode(Self.tenMegabytes, .default) } == .payloadTooLarge(size: size, limit: 1_048_576))
        #expect(contractError { try adapter.decode(Array("{}".utf8), AdapterLimits(maxBodyBytes: 1)) } == .payloadTooLarge(size: 2, limit: 1))
    }

    @Test(arguments: NamedAdapter.all)
    func garbageIsATypedError(adapter: NamedAdapter) {
        let bodies: [[UInt8]] = [
            [], Array("null".utf8), Array("[]".utf8), Array("\"order\"".utf8), Array("{}".utf8), [0xFF, 0xFE, 0x00],
            Array(String(repeating: "[", count: 100_000).utf8), Array(#"{"a":1,"a":2}"#.utf8), Array("{\"id\": 1e99999}".utf8),
        ]
        for body in bodies {
            #expect(contractError { try adapter.decode(body, .default) } != nil, "\(adapter) \(body.prefix(16))")
        }
    }

    @Test(arguments: NamedAdapter.all)
    func nonUTF8InsideAStringIsReportedWithItsOffset(adapter: NamedAdapter) {
        let body: [UInt8] = Array(#"{"note":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect(contractError { try adapter.decode(body, .default) } == .payloadNotUTF8(byteOffset: 9))
    }
}
