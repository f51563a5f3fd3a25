import COpenSSL
import Foundation

/// SHA-1, SHA-256 and HMAC-SHA256 from the system's libcrypto (OpenSSL, which
/// librdkafka links for TLS too), so that the build compiles no copy of BoringSSL of
/// its own beside swift-nio-ssl's: the digests the fleet derives ids with and checks
/// signatures with.
///
/// Each function takes its message in up to two parts, hashed as one (a prefix and a
/// body, a namespace and a name), so that neither is copied to join them.
public enum Digests {
    /// SHA-1 of `first` followed by `second`: 20 bytes. Not for security; names ids and
    /// trace spans (UUIDv5, RFC 9562 §5.5).
    public static func sha1(_ first: some ContiguousBytes, _ second: some ContiguousBytes = [UInt8]()) -> [UInt8] {
        digest(count: 20) { out in
            first.withUnsafeBytes { a in
                second.withUnsafeBytes { b in orderfleet_sha1(a.baseAddress, a.count, b.baseAddress, b.count, out) }
            }
            return true
        }
    }

    /// SHA-256 of `data`: 32 bytes.
    public static func sha256(_ data: some ContiguousBytes) -> [UInt8] {
        digest(count: 32) { out in
            data.withUnsafeBytes { bytes in orderfleet_sha256(bytes.baseAddress, bytes.count, out) }
            return true
        }
    }

    /// HMAC-SHA256 (RFC 2104) under `key` of `first` followed by `second`: 32 bytes.
    public static func hmacSHA256(
        key: some ContiguousBytes, _ first: some ContiguousBytes, _ second: some ContiguousBytes = [UInt8]()
    ) -> [UInt8] {
        digest(count: 32) { out in
            key.withUnsafeBytes { key in
                first.withUnsafeBytes { a in
                    second.withUnsafeBytes { b in
                        orderfleet_hmac_sha256(key.baseAddress, key.count, a.baseAddress, a.count, b.baseAddress, b.count, out) == 1
                    }
                }
            }
        }
    }

    /// Whether `mac` is the HMAC-SHA256 under `key` of `first` followed by `second`,
    /// compared in constant time (a signature check must not tell how many of its
    /// leading bytes were right).
    public static func isValidHMACSHA256(
        _ mac: some ContiguousBytes, key: some ContiguousBytes, _ first: some ContiguousBytes, _ second: some ContiguousBytes = [UInt8]()
    ) -> Bool {
        constantTimeEquals(hmacSHA256(key: key, first, second), mac)
    }

    /// Whether `a` and `b` hold the same bytes, in time that depends on their lengths
    /// only.
    public static func constantTimeEquals(_ a: some ContiguousBytes, _ b: some ContiguousBytes) -> Bool {
        a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in
                a.count == b.count && (a.count == 0 || CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0)
            }
        }
    }

    private static func digest(count: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Bool) -> [UInt8] {
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = body(buffer.baseAddress!) ? count : 0
        }
        // Only an allocation failure inside libcrypto fails a digest: as for Swift's own
        // allocations, there is no going on.
        precondition(bytes.count == count, "libcrypto failed to compute a digest")
        return bytes
    }
}
