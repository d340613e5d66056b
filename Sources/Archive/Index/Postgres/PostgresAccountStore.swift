import Foundation
import PostgresNIO

/// The `AccountStore` of a server setup: accounts, care teams, break-the-glass grants, sessions and revocations in
/// PostgreSQL (migration 5), shared by every replica, so that a token issued by one is accepted, ended or refused by
/// all, and a lockout or a disabled account holds everywhere at once. Secrets are sealed as in SQLite
/// (`AccountSealing`); patients appear only as `PatientKey`s. Every call has the database's deadline: a server that
/// does not answer is `.unavailable` (503).
public struct PostgresAccountStore: AccountStore {
    let database: PostgresDatabase
    private let sealing: AccountSealing

    public init(database: PostgresDatabase, keys: KeyHierarchy) {
        self.database = database
        sealing = AccountSealing(keys: keys)
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (PostgresClient, Logger) async throws -> T)
        async throws(ArchiveError) -> T
    {
        let (client, logger) = (database.client, database.logger)
        return try await database.call { try await body(client, logger) }
    }

    /// Facet's token signing key, kept in the database wrapped under the master key, so that every replica signs and
    /// checks tokens with the same key: the one recorded, or the data folder's, or a new one (the first recorded
    /// wins when replicas start together).
    public func tokenSigningKey(keys: KeyHierarchy, keyDirectory: URL) async throws(ArchiveError) -> TokenSigningKey {
        let offered = try keys.offeredTokenSigningKey(keyDirectory: keyDirectory)
        let recorded = try await run { client, logger -> Data? in
            try await client.query(
                """
                INSERT INTO identity_keys (name, wrapped) VALUES ('token-signing v1', \(offered))
                ON CONFLICT (name) DO NOTHING
                """, logger: logger)
            for try await wrapped in try await client.query(
                "SELECT wrapped FROM identity_keys WHERE name = 'token-signing v1'", logger: logger
            ).decode(Data.self) {
                return wrapped
            }
            return nil
        }
        guard let recorded else { throw ArchiveError(.key, "the token signing key could not be recorded") }
        return try keys.tokenSigningKey(wrapped: recorded)
    }

    // MARK: accounts

    private typealias AccountRow = (
        String, String, String, String, String, Data?, Int64?, String, Double?, String?, Bool, Double
    )
    private static let accountColumns = """
        tenant, username, role, status, password_hash, totp_secret, last_totp_step, failed_logins, locked_until,
        client_id, totp_exempt, created
        """

    private func decode(_ row: AccountRow) throws(ArchiveError) -> Account {
        let (tenant, username, role, status, hash, sealed, step, failures, locked, clientID, exempt, created) = row
        guard let role = Role(rawValue: role), let status = Account.Status(rawValue: status) else {
            throw ArchiveError(.integrity, "an account row holds an unknown role or status")
        }
        let secret = try sealed.map { (sealed) throws(ArchiveError) in
            try sealing.open(sealed, context: AccountSealing.totpContext(tenant, username))
        }
        return Account(
            tenant: tenant, username: username, role: role, status: status, passwordHash: hash, totpSecret: secret,
            lastTOTPStep: step, failedLogins: AccountSealing.decodeFailures(failures),
            lockedUntil: locked.map { Date(timeIntervalSince1970: $0) }, clientID: clientID, totpExempt: exempt,
            created: Date(timeIntervalSince1970: created))
    }

    private func sealedSecret(_ account: Account) throws(ArchiveError) -> Data? {
        guard let secret = account.totpSecret else { return nil }
        return try sealing.seal(secret, context: AccountSealing.totpContext(account.tenant, account.username))
    }

    private func accounts(where condition: PostgresQuery) async throws(ArchiveError) -> [Account] {
        let rows = try await run { client, logger -> [AccountRow] in
            var rows: [AccountRow] = []
            var query = PostgresQuery(unsafeSQL: "SELECT \(Self.accountColumns) FROM accounts WHERE ")
            query.sql += condition.sql
            query.binds = condition.binds
            for try await row in try await client.query(query, logger: logger).decode(AccountRow.self) {
                rows.append(row)
            }
            return rows
        }
        var accounts: [Account] = []
        for row in rows { accounts.append(try decode(row)) }
        return accounts
    }

