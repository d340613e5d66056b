import Foundation

/// Creating and managing accounts: what `facet users` does, and `/api/v1/users` for an administrator. The rules
/// (names, passwords, who may not be disabled) live here, so the command and the server apply the same ones.
public struct AccountAdministration: Sendable {
    /// What a new account's owner must be told once (never stored in the clear, never logged). Encoded, it is what
    /// `facet users add --json` prints and `POST /api/v1/users` answers.
    public struct Credentials: Sendable, Hashable, Encodable {
        public var tenant: String
        public var username: String
        public var role: Role
        /// The password, when it was generated here (none was given).
        public var generatedPassword: String?
        /// People: the TOTP provisioning URI.
        public var otpauthURI: String?
        /// Machines: the client credentials.
        public var clientID: String?
        public var clientSecret: String?

        enum CodingKeys: String, CodingKey {
            case tenant, username, role
            case generatedPassword = "password"
            case otpauthURI = "otpauth_uri"
            case clientID = "client_id"
            case clientSecret = "client_secret"
        }
    }

    /// The role a tenant always keeps one active account of: without it nobody could manage the tenant's accounts.
    public static let keptRole = Role.systemAdmin

    public static let minimumPasswordLength = 12

    public let store: any AccountStore
    public let keys: KeyHierarchy
    public let hasher: PasswordHasher

    public init(store: any AccountStore, keys: KeyHierarchy, hasher: PasswordHasher = PasswordHasher()) {
        self.store = store
        self.keys = keys
        self.hasher = hasher
    }

    /// Adds an account. People get a TOTP secret (and a generated password when `password` is nil); machines get a
    /// client id and secret (`password` must be nil for them).
    public func add(
        tenant: String, username: String, role: Role, password: String? = nil, totpExempt: Bool = false,
        now: Date = Date()
    ) async throws(ArchiveError) -> Credentials {
        guard Account.isValidTenant(tenant) else {
            throw ArchiveError(.invalidInput, "tenant names are letters, digits and '-' (at most 64)")
        }
        guard Account.isValidUsername(username) else {
            throw ArchiveError(
                .invalidInput,
                "usernames are a-z, 0-9, '.', '_', '-', '@' (at most 64, starting with a letter or digit)")
        }
        if role.isService {
            guard password == nil else {
                throw ArchiveError(.invalidInput, "service accounts get a generated client secret, not a password")
            }
            let clientID = "facet-" + Formatting.hex(Self.randomBytes(12))
            let secret = JSONWebToken.base64URL(Self.randomBytes(32))
            try await store.createAccount(
                Account(
                    tenant: tenant, username: username, role: role, passwordHash: try await Self.hash(hasher, secret),
                    clientID: clientID, created: now))
            return Credentials(
                tenant: tenant, username: username, role: role, clientID: clientID, clientSecret: secret)
        }
        if let password { try Self.checkPassword(password) }
        let chosen = password ?? Self.generatePassword()
        let secret = TOTP.newSecret()
        try await store.createAccount(
            Account(
                tenant: tenant, username: username, role: role, passwordHash: try await Self.hash(hasher, chosen),
                totpSecret: secret, totpExempt: totpExempt, created: now))
        return Credentials(
            tenant: tenant, username: username, role: role, generatedPassword: password == nil ? chosen : nil,
            otpauthURI: TOTP(secret: secret).provisioningURI(account: username))
    }

    /// Sets a person's password (a generated one, returned, when `password` is nil), or issues a service account a
    /// new client secret (returned). Ends the account's sessions and clears its lockout.
    public func setPassword(tenant: String, username: String, password: String?) async throws(ArchiveError) -> String? {
        if let password { try Self.checkPassword(password) }
        guard let account = try await store.account(tenant: tenant, username: username) else {
            throw ArchiveError(.notFound, "no account \(username) in tenant \(tenant)")
        }
        if account.role.isService && password != nil {
            throw ArchiveError(.invalidInput, "service accounts get a generated client secret, not a password")
        }
        let chosen =
            password
            ?? (account.role.isService
                ? JSONWebToken.base64URL(Self.randomBytes(32))
                : Self.generatePassword())
        let hash = try await Self.hash(hasher, chosen)
        try await store.updateAccount(tenant: tenant, username: username) { (account) throws(ArchiveError) in
            account.passwordHash = hash
            account.failedLogins = []
            account.lockedUntil = nil
        }
        try await store.revokeSessions(tenant: tenant, username: username)
        return password == nil ? chosen : nil
    }

