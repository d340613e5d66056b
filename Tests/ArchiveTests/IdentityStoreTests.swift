import DICOMCore
import Foundation
import GRDB
import Testing

@testable import Archive

@Suite struct IdentityStoreTests {
    let start = IdentityFixture.start

    @Test func totpSecretsAreSealedAtRestAndBoundToTheirAccount() throws {
        let fixture = try IdentityFixture()
        let totp = try fixture.person("dr.a", .physician)
        try fixture.person("dr.b", .physician)
        #expect(try fixture.store.account(tenant: "default", username: "dr.a")?.totpSecret == totp.secret)
        #expect(try fixture.databaseBytes().range(of: totp.secret) == nil)
        // A sealed secret copied onto another account's row does not open there.
        let pool = try DatabasePool(path: fixture.folder.appendingPathComponent("index.sqlite").path)
        try pool.write { db in
            try db.execute(
                sql: """
                    UPDATE accounts SET totp_secret = (SELECT totp_secret FROM accounts WHERE username = 'dr.a')
                    WHERE username = 'dr.b'
                    """)
        }
        #expect(throws: ArchiveError.self) { try fixture.store.account(tenant: "default", username: "dr.b") }
        // Under another master key nothing opens either.
        let otherKeys = try KeyHierarchy.open(keyDirectory: try temporaryFolder(), environment: [:]).keys
        let foreign = try SQLiteAccountStore(
            path: fixture.folder.appendingPathComponent("index.sqlite"), keys: otherKeys)
        #expect(throws: ArchiveError.self) { try foreign.account(tenant: "default", username: "dr.a") }
    }

    @Test func patientIDsAreNeverStoredInTheClear() throws {
        let fixture = try IdentityFixture()
        try fixture.person("ma", .medicalAssistant)
        let patientID = "MRN-7734-SECRET"
        let key = try fixture.administration.assign(
            tenant: "default", username: "ma", patientID: patientID, issuer: "HOSP")
        #expect(try fixture.store.careTeam(tenant: "default", patient: key) == ["ma"])
        let bytes = try fixture.databaseBytes()
        #expect(bytes.range(of: Data(patientID.utf8)) == nil)
        #expect(bytes.range(of: Data(key.hex.utf8)) != nil)
    }

