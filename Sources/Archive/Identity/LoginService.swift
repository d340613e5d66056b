import Foundation

/// Logins of people (username, password, TOTP) and of machines (client credentials), with lockout. Every refusal
/// carries the same public message, "invalid credentials", whether the username exists or not; the cause is given
/// separately for the audit trail.
public struct LoginService: Sendable {
    public struct Settings: Sendable, Hashable {
        /// Failures within `failureWindow` that lock an account.
        public var maximumFailures = 5
        public var failureWindow: TimeInterval = 15 * 60
        public var lockDuration: TimeInterval = 15 * 60
        /// Lets accounts marked `totpExempt` (the demo clinic's, on loopback) log in without a TOTP code. Off unless a
        /// server sets it for the demo.
        public var allowTOTPExemptAccounts = false

        public init() {}
    }

    /// Why a login was refused: for the audit trail only, never for the caller.
    public enum Refusal: String, Sendable, Hashable {
        case unknownAccount = "unknown-account"
        case wrongPassword = "wrong-password"
        case wrongTOTP = "wrong-totp"
        case locked
        case disabled
    }

    public enum Outcome: Sendable, Hashable {
        case granted(IssuedToken)
        case refused(Refusal)
    }

    /// The one message every refused login gets.
    public static let refusalMessage = "invalid credentials"

    public let store: any AccountStore
    public let tokens: TokenService
    public let hasher: PasswordHasher
    public let settings: Settings
    /// Where password checks run (the process's identity pool).
    let pool: BlockingPool

    public init(
        tokens: TokenService, hasher: PasswordHasher = PasswordHasher(), settings: Settings = Settings(),
        pool: BlockingPool = .identity
    ) {
        self.store = tokens.store
        self.tokens = tokens
        self.hasher = hasher
        self.settings = settings
        self.pool = pool
    }

    /// A token, or `.invalidCredentials` with `refusalMessage`.
    public func login(tenant: String, username: String, password: String, totp: String?, now: Date = Date())
        async throws(ArchiveError) -> IssuedToken
    {
        switch try await attempt(tenant: tenant, username: username, password: password, totp: totp, now: now) {
        case .granted(let token): return token
        case .refused: throw ArchiveError(.invalidCredentials, Self.refusalMessage)
        }
    }

    /// A person's login. Refusals are values (with their cause); only storage failures throw.
    public func attempt(tenant: String, username: String, password: String, totp: String?, now: Date = Date())
        async throws(ArchiveError) -> Outcome
    {
        let found =
            Account.isValidTenant(tenant) && Account.isValidUsername(username)
            ? try await store.account(tenant: tenant, username: username) : nil
        // scrypt runs for every attempt (against a decoy for unknown names, also while locked or disabled), so
        // that the time taken does not tell whether an account exists or is locked.
        let passwordMatches = try await verify(password, against: found?.passwordHash)
        guard let found, !found.role.isService else { return .refused(.unknownAccount) }
        let refusal = try await store.updateAccount(tenant: tenant, username: username) {
            (account) throws(ArchiveError) -> Refusal? in
            if let until = account.lockedUntil, now < until { return .locked }
            guard account.status == .active else { return .disabled }
            let exempt = settings.allowTOTPExemptAccounts && account.totpExempt
            var step: Int64?
            if passwordMatches && !exempt, let secret = account.totpSecret, let totp {
                step = TOTP(secret: secret).match(totp, at: now, after: account.lastTOTPStep)
            }
            guard passwordMatches, exempt || step != nil else {
                account.failedLogins = account.failedLogins.filter {
                    now.timeIntervalSince($0) < settings.failureWindow
                }
                account.failedLogins.append(now)
                if account.failedLogins.count >= settings.maximumFailures {
                    account.lockedUntil = now.addingTimeInterval(settings.lockDuration)
                    account.failedLogins = []
                }
                return passwordMatches ? .wrongTOTP : .wrongPassword
            }
            // The step is stored in the same transaction that checked it: a code works once, even in a race.
            if let step { account.lastTOTPStep = step }
            account.failedLogins = []
            account.lockedUntil = nil
            return nil
        }
        if let refusal { return .refused(refusal) }
        return .granted(
            try await tokens.issue(tenant: found.tenant, username: found.username, role: found.role, now: now))
    }

    /// Checks a password against a hash (or the decoy) on the identity pool: scrypt takes tens of milliseconds. A
    /// full queue is `.busy` (503 with Retry-After): a flood of attempts waits for nobody's memory.
    private func verify(_ password: String, against hash: String?) async throws(ArchiveError) -> Bool {
        let hasher = self.hasher
        return try await pool.runTyped(alwaysQueue: false) { () throws(ArchiveError) -> Bool in
            hasher.verify(password, against: hash ?? hasher.decoy)
        }
    }

    /// A machine's token (OAuth 2.0 client credentials). No lockout: client secrets are 256-bit random, and a lockout
    /// would let anyone who knows a client id stop a capture station.
    public func token(clientID: String, clientSecret: String, now: Date = Date()) async throws(ArchiveError)
        -> IssuedToken
    {
        let found = clientID.utf8.count <= 128 ? try await store.account(clientID: clientID) : nil
        let secretMatches = try await verify(clientSecret, against: found?.passwordHash)
        guard let found, found.role.isService, found.status == .active, secretMatches else {
            throw ArchiveError(.invalidCredentials, Self.refusalMessage)
        }
        return try await tokens.issue(tenant: found.tenant, username: found.username, role: found.role, now: now)
    }
}
