import Foundation

/// A freshly issued access token: what `POST /api/v1/auth/login` and `/auth/token` answer
/// (`access_token`, `token_type: Bearer`, `expires_in`).
public struct IssuedToken: Sendable, Hashable {
    public var accessToken: String
    public var tokenID: String
    public var principal: Principal
    public var expires: Date
    /// Whole seconds from issue to expiry.
    public var expiresIn: Int
    public var tokenType: String { "Bearer" }
}
