import Foundation

/// The claims of a Facet access token (times in seconds since 1970, RFC 7519 NumericDate).
public struct TokenClaims: Sendable, Hashable, Codable {
    public var iss: String
    public var aud: String
    /// The username.
    public var sub: String
    public var tenant: String
    public var role: String
    public var iat: Int64
    public var nbf: Int64
    public var exp: Int64
    public var jti: String

    public init(
        iss: String, aud: String, sub: String, tenant: String, role: String, iat: Int64, nbf: Int64, exp: Int64,
        jti: String
    ) {
        self.iss = iss
        self.aud = aud
        self.sub = sub
        self.tenant = tenant
        self.role = role
        self.iat = iat
        self.nbf = nbf
        self.exp = exp
        self.jti = jti
    }
}