    public func createAccount(_ account: Account) async throws(ArchiveError) {
        guard Account.isValidTenant(account.tenant), Account.isValidUsername(account.username) else {
            throw ArchiveError(.invalidInput, "tenant or username is not acceptable")
        }
        let sealed = try sealedSecret(account)
        let failures = AccountSealing.encodeFailures(account.failedLogins)
        let (locked, created) = (account.lockedUntil?.timeIntervalSince1970, account.created.timeIntervalSince1970)
        let step = account.lastTOTPStep
        let outcome = try await run { client, logger -> String? in
            do {
                try await client.query(
                    """
                    INSERT INTO accounts (\(unescaped: Self.accountColumns)) VALUES (\(account.tenant),
                    \(account.username), \(account.role.rawValue), \(account.status.rawValue), \(account.passwordHash),
                    \(sealed), \(step), \(failures), \(locked), \(account.clientID), \(account.totpExempt), \(created))
                    """, logger: logger)
                return nil
            } catch  where PostgresDatabase.isUniqueViolation(error) {
                // The primary key (tenant, username) or the client id.
                let constraint = (error as? PSQLError)?.serverInfo?[.constraintName] ?? ""
                return constraint.contains("client_id") ? "the client id exists" : "the username exists"
            }
        }
        if let outcome {
            throw ArchiveError(
                .conflict,
                outcome == "the username exists" ? "the username \(account.username) exists in this tenant" : outcome)
        }
    }

    public func account(tenant: String, username: String) async throws(ArchiveError) -> Account? {
        try await accounts(where: "tenant = \(tenant) AND username = \(username)").first
    }

    public func account(clientID: String) async throws(ArchiveError) -> Account? {
        try await accounts(where: "client_id = \(clientID)").first
    }

    public func accountStatus(tenant: String, username: String) async throws(ArchiveError) -> Account.Standing? {
        let row = try await run { client, logger -> (String, String)? in
            for try await row in try await client.query(
                "SELECT status, role FROM accounts WHERE tenant = \(tenant) AND username = \(username)",
                logger: logger
            ).decode((String, String).self) {
                return row
            }
            return nil
        }
        guard let (status, role) = row else { return nil }
        guard let status = Account.Status(rawValue: status), let role = Role(rawValue: role) else {
            throw ArchiveError(.integrity, "an account row holds an unknown role or status")
        }
        return Account.Standing(status: status, role: role)
    }

    public func accounts(tenant: String?) async throws(ArchiveError) -> [Account] {
        if let tenant { return try await accounts(where: "tenant = \(tenant) ORDER BY username") }
        return try await accounts(where: "TRUE ORDER BY tenant, username")
    }

