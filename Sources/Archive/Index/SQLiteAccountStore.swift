import Foundation
import GRDB

/// The embedded `AccountStore`: tables of its own in the index's SQLite file (`DATA/index.sqlite`), through its own
/// GRDB pool, created by named migrations. WAL and a busy timeout let the `facet users` command and a running server
/// use the file at the same time.
///
/// TOTP secrets and break-the-glass reasons are AES-256-GCM sealed under a key derived from the master key, bound to
/// their row (tenant and username, or grant id) as associated data. Patients appear only as `PatientKey`s.
public final class SQLiteAccountStore: AccountStore, @unchecked Sendable {
    // GRDB's pool is thread-safe.
    private let pool: DatabasePool
    private let sealing: AccountSealing

    public init(path: URL, keys: KeyHierarchy) throws(ArchiveError) {
        sealing = AccountSealing(keys: keys)
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            pool = try DatabasePool(path: path.path, configuration: configuration)
            do {
                try Self.migrator.migrate(pool)
            } catch {
                // Another process (a server and `facet users`) may have applied the same migration meanwhile.
                try Self.migrator.migrate(pool)
            }
        } catch {
            throw ArchiveError(.io, "the account tables cannot be opened")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("identity v1: accounts, care teams, break-the-glass grants, sessions") { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS accounts (
                        tenant TEXT NOT NULL,
                        username TEXT NOT NULL,
                        role TEXT NOT NULL,
                        status TEXT NOT NULL,
                        password_hash TEXT NOT NULL,
                        totp_secret BLOB,
                        last_totp_step INTEGER,
                        failed_logins TEXT NOT NULL DEFAULT '',
                        locked_until REAL,
                        client_id TEXT UNIQUE,
                        totp_exempt INTEGER NOT NULL DEFAULT 0,
                        created REAL NOT NULL,
                        PRIMARY KEY (tenant, username));
                    CREATE TABLE IF NOT EXISTS care_team_members (
                        tenant TEXT NOT NULL,
                        patient_key TEXT NOT NULL,
                        username TEXT NOT NULL,
                        PRIMARY KEY (tenant, patient_key, username),
                        FOREIGN KEY (tenant, username) REFERENCES accounts(tenant, username));
                    CREATE INDEX IF NOT EXISTS care_team_by_member ON care_team_members(tenant, username);
                    CREATE TABLE IF NOT EXISTS break_glass_grants (
                        id TEXT PRIMARY KEY NOT NULL,
                        tenant TEXT NOT NULL,
                        username TEXT NOT NULL,
                        patient_key TEXT NOT NULL,
                        reason BLOB NOT NULL,
                        start REAL NOT NULL,
                        end REAL NOT NULL);
                    CREATE INDEX IF NOT EXISTS break_glass_by_member
                        ON break_glass_grants(tenant, username, patient_key);
                    CREATE TABLE IF NOT EXISTS sessions (
                        jti TEXT PRIMARY KEY NOT NULL,
                        tenant TEXT NOT NULL,
                        username TEXT NOT NULL,
                        issued REAL NOT NULL,
                        expires REAL NOT NULL,
                        last_use REAL NOT NULL);
                    CREATE INDEX IF NOT EXISTS sessions_by_account ON sessions(tenant, username);
                    CREATE TABLE IF NOT EXISTS revoked_tokens (
                        jti TEXT PRIMARY KEY NOT NULL,
                        expires REAL NOT NULL);
                    """)
        }
        return migrator
    }

    /// Runs one database call on the storage pool (never on a cooperative thread), mapping every failure to an
    /// `ArchiveError` (an `ArchiveError` thrown inside keeps its code).
    private func access<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws(ArchiveError) -> T {
        try await BlockingPool.storage.runTyped { () throws(ArchiveError) -> T in
            do {
                return try body()
            } catch let error as ArchiveError {
                throw error
            } catch {
                throw ArchiveError(.io, "the account tables cannot be read or written")
            }
        }
    }

    // MARK: accounts

    private func decodeAccount(_ row: Row) throws -> Account {
        let tenant: String = row["tenant"]
        let username: String = row["username"]
        guard let role = Role(rawValue: row["role"]), let status = Account.Status(rawValue: row["status"]) else {
            throw ArchiveError(.integrity, "an account row holds an unknown role or status")
        }
        var secret: Data?
        if let sealed: Data = row["totp_secret"] {
            secret = try sealing.open(sealed, context: AccountSealing.totpContext(tenant, username))
        }
        let failures: String = row["failed_logins"]
        let lockedUntil: Double? = row["locked_until"]
        return Account(
            tenant: tenant, username: username, role: role, status: status, passwordHash: row["password_hash"],
            totpSecret: secret, lastTOTPStep: row["last_totp_step"],
            failedLogins: AccountSealing.decodeFailures(failures),
            lockedUntil: lockedUntil.map { Date(timeIntervalSince1970: $0) }, clientID: row["client_id"],
            totpExempt: row["totp_exempt"], created: Date(timeIntervalSince1970: row["created"]))
    }

    private func arguments(_ account: Account) throws -> StatementArguments {
        let sealed = try account.totpSecret.map {
            try sealing.seal($0, context: AccountSealing.totpContext(account.tenant, account.username))
        }
        return [
            "tenant": account.tenant, "username": account.username, "role": account.role.rawValue,
            "status": account.status.rawValue, "password_hash": account.passwordHash, "totp_secret": sealed,
            "last_totp_step": account.lastTOTPStep,
            "failed_logins": AccountSealing.encodeFailures(account.failedLogins),
            "locked_until": account.lockedUntil?.timeIntervalSince1970, "client_id": account.clientID,
            "totp_exempt": account.totpExempt, "created": account.created.timeIntervalSince1970,
        ]
    }

    public func createAccount(_ account: Account) async throws(ArchiveError) {
        guard Account.isValidTenant(account.tenant), Account.isValidUsername(account.username) else {
            throw ArchiveError(.invalidInput, "tenant or username is not acceptable")
        }
        try await access { [self] in
            try pool.write { db in
                if try Row.fetchOne(
                    db, sql: "SELECT 1 FROM accounts WHERE tenant = ? AND username = ?",
                    arguments: [account.tenant, account.username]) != nil
                {
                    throw ArchiveError(.conflict, "the username \(account.username) exists in this tenant")
                }
                if let clientID = account.clientID,
                    try Row.fetchOne(db, sql: "SELECT 1 FROM accounts WHERE client_id = ?", arguments: [clientID])
                        != nil
                {
                    throw ArchiveError(.conflict, "the client id exists")
                }
                try db.execute(
                    sql: """
                        INSERT INTO accounts (tenant, username, role, status, password_hash, totp_secret, last_totp_step,
                        failed_logins, locked_until, client_id, totp_exempt, created) VALUES (:tenant, :username, :role,
                        :status, :password_hash, :totp_secret, :last_totp_step, :failed_logins, :locked_until, :client_id,
                        :totp_exempt, :created)
                        """, arguments: try arguments(account))
            }
        }
    }

    public func account(tenant: String, username: String) async throws(ArchiveError) -> Account? {
        try await access { [self] in
            try pool.read { db in
                try Row.fetchOne(
                    db, sql: "SELECT * FROM accounts WHERE tenant = ? AND username = ?", arguments: [tenant, username]
                ).map(decodeAccount)
            }
        }
    }

    public func accountStatus(tenant: String, username: String) async throws(ArchiveError) -> Account.Standing? {
        try await access { [self] in
            try pool.read { db in
                // A cached statement: this runs for every request.
                try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT status, role FROM accounts WHERE tenant = ? AND username = ?"),
                    arguments: [tenant, username]
                ).map { row in
                    guard let status = Account.Status(rawValue: row["status"]), let role = Role(rawValue: row["role"])
                    else { throw ArchiveError(.integrity, "an account row holds an unknown role or status") }
                    return Account.Standing(status: status, role: role)
                }
            }
        }
    }

    public func account(clientID: String) async throws(ArchiveError) -> Account? {
        try await access { [self] in
            try pool.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE client_id = ?", arguments: [clientID]).map(
                    decodeAccount)
            }
        }
    }

    public func accounts(tenant: String?) async throws(ArchiveError) -> [Account] {
        try await access { [self] in
            try pool.read { db in
                if let tenant {
                    return try Row.fetchAll(
                        db, sql: "SELECT * FROM accounts WHERE tenant = ? ORDER BY username", arguments: [tenant]
                    ).map(decodeAccount)
                }
                return try Row.fetchAll(db, sql: "SELECT * FROM accounts ORDER BY tenant, username").map(decodeAccount)
            }
        }
    }

    public func replaceAccount(_ before: Account, with after: Account, keepingActive kept: Role?)
        async throws(ArchiveError) -> Bool
    {
        try await access { [self] in
            try pool.write { db in
                guard
                    let row = try Row.fetchOne(
                        db, sql: "SELECT * FROM accounts WHERE tenant = ? AND username = ?",
                        arguments: [before.tenant, before.username])
                else { throw ArchiveError(.notFound, "no such account") }
                guard try decodeAccount(row) == before else { return false }
                if let kept, before.role == kept, before.status == .active,
                    after.role != kept || after.status != .active,
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT COUNT(*) FROM accounts WHERE tenant = ? AND role = ? AND status = ? AND username != ?
                            """,
                        arguments: [before.tenant, kept.rawValue, Account.Status.active.rawValue, before.username]
                    ) == 0
                {
                    throw ArchiveError(
                        .conflict, "\(before.username) is the last active \(kept) of tenant \(before.tenant)")
                }
                var written = after
                written.tenant = before.tenant
                written.username = before.username
                try db.execute(
                    sql: """
                        UPDATE accounts SET role = :role, status = :status, password_hash = :password_hash,
                        totp_secret = :totp_secret, last_totp_step = :last_totp_step, failed_logins = :failed_logins,
                        locked_until = :locked_until, totp_exempt = :totp_exempt
                        WHERE tenant = :tenant AND username = :username
                        """, arguments: try arguments(written))
                return true
            }
        }
    }

    // MARK: care teams

    public func careTeam(tenant: String, patient: PatientKey) async throws(ArchiveError) -> [String] {
        try await access { [self] in
            try pool.read { db in
                try String.fetchAll(
                    db,
                    sql:
                        "SELECT username FROM care_team_members WHERE tenant = ? AND patient_key = ? ORDER BY username",
                    arguments: [tenant, patient.hex])
            }
        }
    }

    private static func requireAccounts(_ db: Database, tenant: String, _ usernames: [String]) throws {
        for username in usernames {
            guard
                try Row.fetchOne(
                    db, sql: "SELECT 1 FROM accounts WHERE tenant = ? AND username = ?", arguments: [tenant, username])
                    != nil
            else { throw ArchiveError(.notFound, "no account \(username) in this tenant") }
        }
    }

    public func setCareTeam(tenant: String, patient: PatientKey, members: [String]) async throws(ArchiveError) {
        try await access { [self] in
            try pool.write { db in
                try Self.requireAccounts(db, tenant: tenant, members)
                try db.execute(
                    sql: "DELETE FROM care_team_members WHERE tenant = ? AND patient_key = ?",
                    arguments: [tenant, patient.hex])
                for member in Set(members) {
                    try db.execute(
                        sql: "INSERT INTO care_team_members (tenant, patient_key, username) VALUES (?, ?, ?)",
                        arguments: [tenant, patient.hex, member])
                }
            }
        }
    }

    public func addToCareTeam(tenant: String, patient: PatientKey, username: String) async throws(ArchiveError) {
        try await access { [self] in
            try pool.write { db in
                try Self.requireAccounts(db, tenant: tenant, [username])
                try db.execute(
                    sql: "INSERT OR IGNORE INTO care_team_members (tenant, patient_key, username) VALUES (?, ?, ?)",
                    arguments: [tenant, patient.hex, username])
            }
        }
    }

    public func isInCareTeam(tenant: String, patient: PatientKey, username: String) async throws(ArchiveError) -> Bool {
        try await access { [self] in
            try pool.read { db in
                try Row.fetchOne(
                    db, sql: "SELECT 1 FROM care_team_members WHERE tenant = ? AND patient_key = ? AND username = ?",
                    arguments: [tenant, patient.hex, username]) != nil
            }
        }
    }

    public func careTeamPatients(tenant: String, username: String) async throws(ArchiveError) -> Set<PatientKey> {
        try await access { [self] in
            try pool.read { db in
                Set(
                    try String.fetchAll(
                        db, sql: "SELECT patient_key FROM care_team_members WHERE tenant = ? AND username = ?",
                        arguments: [tenant, username]
                    ).compactMap { PatientKey(hex: $0) })
            }
        }
    }

    // MARK: break-the-glass

    public func addGrant(_ grant: BreakGlassGrant) async throws(ArchiveError) {
        try await access { [self] in
            let reason = try sealing.seal(Data(grant.reason.utf8), context: AccountSealing.grantContext(grant.id))
            try pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO break_glass_grants (id, tenant, username, patient_key, reason, start, end)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        grant.id, grant.tenant, grant.username, grant.patient.hex, reason,
                        grant.start.timeIntervalSince1970, grant.end.timeIntervalSince1970,
                    ])
            }
        }
    }

    public func grants(tenant: String, activeAt: Date?) async throws(ArchiveError) -> [BreakGlassGrant] {
        try await access { [self] in
            try pool.read { db in
                var sql = "SELECT * FROM break_glass_grants WHERE tenant = ?"
                var arguments: StatementArguments = [tenant]
                if let activeAt {
                    sql += " AND start <= ? AND end > ?"
                    arguments += [activeAt.timeIntervalSince1970, activeAt.timeIntervalSince1970]
                }
                return try Row.fetchAll(db, sql: sql + " ORDER BY start DESC", arguments: arguments).map { row in
                    let id: String = row["id"]
                    guard let patient = PatientKey(hex: row["patient_key"]) else {
                        throw ArchiveError(.integrity, "a break-the-glass grant holds a malformed patient key")
                    }
                    let reason = try sealing.open(row["reason"], context: AccountSealing.grantContext(id))
                    return BreakGlassGrant(
                        id: id, tenant: row["tenant"], username: row["username"], patient: patient,
                        reason: String(decoding: reason, as: UTF8.self),
                        start: Date(timeIntervalSince1970: row["start"]), end: Date(timeIntervalSince1970: row["end"]))
                }
            }
        }
    }

    public func hasActiveGrant(tenant: String, username: String, patient: PatientKey, at date: Date)
        async throws(ArchiveError) -> Bool
    {
        try await access { [self] in
            try pool.read { db in
                try Row.fetchOne(
                    db,
                    sql: """
                        SELECT 1 FROM break_glass_grants WHERE tenant = ? AND username = ? AND patient_key = ?
                        AND start <= ? AND end > ?
                        """,
                    arguments: [
                        tenant, username, patient.hex, date.timeIntervalSince1970, date.timeIntervalSince1970,
                    ]) != nil
            }
        }
    }

    // MARK: sessions

    public func startSession(_ session: Session) async throws(ArchiveError) {
        try await access { [self] in
            try pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO sessions (jti, tenant, username, issued, expires, last_use) VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        session.tokenID, session.tenant, session.username, session.issued.timeIntervalSince1970,
                        session.expires.timeIntervalSince1970, session.lastUse.timeIntervalSince1970,
                    ])
            }
        }
    }

    /// How stale a session's recorded last use may get before a request writes it again (seconds).
    public static let lastUseResolution: TimeInterval = 30

    public func useSession(tokenID: String, at now: Date, idleTimeout: TimeInterval) async throws(ArchiveError)
        -> Session.Use
    {
        try await access { [self] in
            // Most requests of a session come within seconds of each other: a read answers them, and the last use
            // is written at most every `lastUseResolution` (so a session may outlive its idle timeout by that much).
            // Cached statements: this runs for every request (preparing them cost more than running them).
            let recent = try pool.read { db -> Bool in
                guard
                    try Row.fetchOne(
                        db.cachedStatement(sql: "SELECT 1 FROM revoked_tokens WHERE jti = ?"), arguments: [tokenID])
                        == nil,
                    let row = try Row.fetchOne(
                        db.cachedStatement(sql: "SELECT last_use FROM sessions WHERE jti = ?"), arguments: [tokenID])
                else { return false }
                let lastUse: Double = row["last_use"]
                let idle = now.timeIntervalSince1970 - lastUse
                return idle >= 0 && idle < Self.lastUseResolution && idle <= idleTimeout
            }
            if recent { return .active }
            return try pool.write { db -> Session.Use in
                if try Row.fetchOne(db, sql: "SELECT 1 FROM revoked_tokens WHERE jti = ?", arguments: [tokenID]) != nil
                {
                    return .revoked
                }
                guard
                    let row = try Row.fetchOne(
                        db, sql: "SELECT expires, last_use FROM sessions WHERE jti = ?", arguments: [tokenID])
                else { return .unknown }
                let lastUse: Double = row["last_use"]
                let expires: Double = row["expires"]
                guard now.timeIntervalSince1970 - lastUse <= idleTimeout else {
                    try db.execute(sql: "DELETE FROM sessions WHERE jti = ?", arguments: [tokenID])
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO revoked_tokens (jti, expires) VALUES (?, ?)",
                        arguments: [tokenID, expires])
                    return .idle
                }
                // A clock that went back never moves the last use back.
                try db.execute(
                    sql: "UPDATE sessions SET last_use = max(last_use, ?) WHERE jti = ?",
                    arguments: [now.timeIntervalSince1970, tokenID])
                return .active
            }
        }
    }

    public func revokeToken(_ tokenID: String, expires: Date) async throws(ArchiveError) {
        try await access { [self] in
            try pool.write { db in
                try db.execute(
                    sql: "INSERT OR IGNORE INTO revoked_tokens (jti, expires) VALUES (?, ?)",
                    arguments: [tokenID, expires.timeIntervalSince1970])
                try db.execute(sql: "DELETE FROM sessions WHERE jti = ?", arguments: [tokenID])
            }
        }
    }

    @discardableResult
    public func revokeSessions(tenant: String, username: String) async throws(ArchiveError) -> Int {
        try await access { [self] in
            try pool.write { db in
                try db.execute(
                    sql: """
                        INSERT OR IGNORE INTO revoked_tokens (jti, expires)
                        SELECT jti, expires FROM sessions WHERE tenant = ? AND username = ?
                        """, arguments: [tenant, username])
                try db.execute(
                    sql: "DELETE FROM sessions WHERE tenant = ? AND username = ?", arguments: [tenant, username])
                return db.changesCount
            }
        }
    }

    public func isRevoked(_ tokenID: String) async throws(ArchiveError) -> Bool {
        try await access { [self] in
            try pool.read { db in
                try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM revoked_tokens WHERE jti = ?"), arguments: [tokenID]) != nil
            }
        }
    }

    public func purge(expiredBefore date: Date) async throws(ArchiveError) {
        try await access { [self] in
            try pool.write { db in
                try db.execute(
                    sql: "DELETE FROM sessions WHERE expires < ?", arguments: [date.timeIntervalSince1970])
                try db.execute(
                    sql: "DELETE FROM revoked_tokens WHERE expires < ?", arguments: [date.timeIntervalSince1970])
            }
        }
    }
}
