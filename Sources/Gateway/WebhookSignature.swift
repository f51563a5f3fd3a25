import Contracts
import Digests
import Foundation

/// How a sender signs a webhook body: HMAC-SHA256 of the raw bytes with a shared
/// secret, written into a header in one of the encodings the platforms use.
public enum WebhookSignature: Sendable {
    /// Shopify (`X-Shopify-Hmac-Sha256`) and AfterShip (`aftership-hmac-sha256`): base64.
    case base64
    /// EasyPost (`X-Hmac-Signature`): `hmac-sha256-hex=` and lowercase hex.
    case easyPostHex
    /// OrderFleet's own endpoints (`X-OMS-Signature`): `sha256=` and lowercase hex.
    case omsHex

    /// Whether `header` is the signature of `body` under `secret`.
    ///
    /// The comparison takes constant time, so the time taken does not tell an attacker
    /// how many leading bytes of a forged signature were right.
    public func verify(header: String?, body: some ContiguousBytes, secret: String) -> Bool {
        guard let header, let mac = decode(header.trimmingCharacters(in: .whitespaces)) else { return false }
        return Digests.isValidHMACSHA256(mac, key: Self.key(secret, for: self), body)
    }

    /// The header value for `body`: what a sender computes (the demo and tests sign with it).
    public func sign(_ body: some ContiguousBytes, secret: String) -> String {
        let mac = Data(Digests.hmacSHA256(key: Self.key(secret, for: self), body))
        switch self {
        case .base64: return mac.base64EncodedString()
        case .easyPostHex: return "hmac-sha256-hex=" + Hex.encode(mac)
        case .omsHex: return "sha256=" + Hex.encode(mac)
        }
    }

    /// Whether a presented bearer token equals the configured one, in constant time:
    /// both are hashed (so that the comparison does not depend on where they differ or
    /// on their lengths) and the digests compared in constant time.
    public static func tokensMatch(_ given: String, _ expected: String) -> Bool {
        Digests.constantTimeEquals(Digests.sha256(Array(given.utf8)), Digests.sha256(Array(expected.utf8)))
    }

    private func decode(_ header: String) -> Data? {
        switch self {
        case .base64: return Data(base64Encoded: header)
        case .easyPostHex: return header.hasPrefix("hmac-sha256-hex=") ? Hex.decode(header.dropFirst(16)) : nil
        case .omsHex: return header.hasPrefix("sha256=") ? Hex.decode(header.dropFirst(7)) : nil
        }
    }

    /// EasyPost's client libraries normalize the secret to NFKD before keying the HMAC;
    /// the others use its UTF-8 bytes as they are.
    private static func key(_ secret: String, for kind: WebhookSignature) -> [UInt8] {
        let text = kind == .easyPostHex ? secret.decomposedStringWithCompatibilityMapping : secret
        return Array(text.utf8)
    }
}