    public func replaceAccount(_ before: Account, with after: Account, keepingActive kept: Role?)
        async throws(ArchiveError) -> Bool
    {
        // Decided before the transaction (sealing is local work); compared and written inside it.
        var written = after
        written.tenant = before.tenant
        written.username = before.username
        let sealed = try sealedSecret(written)
        let failures = AccountSealing.encodeFailures(written.failedLogins)
        let locked = written.lockedUntil?.timeIntervalSince1970
        let (tenant, username) = (before.tenant, before.username)
        // The row as stored (the sealed secret's bytes included: sealing again would give other bytes).
        let current = try await run { client, logger -> AccountRow? in
            for try await row in try await client.query(
                """
                SELECT \(unescaped: Self.accountColumns) FROM accounts WHERE tenant = \(tenant) AND username = \(username)
                """, logger: logger
            ).decode(AccountRow.self) {
                return row
            }
            return nil
        }
        guard let row = current else { throw ArchiveError(.notFound, "no such account") }
        guard try decode(row) == before else { return false }
        // A compare-and-swap: the write happens only if every column is still as read.
        let (step, exempt, role, status, hash) = (
            written.lastTOTPStep, written.totpExempt, written.role.rawValue, written.status.rawValue,
            written.passwordHash
        )
        let leavesRole =
            before.role == kept && before.status == .active
            && (written.role != kept || written.status != .active)
        let (_, _, oldRole, oldStatus, oldHash, oldSecret, oldStep, oldFailures, oldLocked, _, oldExempt, _) = row
        let outcome = try await run { client, logger -> Int in
            try await client.withTransaction(logger: logger) { db -> Int in
                if let kept {
                    try await db.query(
                        "SELECT pg_advisory_xact_lock(hashtextextended(\("accounts/\(tenant)"), 0))", logger: logger)
                    if leavesRole {
                        var others = 0
                        for try await count in try await db.query(
                            """
                            SELECT COUNT(*) FROM accounts WHERE tenant = \(tenant) AND role = \(kept.rawValue)
                            AND status = 'active' AND username != \(username)
                            """, logger: logger
                        ).decode(Int64.self) {
                            others = Int(count)
                        }
                        if others == 0 { return -1 }
                    }
                }
                var updated = 0
                for try await _ in try await db.query(
                    """
                    UPDATE accounts SET role = \(role), status = \(status), password_hash = \(hash),
                    totp_secret = \(sealed), last_totp_step = \(step), failed_logins = \(failures),
                    locked_until = \(locked), totp_exempt = \(exempt)
                    WHERE tenant = \(tenant) AND username = \(username) AND role = \(oldRole) AND status = \(oldStatus)
                    AND password_hash = \(oldHash) AND totp_secret IS NOT DISTINCT FROM \(oldSecret)
                    AND last_totp_step IS NOT DISTINCT FROM \(oldStep) AND failed_logins = \(oldFailures)
                    AND locked_until IS NOT DISTINCT FROM \(oldLocked) AND totp_exempt = \(oldExempt)
                    RETURNING 1
                    """, logger: logger
                ).decode(Int32.self) {
                    updated += 1
                }
                return updated
            }
        }
        if outcome < 0 {
            throw ArchiveError(.conflict, "\(username) is the last active \(kept?.rawValue ?? "") of tenant \(tenant)")
        }
        return outcome == 1
    }

    // MARK: care teams

    public func careTeam(tenant: String, patient: PatientKey) async throws(ArchiveError) -> [String] {
        let key = patient.hex
        return try await run { client, logger in
            var members: [String] = []
            for try await name in try await client.query(
                """
                SELECT username FROM care_team_members WHERE tenant = \(tenant) AND patient_key = \(key)
                ORDER BY username
                """, logger: logger
            ).decode(String.self) {
                members.append(name)
            }
            return members
        }
    }

    /// The usernames of `names` that are not accounts of `tenant`.
    private static func missing(_ db: PostgresConnection, _ logger: Logger, tenant: String, _ names: [String])
        async throws -> [String]
    {
        var found: Set<String> = []
        for try await name in try await db.query(
            "SELECT username FROM accounts WHERE tenant = \(tenant) AND username = ANY(\(names))", logger: logger
        ).decode(String.self) {
            found.insert(name)
        }
        return names.filter { !found.contains($0) }
    }

    public func setCareTeam(tenant: String, patient: PatientKey, members: [String]) async throws(ArchiveError) {
        let (key, names) = (patient.hex, Array(Set(members)))
        let missing = try await run { client, logger -> String? in
            try await client.withTransaction(logger: logger) { db -> String? in
                if let absent = try await Self.missing(db, logger, tenant: tenant, names).first { return absent }
                try await db.query(
                    "DELETE FROM care_team_members WHERE tenant = \(tenant) AND patient_key = \(key)", logger: logger)
                if !names.isEmpty {
                    try await db.query(
                        """
                        INSERT INTO care_team_members (tenant, patient_key, username)
                        SELECT \(tenant), \(key), unnest(\(names)::text[])
                        """, logger: logger)
                }
                return nil
            }
        }
        if let missing { throw ArchiveError(.notFound, "no account \(missing) in this tenant") }
    }

    public func addToCareTeam(tenant: String, patient: PatientKey, username: String) async throws(ArchiveError) {
        let key = patient.hex
        let added = try await run { client, logger -> Bool in
            var added = false
            // Only an account of the tenant can be added (the foreign key would refuse it too, less clearly).
            for try await _ in try await client.query(
                """
                INSERT INTO care_team_members (tenant, patient_key, username)
                SELECT tenant, \(key), username FROM accounts WHERE tenant = \(tenant) AND username = \(username)
                ON CONFLICT DO NOTHING RETURNING 1
                """, logger: logger
            ).decode(Int32.self) {
                added = true
            }
            if added { return true }
            for try await _ in try await client.query(
                "SELECT 1 FROM accounts WHERE tenant = \(tenant) AND username = \(username)", logger: logger
            ).decode(Int32.self) {
                return true
            }
            return false
        }
        if !added { throw ArchiveError(.notFound, "no account \(username) in this tenant") }
    }

