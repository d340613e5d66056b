import Foundation

/// The claims of an identity provider's access token that Facet reads (times in seconds since 1970, RFC 7519
/// NumericDate, fractions allowed). The role and tenant claims have the names the settings give them.
struct OIDCClaims {
    var iss: String?
    /// `aud` as a string is one audience.
    var audiences: [String]
    var exp: Double?
    var nbf: Double?
    var iat: Double?
    var jti: String?
    var sub: String?
    var preferredUsername: String?
    /// The role claim's values (a string is one value), nil when the token has no such claim.
    var roles: [String]?
    var tenant: String?

    /// One claim's value as far as Facet cares: text, a list of texts, a number, or anything else.
    enum Value: Decodable {
        case string(String)
        case strings([String])
        case number(Double)
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .string(text)
            } else if let number = try? container.decode(Double.self), number.isFinite {
                self = .number(number)
            } else if let texts = try? container.decode([String].self) {
                self = .strings(texts)
            } else {
                self = .other
            }
        }
    }

    /// `.invalidToken` "malformed token claims" when the payload is not a JSON object, or a claim Facet reads has
    /// the wrong type.
    init(_ payload: Data, roleClaim: String, tenantClaim: String?) throws(ArchiveError) {
        guard let claims = try? JSONDecoder().decode([String: Value].self, from: payload) else { throw Self.malformed }
        func text(_ name: String) throws(ArchiveError) -> String? {
            switch claims[name] {
            case nil: return nil
            case .string(let value): return value
            default: throw Self.malformed
            }
        }
        func texts(_ name: String) throws(ArchiveError) -> [String]? {
            switch claims[name] {
            case nil: return nil
            case .string(let value): return [value]
            case .strings(let values): return values
            default: throw Self.malformed
            }
        }
        func time(_ name: String) throws(ArchiveError) -> Double? {
            switch claims[name] {
            case nil: return nil
            case .number(let value): return value
            default: throw Self.malformed
            }
        }
        iss = try text("iss")
        audiences = try texts("aud") ?? []
        exp = try time("exp")
        nbf = try time("nbf")
        iat = try time("iat")
        jti = try text("jti")
        sub = try text("sub")
        preferredUsername = try text("preferred_username")
        roles = try texts(roleClaim)
        tenant = try tenantClaim.flatMap { name throws(ArchiveError) in try text(name) }
    }

    private static let malformed = ArchiveError(.invalidToken, "malformed token claims")
}
