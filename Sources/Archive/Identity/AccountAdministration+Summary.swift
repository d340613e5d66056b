import Foundation

extension AccountAdministration {
    /// One account as `facet users list --json` and `GET /api/v1/users` show it: never a hash or a secret. Keys are
    /// snake_case, as the command line prints them.
    public struct Summary: Sendable, Hashable, Encodable {
        public var tenant: String
        public var username: String
        public var role: Role
        public var status: Account.Status
        /// RFC 3339, UTC.
        public var created: String
        /// People: whether a TOTP secret is enrolled.
        public var mfa: Bool
        public var locked: Bool
        /// When a lockout ends, while one lasts.
        public var lockedUntil: String?
        /// Machines: the public half of their client credentials.
        public var clientID: String?

        enum CodingKeys: String, CodingKey {
            case tenant, username, role, status, created, mfa, locked
            case lockedUntil = "locked_until"
            case clientID = "client_id"
        }

        public init(_ account: Account, now: Date = Date()) {
            tenant = account.tenant
            username = account.username
            role = account.role
            status = account.status
            created = Formatting.timestamp(account.created)
            mfa = account.totpSecret != nil
            let lockout = account.lockedUntil.flatMap { $0 > now ? $0 : nil }
            locked = lockout != nil
            lockedUntil = lockout.map(Formatting.timestamp)
            clientID = account.clientID
        }
    }

    /// A credential handed out once by a reset: the new TOTP provisioning URI (`reset-mfa`) or the generated
    /// password or client secret (`set-password`). What the command line prints with `--json` and the server answers.
    public struct Reissued: Sendable, Hashable, Encodable {
        public var tenant: String
        public var username: String
        public var otpauthURI: String?
        public var password: String?

        public init(tenant: String, username: String, otpauthURI: String? = nil, password: String? = nil) {
            self.tenant = tenant
            self.username = username
            self.otpauthURI = otpauthURI
            self.password = password
        }

        enum CodingKeys: String, CodingKey {
            case tenant, username, password
            case otpauthURI = "otpauth_uri"
        }
    }

    /// The one JSON form of these answers (sorted keys, slashes as they are), for the command line and the server.
    public static func json(_ value: some Encodable) throws(ArchiveError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(value)
        } catch {
            throw ArchiveError(.io, "an account answer cannot be encoded")
        }
    }
}