    public func isInCareTeam(tenant: String, patient: PatientKey, username: String) async throws(ArchiveError)
        -> Bool
    {
        let key = patient.hex
        return try await run { client, logger in
            for try await _ in try await client.query(
                """
                SELECT 1 FROM care_team_members WHERE tenant = \(tenant) AND patient_key = \(key)
                AND username = \(username)
                """, logger: logger
            ).decode(Int32.self) {
                return true
            }
            return false
        }
    }

    public func careTeamPatients(tenant: String, username: String) async throws(ArchiveError) -> Set<PatientKey> {
        try await run { client, logger in
            var keys: Set<PatientKey> = []
            for try await hex in try await client.query(
                "SELECT patient_key FROM care_team_members WHERE tenant = \(tenant) AND username = \(username)",
                logger: logger
            ).decode(String.self) {
                if let key = PatientKey(hex: hex) { keys.insert(key) }
            }
            return keys
        }
    }

    // MARK: break-the-glass

    public func addGrant(_ grant: BreakGlassGrant) async throws(ArchiveError) {
        let reason = try sealing.seal(Data(grant.reason.utf8), context: AccountSealing.grantContext(grant.id))
        let (start, end) = (grant.start.timeIntervalSince1970, grant.end.timeIntervalSince1970)
        try await run { client, logger in
            try await client.query(
                """
                INSERT INTO break_glass_grants (tenant, id, username, patient_key, reason, start_time, end_time)
                VALUES (\(grant.tenant), \(grant.id), \(grant.username), \(grant.patient.hex), \(reason), \(start),
                \(end))
                """, logger: logger)
        }
    }

    public func grants(tenant: String, activeAt: Date?) async throws(ArchiveError) -> [BreakGlassGrant] {
        let at = activeAt?.timeIntervalSince1970
        let rows = try await run { client, logger -> [(String, String, String, Data, Double, Double)] in
            var rows: [(String, String, String, Data, Double, Double)] = []
            for try await row in try await client.query(
                """
                SELECT id, username, patient_key, reason, start_time, end_time FROM break_glass_grants
                WHERE tenant = \(tenant) AND (\(at)::double precision IS NULL
                    OR (start_time <= \(at) AND end_time > \(at)))
                ORDER BY start_time DESC
                """, logger: logger
            ).decode((String, String, String, Data, Double, Double).self) {
                rows.append(row)
            }
            return rows
        }
        var grants: [BreakGlassGrant] = []
        for (id, username, hex, sealed, start, end) in rows {
            guard let patient = PatientKey(hex: hex) else {
                throw ArchiveError(.integrity, "a break-the-glass grant holds a malformed patient key")
            }
            let reason = try sealing.open(sealed, context: AccountSealing.grantContext(id))
            grants.append(
                BreakGlassGrant(
                    id: id, tenant: tenant, username: username, patient: patient,
                    reason: String(decoding: reason, as: UTF8.self), start: Date(timeIntervalSince1970: start),
                    end: Date(timeIntervalSince1970: end)))
        }
        return grants
    }

    public func hasActiveGrant(tenant: String, username: String, patient: PatientKey, at date: Date)
        async throws(ArchiveError) -> Bool
    {
        let (key, at) = (patient.hex, date.timeIntervalSince1970)
        return try await run { client, logger in
            for try await _ in try await client.query(
                """
                SELECT 1 FROM break_glass_grants WHERE tenant = \(tenant) AND username = \(username)
                AND patient_key = \(key) AND start_time <= \(at) AND end_time > \(at) LIMIT 1
                """, logger: logger
            ).decode(Int32.self) {
                return true
            }
            return false
        }
    }

    // MARK: sessions and revocation

    public func startSession(_ session: Session) async throws(ArchiveError) {
        let (issued, expires, lastUse) = (
            session.issued.timeIntervalSince1970, session.expires.timeIntervalSince1970,
            session.lastUse.timeIntervalSince1970
        )
        try await run { client, logger in
            try await client.query(
                """
                INSERT INTO sessions (jti, tenant, username, issued, expires, last_use)
                VALUES (\(session.tokenID), \(session.tenant), \(session.username), \(issued), \(expires), \(lastUse))
                """, logger: logger)
        }
    }

