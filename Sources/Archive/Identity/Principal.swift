import Foundation

/// Who is asking: an authenticated account of one tenant, as a verified token describes it.
public struct Principal: Sendable, Hashable {
    public var tenant: String
    public var username: String
    public var role: Role
    /// The token's `jti`, for logout; nil for a principal not made from a token.
    public var tokenID: String?
    public var expires: Date?

    public init(tenant: String, username: String, role: Role, tokenID: String? = nil, expires: Date? = nil) {
        self.tenant = tenant
        self.username = username
        self.role = role
        self.tokenID = tokenID
        self.expires = expires
    }
}