    @Test func usernamesAreUniquePerTenantAndClientIDsEverywhere() throws {
        let fixture = try IdentityFixture()
        let hash = try fixture.hasher.hash("whatever password")
        try fixture.store.createAccount(Account(tenant: "default", username: "a", role: .nurse, passwordHash: hash))
        #expect(throws: ArchiveError.self) {
            try fixture.store.createAccount(
                Account(tenant: "default", username: "a", role: .auditor, passwordHash: hash))
        }
        try fixture.store.createAccount(Account(tenant: "clinic-b", username: "a", role: .auditor, passwordHash: hash))
        try fixture.store.createAccount(
            Account(tenant: "default", username: "dev", role: .device, passwordHash: hash, clientID: "facet-1"))
        do {
            try fixture.store.createAccount(
                Account(tenant: "clinic-b", username: "dev", role: .device, passwordHash: hash, clientID: "facet-1"))
            Issue.record("a duplicate client id was accepted")
        } catch {
            #expect(error.code == .conflict)
        }
        #expect(
            try fixture.store.accounts(tenant: nil).map { "\($0.tenant)/\($0.username)" } == [
                "clinic-b/a", "default/a", "default/dev",
            ])
        #expect(try fixture.store.accounts(tenant: "default").count == 2)
        #expect(try fixture.store.account(clientID: "facet-1")?.username == "dev")
    }

    @Test func anUpdateCannotChangeWhoTheAccountIs() throws {
        let fixture = try IdentityFixture()
        try fixture.person("dr.a", .physician)
        try fixture.store.updateAccount(tenant: "default", username: "dr.a") { (account) throws(ArchiveError) in
            account.username = "root"
            account.tenant = "clinic-b"
            account.status = .disabled
        }
        #expect(try fixture.store.account(tenant: "default", username: "dr.a")?.status == .disabled)
        #expect(try fixture.store.account(tenant: "clinic-b", username: "root") == nil)
        #expect(throws: ArchiveError.self) {
            try fixture.store.updateAccount(tenant: "default", username: "nobody") { (_) throws(ArchiveError) in }
        }
    }

    @Test func failedLoginsAndLockoutSurviveReopening() throws {
        let fixture = try IdentityFixture()
        try fixture.person("dr.a", .physician)
        try fixture.store.updateAccount(tenant: "default", username: "dr.a") { (account) throws(ArchiveError) in
            account.failedLogins = [start, start + 1.5]
            account.lockedUntil = start + 900
            account.lastTOTPStep = 42
        }
        let reopened = try SQLiteAccountStore(
            path: fixture.folder.appendingPathComponent("index.sqlite"), keys: fixture.keys)
        let account = try #require(try reopened.account(tenant: "default", username: "dr.a"))
        #expect(account.failedLogins == [start, start + 1.5])
        #expect(account.lockedUntil == start + 900 && account.lastTOTPStep == 42)
    }

    @Test func careTeamsReplaceAndRefuseUnknownMembers() throws {
        let fixture = try IdentityFixture()
        try fixture.person("a", .nurse)
        try fixture.person("b", .physician)
        let patient = try #require(PatientKey.make(tenant: "default", patientID: "P", issuer: nil, keys: fixture.keys))
        try fixture.store.setCareTeam(tenant: "default", patient: patient, members: ["a", "b", "a"])
        #expect(try fixture.store.careTeam(tenant: "default", patient: patient) == ["a", "b"])
        try fixture.store.setCareTeam(tenant: "default", patient: patient, members: ["b"])
        #expect(try fixture.store.careTeam(tenant: "default", patient: patient) == ["b"])
        #expect(throws: ArchiveError.self) {
            try fixture.store.setCareTeam(tenant: "default", patient: patient, members: ["b", "ghost"])
        }
        #expect(try fixture.store.careTeam(tenant: "default", patient: patient) == ["b"])
        // A user of another tenant cannot join this tenant's care team.
        try fixture.person("c", .nurse, tenant: "clinic-b")
        #expect(throws: ArchiveError.self) {
            try fixture.store.addToCareTeam(tenant: "default", patient: patient, username: "c")
        }
        #expect(try !fixture.store.isInCareTeam(tenant: "clinic-b", patient: patient, username: "b"))
    }

    @Test func disablingEndsEverySessionOfThatAccountOnly() throws {
        let fixture = try IdentityFixture()
        try fixture.person("dr.a", .physician)
        try fixture.person("dr.b", .physician)
        let a1 = try fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician, now: start)
        let a2 = try fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician, now: start)
        let b = try fixture.tokens.issue(tenant: "default", username: "dr.b", role: .physician, now: start)
        try fixture.administration.setStatus(tenant: "default", username: "dr.a", .disabled)
        for token in [a1, a2] {
            #expect(throws: ArchiveError(.invalidToken, "token revoked")) {
                try fixture.tokens.verify(token.accessToken, now: start + 1)
            }
        }
        #expect(try fixture.tokens.verify(b.accessToken, now: start + 1).username == "dr.b")
    }

    @Test func purgeForgetsOnlyExpiredSessionsAndRevocations() throws {
        let fixture = try IdentityFixture()
        let old = try fixture.tokens.issue(tenant: "default", username: "x", role: .nurse, now: start)
        try fixture.tokens.revoke(old.accessToken, now: start)
        let current = try fixture.tokens.issue(tenant: "default", username: "y", role: .nurse, now: start + 3600)
        try fixture.store.purge(expiredBefore: start + 12 * 3600 + 1)
        #expect(try !fixture.store.isRevoked(old.tokenID))
        #expect(
            try fixture.store.useSession(tokenID: current.tokenID, at: start + 3601, idleTimeout: 900) == .active)
    }

    @Test func migrationsAreNamedAndIdempotentBesideTheStudyIndex() throws {
        let fixture = try IdentityFixture()
        let path = fixture.folder.appendingPathComponent("index.sqlite")
        let index = try SQLiteStudyIndex(path: path, keys: fixture.keys)
        try fixture.person("dr.a", .physician)
        let again = try SQLiteAccountStore(path: path, keys: fixture.keys)
        #expect(try again.account(tenant: "default", username: "dr.a")?.role == .physician)
        #expect(index.catalog().instances.isEmpty)
        let pool = try DatabasePool(path: path.path)
        let applied = try pool.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        // The accounts' migrations and the study index's, each recorded once, side by side in one file.
        #expect(
            Set(applied) == [
                "identity v1: accounts, care teams, break-the-glass grants, sessions",
                "archive v1: studies, series, instances, originals, deletions, pending blobs, audit anchor",
                "jobs v1: background work taken by exactly one worker",
            ])
        #expect(applied.count == 3)
        let tables = try pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        #expect(
            Set(["accounts", "care_team_members", "break_glass_grants", "sessions", "revoked_tokens", "studies"])
                .isSubset(of: Set(tables)))
    }

    /// Two pools on one file, as `facet users` beside a running server: writes of one are read by the other, and
    /// concurrent writers wait for each other instead of failing.
    @Test func twoStoresOnOneFileSeeEachOthersWrites() async throws {
        let fixture = try IdentityFixture()
        let path = fixture.folder.appendingPathComponent("index.sqlite")
        let other = try SQLiteAccountStore(path: path, keys: fixture.keys)
        let hash = try fixture.hasher.hash("whatever password")
        let first = fixture.store
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<20 {
                let store = index.isMultiple(of: 2) ? first : other
                group.addTask {
                    try? store.createAccount(
                        Account(tenant: "default", username: "user\(index)", role: .nurse, passwordHash: hash))
                }
            }
        }
        #expect(try first.accounts(tenant: "default").count == 20)
        #expect(try other.accounts(tenant: "default").count == 20)
    }
}

