import Contracts
import Foundation
import Testing

@testable import Outbound
@testable import oms

/// Stock updates through the channel endpoints, against the local receivers.
@Suite("Stock endpoints")
struct StockEndpointTests {
    static func update(_ sku: String, _ quantity: Int, channel: String = "shopify", id: String? = nil) -> Envelope {
        let update = StockUpdate(sku: sku, channel: channel, quantity: quantity, availableToSell: quantity + 2, reason: "change", decidedAt: Date())
        return Envelope(id: id ?? "stock-\(sku)-\(quantity)", source: "test", time: Date(), event: update.event)
    }

    @Test("Shopify: the SKU's inventory item found in the shop's variants, its level set at the configured location")
    func shopify() async throws {
        try await withChannels { channels, base in
            channels.listSKUs(["SKU-1", "SKU-2"])
            let shop = ShopifyChannel(shop: "local", baseURL: base, accessToken: channels.token, inventoryLocation: "655441491", http: HTTPExchange(client: .shared))
            let processor = Harness.processor(ChannelRouter(channels: ["shopify": shop]))
            for (index, quantity) in [7, 5, 9].enumerated() {
                let settled = try await processor.settle(Self.update("SKU-1", quantity), offset: Int64(index))
                #expect(settled.entry.state == .delivered)
            }
            #expect(channels.ledger.stock["shopify/SKU-1"] == [7, 5, 9])
            let unlisted = try await processor.settle(Self.update("SKU-404", 3), offset: 9)
            #expect(unlisted.entry.state == .skipped)
            #expect(unlisted.entry.reason == "SKU SKU-404 is not listed on local")
            let noLocation = ShopifyChannel(shop: "local", baseURL: base, accessToken: channels.token, http: HTTPExchange(client: .shared))
            let skipped = try await Harness.processor(noLocation).settle(Self.update("SKU-2", 1), offset: 10)
            #expect(skipped.entry.state == .skipped)
        }
    }

    @Test("SP-API: a listing's fulfillment availability patched; an unlisted SKU skipped; a lost answer set again")
    func amazon() async throws {
        try await withChannels { channels, base in
            channels.listSKUs(["SKU-1"])
            channels.setFaults { $0.loseAnswerEvery = 1; $0.holdAnswer = .seconds(2) }
            let marketplace = AmazonChannel(
                baseURL: base, marketplaceID: "A1PA6795UKMFR9", accessToken: channels.token, sellerID: "A2SELLER",
                http: HTTPExchange(client: .shared, timeout: .milliseconds(300)))
            let settled = try await Harness.processor(marketplace, maxAttempts: 3).settle(Self.update("SKU-1", 4, channel: "amazon"), offset: 0)
            // Every answer is lost; the absolute level is set again and again, harmlessly.
            #expect(settled.entry.state == .failed)
            #expect(channels.ledger.stock["amazon/SKU-1"]?.allSatisfy { $0 == 4 } == true)
            channels.setFaults { $0.loseAnswerEvery = 0 }
            let missing = try await Harness.processor(marketplace).settle(Self.update("SKU-9", 4, channel: "amazon"), offset: 1)
            #expect(missing.entry.state == .skipped)
            #expect(missing.entry.reason == "SKU SKU-9 has no listing on A1PA6795UKMFR9")
        }
    }

    @Test("webhook: the StockUpdate as signed CloudEvents JSON")
    func webhook() async throws {
        try await withChannels { channels, base in
            let hook = WebhookChannel(url: "\(base)/hooks/web", secret: channels.secret, http: HTTPExchange(client: .shared))
            let settled = try await Harness.processor(hook).settle(Self.update("SKU-1", 6, channel: "web"), offset: 0)
            #expect(settled.entry.state == .delivered)
            #expect(channels.ledger.stock["webhook/SKU-1"] == [6])
            #expect(channels.ledger.stockAboveAvailable == 0)
        }
    }

    @Test("Shopify's Link header pages are followed")
    func nextPage() {
        let link = #"<https://shop.example/admin/api/2025-01/variants.json?page_info=abc&limit=250>; rel="next", <https://x/prev>; rel="previous""#
        #expect(ShopifyChannel.nextPage(link) == "https://shop.example/admin/api/2025-01/variants.json?page_info=abc&limit=250")
        #expect(ShopifyChannel.nextPage(#"<https://x/prev>; rel="previous""#) == nil)
    }
}
