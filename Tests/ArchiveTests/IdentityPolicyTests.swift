import Foundation
import Testing

@testable import Archive

/// The role matrix of issue 9 §3, written out here by hand (not derived from `AccessPolicy`):
/// - "all": every patient of the tenant, and searches across it;
/// - "own": patients of the care team or under an active break-the-glass grant; a tenant-wide search is allowed
///   (its answer is filtered patient by patient), anything else without a patient is refused;
/// - "any": the action regardless of patient (tenant-wide actions, uploads, deletes);
/// - "patient": only when the request names a patient.
/// An action missing from a role's row is refused. Another tenant's resource is always "not found".
private let expectedTable: [String: [String: String]] = [
    "front-desk": [:],
    "medical-assistant": [
        "search": "own", "read": "own", "store": "any", "break-glass": "patient", "record-write": "own",
    ],
    "nurse": [
        "search": "all", "read": "all", "store": "any", "record-write": "all", "consent-write": "all", "share": "all",
    ],
    "physician": [
        "search": "all", "read": "all", "store": "any", "delete": "any", "care-team-write": "patient",
        "record-write": "all", "consent-write": "all", "marketing-export": "any", "share": "all",
    ],
    "practice-manager": [
        "search": "all", "read": "all", "admin": "any", "audit-read": "any", "care-team-write": "patient",
        "metrics": "any", "consent-write": "all", "marketing-export": "any", "share": "all", "retention": "any",
    ],
    "system-admin": ["admin": "any", "metrics": "any"],
    "device": ["store": "any"],
    "integration": ["search": "all", "read": "all"],
    "auditor": ["audit-read": "any"],
]

private enum PatientCase: CaseIterable { case none, own, other }

@Suite struct IdentityPolicyTests {
    let patient = PatientKey(hex: String(repeating: "ab", count: 32))!

    @Test func roleAndActionNamesAreExactlyTheIssuesNames() async {
        #expect(Set(Role.allCases.map(\.rawValue)) == Set(expectedTable.keys))
        #expect(
            Set(AccessAction.allCases.map(\.rawValue)) == [
                "search", "read", "store", "delete", "admin", "audit-read", "break-glass", "care-team-write", "metrics",
                "record-write", "consent-write", "marketing-export", "share", "retention",
            ])
    }

    /// Every role × action × no/own/other patient × own/other tenant × with/without a break-the-glass grant.
    @Test func generatedMatrixMatchesTheExpectedTable() async {
        let policy = AccessPolicy()
        var checked = 0
        for roleName in expectedTable.keys.sorted() {
            let role = Role(rawValue: roleName)!
            let principal = Principal(tenant: "clinic-a", username: "someone", role: role)
            for action in AccessAction.allCases {
                for patientCase in PatientCase.allCases {
                    for tenant in ["clinic-a", "clinic-b"] {
                        for grant in [false, true] {
                            let resource = AccessResource(
                                tenant: tenant, patient: patientCase == .none ? nil : patient,
                                inCareTeam: patientCase == .own, underBreakGlass: patientCase != .none && grant)
                            let decision = policy.decide(principal, action, resource)
                            let expected = expectation(
                                role: roleName, action: action.rawValue, patient: patientCase,
                                sameTenant: tenant == "clinic-a", grant: patientCase != .none && grant)
                            #expect(
                                outcome(decision) == expected,
                                "\(roleName) \(action) patient=\(patientCase) tenant=\(tenant) grant=\(grant)")
                            checked += 1
                        }
                    }
                }
            }
        }
        #expect(checked == 9 * 14 * 3 * 2 * 2)
    }

    private func expectation(role: String, action: String, patient: PatientCase, sameTenant: Bool, grant: Bool)
        -> String
    {
        guard sameTenant else { return "not-found" }
        switch expectedTable[role]?[action] {
        case "any", "all": return "allow"
        case "patient": return patient == .none ? "deny" : "allow"
        case "own":
            switch patient {
            case .none: return action == "search" ? "allow" : "deny"
            case .own: return "allow"
            case .other: return grant ? "allow" : "deny"
            }
        default: return "deny"
        }
    }

    private func outcome(_ decision: AccessDecision) -> String {
        switch decision {
        case .allow: "allow"
        case .deny: "deny"
        case .notFound: "not-found"
        }
    }

    @Test func refusalsNameTheRoleOrTheCareTeamButNoPatient() async {
        let policy = AccessPolicy()
        let frontDesk = Principal(tenant: "default", username: "fd", role: .frontDesk)
        #expect(
            policy.decide(frontDesk, .read, AccessResource(tenant: "default", patient: patient))
                == .deny(reason: "role front-desk may not read"))
        let assistant = Principal(tenant: "default", username: "ma", role: .medicalAssistant)
        guard
            case .deny(let reason) = policy.decide(
                assistant, .read, AccessResource(tenant: "default", patient: patient))
        else {
            Issue.record("expected a refusal")
            return
        }
        #expect(reason.contains("care team") && !reason.contains(patient.hex))
    }
}

