import DICOMCore
import Foundation
import GRDB
import Testing

@testable import Archive

/// The contract of `AccountStore`, run against SQLite and PostgreSQL alike (`IndexKind.available`).
@Suite struct AccountStoreContractTests {
    let start = IdentityFixture.start

    @Test(arguments: IndexKind.available)
    func totpSecretsAreSealedAtRestAndBoundToTheirAccount(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        let totp = try await fixture.person("dr.a", .physician)
        try await fixture.person("dr.b", .physician)
        await #expect(try fixture.store.account(tenant: "default", username: "dr.a")?.totpSecret == totp.secret)
        let stored = try fixture.storedBytes()
        #expect(stored.range(of: totp.secret) == nil)
        #expect(stored.range(of: Data(Formatting.hex(totp.secret).utf8)) == nil)
        // A sealed secret copied onto another account's row does not open there.
        try await fixture.execute(
            """
            UPDATE accounts SET totp_secret = (SELECT totp_secret FROM accounts WHERE username = 'dr.a')
            WHERE username = 'dr.b'
            """)
        await #expect(throws: ArchiveError.self) {
            try await fixture.store.account(tenant: "default", username: "dr.b")
        }
        // Under another master key nothing opens either.
        let otherKeys = try KeyHierarchy.open(keyDirectory: try temporaryFolder(), environment: [:]).keys
        let foreign = try await fixture.reopen(keys: otherKeys)
        await #expect(throws: ArchiveError.self) { try await foreign.account(tenant: "default", username: "dr.a") }
    }

    @Test(arguments: IndexKind.available)
    func patientIDsAreNeverStoredInTheClear(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        try await fixture.person("ma", .medicalAssistant)
        let patientID = "MRN-7734-SECRET"
        let key = try await fixture.administration.assign(
            tenant: "default", username: "ma", patientID: patientID, issuer: "HOSP")
        await #expect(try fixture.store.careTeam(tenant: "default", patient: key) == ["ma"])
        let bytes = try fixture.storedBytes()
        #expect(bytes.range(of: Data(patientID.utf8)) == nil)
        #expect(bytes.range(of: Data(key.hex.utf8)) != nil)
    }

    @Test(arguments: IndexKind.available)
    func usernamesAreUniquePerTenantAndClientIDsEverywhere(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        let hash = try fixture.hasher.hash("whatever password")
        try await fixture.store.createAccount(
            Account(tenant: "default", username: "a", role: .nurse, passwordHash: hash))
        await #expect(throws: ArchiveError.self) {
            try await fixture.store.createAccount(
                Account(tenant: "default", username: "a", role: .auditor, passwordHash: hash))
        }
        try await fixture.store.createAccount(
            Account(tenant: "clinic-b", username: "a", role: .auditor, passwordHash: hash))
        try await fixture.store.createAccount(
            Account(tenant: "default", username: "dev", role: .device, passwordHash: hash, clientID: "facet-1"))
        do {
            try await fixture.store.createAccount(
                Account(tenant: "clinic-b", username: "dev", role: .device, passwordHash: hash, clientID: "facet-1"))
            Issue.record("a duplicate client id was accepted")
        } catch {
            #expect(error.code == .conflict)
        }
        await #expect(
            try fixture.store.accounts(tenant: nil).map { "\($0.tenant)/\($0.username)" } == [
                "clinic-b/a", "default/a", "default/dev",
            ])
        await #expect(try fixture.store.accounts(tenant: "default").count == 2)
        await #expect(try fixture.store.account(clientID: "facet-1")?.username == "dev")
    }

    @Test(arguments: IndexKind.available)
    func anUpdateCannotChangeWhoTheAccountIs(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        try await fixture.person("dr.a", .physician)
        try await fixture.store.updateAccount(tenant: "default", username: "dr.a") { (account) throws(ArchiveError) in
            account.username = "root"
            account.tenant = "clinic-b"
            account.status = .disabled
        }
        await #expect(try fixture.store.account(tenant: "default", username: "dr.a")?.status == .disabled)
        await #expect(try fixture.store.account(tenant: "clinic-b", username: "root") == nil)
        await #expect(throws: ArchiveError.self) {
            try await fixture.store.updateAccount(tenant: "default", username: "nobody") { (_) throws(ArchiveError) in }
        }
    }

    @Test(arguments: IndexKind.available)
    func failedLoginsAndLockoutSurviveReopening(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        try await fixture.person("dr.a", .physician)
        try await fixture.store.updateAccount(tenant: "default", username: "dr.a") { (account) throws(ArchiveError) in
            account.failedLogins = [start, start + 1.5]
            account.lockedUntil = start + 900
            account.lastTOTPStep = 42
        }
        let reopened = try await fixture.reopen()
        let account = try await #require(try reopened.account(tenant: "default", username: "dr.a"))
        #expect(account.failedLogins == [start, start + 1.5])
        #expect(account.lockedUntil == start + 900 && account.lastTOTPStep == 42)
    }

    @Test(arguments: IndexKind.available)
    func careTeamsReplaceAndRefuseUnknownMembers(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        try await fixture.person("a", .nurse)
        try await fixture.person("b", .physician)
        let patient = try #require(PatientKey.make(tenant: "default", patientID: "P", issuer: nil, keys: fixture.keys))
        try await fixture.store.setCareTeam(tenant: "default", patient: patient, members: ["a", "b", "a"])
        await #expect(try fixture.store.careTeam(tenant: "default", patient: patient) == ["a", "b"])
        try await fixture.store.setCareTeam(tenant: "default", patient: patient, members: ["b"])
        await #expect(try fixture.store.careTeam(tenant: "default", patient: patient) == ["b"])
        await #expect(throws: ArchiveError.self) {
            try await fixture.store.setCareTeam(tenant: "default", patient: patient, members: ["b", "ghost"])
        }
        await #expect(try fixture.store.careTeam(tenant: "default", patient: patient) == ["b"])
        // A user of another tenant cannot join this tenant's care team.
        try await fixture.person("c", .nurse, tenant: "clinic-b")
        await #expect(throws: ArchiveError.self) {
            try await fixture.store.addToCareTeam(tenant: "default", patient: patient, username: "c")
        }
        await #expect(try !fixture.store.isInCareTeam(tenant: "clinic-b", patient: patient, username: "b"))
    }

    @Test(arguments: IndexKind.available)
    func disablingEndsEverySessionOfThatAccountOnly(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        try await fixture.person("dr.a", .physician)
        try await fixture.person("dr.b", .physician)
        let a1 = try await fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician, now: start)
        let a2 = try await fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician, now: start)
        let b = try await fixture.tokens.issue(tenant: "default", username: "dr.b", role: .physician, now: start)
        try await fixture.administration.setStatus(tenant: "default", username: "dr.a", .disabled)
        for token in [a1, a2] {
            await #expect(throws: ArchiveError(.invalidToken, "token revoked")) {
                try await fixture.tokens.verify(token.accessToken, now: start + 1)
            }
        }
        await #expect(try fixture.tokens.verify(b.accessToken, now: start + 1).username == "dr.b")
    }

    @Test(arguments: IndexKind.available)
    func purgeForgetsOnlyExpiredSessionsAndRevocations(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        let old = try await fixture.tokens.issue(tenant: "default", username: "x", role: .nurse, now: start)
        try await fixture.tokens.revoke(old.accessToken, now: start)
        let current = try await fixture.tokens.issue(tenant: "default", username: "y", role: .nurse, now: start + 3600)
        try await fixture.store.purge(expiredBefore: start + 12 * 3600 + 1)
        await #expect(try !fixture.store.isRevoked(old.tokenID))
        await #expect(
            try fixture.store.useSession(tokenID: current.tokenID, at: start + 3601, idleTimeout: 900) == .active)
    }

    @Test func migrationsAreNamedAndIdempotentBesideTheStudyIndex() async throws {
        let fixture = try await IdentityFixture()
        let path = fixture.folder.appendingPathComponent("index.sqlite")
        let index = try SQLiteStudyIndex(path: path, keys: fixture.keys)
        try await fixture.person("dr.a", .physician)
        let again = try SQLiteAccountStore(path: path, keys: fixture.keys)
        await #expect(try again.account(tenant: "default", username: "dr.a")?.role == .physician)
        #expect(index.catalog().instances.isEmpty)
        let pool = try DatabasePool(path: path.path)
        let applied = try await pool.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
        }
        // The accounts' migrations and the study index's, each recorded once, side by side in one file.
        #expect(
            Set(applied) == [
                "identity v1: accounts, care teams, break-the-glass grants, sessions",
                "archive v1: studies, series, instances, originals, deletions, pending blobs, audit anchor",
                "jobs v1: background work taken by exactly one worker",
                "jobs v2: the subject a job is about (a patient's key)",
                "clinic records v1: versioned, sealed records beside the images",
                "disposal v1: the ids of destroyed patient keys",
                "trash v1: what a restore needs of a soft-deleted instance",
            ])
        #expect(applied.count == 7)
        let tables = try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        #expect(
            Set(["accounts", "care_team_members", "break_glass_grants", "sessions", "revoked_tokens", "studies"])
                .isSubset(of: Set(tables)))
    }

    /// Two stores on the same accounts, as `facet users` beside a running server or two replicas: writes of one are
    /// read by the other, and concurrent writers wait for each other instead of failing.
    @Test(arguments: IndexKind.available)
    func twoStoresOnTheSameAccountsSeeEachOthersWrites(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        let other = try await fixture.reopen()
        let hash = try fixture.hasher.hash("whatever password")
        let first = fixture.store
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<20 {
                let store = index.isMultiple(of: 2) ? first : other
                group.addTask {
                    try? await store.createAccount(
                        Account(tenant: "default", username: "user\(index)", role: .nurse, passwordHash: hash))
                }
            }
        }
        await #expect(try first.accounts(tenant: "default").count == 20)
        await #expect(try other.accounts(tenant: "default").count == 20)
    }

    /// Two replicas (two stores on the same accounts) given the same TOTP code at once: it works once.
    @Test(arguments: IndexKind.available)
    func aTOTPCodeWorksOnceEvenOnTwoReplicasAtOnce(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        let totp = try await fixture.person("dr.a", .physician)
        let other = try await fixture.reopen()
        let logins = [
            fixture.login,
            LoginService(
                tokens: TokenService(signingKey: fixture.signingKey, store: other),
                hasher: fixture.hasher),
        ]
        let code = totp.code(at: start)
        let outcomes = await withTaskGroup(of: LoginService.Outcome?.self) { group in
            for login in logins {
                group.addTask {
                    try? await login.attempt(
                        tenant: "default", username: "dr.a", password: "correct horse 1", totp: code, now: start)
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { $0?.isGranted == true }.count == 1, "\(outcomes)")
        #expect(outcomes.contains { $0 == .refused(.wrongTOTP) })
    }

    /// Failed logins arriving at two replicas at once are all counted: five lock the account.
    @Test(arguments: IndexKind.available)
    func failuresOnTwoReplicasAtOnceAreAllCounted(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        try await fixture.person("dr.a", .physician)
        let other = try await fixture.reopen()
        let logins = [
            fixture.login,
            LoginService(
                tokens: TokenService(signingKey: fixture.signingKey, store: other),
                hasher: fixture.hasher),
        ]
        await withTaskGroup(of: Void.self) { group in
            for attempt in 0..<5 {
                let login = logins[attempt % 2]
                group.addTask {
                    _ = try? await login.attempt(
                        tenant: "default", username: "dr.a", password: "wrong password \(attempt)", totp: nil,
                        now: start)
                }
            }
        }
        let account = try #require(try await other.account(tenant: "default", username: "dr.a"))
        #expect(account.lockedUntil != nil, "five failures lock the account however they were spread")
    }

    /// Two administrators disabling each other at once on two replicas: one of them stays.
    @Test(arguments: IndexKind.available)
    func twoAdministratorsDisablingEachOtherAtOnceLeaveOne(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        try await fixture.person("root1", .systemAdmin)
        try await fixture.person("root2", .systemAdmin)
        let other = AccountAdministration(store: try await fixture.reopen(), keys: fixture.keys, hasher: fixture.hasher)
        let administrations = [(fixture.administration, "root1", "root2"), (other, "root2", "root1")]
        let results = await withTaskGroup(of: Bool.self) { group in
            for (administration, actor, target) in administrations {
                group.addTask {
                    (try? await administration.setStatus(tenant: "default", username: target, .disabled, by: actor))
                        != nil
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 1)
        let active = try await fixture.store.accounts(tenant: "default").filter { $0.status == .active }
        #expect(active.count == 1)
    }

    /// A session started through one replica is used, ended and refused through another.
    @Test(arguments: IndexKind.available)
    func aSessionIsOneSessionOnEveryReplica(_ kind: IndexKind) async throws {
        let fixture = try await IdentityFixture(kind)
        try await fixture.person("dr.a", .physician)
        let elsewhere = TokenService(signingKey: fixture.signingKey, store: try await fixture.reopen())
        let token = try await fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician, now: start)
        #expect(try await elsewhere.verify(token.accessToken, now: start + 1).username == "dr.a")
        try await elsewhere.revoke(token.accessToken, now: start + 2)
        await #expect(throws: ArchiveError(.invalidToken, "token revoked")) {
            try await fixture.tokens.verify(token.accessToken, now: start + 3)
        }
    }
}

@Suite struct IdentityAdministrationTests {
    let start = IdentityFixture.start

    @Test func addingAPersonWithoutAPasswordGeneratesOneThatLogsIn() async throws {
        let fixture = try await IdentityFixture()
        let credentials = try await fixture.administration.add(
            tenant: "default", username: "pm", role: .practiceManager)
        let password = try #require(credentials.generatedPassword)
        #expect(password.count >= 20 && credentials.clientID == nil)
        let uri = try #require(credentials.otpauthURI)
        #expect(uri.hasPrefix("otpauth://totp/Facet:pm?secret=") && uri.hasSuffix("&issuer=Facet"))
        let account = try await #require(try fixture.store.account(tenant: "default", username: "pm"))
        let totp = TOTP(secret: try #require(account.totpSecret))
        #expect(uri == totp.provisioningURI(account: "pm"))
        #expect(fixture.hasher.verify(password, against: account.passwordHash))
        #expect(try fixture.storedBytes().range(of: Data(password.utf8)) == nil)
        _ = try await fixture.login.login(
            tenant: "default", username: "pm", password: password, totp: totp.code(at: start), now: start)
    }

    @Test func servicesGetClientCredentialsAndNoTOTP() async throws {
        let fixture = try await IdentityFixture()
        let credentials = try await fixture.administration.add(tenant: "default", username: "emr", role: .integration)
        #expect(credentials.otpauthURI == nil && credentials.generatedPassword == nil)
        let secret = try #require(credentials.clientSecret)
        #expect(try #require(credentials.clientID).hasPrefix("facet-") && secret.count >= 43)
        await #expect(try fixture.store.account(tenant: "default", username: "emr")?.totpSecret == nil)
        await #expect(throws: ArchiveError.self) {
            try await fixture.administration.add(
                tenant: "default", username: "dev", role: .device, password: "a password 123")
        }
        await #expect(throws: ArchiveError.self) {
            try await fixture.administration.resetMFA(tenant: "default", username: "emr")
        }
    }

    @Test func badNamesAndShortPasswordsAreRefused() async throws {
        let fixture = try await IdentityFixture()
        for name in ["", "Alice", "-x", "a b", "a/b", String(repeating: "a", count: 65), "é"] {
            await #expect(throws: ArchiveError.self) {
                try await fixture.administration.add(tenant: "default", username: name, role: .nurse)
            }
        }
        await #expect(throws: ArchiveError.self) {
            try await fixture.administration.add(tenant: "bad tenant", username: "ok", role: .nurse)
        }
        await #expect(throws: ArchiveError.self) {
            try await fixture.administration.add(tenant: "default", username: "ok", role: .nurse, password: "short")
        }
        #expect(try await fixture.store.accounts(tenant: nil).isEmpty)
    }

    @Test func resetMFAReplacesTheSecretAndEndsSessions() async throws {
        let fixture = try await IdentityFixture()
        let old = try await fixture.person("dr.a", .physician)
        let token = try await fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician, now: start)
        let uri = try await fixture.administration.resetMFA(tenant: "default", username: "dr.a")
        let account = try await #require(try fixture.store.account(tenant: "default", username: "dr.a"))
        #expect(
            account.totpSecret != old.secret
                && uri == TOTP(secret: account.totpSecret!).provisioningURI(account: "dr.a"))
        await #expect(throws: ArchiveError.self) { try await fixture.tokens.verify(token.accessToken, now: start + 1) }
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "correct horse 1", totp: old.code(at: start), now: start)
                == .refused(.wrongTOTP))
    }

    @Test func setPasswordChangesItEndsSessionsAndClearsALockout() async throws {
        let fixture = try await IdentityFixture()
        let totp = try await fixture.person("dr.a", .physician)
        let token = try await fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician, now: start)
        try await fixture.store.updateAccount(tenant: "default", username: "dr.a") { (account) throws(ArchiveError) in
            account.lockedUntil = start + 900
        }
        await #expect(
            try fixture.administration.setPassword(tenant: "default", username: "dr.a", password: "new password 22")
                == nil)
        await #expect(throws: ArchiveError.self) { try await fixture.tokens.verify(token.accessToken, now: start + 1) }
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "correct horse 1", totp: totp.code(at: start), now: start
            )
                == .refused(.wrongPassword))
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "new password 22", totp: totp.code(at: start), now: start
            )
            .isGranted)
    }

    @Test func enablingAllowsLoginsAgain() async throws {
        let fixture = try await IdentityFixture()
        let totp = try await fixture.person("dr.a", .physician)
        try await fixture.administration.setStatus(tenant: "default", username: "dr.a", .disabled)
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "correct horse 1", totp: totp.code(at: start), now: start
            )
                == .refused(.disabled))
        try await fixture.administration.setStatus(tenant: "default", username: "dr.a", .active)
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "correct horse 1", totp: totp.code(at: start), now: start
            )
            .isGranted)
    }

    @Test func theLastActiveSystemAdminOfATenantStaysWhoeverAsks() async throws {
        let fixture = try await IdentityFixture()
        try await fixture.person("root", .systemAdmin)
        try await fixture.person("root", .systemAdmin, tenant: "clinic-b")
        let administration = fixture.administration
        let changes: [@Sendable () async throws -> Void] = [
            { try await administration.setStatus(tenant: "default", username: "root", .disabled) },
            { try await administration.setRole(tenant: "default", username: "root", role: .nurse) },
        ]
        for change in changes {
            await #expect {
                try await change()
            } throws: { ($0 as? ArchiveError)?.code == .conflict }
        }
        await #expect(try fixture.store.account(tenant: "default", username: "root")?.role == .systemAdmin)
        // Another tenant's system admin does not count; a second one of the same tenant does.
        try await fixture.person("root2", .systemAdmin)
        try await administration.setStatus(tenant: "default", username: "root", .disabled)
        await #expect(throws: ArchiveError.self) {
            try await administration.setRole(tenant: "default", username: "root2", role: .nurse)
        }
        // Enabling is never refused, and a disabled system admin may be given another role.
        try await administration.setStatus(tenant: "default", username: "root", .active)
        try await administration.setStatus(tenant: "default", username: "root", .disabled)
        try await administration.setRole(tenant: "default", username: "root", role: .nurse)
        await #expect(try fixture.store.account(tenant: "default", username: "root")?.role == .nurse)
    }

    @Test func aRoleChangeEndsTheSessionsAndKeepsPeopleAndMachinesApart() async throws {
        let fixture = try await IdentityFixture()
        try await fixture.person("dr.a", .physician)
        _ = try await fixture.administration.add(tenant: "default", username: "emr", role: .integration)
        let issued = try await fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician)
        try await fixture.administration.setRole(tenant: "default", username: "dr.a", role: .nurse)
        await #expect(try fixture.store.account(tenant: "default", username: "dr.a")?.role == .nurse)
        await #expect(throws: ArchiveError.self) { try await fixture.tokens.verify(issued.accessToken) }
        for (username, role) in [("dr.a", Role.device), ("emr", .physician)] {
            await #expect {
                try await fixture.administration.setRole(tenant: "default", username: username, role: role)
            } throws: { ($0 as? ArchiveError)?.code == .invalidInput }
        }
        await #expect {
            try await fixture.administration.setRole(tenant: "default", username: "dr.a", role: .nurse, by: "dr.a")
        } throws: { ($0 as? ArchiveError)?.code == .conflict }
        await #expect {
            try await fixture.administration.setStatus(tenant: "default", username: "dr.a", .disabled, by: "dr.a")
        } throws: { ($0 as? ArchiveError)?.code == .conflict }
    }
}
