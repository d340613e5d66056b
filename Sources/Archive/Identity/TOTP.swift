import Crypto
import Foundation

/// Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP) with HMAC-SHA1, as every authenticator app reads
/// them from an `otpauth://` URI.
public struct TOTP: Sendable {
    public let secret: Data
    public let digits: Int
    public let period: Int64

    /// Bytes of a new secret (160 bits, RFC 4226's recommendation for HMAC-SHA1).
    public static let secretBytes = 20
    /// Steps accepted on either side of the current one, for clock drift and typing time.
    public static let window: Int64 = 1

    public init(secret: Data, digits: Int = 6, period: Int64 = 30) {
        self.secret = secret
        self.digits = min(max(digits, 6), 9)
        self.period = max(period, 1)
    }

    public static func newSecret() -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<secretBytes).map { _ in generator.next() })
    }

    /// The time step of a moment (RFC 6238's T, with T0 = 0).
    public func step(at date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / Double(period)).rounded(.down))
    }

    /// The HOTP value of one counter, zero-padded to `digits`.
    public func code(step: Int64) -> String {
        var counter = UInt64(bitPattern: step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Data($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
        let offset = Int(mac[mac.count - 1] & 0x0F)
        let binary =
            (UInt32(mac[offset] & 0x7F) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8)
            | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: digits - value.count) + value
    }

    public func code(at date: Date) -> String { code(step: step(at: date)) }

    /// The step a code matches within ±`window` steps of `date`, provided it is later than `lastUsedStep` (each code
    /// works once, and a code older than the last accepted one never works); nil otherwise.
    public func match(_ code: String, at date: Date, after lastUsedStep: Int64?) -> Int64? {
        guard code.utf8.count == digits, code.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        let current = step(at: date)
        var matched: Int64?
        // Every candidate is computed and compared in constant time, so timing does not tell which step matched.
        for candidate in (current - Self.window)...(current + Self.window) {
            if ConstantTime.equal(Array(self.code(step: candidate).utf8), Array(code.utf8)),
                candidate > (lastUsedStep ?? Int64.min)
            {
                matched = candidate
            }
        }
        return matched
    }

    /// The provisioning URI authenticator apps scan: `otpauth://totp/Facet:USER?secret=BASE32&issuer=Facet`.
    public func provisioningURI(account: String, issuer: String = "Facet") -> String {
        let label = "\(Self.escape(issuer)):\(Self.escape(account))"
        return "otpauth://totp/\(label)?secret=\(Base32.encode(secret))&issuer=\(Self.escape(issuer))"
    }

    private static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
