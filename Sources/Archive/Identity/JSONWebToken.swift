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
            let parts = token.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, let header = JSONWebToken.decodeBase64URL(parts[0]),
                let payload = JSONWebToken.decodeBase64URL(parts[1]),
                let signature = JSONWebToken.decodeBase64URL(parts[2])
            else { throw ArchiveError(.invalidToken, "malformed token") }
            self.header = header
            self.payload = payload
            self.signature = signature
            signingInput = Data(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        }
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
        guard let parts = try? Parts(token, maximumLength: maximumLength) else { return nil }
        return (try? JSONDecoder().decode(Issuer.self, from: parts.payload))?.iss
    }

    static func base64URL(_ data: Data) -> String {
        var text = data.base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// Strict base64url: the URL-safe alphabet only, no padding, no whitespace.
    static func decodeBase64URL<S: StringProtocol>(_ text: S) -> Data? {
        guard
            text.utf8.allSatisfy({
                (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D
                    || $0 == 0x5F
            }), text.utf8.count % 4 != 1
        else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard)
    }
}
