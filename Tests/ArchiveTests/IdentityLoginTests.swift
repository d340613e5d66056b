import Foundation
import Testing

@testable import Archive

@Suite struct IdentityLoginTests {
    let start = IdentityFixture.start
    let password = "correct horse 1"

    private func expectInvalid(
        _ body: () async throws -> IssuedToken, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        do {
            let token = try await body()
            Issue.record("accepted with token \(token.tokenID)", sourceLocation: sourceLocation)
        } catch {
            #expect(
                error as? ArchiveError == ArchiveError(.invalidCredentials, "invalid credentials"),
                sourceLocation: sourceLocation)
        }
    }

    @Test func passwordAndTOTPGiveAVerifiableToken() async throws {
        let fixture = try await IdentityFixture()
        let totp = try await fixture.person("dr.a", .physician)
        let token = try await fixture.login.login(
            tenant: "default", username: "dr.a", password: password, totp: totp.code(at: start), now: start)
        let principal = try await fixture.tokens.verify(token.accessToken, now: start + 1)
        #expect(principal == token.principal && principal.role == .physician)
    }

    @Test func everyFailureGetsTheSameMessageWhetherOrNotTheUserExists() async throws {
        var fixture = try await IdentityFixture()
        // Each case is tried twice below: the lockout is tested on its own.
        fixture.loginSettings.maximumFailures = 100
        let totp = try await fixture.person("dr.a", .physician)
        try await fixture.person("gone", .nurse)
        try await fixture.administration.setStatus(tenant: "default", username: "gone", .disabled)
        let code = totp.code(at: start)
        let cases: [(String, String, String, String?, LoginService.Refusal)] = [
            ("default", "nobody", password, code, .unknownAccount),
            ("clinic-b", "dr.a", password, code, .unknownAccount),
            ("default", "dr.a", "wrong password!", code, .wrongPassword),
            ("default", "dr.a", password, "000000" == code ? "111111" : "000000", .wrongTOTP),
            ("default", "dr.a", password, nil, .wrongTOTP),
            ("default", "gone", password, code, .disabled),
            ("default", "Not Valid", password, code, .unknownAccount),
        ]
        for (tenant, username, given, totpCode, refusal) in cases {
            await expectInvalid {
                try await fixture.login.login(
                    tenant: tenant, username: username, password: given, totp: totpCode, now: start)
            }
            await #expect(
                try fixture.login.attempt(
                    tenant: tenant, username: username, password: given, totp: totpCode, now: start)
                    == .refused(refusal), "\(username) in \(tenant)")
        }
    }

    @Test func fiveFailuresWithinFifteenMinutesLockTheAccountForFifteenMinutes() async throws {
        let fixture = try await IdentityFixture()
        let totp = try await fixture.person("dr.a", .physician)
        for minute in 0..<5 {
            let now = start + Double(minute * 60)
            await expectInvalid {
                try await fixture.login.login(
                    tenant: "default", username: "dr.a", password: "wrong password!", totp: totp.code(at: now), now: now
                )
            }
        }
        // Locked: the right password and code are refused, with the same message.
        let locked = start + 5 * 60
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: password, totp: totp.code(at: locked), now: locked)
                == .refused(.locked))
        let stillLocked = start + 4 * 60 + 15 * 60 - 1
        await expectInvalid {
            try await fixture.login.login(
                tenant: "default", username: "dr.a", password: password, totp: totp.code(at: stillLocked),
                now: stillLocked)
        }
        let unlocked = start + 4 * 60 + 15 * 60
        let token = try await fixture.login.login(
            tenant: "default", username: "dr.a", password: password, totp: totp.code(at: unlocked), now: unlocked)
        #expect(token.principal.username == "dr.a")
    }

    @Test func failuresSpreadBeyondTheWindowDoNotLock() async throws {
        let fixture = try await IdentityFixture()
        let totp = try await fixture.person("dr.a", .physician)
        for index in 0..<6 {
            let now = start + Double(index * 4 * 60)
            _ = try await fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "wrong password!", totp: nil, now: now)
        }
        // Failures at 0, 4, 8, 12, 16, 20 min: never five within 15 minutes.
        let now = start + 21 * 60
        await #expect(
            try fixture.login.login(
                tenant: "default", username: "dr.a", password: password, totp: totp.code(at: now), now: now
            ).principal.username == "dr.a")
    }

    @Test func aSuccessClearsEarlierFailures() async throws {
        let fixture = try await IdentityFixture()
        let totp = try await fixture.person("dr.a", .physician)
        for minute in 0..<4 {
            _ = try await fixture.login.attempt(
                tenant: "default", username: "dr.a", password: "wrong password!", totp: nil, now: start + Double(minute)
            )
        }
        _ = try await fixture.login.login(
            tenant: "default", username: "dr.a", password: password, totp: totp.code(at: start + 10), now: start + 10)
        _ = try await fixture.login.attempt(
            tenant: "default", username: "dr.a", password: "wrong password!", totp: nil, now: start + 40)
        let later = start + 70
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: password,
                totp: totp.code(step: totp.step(at: later) + 1),
                now: later
            ).isGranted)
    }

    @Test func aTOTPCodeWorksOnceAndOlderCodesNeverAfterIt() async throws {
        let fixture = try await IdentityFixture()
        let totp = try await fixture.person("dr.a", .physician)
        let code = totp.code(at: start)
        _ = try await fixture.login.login(
            tenant: "default", username: "dr.a", password: password, totp: code, now: start)
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: password, totp: code, now: start + 5)
                == .refused(.wrongTOTP))
        let previous = totp.code(step: totp.step(at: start) - 1)
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "dr.a", password: password, totp: previous, now: start + 5)
                == .refused(.wrongTOTP))
        await #expect(
            try fixture.store.account(tenant: "default", username: "dr.a")?.lastTOTPStep == totp.step(at: start))
    }

    @Test func demoAccountsSkipTOTPOnlyWhenTheServiceAllowsIt() async throws {
        var fixture = try await IdentityFixture()
        _ = try await fixture.administration.add(
            tenant: "default", username: "demo-nurse", role: .nurse, password: password, totpExempt: true, now: start)
        try await fixture.person("dr.a", .physician)
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "demo-nurse", password: password, totp: nil, now: start)
                == .refused(.wrongTOTP))
        fixture.loginSettings.allowTOTPExemptAccounts = true
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "demo-nurse", password: password, totp: nil, now: start
            )
            .isGranted)
        await #expect(
            try fixture.login.attempt(tenant: "default", username: "dr.a", password: password, totp: nil, now: start)
                == .refused(.wrongTOTP))
        await #expect(
            try fixture.login.attempt(
                tenant: "default", username: "demo-nurse", password: "wrong password!", totp: nil, now: start)
                == .refused(.wrongPassword))
    }

    @Test func clientCredentialsGiveAServiceToken() async throws {
        let fixture = try await IdentityFixture()
        let device = try await fixture.administration.add(tenant: "default", username: "station-1", role: .device)
        let id = try #require(device.clientID)
        let secret = try #require(device.clientSecret)
        let token = try await fixture.login.token(clientID: id, clientSecret: secret, now: start)
        await #expect(try fixture.tokens.verify(token.accessToken, now: start + 1).role == .device)
        await expectInvalid { try await fixture.login.token(clientID: id, clientSecret: secret + "x", now: start) }
        await expectInvalid {
            try await fixture.login.token(clientID: "facet-unknown", clientSecret: secret, now: start)
        }
        // A service account cannot log in as a person, even with its secret as password.
        await #expect(
            try fixture.login.attempt(tenant: "default", username: "station-1", password: secret, totp: nil, now: start)
                == .refused(.unknownAccount))
        try await fixture.administration.setStatus(tenant: "default", username: "station-1", .disabled)
        await expectInvalid { try await fixture.login.token(clientID: id, clientSecret: secret, now: start) }
    }

    /// The code of the error `body` throws, or nil when it answers.
    private static func errorCode(
        _ body: () async throws(ArchiveError) -> LoginService.Outcome
    ) async -> ArchiveError.Code? {
        do throws(ArchiveError) {
            _ = try await body()
            return nil
        } catch {
            return error.code
        }
    }

    /// A flood of logins waits for nobody's memory: with the pool's queue full, an attempt is refused at once with
    /// `.busy` (503 with Retry-After) and counts as no failure; once the pool is free, logins work again.
    @Test func aFullIdentityQueueRefusesALoginAsBusyWithoutCountingAFailure() async throws {
        let fixture = try await IdentityFixture()
        let totp = try await fixture.person("dr.a", .physician)
        let pool = BlockingPool(threads: 1, queueLimit: 2)
        let login = LoginService(tokens: fixture.tokens, hasher: fixture.hasher, pool: pool)
        let gate = DispatchSemaphore(value: 0)
        let running = DispatchSemaphore(value: 0)
        // One job holds the thread, two wait: the queue is full.
        var held = [
            Task {
                try await pool.run {
                    running.signal()
                    gate.wait()
                }
            }
        ]
        while running.wait(timeout: .now()) == .timedOut { try await Task.sleep(nanoseconds: 1_000_000) }
        held += (0..<2).map { _ in Task { try await pool.run { gate.wait() } } }
        while pool.waiting < 2 { try await Task.sleep(nanoseconds: 1_000_000) }
        let refused = await Self.errorCode { () async throws(ArchiveError) -> LoginService.Outcome in
            try await login.attempt(tenant: "default", username: "dr.a", password: "wrong", totp: nil, now: start)
        }
        #expect(refused == .busy)
        #expect(try await fixture.store.account(tenant: "default", username: "dr.a")?.failedLogins == [])
        for _ in 0..<3 { gate.signal() }
        for job in held { try await job.value }
        let outcome = try await login.attempt(
            tenant: "default", username: "dr.a", password: password, totp: totp.code(at: start), now: start)
        #expect(outcome.isGranted)
    }
}

extension LoginService.Outcome {
    var isGranted: Bool {
        if case .granted = self { return true }
        return false
    }
}
