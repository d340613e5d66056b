import Foundation
import Testing

@testable import Archive

/// An account store in a fresh data folder, and the identity services over it. Password hashing uses cheaper scrypt
/// parameters than production (the parameters themselves are tested in IdentityPasswordTests).
struct IdentityFixture {
    let folder: URL
    let keys: KeyHierarchy
    let store: SQLiteAccountStore
    let hasher = PasswordHasher(parameters: PasswordHasher.Parameters(logN: 10, r: 8, p: 1))
    let signingKey: TokenSigningKey
    var tokenSettings = TokenService.Settings()
    var loginSettings = LoginService.Settings()

    /// 2026-01-01T00:00:00Z: every test's clock starts here.
    static let start = Date(timeIntervalSince1970: 1_767_225_600)

    init() throws {
        folder = try temporaryFolder()
        keys = try KeyHierarchy.open(keyDirectory: folder.appendingPathComponent("keys"), environment: [:]).keys
        store = try SQLiteAccountStore(path: folder.appendingPathComponent("index.sqlite"), keys: keys)
        signingKey = try keys.tokenSigningKey(keyDirectory: folder.appendingPathComponent("keys"))
    }

    var tokens: TokenService { TokenService(signingKey: signingKey, store: store, settings: tokenSettings) }
    var login: LoginService { LoginService(tokens: tokens, hasher: hasher, settings: loginSettings) }
    var administration: AccountAdministration { AccountAdministration(store: store, keys: keys, hasher: hasher) }

    /// Adds a person with a known password; returns their TOTP secret.
    @discardableResult
    func person(_ username: String, _ role: Role, tenant: String = "default", password: String = "correct horse 1")
        throws -> TOTP
    {
        let credentials = try administration.add(
            tenant: tenant, username: username, role: role, password: password, now: Self.start)
        let uri = try #require(credentials.otpauthURI)
        let secret = try #require(URLComponents(string: uri)?.queryItems?.first { $0.name == "secret" }?.value)
        return TOTP(secret: try #require(Base32.decode(secret)))
    }

    /// Every byte of the SQLite file and its WAL.
    func databaseBytes() throws -> Data {
        var bytes = Data()
        for suffix in ["", "-wal"] {
            let url = folder.appendingPathComponent("index.sqlite" + suffix)
            if let data = FileManager.default.contents(atPath: url.path) { bytes.append(data) }
        }
        return bytes
    }
}

/// Expects a token check to refuse with `.invalidToken` and exactly `reason`.
func expectInvalidToken(
    _ reason: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ verify: () throws(ArchiveError) -> Principal
) {
    do {
        let principal = try verify()
        Issue.record("accepted as \(principal)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.code == .invalidToken, sourceLocation: sourceLocation)
        #expect(error.message == reason, sourceLocation: sourceLocation)
    }
}