    public func useSession(tokenID: String, at now: Date, idleTimeout: TimeInterval) async throws(ArchiveError)
        -> Session.Use
    {
        let time = now.timeIntervalSince1970
        let resolution = SQLiteAccountStore.lastUseResolution
        return try await run { client, logger -> Session.Use in
            // One round trip for the common case: not revoked, used within the last `lastUseResolution` seconds.
            var found: (Bool, Double?, Double?)?
            for try await row in try await client.query(
                """
                SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = \(tokenID)),
                (SELECT last_use FROM sessions WHERE jti = \(tokenID)),
                (SELECT expires FROM sessions WHERE jti = \(tokenID))
                """, logger: logger
            ).decode((Bool, Double?, Double?).self) {
                found = row
            }
            guard let (revoked, lastUse, _) = found else { return .unknown }
            if revoked { return .revoked }
            guard let lastUse else { return .unknown }
            let idle = time - lastUse
            if idle >= 0 && idle < resolution && idle <= idleTimeout { return .active }
            return try await client.withTransaction(logger: logger) { db -> Session.Use in
                var row: (Double, Double)?
                for try await values in try await db.query(
                    "SELECT expires, last_use FROM sessions WHERE jti = \(tokenID) FOR UPDATE", logger: logger
                ).decode((Double, Double).self) {
                    row = values
                }
                guard let (expires, lastUse) = row else {
                    // Ended meanwhile (revoked, or idle by another replica's check).
                    return .revoked
                }
                guard time - lastUse <= idleTimeout else {
                    try await db.query("DELETE FROM sessions WHERE jti = \(tokenID)", logger: logger)
                    try await db.query(
                        """
                        INSERT INTO revoked_tokens (jti, expires) VALUES (\(tokenID), \(expires))
                        ON CONFLICT DO NOTHING
                        """, logger: logger)
                    return .idle
                }
                // A clock that went back never moves the last use back.
                try await db.query(
                    "UPDATE sessions SET last_use = GREATEST(last_use, \(time)) WHERE jti = \(tokenID)",
                    logger: logger)
                return .active
            }
        }
    }

    public func revokeToken(_ tokenID: String, expires: Date) async throws(ArchiveError) {
        let until = expires.timeIntervalSince1970
        try await run { client, logger in
            try await client.withTransaction(logger: logger) { db in
                try await db.query(
                    "INSERT INTO revoked_tokens (jti, expires) VALUES (\(tokenID), \(until)) ON CONFLICT DO NOTHING",
                    logger: logger)
                try await db.query("DELETE FROM sessions WHERE jti = \(tokenID)", logger: logger)
            }
        }
    }

    @discardableResult
    public func revokeSessions(tenant: String, username: String) async throws(ArchiveError) -> Int {
        try await run { client, logger in
            try await client.withTransaction(logger: logger) { db -> Int in
                try await db.query(
                    """
                    INSERT INTO revoked_tokens (jti, expires)
                    SELECT jti, expires FROM sessions WHERE tenant = \(tenant) AND username = \(username)
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
                var ended = 0
                for try await _ in try await db.query(
                    "DELETE FROM sessions WHERE tenant = \(tenant) AND username = \(username) RETURNING 1",
                    logger: logger
                ).decode(Int32.self) {
                    ended += 1
                }
                return ended
            }
        }
    }

    public func isRevoked(_ tokenID: String) async throws(ArchiveError) -> Bool {
        try await run { client, logger in
            for try await _ in try await client.query(
                "SELECT 1 FROM revoked_tokens WHERE jti = \(tokenID)", logger: logger
            ).decode(Int32.self) {
                return true
            }
            return false
        }
    }

    public func purge(expiredBefore date: Date) async throws(ArchiveError) {
        let before = date.timeIntervalSince1970
        try await run { client, logger in
            try await client.query("DELETE FROM sessions WHERE expires < \(before)", logger: logger)
            try await client.query("DELETE FROM revoked_tokens WHERE expires < \(before)", logger: logger)
        }
    }
}