@Suite struct IdentityAdministrationTests {
    let start = IdentityFixture.start

    @Test func addingAPersonWithoutAPasswordGeneratesOneThatLogsIn() throws {
        let fixture = try IdentityFixture()
        let credentials = try fixture.administration.add(tenant: "default", username: "pm", role: .practiceManager)
        let password = try #require(credentials.generatedPassword)
        #expect(password.count >= 20 && credentials.clientID == nil)
        let uri = try #require(credentials.otpauthURI)
        #expect(uri.hasPrefix("otpauth://totp/Facet:pm?secret=") && uri.hasSuffix("&issuer=Facet"))
        let account = try #require(try fixture.store.account(tenant: "default", username: "pm"))
        let totp = TOTP(secret: try #require(account.totpSecret))
        #expect(uri == totp.provisioningURI(account: "pm"))
        #expect(fixture.hasher.verify(password, against: account.passwordHash))
        #expect(try fixture.databaseBytes().range(of: Data(password.utf8)) == nil)
        _ = try fixture.login.login(
            tenant: "default", username: "pm", password: password, totp: totp.code(at: start), now: start)
    }

    @Test func servicesGetClientCredentialsAndNoTOTP() throws {
        let fixture = try IdentityFixture()
        let credentials = try fixture.administration.add(tenant: "default", username: "emr", role: .integration)
        #expect(credentials.otpauthURI == nil && credentials.generatedPassword == nil)
        let secret = try #require(credentials.clientSecret)
        #expect(try #require(credentials.clientID).hasPrefix("facet-") && secret.count >= 43)
        #expect(try fixture.store.account(tenant: "default", username: "emr")?.totpSecret == nil)
        #expect(throws: ArchiveError.self) {
            try fixture.administration.add(
                tenant: "default", username: "dev", role: .device, password: "a password 123")
        }
        #expect(throws: ArchiveError.self) { try fixture.administration.resetMFA(tenant: "default", username: "emr") }
    }

