import Foundation

/// Resolves how a principal stands to a patient (care team, break-the-glass) and asks the `AccessPolicy`; opens
/// break-the-glass grants. What a server middleware calls once it knows the patient a request touches.
public struct PatientAccess: Sendable {
    public let store: any AccountStore
    public let policy: AccessPolicy
    /// How long a break-the-glass grant opens a patient.
    public var breakGlassDuration: TimeInterval = 60 * 60
    public static let maximumReasonBytes = 1000

    public init(store: any AccountStore, policy: AccessPolicy = AccessPolicy()) {
        self.store = store
        self.policy = policy
    }

    /// The resource as the policy needs it. Care team and grants are looked up only within the principal's own tenant
    /// (another tenant's resource is `notFound` whatever they hold).
    public func resource(tenant: String, patient: PatientKey?, for principal: Principal, now: Date = Date())
        async throws(ArchiveError) -> AccessResource
    {
        guard let patient, tenant == principal.tenant else { return AccessResource(tenant: tenant, patient: patient) }
        let member = try await store.isInCareTeam(tenant: tenant, patient: patient, username: principal.username)
        let granted =
            member
            ? false
            : try await store.hasActiveGrant(tenant: tenant, username: principal.username, patient: patient, at: now)
        return AccessResource(tenant: tenant, patient: patient, inCareTeam: member, underBreakGlass: granted)
    }

    public func decide(
        _ principal: Principal, _ action: AccessAction, tenant: String, patient: PatientKey?, now: Date = Date()
    ) async throws(ArchiveError) -> AccessDecision {
        policy.decide(principal, action, try await resource(tenant: tenant, patient: patient, for: principal, now: now))
    }

    /// Opens one patient of the principal's tenant for `breakGlassDuration`, if the policy allows the principal to
    /// break the glass; `.forbidden` otherwise (with the policy's reason), `.invalidInput` without a reason.
    public func breakGlass(_ principal: Principal, patient: PatientKey, reason: String, now: Date = Date())
        async throws(ArchiveError) -> BreakGlassGrant
    {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty, reason.utf8.count <= Self.maximumReasonBytes else {
            throw ArchiveError(.invalidInput, "break-the-glass needs a reason of 1 to \(Self.maximumReasonBytes) bytes")
        }
        let decision = policy.decide(
            principal, .breakGlass, AccessResource(tenant: principal.tenant, patient: patient))
        guard decision == .allow else {
            if case .deny(let why) = decision { throw ArchiveError(.forbidden, why) }
            throw ArchiveError(.notFound, "not found")
        }
        let grant = BreakGlassGrant(
            tenant: principal.tenant, username: principal.username, patient: patient, reason: reason, start: now,
            end: now.addingTimeInterval(breakGlassDuration))
        try await store.addGrant(grant)
        return grant
    }
}
