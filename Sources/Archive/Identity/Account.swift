import Foundation

/// One account of one tenant: a person (password + TOTP) or a machine (client id + secret). Usernames are not PHI.
public struct Account: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable, CaseIterable, Codable {
        case active
        case disabled
    }

    /// What every token check reads of its account: a disabled account or a changed role stops its tokens at once.
    public struct Standing: Sendable, Hashable {
        public var status: Status
        public var role: Role

        public init(status: Status, role: Role) {
            self.status = status
            self.role = role
        }
    }

    public var tenant: String
    public var username: String
    public var role: Role
    public var status: Status
    /// The scrypt hash (PHC string) of the password, or of the client secret for a service account.
    public var passwordHash: String
    /// The TOTP secret in the clear in memory; the store keeps it sealed. Nil for service accounts.
    public var totpSecret: Data?
    /// The last TOTP step accepted: a code of this step or an earlier one is refused.
    public var lastTOTPStep: Int64?
    /// Failed logins still inside the counting window.
    public var failedLogins: [Date]
    public var lockedUntil: Date?
    /// Service accounts only: the public half of their client credentials.
    public var clientID: String?
    /// Demo accounts only: may log in without TOTP where the login service allows it.
    public var totpExempt: Bool
    public var created: Date

    public init(
        tenant: String, username: String, role: Role, status: Status = .active, passwordHash: String,
        totpSecret: Data? = nil, lastTOTPStep: Int64? = nil, failedLogins: [Date] = [], lockedUntil: Date? = nil,
        clientID: String? = nil, totpExempt: Bool = false, created: Date = Date()
    ) {
        self.tenant = tenant
        self.username = username
        self.role = role
        self.status = status
        self.passwordHash = passwordHash
        self.totpSecret = totpSecret
        self.lastTOTPStep = lastTOTPStep
        self.failedLogins = failedLogins
        self.lockedUntil = lockedUntil
        self.clientID = clientID
        self.totpExempt = totpExempt
        self.created = created
    }

    /// Letters a–z, digits and `.`, `_`, `-`, `@`, starting with a letter or digit, at most 64: no confusable
    /// duplicates by case, nothing that needs escaping in a log line.
    public static func isValidUsername(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 64 else { return false }
        func plain(_ c: UInt8) -> Bool { (0x61...0x7A).contains(c) || (0x30...0x39).contains(c) }
        return plain(first)
            && name.utf8.allSatisfy { plain($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D || $0 == 0x40 }
    }

    /// Tenant names follow the key hierarchy's rule: letters, digits and `-`, at most 64.
    public static func isValidTenant(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64
            && name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" }
    }
}