    @Test func badNamesAndShortPasswordsAreRefused() throws {
        let fixture = try IdentityFixture()
        for name in ["", "Alice", "-x", "a b", "a/b", String(repeating: "a", count: 65), "é"] {
            #expect(throws: ArchiveError.self) {
                try fixture.administration.add(tenant: "default", username: name, role: .nurse)
            }
        }
        #expect(throws: ArchiveError.self) {
            try fixture.administration.add(tenant: "bad tenant", username: "ok", role: .nurse)
        }
        #expect(throws: ArchiveError.self) {
            try fixture.administration.add(tenant: "default", username: "ok", role: .nurse, password: "short")
        }
        #expect(try fixture.store.accounts(tenant: nil).isEmpty)
    }

    @Test func resetMFAReplacesTheSecretAndEndsSessions() throws {
        let fixture = try IdentityFixture()
        let old = try fixture.person("dr.a", .physician)
        let token = try fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician, now: start)
        let uri = try fixture.administration.resetMFA(tenant: "default", username: "dr.a")
        let account = try #require(try fixture.store.account(tenant: "default", username: "dr.a"))
        #expect(
            account.totpSecret != old.secret
                && uri == TOTP(secret: account.totpSecret!).provisioningURI(account: "dr.a"))
        #expect(throws: ArchiveError.self) { try fixture.tokens.verify(token.accessToken, now: start + 1) }
        #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "correct horse 1", totp: old.code(at: start), now: start)
                == .refused(.wrongTOTP))
    }

    @Test func setPasswordChangesItEndsSessionsAndClearsALockout() throws {
        let fixture = try IdentityFixture()
        let totp = try fixture.person("dr.a", .physician)
        let token = try fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician, now: start)
        try fixture.store.updateAccount(tenant: "default", username: "dr.a") { (account) throws(ArchiveError) in
            account.lockedUntil = start + 900
        }
        #expect(
            try fixture.administration.setPassword(tenant: "default", username: "dr.a", password: "new password 22")
                == nil)
        #expect(throws: ArchiveError.self) { try fixture.tokens.verify(token.accessToken, now: start + 1) }
        #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "correct horse 1", totp: totp.code(at: start), now: start
            )
                == .refused(.wrongPassword))
        #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "new password 22", totp: totp.code(at: start), now: start
            )
            .isGranted)
    }

    @Test func enablingAllowsLoginsAgain() throws {
        let fixture = try IdentityFixture()
        let totp = try fixture.person("dr.a", .physician)
        try fixture.administration.setStatus(tenant: "default", username: "dr.a", .disabled)
        #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "correct horse 1", totp: totp.code(at: start), now: start
            )
                == .refused(.disabled))
        try fixture.administration.setStatus(tenant: "default", username: "dr.a", .active)
        #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "correct horse 1", totp: totp.code(at: start), now: start
            )
            .isGranted)
    }

    @Test func theLastActiveSystemAdminOfATenantStaysWhoeverAsks() throws {
        let fixture = try IdentityFixture()
        try fixture.person("root", .systemAdmin)
        try fixture.person("root", .systemAdmin, tenant: "clinic-b")
        let administration = fixture.administration
        for change in [
            { try administration.setStatus(tenant: "default", username: "root", .disabled) },
            { try administration.setRole(tenant: "default", username: "root", role: .nurse) },
        ] {
            #expect {
                try change()
            } throws: { ($0 as? ArchiveError)?.code == .conflict }
        }
        #expect(try fixture.store.account(tenant: "default", username: "root")?.role == .systemAdmin)
        // Another tenant's system admin does not count; a second one of the same tenant does.
        try fixture.person("root2", .systemAdmin)
        try administration.setStatus(tenant: "default", username: "root", .disabled)
        #expect(throws: ArchiveError.self) {
            try administration.setRole(tenant: "default", username: "root2", role: .nurse)
        }
        // Enabling is never refused, and a disabled system admin may be given another role.
        try administration.setStatus(tenant: "default", username: "root", .active)
        try administration.setStatus(tenant: "default", username: "root", .disabled)
        try administration.setRole(tenant: "default", username: "root", role: .nurse)
        #expect(try fixture.store.account(tenant: "default", username: "root")?.role == .nurse)
    }

    @Test func aRoleChangeEndsTheSessionsAndKeepsPeopleAndMachinesApart() throws {
        let fixture = try IdentityFixture()
        try fixture.person("dr.a", .physician)
        _ = try fixture.administration.add(tenant: "default", username: "emr", role: .integration)
        let issued = try fixture.tokens.issue(tenant: "default", username: "dr.a", role: .physician)
        try fixture.administration.setRole(tenant: "default", username: "dr.a", role: .nurse)
        #expect(try fixture.store.account(tenant: "default", username: "dr.a")?.role == .nurse)
        #expect(throws: ArchiveError.self) { try fixture.tokens.verify(issued.accessToken) }
        for (username, role) in [("dr.a", Role.device), ("emr", .physician)] {
            #expect {
                try fixture.administration.setRole(tenant: "default", username: username, role: role)
            } throws: { ($0 as? ArchiveError)?.code == .invalidInput }
        }
        #expect {
            try fixture.administration.setRole(tenant: "default", username: "dr.a", role: .nurse, by: "dr.a")
        } throws: { ($0 as? ArchiveError)?.code == .conflict }
        #expect {
            try fixture.administration.setStatus(tenant: "default", username: "dr.a", .disabled, by: "dr.a")
        } throws: { ($0 as? ArchiveError)?.code == .conflict }
    }
}
