import Foundation

/// Where accounts, care teams, break-the-glass grants and sessions are kept. Implementations seal secrets (TOTP
/// secrets, grant reasons) and never hold a Patient ID in the clear, only `PatientKey`s. Two implementations:
/// `SQLiteAccountStore` (the embedded index file) and `PostgresAccountStore` (shared by every replica); both pass
/// `AccountStoreContractTests`.
public protocol AccountStore: Sendable {
    // MARK: accounts
    /// Adds an account; `.conflict` when its username exists in its tenant or its client id exists anywhere.
    func createAccount(_ account: Account) async throws(ArchiveError)
    func account(tenant: String, username: String) async throws(ArchiveError) -> Account?
    func account(clientID: String) async throws(ArchiveError) -> Account?
    /// Whether an account exists and is active, without reading (or unsealing) the rest of it: the per-request
    /// check of an identity provider's users.
    func accountStatus(tenant: String, username: String) async throws(ArchiveError) -> Account.Standing?
    /// Every account of `tenant`, or of every tenant when nil, ordered by tenant and username.
    func accounts(tenant: String?) async throws(ArchiveError) -> [Account]
    /// Writes `after` over an account if it still reads as `before`, in one transaction, and says whether it did
    /// (false: someone changed it since `before` was read; nothing written). `.notFound` when there is no such
    /// account. With `keepingActive`, a change that would leave the tenant without an active account of that role is
    /// refused (`.conflict`, nothing written), checked in the same transaction so that two administrators disabling
    /// each other at once cannot both succeed. Tenant, username, client id and creation date are not written.
    func replaceAccount(_ before: Account, with after: Account, keepingActive kept: Role?)
        async throws(ArchiveError) -> Bool

    // MARK: care teams
    func careTeam(tenant: String, patient: PatientKey) async throws(ArchiveError) -> [String]
    /// Replaces a patient's care team; `.notFound` when a member is not an account of the tenant.
    func setCareTeam(tenant: String, patient: PatientKey, members: [String]) async throws(ArchiveError)
    /// Adds one member (idempotent); `.notFound` when the username is not an account of the tenant.
    func addToCareTeam(tenant: String, patient: PatientKey, username: String) async throws(ArchiveError)
    func isInCareTeam(tenant: String, patient: PatientKey, username: String) async throws(ArchiveError) -> Bool
    /// The patients whose care team includes `username`: what a search filters by for an own-patients role.
    func careTeamPatients(tenant: String, username: String) async throws(ArchiveError) -> Set<PatientKey>

    // MARK: break-the-glass
    func addGrant(_ grant: BreakGlassGrant) async throws(ArchiveError)
    /// Grants of a tenant, newest first; with `activeAt`, only those active then.
    func grants(tenant: String, activeAt: Date?) async throws(ArchiveError) -> [BreakGlassGrant]
    func hasActiveGrant(tenant: String, username: String, patient: PatientKey, at: Date) async throws(ArchiveError)
        -> Bool

    // MARK: sessions and revocation
    func startSession(_ session: Session) async throws(ArchiveError)
    /// Checks a token id against the revocation list and its session's idle timeout and, when it may be used,
    /// records `now` as its last use, in one transaction. An idle session is ended (its id revoked).
    func useSession(tokenID: String, at now: Date, idleTimeout: TimeInterval) async throws(ArchiveError) -> Session.Use
    /// Revokes one token id until `expires` (after which its signature check refuses it anyway).
    func revokeToken(_ tokenID: String, expires: Date) async throws(ArchiveError)
    /// Revokes every session of one account (disabled, password or role changed). Returns how many.
    @discardableResult
    func revokeSessions(tenant: String, username: String) async throws(ArchiveError) -> Int
    func isRevoked(_ tokenID: String) async throws(ArchiveError) -> Bool
    /// Forgets sessions and revocations of tokens that expired before `date`.
    func purge(expiredBefore date: Date) async throws(ArchiveError)
}

extension AccountStore {
    /// Reads, changes and writes back one account as one atomic step (so that concurrent logins cannot both use
    /// one TOTP code or lose a failure): the write happens only if nobody changed the account since it was read,
    /// else `change` runs again on the newer account. Tenant, username, client id and creation date cannot change.
    /// `.notFound` when there is no such account; `keepingActive` as in `replaceAccount`.
    public func updateAccount<T>(
        tenant: String, username: String, keepingActive kept: Role? = nil,
        _ change: (inout Account) throws(ArchiveError) -> T
    ) async throws(ArchiveError) -> T {
        for _ in 0..<16 {
            guard let before = try await account(tenant: tenant, username: username) else {
                throw ArchiveError(.notFound, "no such account")
            }
            var account = before
            let result = try change(&account)
            // The identity of an account is not for a change to touch.
            account.tenant = before.tenant
            account.username = before.username
            account.clientID = before.clientID
            account.created = before.created
            if account == before { return result }
            if try await replaceAccount(before, with: account, keepingActive: kept) { return result }
        }
        throw ArchiveError(.unavailable, "the account is being changed by others; try again")
    }
}
