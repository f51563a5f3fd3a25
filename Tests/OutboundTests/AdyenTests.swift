import Contracts
import Foundation
import Testing

@testable import Outbound
@testable import oms

/// The Adyen adapter through the connector runtime against a local server speaking
/// Adyen's modification API, and its notifications' signatures as pure functions.
@Suite("Adyen")
struct AdyenTests {
    static func router(_ base: String, adyen: LocalAdyen, key: String? = nil) -> PaymentRouter {
        let provider = AdyenPayments(baseURL: base, apiKey: key ?? adyen.apiKey, merchantAccount: adyen.merchantAccount, http: HTTPExchange(client: .shared))
        return PaymentRouter(providers: ["adyen": provider], channels: [:], fallback: .provider("adyen"))
    }

    @Test("a capture is received once (its reference leads back to the command record); its outcome waits for the notification")
    func capture() async throws {
        try await withChannels { channels, base in
            channels.adyen.authorize("8815000000000001")
            let router = Self.router(base, adyen: channels.adyen)
            let processor = Harness.processor(router)
            let command = PaymentTests.capture("8815000000000001", minorUnits: 2_000, id: "cap-adyen")
            let settled = try await processor.settle(command, offset: 41, partition: 3)
            #expect(settled.entry.state == .delivered && settled.entry.reference?.hasPrefix("LOCAL") == true)
            #expect(router.outcomes(of: command, entry: settled.entry).isEmpty, "Adyen tells later")
            let items = channels.adyen.takeNotifications()
            #expect(items.count == 1)
            let item = try #require(items.first)
            #expect(item["merchantReference"] as? String == "cap-adyen@3:41" && item["eventCode"] as? String == "CAPTURE")
            #expect(AdyenNotifications.command(in: "cap-adyen@3:41")! == ("cap-adyen", 3, 41))
            #expect(AdyenNotifications.verify(item, hexKey: channels.adyen.hmacKey))
            let outcome = AdyenNotifications.outcome(of: item, command: command, provider: "adyen", at: PaymentTests.at)
            guard case .paymentCaptured(let captured)? = outcome else {
                Issue.record("\(String(describing: outcome))")
                return
            }
            #expect(captured.shipmentId == "s-1" && captured.amount.minorUnits == 2_000 && captured.providerReference == item["pspReference"] as? String)
            // The same key again: Adyen's first answer, no second modification.
            let provider = AdyenPayments(baseURL: base, apiKey: channels.adyen.apiKey, merchantAccount: channels.adyen.merchantAccount, http: HTTPExchange(client: .shared))
            let call = OutboundCall(command: command, idempotencyKey: "channels/cap-adyen", attempt: 2, sourcePartition: 3, sourceOffset: 41) {}
            #expect(await provider.execute(try #require(PaymentRequest(command: command)), call: call) == .delivered(reference: settled.entry.reference))
            #expect(channels.adyen.ledger.effects == ["channels/cap-adyen": 1] && channels.adyen.ledger.requests["channels/cap-adyen"] == 2)
        }
    }

    @Test("an unknown payment and a wrong API key are refused with Adyen's own message")
    func refusals() async throws {
        try await withChannels { channels, base in
            let unknown = try await Harness.processor(Self.router(base, adyen: channels.adyen)).settle(PaymentTests.capture("8815000000000999", id: "c-1"), offset: 1)
            #expect(unknown.entry.state == .rejected && unknown.entry.reason == "invalid_request: 167: Original pspReference required for this operation")
            channels.adyen.authorize("8815000000000002")
            let wrongKey = try await Harness.processor(Self.router(base, adyen: channels.adyen, key: "AQE_wrong")).settle(PaymentTests.capture("8815000000000002", id: "c-2"), offset: 2)
            #expect(wrongKey.entry.state == .rejected && wrongKey.entry.reason?.contains("Unauthorized") == true && wrongKey.entry.attempts == 1)
            #expect(channels.adyen.takeNotifications().isEmpty)
        }
    }

    @Test("notification signatures: Adyen's signing string, a tampered field or another key fails")
    func signatures() throws {
        let key = String(repeating: "44782DEF547AAA06C910C43932B1EB0C", count: 2)
        var item: [String: Any] = [
            "pspReference": "7914073381342284", "originalReference": "8815000000000001", "merchantAccountCode": "OrderFleetECOM",
            "merchantReference": "cap@1:2", "amount": ["value": 1130, "currency": "EUR"], "eventCode": "CAPTURE", "success": "true",
        ]
        #expect(AdyenNotifications.signedString(item) == "7914073381342284:8815000000000001:OrderFleetECOM:cap@1:2:1130:EUR:CAPTURE:true")
        item["additionalData"] = ["hmacSignature": try #require(AdyenNotifications.signature(item, hexKey: key))]
        #expect(AdyenNotifications.verify(item, hexKey: key))
        #expect(!AdyenNotifications.verify(item, hexKey: String(repeating: "00", count: 32)))
        var tampered = item
        tampered["amount"] = ["value": 1, "currency": "EUR"]
        #expect(!AdyenNotifications.verify(tampered, hexKey: key))
        item["additionalData"] = [:] as [String: Any]
        #expect(!AdyenNotifications.verify(item, hexKey: key))
    }
}
