import Foundation
import GRDB
import Testing

@testable import Archive

/// An account store in a fresh data folder (SQLite) or a fresh database of the test server (PostgreSQL), and the
/// identity services over it. Password hashing uses cheaper scrypt parameters than production (the parameters
/// themselves are tested in IdentityPasswordTests).
struct IdentityFixture {
    let kind: IndexKind
    let folder: URL
    let keys: KeyHierarchy
    let store: any AccountStore
    /// The fixture's own database (PostgreSQL only).
    let database: PostgresDatabase?
    let hasher = PasswordHasher(parameters: PasswordHasher.Parameters(logN: 10, r: 8, p: 1))
    let signingKey: TokenSigningKey
    var tokenSettings = TokenService.Settings()
    var loginSettings = LoginService.Settings()

    /// 2026-01-01T00:00:00Z: every test's clock starts here.
    static let start = Date(timeIntervalSince1970: 1_767_225_600)

    init(_ kind: IndexKind = .sqlite) async throws {
        self.kind = kind
        folder = try temporaryFolder()
        keys = try KeyHierarchy.open(keyDirectory: folder.appendingPathComponent("keys"), environment: [:]).keys
        switch kind {
        case .sqlite:
            database = nil
            store = try SQLiteAccountStore(path: folder.appendingPathComponent("index.sqlite"), keys: keys)
            signingKey = try keys.tokenSigningKey(keyDirectory: folder.appendingPathComponent("keys"))
        case .postgres:
            let database = try await IndexKind.freshDatabase()
            let store = PostgresAccountStore(database: database, keys: keys)
            self.database = database
            self.store = store
            signingKey = try await store.tokenSigningKey(
                keys: keys, keyDirectory: folder.appendingPathComponent("keys"))
        }
    }

    /// Another store over the same accounts: what a restart, another replica or `facet users` beside the server
    /// sees (another SQLite pool on the file; another PostgreSQL pool on the database).
    func reopen(keys other: KeyHierarchy? = nil) async throws -> any AccountStore {
        switch kind {
        case .sqlite:
            return try SQLiteAccountStore(path: folder.appendingPathComponent("index.sqlite"), keys: other ?? keys)
        case .postgres:
            let location = try #require(database).location
            return PostgresAccountStore(
                database: try await PostgresDatabase.open(location, deadline: 300), keys: other ?? keys)
        }
    }

    /// Runs a statement on the store's tables directly (what someone with access to the database could do).
    func execute(_ sql: String) async throws {
        switch kind {
        case .sqlite:
            let pool = try DatabasePool(path: folder.appendingPathComponent("index.sqlite").path)
            try await pool.write { db in try db.execute(sql: sql) }
        case .postgres:
            try await #require(database).execute(unsafeSQL: sql)
        }
    }

    var tokens: TokenService { TokenService(signingKey: signingKey, store: store, settings: tokenSettings) }
    var login: LoginService { LoginService(tokens: tokens, hasher: hasher, settings: loginSettings) }
    var administration: AccountAdministration { AccountAdministration(store: store, keys: keys, hasher: hasher) }

    /// Adds a person with a known password; returns their TOTP secret.
    @discardableResult
    func person(_ username: String, _ role: Role, tenant: String = "default", password: String = "correct horse 1")
        async throws -> TOTP
    {
        let credentials = try await administration.add(
            tenant: tenant, username: username, role: role, password: password, now: Self.start)
        let uri = try #require(credentials.otpauthURI)
        let secret = try #require(URLComponents(string: uri)?.queryItems?.first { $0.name == "secret" }?.value)
        return TOTP(secret: try #require(Base32.decode(secret)))
    }

    /// Everything the store keeps at rest, as bytes to search: the SQLite file and its WAL, or a `pg_dump` of the
    /// fixture's database (whose `bytea` values are written in hex: search for `hex(_:)` of a secret too).
    func storedBytes() throws -> Data {
        switch kind {
        case .sqlite:
            var bytes = Data()
            for suffix in ["", "-wal"] {
                let url = folder.appendingPathComponent("index.sqlite" + suffix)
                if let data = FileManager.default.contents(atPath: url.path) { bytes.append(data) }
            }
            return bytes
        case .postgres:
            return try pgDump(try #require(database).location)
        }
    }
}

/// A `pg_dump --data-only` of one database of the test server.
func pgDump(_ location: PostgresDatabase.Location) throws -> Data {
    let environment = ProcessInfo.processInfo.environment
    let dump = Process()
    dump.executableURL = URL(fileURLWithPath: "\(try #require(environment["FACET_TEST_PG_BIN"]))/pg_dump")
    dump.arguments = [
        "-h", location.host, "-p", String(location.port), "-U", location.username, "--data-only", location.database,
    ]
    dump.environment = ["PGPASSWORD": location.password ?? ""]
    let output = Pipe()
    dump.standardOutput = output
    try dump.run()
    let bytes = output.fileHandleForReading.readDataToEndOfFile()
    dump.waitUntilExit()
    #expect(dump.terminationStatus == 0)
    return bytes
}

/// Expects a token check to refuse with `.invalidToken` and exactly `reason`.
func expectInvalidToken(
    _ reason: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ verify: () async throws(ArchiveError) -> Principal
) async {
    do {
        let principal = try await verify()
        Issue.record("accepted as \(principal)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.code == .invalidToken, sourceLocation: sourceLocation)
        #expect(error.message == reason, sourceLocation: sourceLocation)
    }
}
