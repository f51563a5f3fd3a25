import Digests
import Foundation

/// Adyen's notification webhook (https://docs.adyen.com/development-resources/webhooks):
/// the outcome of a capture, refund or cancel that Adyen answered `received`. Each item is
/// signed with HMAC-SHA256 under the merchant's HMAC key (hex) over
/// `pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success`,
/// base64 in `additionalData.hmacSignature`.
public enum AdyenNotifications {
    /// The `reference` a modification is sent with: the command id and where its record
    /// is, `<command id>@<partition>:<offset>` (well under Adyen's 80 characters).
    public static func reference(commandID: String, partition: Int32, offset: Int64) -> String {
        "\(commandID)@\(partition):\(offset)"
    }

    /// The command id, partition and offset in a modification's `merchantReference`.
    public static func command(in reference: String) -> (commandID: String, partition: Int32, offset: Int64)? {
        guard let at = reference.lastIndex(of: "@") else { return nil }
        let position = reference[reference.index(after: at)...].split(separator: ":")
        guard position.count == 2, let partition = Int32(position[0]), let offset = Int64(position[1]), partition >= 0, offset >= 0 else { return nil }
        return (String(reference[..<at]), partition, offset)
    }

    /// The `NotificationRequestItem`s of a notification body; nil when it is not one.
    public static func items(in body: [UInt8]) -> [[String: Any]]? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let list = root["notificationItems"] as? [[String: Any]]
        else { return nil }
        return list.compactMap { $0["NotificationRequestItem"] as? [String: Any] }
    }

    /// The string an item's `hmacSignature` signs.
    public static func signedString(_ item: [String: Any]) -> String {
        let amount = item["amount"] as? [String: Any]
        let value = (amount?["value"] as? NSNumber).map { String($0.int64Value) } ?? ""
        let fields: [String?] = [
            item["pspReference"] as? String, item["originalReference"] as? String, item["merchantAccountCode"] as? String,
            item["merchantReference"] as? String, value, amount?["currency"] as? String, item["eventCode"] as? String, item["success"] as? String,
        ]
        return fields.map { $0 ?? "" }.joined(separator: ":")
    }

    /// The signature of `item` under `hexKey` (what Adyen puts in `hmacSignature`); nil
    /// for a key that is not hex.
    public static func signature(_ item: [String: Any], hexKey: String) -> String? {
        guard let key = Hex.decode(hexKey), !key.isEmpty else { return nil }
        return Data(Digests.hmacSHA256(key: key, Array(signedString(item).utf8))).base64EncodedString()
    }

    /// Whether `item` carries a good signature, compared in constant time.
    public static func verify(_ item: [String: Any], hexKey: String) -> Bool {
        guard let given = (item["additionalData"] as? [String: Any])?["hmacSignature"] as? String,
            let givenBytes = Data(base64Encoded: given), let key = Hex.decode(hexKey), !key.isEmpty
        else { return false }
        return Digests.isValidHMACSHA256(givenBytes, key: key, Array(signedString(item).utf8))
    }

    /// The outcome event an item tells of for `command` (the command record its
    /// reference names); nil for event codes that are not a modification's outcome.
    public static func outcome(of item: [String: Any], command: Envelope, provider: String, at: Date) -> Event? {
        let code = item["eventCode"] as? String ?? ""
        let success = item["success"] as? String == "true"
        let psp = item["pspReference"] as? String
        let reason = (item["reason"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? "\(code) reported by Adyen"
        switch (code, command.event) {
        case ("CAPTURE", .capturePayment(let c)) where success:
            return PaymentCaptured(
                orderId: c.orderId, commandId: command.id, shipmentId: c.shipmentId, amount: c.amount, provider: provider, providerReference: psp,
                capturedAt: at
            ).event
        case ("CAPTURE", .capturePayment(let c)), ("CAPTURE_FAILED", .capturePayment(let c)):
            return PaymentCaptureFailed(
                orderId: c.orderId, commandId: command.id, shipmentId: c.shipmentId, amount: c.amount, provider: provider, failure: .declined,
                message: reason, failedAt: at
            ).event
        case ("REFUND", .refundPayment(let r)) where success:
            return PaymentRefunded(
                orderId: r.orderId, commandId: command.id, returnId: r.returnId, amount: r.amount, provider: provider, providerReference: psp, refundedAt: at
            ).event
        case ("REFUND", .refundPayment(let r)), ("REFUND_FAILED", .refundPayment(let r)):
            return PaymentRefundFailed(
                orderId: r.orderId, commandId: command.id, returnId: r.returnId, amount: r.amount, provider: provider, failure: .declined,
                message: reason, failedAt: at
            ).event
        case ("CANCELLATION", .voidPayment(let v)) where success:
            return PaymentVoided(orderId: v.orderId, commandId: command.id, provider: provider, providerReference: psp, voidedAt: at).event
        case ("CANCELLATION", .voidPayment(let v)):
            return PaymentVoidFailed(orderId: v.orderId, commandId: command.id, provider: provider, failure: .invalidRequest, message: reason, failedAt: at).event
        default:
            return nil
        }
    }
}
