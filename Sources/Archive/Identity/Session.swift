import Foundation

/// A token's server-side record: its absolute expiry and when it was last used (for the idle timeout).
public struct Session: Sendable, Hashable {
    public var tokenID: String
    public var tenant: String
    public var username: String
    public var issued: Date
    public var expires: Date
    public var lastUse: Date

    public init(tokenID: String, tenant: String, username: String, issued: Date, expires: Date, lastUse: Date) {
        self.tokenID = tokenID
        self.tenant = tenant
        self.username = username
        self.issued = issued
        self.expires = expires
        self.lastUse = lastUse
    }

    /// The answer to "may this token be used now?", recorded as a use when it is `.active`.
    public enum Use: Sendable, Hashable {
        case active
        case revoked
        /// Unused for longer than the idle timeout (the session is ended).
        case idle
        /// No session has this token id (never issued here, or purged after it expired).
        case unknown
    }
}