    /// A new TOTP secret for a person; returns its provisioning URI. Ends the account's sessions.
    public func resetMFA(tenant: String, username: String) async throws(ArchiveError) -> String {
        let secret = TOTP.newSecret()
        try await store.updateAccount(tenant: tenant, username: username) { (account) throws(ArchiveError) in
            guard !account.role.isService else {
                throw ArchiveError(.invalidInput, "service accounts have no TOTP; use set-password for a new secret")
            }
            account.totpSecret = secret
            account.lastTOTPStep = nil
        }
        try await store.revokeSessions(tenant: tenant, username: username)
        return TOTP(secret: secret).provisioningURI(account: username)
    }

    /// Disables (ending every session at once) or enables an account. Enabling also clears a lockout. `actor` is
    /// the administrator asking (nil for the command line): nobody disables their own account, and the last active
    /// system-admin of a tenant stays (`.conflict`).
    public func setStatus(tenant: String, username: String, _ status: Account.Status, by actor: String? = nil)
        async throws(ArchiveError)
    {
        if status == .disabled && actor == username {
            throw ArchiveError(.conflict, "an administrator cannot disable their own account")
        }
        try await store.updateAccount(tenant: tenant, username: username, keepingActive: Self.keptRole) {
            (account) throws(ArchiveError) in
            account.status = status
            if status == .active {
                account.failedLogins = []
                account.lockedUntil = nil
            }
        }
        if status == .disabled { try await store.revokeSessions(tenant: tenant, username: username) }
    }

    /// Gives an account another role and ends its sessions (their tokens name the old role). People stay people and
    /// machines machines, whose credentials differ (`.invalidInput`); nobody changes their own role, and the last
    /// active system-admin of a tenant keeps theirs (`.conflict`).
    public func setRole(tenant: String, username: String, role: Role, by actor: String? = nil)
        async throws(ArchiveError)
    {
        if actor == username { throw ArchiveError(.conflict, "an administrator cannot change their own role") }
        let changed = try await store.updateAccount(tenant: tenant, username: username, keepingActive: Self.keptRole) {
            (account) throws(ArchiveError) -> Bool in
            guard account.role.isService == role.isService else {
                throw ArchiveError(
                    .invalidInput, "a person's account cannot become a service account or the reverse; add a new one")
            }
            let changed = account.role != role
            account.role = role
            return changed
        }
        if changed { try await store.revokeSessions(tenant: tenant, username: username) }
    }

    /// The accounts of `tenant` (of every tenant when nil) as they may be shown.
    public func list(tenant: String?, now: Date = Date()) async throws(ArchiveError) -> [Summary] {
        try await store.accounts(tenant: tenant).map { Summary($0, now: now) }
    }

    /// One account as it may be shown; `.notFound` when the tenant has no such account.
    public func summary(tenant: String, username: String, now: Date = Date()) async throws(ArchiveError) -> Summary {
        guard let account = try await store.account(tenant: tenant, username: username) else {
            throw ArchiveError(.notFound, "no account \(username) in tenant \(tenant)")
        }
        return Summary(account, now: now)
    }

    /// Adds a user to a patient's care team. The Patient ID is only hashed (with its issuer and the tenant).
    public func assign(tenant: String, username: String, patientID: String, issuer: String?) async throws(ArchiveError)
        -> PatientKey
    {
        guard patientID.utf8.count <= 64, (issuer ?? "").utf8.count <= 64,
            let patient = PatientKey.make(tenant: tenant, patientID: patientID, issuer: issuer, keys: keys)
        else { throw ArchiveError(.invalidInput, "a Patient ID is 1 to 64 characters (and its issuer at most 64)") }
        try await store.addToCareTeam(tenant: tenant, patient: patient, username: username)
        return patient
    }

    /// A password's scrypt hash, made on the identity pool (it takes tens of milliseconds of CPU).
    static func hash(_ hasher: PasswordHasher, _ secret: String) async throws(ArchiveError) -> String {
        try await BlockingPool.identity.runTyped(alwaysQueue: false) { () throws(ArchiveError) -> String in
            try hasher.hash(secret)
        }
    }

    static func checkPassword(_ password: String) throws(ArchiveError) {
        guard password.count >= minimumPasswordLength, password.utf8.count <= PasswordHasher.maximumPasswordBytes
        else {
            throw ArchiveError(
                .invalidInput,
                "a password has \(minimumPasswordLength) to \(PasswordHasher.maximumPasswordBytes) characters")
        }
    }

    /// 20 characters from a 32-symbol alphabet without look-alikes (100 bits).
    static func generatePassword() -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789ABCDEFGHJKLMNPQRSTUVWXYZ")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    static func randomBytes(_ count: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<count).map { _ in generator.next() })
    }
}