@Suite struct IdentityPatientAccessTests {
    @Test func careTeamMembershipOpensOnlyThatPatientForAMedicalAssistant() async throws {
        let fixture = try await IdentityFixture()
        try await fixture.person("ma", .medicalAssistant)
        let access = PatientAccess(store: fixture.store)
        let mine = try await fixture.administration.assign(
            tenant: "default", username: "ma", patientID: "P-1", issuer: nil)
        let other = try #require(PatientKey.make(tenant: "default", patientID: "P-2", issuer: nil, keys: fixture.keys))
        let principal = Principal(tenant: "default", username: "ma", role: .medicalAssistant)
        await #expect(try access.decide(principal, .read, tenant: "default", patient: mine) == .allow)
        await #expect(try access.decide(principal, .read, tenant: "default", patient: other) != .allow)
        await #expect(try access.decide(principal, .read, tenant: "clinic-b", patient: mine) == .notFound)
        await #expect(try fixture.store.careTeamPatients(tenant: "default", username: "ma") == [mine])
    }

    @Test func breakTheGlassOpensOnePatientForSixtyMinutes() async throws {
        let fixture = try await IdentityFixture()
        try await fixture.person("ma", .medicalAssistant)
        let access = PatientAccess(store: fixture.store)
        let principal = Principal(tenant: "default", username: "ma", role: .medicalAssistant)
        let patient = try #require(
            PatientKey.make(tenant: "default", patientID: "P-9", issuer: nil, keys: fixture.keys))
        let neighbour = try #require(
            PatientKey.make(tenant: "default", patientID: "P-10", issuer: nil, keys: fixture.keys))
        let start = IdentityFixture.start
        await #expect(try access.decide(principal, .read, tenant: "default", patient: patient, now: start) != .allow)
        let grant = try await access.breakGlass(principal, patient: patient, reason: "patient in distress", now: start)
        #expect(grant.end == start.addingTimeInterval(3600))
        await #expect(try access.decide(principal, .read, tenant: "default", patient: patient, now: start) == .allow)
        await #expect(
            try access.decide(principal, .read, tenant: "default", patient: patient, now: start + 3599) == .allow)
        await #expect(
            try access.decide(principal, .read, tenant: "default", patient: patient, now: start + 3600) != .allow)
        await #expect(try access.decide(principal, .read, tenant: "default", patient: neighbour, now: start) != .allow)
        // Listed for managers, with its reason (kept sealed at rest).
        let listed = try await fixture.store.grants(tenant: "default", activeAt: start + 60)
        #expect(listed.map(\.reason) == ["patient in distress"] && listed.first?.patient == patient)
        await #expect(try fixture.store.grants(tenant: "default", activeAt: start + 4000).isEmpty)
        #expect(try fixture.storedBytes().range(of: Data("patient in distress".utf8)) == nil)
    }

    @Test func onlyAMedicalAssistantMayBreakTheGlassAndOnlyWithAReason() async throws {
        let fixture = try await IdentityFixture()
        let access = PatientAccess(store: fixture.store)
        let patient = try #require(
            PatientKey.make(tenant: "default", patientID: "P-9", issuer: nil, keys: fixture.keys))
        for role in Role.allCases where role != .medicalAssistant {
            let principal = Principal(tenant: "default", username: "x", role: role)
            await #expect(throws: ArchiveError.self) {
                try await access.breakGlass(principal, patient: patient, reason: "why")
            }
        }
        let assistant = Principal(tenant: "default", username: "ma", role: .medicalAssistant)
        await #expect(throws: ArchiveError.self) {
            try await access.breakGlass(assistant, patient: patient, reason: "  ")
        }
        await #expect(try fixture.store.grants(tenant: "default", activeAt: nil).isEmpty)
    }

    @Test func patientKeysDependOnTenantAndIssuerAndIgnorePadding() async throws {
        let keys = try await IdentityFixture().keys
        let key = PatientKey.make(tenant: "default", patientID: "P-1", issuer: "HOSP", keys: keys)
        #expect(key == PatientKey.make(tenant: "default", patientID: " P-1 ", issuer: "HOSP ", keys: keys))
        #expect(key != PatientKey.make(tenant: "default", patientID: "P-1", issuer: nil, keys: keys))
        #expect(key != PatientKey.make(tenant: "clinic-b", patientID: "P-1", issuer: "HOSP", keys: keys))
        #expect(key != PatientKey.make(tenant: "default", patientID: "P-2", issuer: "HOSP", keys: keys))
        #expect(PatientKey.make(tenant: "default", patientID: "  ", issuer: nil, keys: keys) == nil)
        let other = try await IdentityFixture().keys
        #expect(key != PatientKey.make(tenant: "default", patientID: "P-1", issuer: "HOSP", keys: other))
    }
}
