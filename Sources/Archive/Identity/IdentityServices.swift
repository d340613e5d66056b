import DICOMCore
import Foundation

/// Who is asking and whether they may, for the server: the account store, tokens (Facet's own, and those of the
/// clinic's identity provider when one is configured), logins, the access policy with care teams and grants, and
/// account administration, opened over one data folder.
public struct IdentityServices: Sendable {
    public let store: any AccountStore
    public let tokens: TokenService
    public let login: LoginService
    public let access: PatientAccess
    public let administration: AccountAdministration
    public let keys: KeyHierarchy
    /// Tokens of the clinic's own OpenID Connect identity provider, when one is configured.
    public var identityProvider: OIDCTokenVerifier?

    public init(
        store: any AccountStore, keys: KeyHierarchy, signingKey: TokenSigningKey,
        tokenSettings: TokenService.Settings = .init(), loginSettings: LoginService.Settings = .init()
    ) {
        self.store = store
        self.keys = keys
        tokens = TokenService(signingKey: signingKey, store: store, settings: tokenSettings)
        login = LoginService(tokens: tokens, settings: loginSettings)
        access = PatientAccess(store: store)
        administration = AccountAdministration(store: store, keys: keys)
    }

    /// Opens the accounts in `DATA/index.sqlite` and the token signing key in `DATA/keys`.
    public static func open(
        dataDirectory: URL, keys: KeyHierarchy, tokenSettings: TokenService.Settings = .init(),
        loginSettings: LoginService.Settings = .init()
    ) throws(ArchiveError) -> IdentityServices {
        let store = try SQLiteAccountStore(path: dataDirectory.appendingPathComponent("index.sqlite"), keys: keys)
        let signingKey = try keys.tokenSigningKey(keyDirectory: dataDirectory.appendingPathComponent("keys"))
        return IdentityServices(
            store: store, keys: keys, signingKey: signingKey, tokenSettings: tokenSettings,
            loginSettings: loginSettings)
    }

    /// Opens the accounts and the token signing key kept in PostgreSQL (shared by every replica of a server setup).
    public static func open(
        database: PostgresDatabase, dataDirectory: URL, keys: KeyHierarchy,
        tokenSettings: TokenService.Settings = .init(), loginSettings: LoginService.Settings = .init()
    ) async throws(ArchiveError) -> IdentityServices {
        let store = PostgresAccountStore(database: database, keys: keys)
        let signingKey = try await store.tokenSigningKey(
            keys: keys, keyDirectory: dataDirectory.appendingPathComponent("keys"))
        return IdentityServices(
            store: store, keys: keys, signingKey: signingKey, tokenSettings: tokenSettings,
            loginSettings: loginSettings)
    }

    /// The principal of a bearer token, checked by the verifier `verifier(for:)` chooses. Reads (and now and then writes) the account store.
    public func verify(_ token: String, now: Date = Date()) async throws(ArchiveError) -> Principal {
        switch try verifier(for: token) {
        case .facet: try await tokens.verify(token, now: now)
        case .identityProvider(let provider): try await provider.verify(token, now: now)
        }
    }

    /// Logout: ends a valid token's session, or revokes an identity provider token's `jti`.
    public func revoke(_ token: String, now: Date = Date()) async throws(ArchiveError) {
        switch try verifier(for: token) {
        case .facet: try await tokens.revoke(token, now: now)
        case .identityProvider(let provider): try await provider.revoke(token, now: now)
        }
    }

    enum Verifier {
        case facet
        case identityProvider(OIDCTokenVerifier)
    }

    /// Who checks a bearer token, by its `iss` read *before* the signature is checked: Facet's own issuer goes to
    /// `tokens`, the identity provider's to `identityProvider`, any other is refused. The choice trusts nothing: each
    /// verifier checks `iss` again after the signature. Without an identity provider every token is Facet's to check.
    func verifier(for token: String) throws(ArchiveError) -> Verifier {
        guard let provider = identityProvider else { return .facet }
        let issuer = JSONWebToken.unverifiedIssuer(token, maximumLength: OIDCTokenVerifier.maximumTokenLength)
        if issuer == tokens.settings.issuer { return .facet }
        if issuer == provider.settings.issuer { return .identityProvider(provider) }
        throw ArchiveError(.invalidToken, issuer == nil ? "malformed token" : "token issuer is not accepted")
    }

    /// The patient of a study of `tenant`'s archive as the policy names them (nil for a study without Patient ID).
    public func patient(of study: StudyRecord, tenant: String) -> PatientKey? {
        guard let id = study.attributes.string(.patientID) else { return nil }
        return PatientKey.make(
            tenant: tenant, patientID: id, issuer: study.attributes.string(Tag(0x0010, 0x0021)), keys: keys)
    }

    /// A patient of `tenant` named by Patient ID and Issuer (nil for an empty ID).
    public func patient(_ patientID: String, issuer: String?, tenant: String) -> PatientKey? {
        PatientKey.make(tenant: tenant, patientID: patientID, issuer: issuer, keys: keys)
    }

    /// What a search of the principal's own tenant's archive may answer with: which studies they may see (all, only
    /// their care team's and granted patients', or none — a role without search is refused before searching), and the
    /// patients they see only through an active break-the-glass grant (an answer naming one is emergency access).
    /// Care team and grants are read once.
    public struct SearchScope: Sendable {
        public let visible: @Sendable (StudyRecord) -> Bool
        public let emergency: Set<PatientKey>
    }

    public func searchScope(for principal: Principal, now: Date = Date()) async throws(ArchiveError) -> SearchScope {
        switch AccessPolicy.viewScope(principal.role) {
        case .all:
            return SearchScope(visible: { _ in true }, emergency: [])
        case .none:
            return SearchScope(visible: { _ in false }, emergency: [])
        case .own:
            let team = try await store.careTeamPatients(tenant: principal.tenant, username: principal.username)
            let granted = Set(
                try await store.grants(tenant: principal.tenant, activeAt: now).filter {
                    $0.username == principal.username
                }
                .map(\.patient))
            let permitted = team.union(granted)
            let identity = self
            let tenant = principal.tenant
            return SearchScope(
                visible: { study in identity.patient(of: study, tenant: tenant).map(permitted.contains) ?? false },
                emergency: granted.subtracting(team))
        }
    }

}
