import DICOMCore
import Foundation

/// Who is asking and whether they may, for the server: the account store, tokens, logins, the access policy
/// with care teams and grants, and account administration, opened over one data folder.
public struct IdentityServices: Sendable {
    public let store: any AccountStore
    public let tokens: TokenService
    public let login: LoginService
    public let access: PatientAccess
    public let administration: AccountAdministration
    public let keys: KeyHierarchy

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

    /// Which studies of the principal's own tenant's archive `principal` may see in a search: all, only its care
    /// team's and granted patients', or none (a role without search is refused before searching).
    public func visibility(for principal: Principal, now: Date = Date()) throws(ArchiveError)
        -> @Sendable (StudyRecord) -> Bool
    {
        switch AccessPolicy.viewScope(principal.role) {
        case .all:
            return { _ in true }
        case .none:
            return { _ in false }
        case .own:
            var allowed = try store.careTeamPatients(tenant: principal.tenant, username: principal.username)
            for grant in try store.grants(tenant: principal.tenant, activeAt: now)
            where grant.username == principal.username {
                allowed.insert(grant.patient)
            }
            let permitted = allowed
            let identity = self
            let tenant = principal.tenant
            return { study in identity.patient(of: study, tenant: tenant).map { permitted.contains($0) } ?? false }
        }
    }

    /// The patients `principal` sees only through an active break-the-glass grant (not through the care team): an
    /// answer naming one of them is emergency access. Empty for roles that see every patient.
    public func emergencyPatients(for principal: Principal, now: Date = Date()) throws(ArchiveError) -> Set<PatientKey>
    {
        guard AccessPolicy.viewScope(principal.role) == .own else { return [] }
        let team = try store.careTeamPatients(tenant: principal.tenant, username: principal.username)
        let granted = try store.grants(tenant: principal.tenant, activeAt: now).filter {
            $0.username == principal.username
        }.map(\.patient)
        return Set(granted).subtracting(team)
    }
}
