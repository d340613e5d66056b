import Foundation

/// Where accounts, care teams, break-the-glass grants and sessions are kept. Implementations seal secrets (TOTP
/// secrets, grant reasons) and never hold a Patient ID in the clear, only `PatientKey`s. Calls block: a server runs
/// them on its blocking pool.
public protocol AccountStore: Sendable {
    // MARK: accounts
    /// Adds an account; `.conflict` when its username exists in its tenant or its client id exists anywhere.
    func createAccount(_ account: Account) throws(ArchiveError)
    func account(tenant: String, username: String) throws(ArchiveError) -> Account?
    func account(clientID: String) throws(ArchiveError) -> Account?
    /// Whether an account exists and is active, without reading (or unsealing) the rest of it: the per-request
    /// check of an identity provider's users.
    func accountStatus(tenant: String, username: String) throws(ArchiveError) -> Account.Standing?
    /// Every account of `tenant`, or of every tenant when nil, ordered by tenant and username.
    func accounts(tenant: String?) throws(ArchiveError) -> [Account]
    /// Reads, changes and writes back one account in one transaction (so that concurrent logins cannot both use
    /// one TOTP code or lose a failure). Tenant, username, client id and creation date cannot change.
    /// `.notFound` when there is no such account. With `keepingActive`, a change that would leave the tenant without
    /// an active account of that role is refused (`.conflict`, nothing written), checked in the same transaction so
    /// that two administrators disabling each other at once cannot both succeed.
    func updateAccount<T>(
        tenant: String, username: String, keepingActive kept: Role?, _ change: (inout Account) throws(ArchiveError) -> T
    ) throws(ArchiveError) -> T

    // MARK: care teams
    func careTeam(tenant: String, patient: PatientKey) throws(ArchiveError) -> [String]
    /// Replaces a patient's care team; `.notFound` when a member is not an account of the tenant.
    func setCareTeam(tenant: String, patient: PatientKey, members: [String]) throws(ArchiveError)
    /// Adds one member (idempotent); `.notFound` when the username is not an account of the tenant.
    func addToCareTeam(tenant: String, patient: PatientKey, username: String) throws(ArchiveError)
    func isInCareTeam(tenant: String, patient: PatientKey, username: String) throws(ArchiveError) -> Bool
    /// The patients whose care team includes `username`: what a search filters by for an own-patients role.
    func careTeamPatients(tenant: String, username: String) throws(ArchiveError) -> Set<PatientKey>

    // MARK: break-the-glass
    func addGrant(_ grant: BreakGlassGrant) throws(ArchiveError)
    /// Grants of a tenant, newest first; with `activeAt`, only those active then.
    func grants(tenant: String, activeAt: Date?) throws(ArchiveError) -> [BreakGlassGrant]
    func hasActiveGrant(tenant: String, username: String, patient: PatientKey, at: Date) throws(ArchiveError) -> Bool

    // MARK: sessions and revocation
    func startSession(_ session: Session) throws(ArchiveError)
    /// Checks a token id against the revocation list and its session's idle timeout and, when it may be used,
    /// records `now` as its last use, in one transaction. An idle session is ended (its id revoked).
    func useSession(tokenID: String, at now: Date, idleTimeout: TimeInterval) throws(ArchiveError) -> Session.Use
    /// Revokes one token id until `expires` (after which its signature check refuses it anyway).
    func revokeToken(_ tokenID: String, expires: Date) throws(ArchiveError)
    /// Revokes every session of one account (disabled, password or role changed). Returns how many.
    @discardableResult
    func revokeSessions(tenant: String, username: String) throws(ArchiveError) -> Int
    func isRevoked(_ tokenID: String) throws(ArchiveError) -> Bool
    /// Forgets sessions and revocations of tokens that expired before `date`.
    func purge(expiredBefore date: Date) throws(ArchiveError)
}

extension AccountStore {
    /// `updateAccount` without a role to keep.
    public func updateAccount<T>(
        tenant: String, username: String, _ change: (inout Account) throws(ArchiveError) -> T
    ) throws(ArchiveError) -> T {
        try updateAccount(tenant: tenant, username: username, keepingActive: nil, change)
    }
}
