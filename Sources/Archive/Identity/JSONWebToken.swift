import Foundation

/// The compact JWS form (RFC 7515) as Facet issues and accepts it: `base64url(header).base64url(claims).base64url(sig)`.
enum JSONWebToken {
    /// Longer tokens of Facet's own are refused before any parsing.
    static let maximumLength = 4096

    /// A token split into its three parts, each decoded, before anything in it is believed.
    struct Parts {
        var header: Data
        var payload: Data
        var signature: Data
        /// The exact bytes the signature covers: `header.payload` as received.
        var signingInput: Data

        /// `.invalidToken` "token too long" over `maximumLength` bytes, "malformed token" unless there are exactly
        /// three strict base64url parts.
        init(_ token: String, maximumLength: Int) throws(ArchiveError) {
            guard token.utf8.count <= maximumLength else { throw ArchiveError(.invalidToken, "token too long") }
            let parts = JSONWebToken.split(token)
            guard parts.count == 3, let header = JSONWebToken.decodeBase64URL(bytes: parts[0]),
                let payload = JSONWebToken.decodeBase64URL(bytes: parts[1]),
                let signature = JSONWebToken.decodeBase64URL(bytes: parts[2])
            else { throw ArchiveError(.invalidToken, "malformed token") }
            self.header = header
            self.payload = payload
            self.signature = signature
            signingInput = Data(token.utf8.prefix(parts[0].count + 1 + parts[1].count))
        }
    }

    /// The dot-separated parts of a compact token, as bytes (at most four: more than three is malformed anyway).
    private static func split(_ token: String) -> [Substring.UTF8View] {
        Substring(token).utf8.split(separator: UInt8(ascii: "."), maxSplits: 3, omittingEmptySubsequences: false)
    }

    /// The JOSE header fields Facet looks at (RFC 7515 4.1); any other field is ignored, never followed (`jku`,
    /// `x5u` and `jwk` in particular: keys come from configuration only).
    struct Header: Decodable {
        var alg: String?
        var kid: String?
        var typ: String?
        /// Whether `crit` is present: Facet understands no extension, so such a token is refused.
        var hasCritical: Bool

        enum CodingKeys: String, CodingKey { case alg, kid, typ, crit }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            alg = try container.decodeIfPresent(String.self, forKey: .alg)
            kid = try container.decodeIfPresent(String.self, forKey: .kid)
            typ = try container.decodeIfPresent(String.self, forKey: .typ)
            hasCritical = container.contains(.crit)
        }

        /// `.invalidToken` "malformed token header" for anything but a JSON object with string fields.
        init(_ data: Data) throws(ArchiveError) {
            guard let header = try? JSONDecoder().decode(Header.self, from: data) else {
                throw ArchiveError(.invalidToken, "malformed token header")
            }
            self = header
        }
    }

    /// The `iss` claim of a token whose signature has not been checked yet: only for choosing which verifier checks
    /// it, never for trusting it.
    static func unverifiedIssuer(_ token: String, maximumLength: Int) -> String? {
        struct Issuer: Decodable { var iss: String }
        let parts = split(token)
        // Only the claims are decoded: the verifier chosen decodes the whole token again.
        guard token.utf8.count <= maximumLength, parts.count == 3, let payload = decodeBase64URL(bytes: parts[1])
        else { return nil }
        return (try? JSONDecoder().decode(Issuer.self, from: payload))?.iss
    }

    static func base64URL(_ data: Data) -> String {
        var text = data.base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// Strict base64url: the URL-safe alphabet only, no padding, no whitespace.
    static func decodeBase64URL<S: StringProtocol>(_ text: S) -> Data? {
        decodeBase64URL(bytes: text.utf8)
    }

    /// The same over bytes (this runs three times per request, so it decodes directly). Leftover bits must be zero
    /// (RFC 4648 §3.5), so each value has one spelling.
    static func decodeBase64URL<Bytes: Collection<UInt8>>(bytes text: Bytes) -> Data? {
        guard text.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in text {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            default: return nil
            }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return Data(output)
    }
}
