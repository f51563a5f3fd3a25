import Digests
import Foundation
import Testing

/// The system libcrypto's digests against published test vectors (FIPS 180-2's "abc",
/// RFC 4231's HMAC-SHA256 cases), and the two-part form against the joined message.
@Suite("digests")
struct DigestsTests {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("SHA-1 and SHA-256 of \"abc\" are FIPS 180-2's; two parts hash as their concatenation")
    func digests() {
        #expect(hex(Digests.sha1(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(Digests.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(Digests.sha1([UInt8]())) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(Digests.sha1(Array("a".utf8), Array("bc".utf8)) == Digests.sha1(Array("abc".utf8)))
        #expect(Digests.sha256(Data("abc".utf8)) == Digests.sha256(Array("abc".utf8)))
    }

    @Test("HMAC-SHA256 matches RFC 4231 and the empty key's known value; the check refuses a changed byte")
    func hmac() {
        let message = Array("what do ya want for nothing?".utf8)
        let mac = Digests.hmacSHA256(key: Array("Jefe".utf8), message)
        #expect(hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // RFC 4231 test case 6: a key longer than the block is hashed first.
        let longKey = [UInt8](repeating: 0xaa, count: 131)
        #expect(hex(Digests.hmacSHA256(key: longKey, Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        #expect(hex(Digests.hmacSHA256(key: [UInt8](), [UInt8]())) == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
        #expect(Digests.hmacSHA256(key: Array("Jefe".utf8), Array("what do ya ".utf8), Array("want for nothing?".utf8)) == mac)

        #expect(Digests.isValidHMACSHA256(mac, key: Array("Jefe".utf8), message))
        var forged = mac
        forged[31] ^= 1
        #expect(!Digests.isValidHMACSHA256(forged, key: Array("Jefe".utf8), message))
        #expect(!Digests.isValidHMACSHA256(Array(mac.prefix(16)), key: Array("Jefe".utf8), message), "a truncated MAC")
    }

    @Test("constant-time equality: same bytes, different bytes, different lengths, empty")
    func equality() {
        #expect(Digests.constantTimeEquals([1, 2, 3] as [UInt8], Data([1, 2, 3])))
        #expect(!Digests.constantTimeEquals([1, 2, 3] as [UInt8], [1, 2, 4] as [UInt8]))
        #expect(!Digests.constantTimeEquals([1, 2, 3] as [UInt8], [1, 2] as [UInt8]))
        #expect(Digests.constantTimeEquals([UInt8](), Data()))
    }
}
