import Archive
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import ArchiveServer

/// `/api/v1/users`: account administration over HTTP for practice managers and system admins, within their tenant,
/// with the rules `facet users` applies.
@Suite struct UserRoutesTests {
    /// One request as `token`'s holder (none when nil), with an optional JSON body.
    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, token: String?,
        json body: String? = nil
    ) async throws -> Answer {
        var fields: [(HTTPField.Name, String)] = []
        if let token { fields.append(AuthTests.bearer(token)) }
        if body != nil { fields.append((.contentType, "application/json")) }
        return Answer(
            try await client.execute(
                uri: uri, method: method, headers: headers(fields), body: body.map { ByteBuffer(string: $0) }))
    }

    /// A person's login; the token, or nil when refused.
    static func login(_ client: some TestClientProtocol, _ username: String, _ password: String, totp: String)
        async throws -> String?
    {
        let body = try JSONSerialization.data(withJSONObject: [
            "username": username, "password": password, "totp": totp,
        ])
        let answer = try await call(
            client, .post, "/api/v1/auth/login", token: nil, json: String(decoding: body, as: UTF8.self))
        guard answer.status == .ok else { return nil }
        return (try JSONSerialization.jsonObject(with: answer.body) as? [String: Any])?["access_token"] as? String
    }

    static let password = "a fine passphrase 7"

    /// A person with `password`, and a token of theirs as a login would have given them.
    static func person(_ archive: TestArchive, _ username: String, _ role: Role) async throws -> (
        uri: String, token: String
    ) {
        let made = try await archive.identity.administration.add(
            tenant: "default", username: username, role: role, password: password)
        let token = try await archive.identity.tokens.issue(tenant: "default", username: username, role: role)
        return (try #require(made.otpauthURI), token.accessToken)
    }

    /// Whether `token` still opens a session.
    static func works(_ client: some TestClientProtocol, _ token: String) async throws -> Bool {
        try await call(client, .get, "/api/v1/auth/me", token: token).status == .ok
    }

    static func object(_ answer: Answer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: answer.body) as? [String: Any])
    }

    static func auditLog(_ archive: TestArchive) async throws -> String {
        await archive.service.audit.flush()
        return try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
    }

    @Test func theListHoldsTheTenantsAccountsAndNoSecret() async throws {
        let archive = try await TestArchive()
        let admin = try await archive.token(for: .systemAdmin, username: "admin")
        let device = try await archive.identity.administration.add(tenant: "default", username: "camera", role: .device)
        _ = try await archive.identity.administration.add(tenant: "other-clinic", username: "elsewhere", role: .nurse)
        let stored = try await archive.identity.store.accounts(tenant: "default")
        try await archive.bareApp.test(.router) { client in
            let answer = try await Self.call(client, .get, "/api/v1/users", token: admin)
            #expect(answer.status == .ok)
            let list = try #require(try JSONSerialization.jsonObject(with: answer.body) as? [[String: Any]])
            #expect(list.map { $0["username"] as? String } == ["admin", "camera", "tester"])
            let tester = try #require(list.first { $0["username"] as? String == "tester" })
            #expect(tester["role"] as? String == "physician" && tester["status"] as? String == "active")
            #expect(tester["tenant"] as? String == "default" && tester["mfa"] as? Bool == true)
            #expect(tester["locked"] as? Bool == false && tester["locked_until"] == nil)
            #expect((tester["created"] as? String)?.hasSuffix("Z") == true)
            #expect(list.first { $0["username"] as? String == "camera" }?["client_id"] as? String == device.clientID)
            let keys = Set(list.flatMap(\.keys))
            #expect(!keys.contains { $0.contains("hash") || $0.contains("secret") || $0.contains("password") })
            // Neither the hashes nor the TOTP secrets, in any spelling.
            let text = String(decoding: answer.body, as: UTF8.self)
            for account in stored {
                #expect(!text.contains(account.passwordHash))
                if let secret = account.totpSecret { #expect(!text.contains(Base32.encode(secret))) }
            }
        }
    }

    @Test func oneAccountIsReadAndAnotherTenantsIsNotFound() async throws {
        let archive = try await TestArchive()
        let manager = try await archive.token(for: .practiceManager, username: "pm")
        _ = try await archive.identity.administration.add(tenant: "other-clinic", username: "elsewhere", role: .nurse)
        try await archive.bareApp.test(.router) { client in
            let tester = try await Self.call(client, .get, "/api/v1/users/tester", token: manager)
            #expect(tester.status == .ok)
            #expect(try Self.object(tester)["username"] as? String == "tester")
            for uri in ["/api/v1/users/elsewhere", "/api/v1/users/nobody", "/api/v1/users/Not%20A%20Name"] {
                #expect(try await Self.call(client, .get, uri, token: manager).status == .notFound, "\(uri)")
            }
            for (method, uri) in [
                (HTTPRequest.Method.post, "/api/v1/users/elsewhere/disable"), (.post, "/api/v1/users/elsewhere/enable"),
                (.post, "/api/v1/users/elsewhere/reset-mfa"), (.post, "/api/v1/users/elsewhere/password"),
            ] {
                #expect(try await Self.call(client, method, uri, token: manager).status == .notFound, "\(uri)")
            }
            let role = try await Self.call(
                client, .put, "/api/v1/users/elsewhere/role", token: manager, json: #"{"role":"physician"}"#)
            #expect(role.status == .notFound)
        }
        // The other tenant's account is untouched.
        let elsewhere = try await #require(
            try archive.identity.store.account(tenant: "other-clinic", username: "elsewhere"))
        #expect(elsewhere.status == .active && elsewhere.role == .nurse)
    }

    @Test func aCreatedPersonGetsTheCommandLinesAnswerAndLogsIn() async throws {
        let archive = try await TestArchive()
        let admin = try await archive.token(for: .systemAdmin, username: "admin")
        try await archive.bareApp.test(.router) { client in
            let made = try await Self.call(
                client, .post, "/api/v1/users", token: admin, json: #"{"username":"nurse.jo","role":"nurse"}"#)
            #expect(made.status == .created)
            #expect(made.headers[.location] == "https://archive.example/api/v1/users/nurse.jo")
            #expect(made.headers[.cacheControl] == "no-store")
            let answer = try Self.object(made)
            #expect(Set(answer.keys) == ["username", "role", "tenant", "otpauth_uri", "password"])
            #expect(answer["role"] as? String == "nurse" && answer["tenant"] as? String == "default")
            let password = try #require(answer["password"] as? String)
            let uri = try #require(answer["otpauth_uri"] as? String)
            #expect(uri.hasPrefix("otpauth://totp/Facet:nurse.jo?"))
            #expect(try await Self.login(client, "nurse.jo", password, totp: try AuthTests.code(uri)) != nil)
            // A chosen password is not repeated.
            let chosen = try await Self.call(
                client, .post, "/api/v1/users", token: admin,
                json: #"{"username":"dr.kim","role":"physician","password":"a fine passphrase 7"}"#)
            #expect(chosen.status == .created)
            #expect(Set(try Self.object(chosen).keys) == ["username", "role", "tenant", "otpauth_uri"])
            let kim = try #require(try Self.object(chosen)["otpauth_uri"] as? String)
            #expect(try await Self.login(client, "dr.kim", "a fine passphrase 7", totp: try AuthTests.code(kim)) != nil)
        }
        await #expect(try archive.identity.store.account(tenant: "default", username: "nurse.jo")?.role == .nurse)
    }

    @Test func aCreatedMachineGetsClientCredentialsThatWork() async throws {
        let archive = try await TestArchive()
        let manager = try await archive.token(for: .practiceManager, username: "pm")
        try await archive.bareApp.test(.router) { client in
            let made = try await Self.call(
                client, .post, "/api/v1/users", token: manager, json: #"{"username":"camera-2","role":"device"}"#)
            #expect(made.status == .created)
            let answer = try Self.object(made)
            #expect(Set(answer.keys) == ["username", "role", "tenant", "client_id", "client_secret"])
            let id = try #require(answer["client_id"] as? String)
            let secret = try #require(answer["client_secret"] as? String)
            let token = try await client.execute(
                uri: "/api/v1/auth/token", method: .post,
                headers: headers([(.contentType, "application/x-www-form-urlencoded")]),
                body: ByteBuffer(string: "grant_type=client_credentials&client_id=\(id)&client_secret=\(secret)"))
            #expect(token.status == .ok)
        }
    }

    @Test func refusedCreationsSayWhy() async throws {
        let archive = try await TestArchive()
        let admin = try await archive.token(for: .systemAdmin, username: "admin")
        try await archive.bareApp.test(.router) { client in
            for (body, status) in [
                (#"{"username":"tester","role":"nurse"}"#, HTTPResponse.Status.conflict),
                (#"{"username":"Bad Name","role":"nurse"}"#, .unprocessableContent),
                (#"{"username":"new-one","role":"king"}"#, .unprocessableContent),
                (#"{"username":"new-one","role":"nurse","password":"short"}"#, .unprocessableContent),
                (#"{"username":"new-one","role":"device","password":"a fine passphrase 7"}"#, .unprocessableContent),
                (#"{"username":"new-one"}"#, .badRequest),
                (#"{"username":"new-one","role":"nurse","password":12}"#, .badRequest),
                ("not json", .badRequest),
            ] {
                let answer = try await Self.call(client, .post, "/api/v1/users", token: admin, json: body)
                #expect(answer.status == status, "\(body)")
                #expect(try Self.object(answer)["error"] is String)
                #expect(!String(decoding: answer.body, as: UTF8.self).contains("a fine passphrase"))
            }
        }
        await #expect(try archive.identity.store.account(tenant: "default", username: "new-one") == nil)
        await #expect(try archive.identity.store.account(tenant: "default", username: "tester")?.role == .physician)
    }

    @Test func disablingEndsTheSessionsAndRefusesLoginsUntilEnabled() async throws {
        let archive = try await TestArchive()
        let admin = try await archive.token(for: .systemAdmin, username: "admin")
        let (uri, session) = try await Self.person(archive, "nurse.jo", .nurse)
        try await archive.bareApp.test(.router) { client in
            #expect(try await Self.works(client, session))
            let disabled = try await Self.call(client, .post, "/api/v1/users/nurse.jo/disable", token: admin)
            #expect(disabled.status == .ok)
            #expect(try Self.object(disabled)["status"] as? String == "disabled")
            #expect(try await !Self.works(client, session))
            #expect(try await Self.login(client, "nurse.jo", Self.password, totp: try AuthTests.code(uri)) == nil)
            let enabled = try await Self.call(client, .post, "/api/v1/users/nurse.jo/enable", token: admin)
            #expect(enabled.status == .ok)
            #expect(try Self.object(enabled)["status"] as? String == "active")
            #expect(try await Self.login(client, "nurse.jo", Self.password, totp: try AuthTests.code(uri)) != nil)
        }
        await #expect(try archive.identity.store.account(tenant: "default", username: "nurse.jo")?.status == .active)
    }

    @Test func resetMFAMakesTheOldSecretUselessAndTheNewOneWork() async throws {
        let archive = try await TestArchive()
        let manager = try await archive.token(for: .practiceManager, username: "pm")
        let (old, session) = try await Self.person(archive, "dr.kim", .physician)
        try await archive.bareApp.test(.router) { client in
            let reset = try await Self.call(client, .post, "/api/v1/users/dr.kim/reset-mfa", token: manager)
            #expect(reset.status == .ok)
            let answer = try Self.object(reset)
            #expect(Set(answer.keys) == ["username", "tenant", "otpauth_uri"])
            let new = try #require(answer["otpauth_uri"] as? String)
            #expect(new != old)
            #expect(try await !Self.works(client, session))
            #expect(try await Self.login(client, "dr.kim", Self.password, totp: try AuthTests.code(old)) == nil)
            #expect(try await Self.login(client, "dr.kim", Self.password, totp: try AuthTests.code(new)) != nil)
            // A machine has no TOTP to reset.
            _ = try await archive.identity.administration.add(tenant: "default", username: "emr", role: .integration)
            let machine = try await Self.call(client, .post, "/api/v1/users/emr/reset-mfa", token: manager)
            #expect(machine.status == .unprocessableContent)
        }
    }

    @Test func aNewPasswordIsGeneratedOrTakenAndTheOldOneStops() async throws {
        let archive = try await TestArchive()
        let admin = try await archive.token(for: .systemAdmin, username: "admin")
        let (uri, session) = try await Self.person(archive, "dr.kim", .physician)
        try await archive.bareApp.test(.router) { client in
            let generated = try await Self.call(client, .post, "/api/v1/users/dr.kim/password", token: admin)
            #expect(generated.status == .ok)
            let password = try #require(try Self.object(generated)["password"] as? String)
            #expect(password.count >= AccountAdministration.minimumPasswordLength)
            #expect(try await !Self.works(client, session))
            #expect(try await Self.login(client, "dr.kim", Self.password, totp: try AuthTests.code(uri)) == nil)
            #expect(try await Self.login(client, "dr.kim", password, totp: try AuthTests.code(uri)) != nil)
            let weak = try await Self.call(
                client, .post, "/api/v1/users/dr.kim/password", token: admin, json: #"{"password":"short"}"#)
            #expect(weak.status == .unprocessableContent)
            let chosen = try await Self.call(
                client, .post, "/api/v1/users/dr.kim/password", token: admin,
                json: #"{"password":"another passphrase 9"}"#)
            #expect(chosen.status == .ok)
            #expect(Set(try Self.object(chosen).keys) == ["username", "tenant"])
            #expect(
                try await Self.login(
                    client, "dr.kim", "another passphrase 9", totp: try AuthTests.code(uri, stepsAhead: 1)) != nil)
        }
    }

    @Test func aRoleChangeTakesEffectAndEndsTheSessions() async throws {
        let archive = try await TestArchive()
        let admin = try await archive.token(for: .systemAdmin, username: "admin")
        let session = try await Self.person(archive, "nurse.jo", .nurse).token
        try await archive.bareApp.test(.router) { client in
            let changed = try await Self.call(
                client, .put, "/api/v1/users/nurse.jo/role", token: admin, json: #"{"role":"physician"}"#)
            #expect(changed.status == .ok)
            #expect(try Self.object(changed)["role"] as? String == "physician")
            #expect(try await !Self.works(client, session))
            for (body, status) in [
                (#"{"role":"device"}"#, HTTPResponse.Status.unprocessableContent),
                (#"{"role":"king"}"#, .unprocessableContent), (#"{}"#, .badRequest),
            ] {
                let answer = try await Self.call(client, .put, "/api/v1/users/nurse.jo/role", token: admin, json: body)
                #expect(answer.status == status, "\(body)")
            }
        }
        await #expect(try archive.identity.store.account(tenant: "default", username: "nurse.jo")?.role == .physician)
    }

    @Test func nobodyDisablesThemselvesOrTheLastSystemAdmin() async throws {
        let archive = try await TestArchive()
        let admin = try await archive.token(for: .systemAdmin, username: "admin")
        let manager = try await archive.token(for: .practiceManager, username: "pm")
        try await archive.bareApp.test(.router) { client in
            for token in [admin, manager] {
                let me = token == admin ? "admin" : "pm"
                let disable = try await Self.call(client, .post, "/api/v1/users/\(me)/disable", token: token)
                #expect(disable.status == .conflict)
                #expect(String(decoding: disable.body, as: UTF8.self).contains("their own account"))
                let role = try await Self.call(
                    client, .put, "/api/v1/users/\(me)/role", token: token, json: #"{"role":"nurse"}"#)
                #expect(role.status == .conflict)
            }
            // The one system admin stays one.
            let last = try await Self.call(client, .post, "/api/v1/users/admin/disable", token: manager)
            #expect(last.status == .conflict)
            #expect(String(decoding: last.body, as: UTF8.self).contains("last active system-admin"))
            let demoted = try await Self.call(
                client, .put, "/api/v1/users/admin/role", token: manager, json: #"{"role":"practice-manager"}"#)
            #expect(demoted.status == .conflict)
            // With a second one, either may go.
            _ = try await Self.call(
                client, .post, "/api/v1/users", token: manager, json: #"{"username":"admin2","role":"system-admin"}"#)
            #expect(try await Self.call(client, .post, "/api/v1/users/admin/disable", token: manager).status == .ok)
            #expect(
                try await Self.call(client, .post, "/api/v1/users/admin2/disable", token: manager).status == .conflict)
        }
        await #expect(try archive.identity.store.account(tenant: "default", username: "admin")?.status == .disabled)
        await #expect(try archive.identity.store.account(tenant: "default", username: "admin2")?.status == .active)
        await #expect(try archive.identity.store.account(tenant: "default", username: "pm")?.status == .active)
    }

    static let endpoints: [(HTTPRequest.Method, String, String?)] = [
        (.get, "/api/v1/users", nil), (.get, "/api/v1/users/tester", nil),
        (.post, "/api/v1/users", #"{"username":"intruder","role":"system-admin"}"#),
        (.post, "/api/v1/users/tester/disable", nil), (.post, "/api/v1/users/tester/enable", nil),
        (.post, "/api/v1/users/tester/reset-mfa", nil), (.post, "/api/v1/users/tester/password", nil),
        (.put, "/api/v1/users/tester/role", #"{"role":"system-admin"}"#),
    ]

    @Test func everyRoleButTheAdministratorsIsRefusedAndOtherTenantsSeeNothing() async throws {
        let archive = try await TestArchive()
        var tokens: [String] = []
        for role in Role.allCases where role != .practiceManager && role != .systemAdmin {
            tokens.append(try await archive.token(for: role))
        }
        let refused = tokens
        let foreign = try await archive.token(for: .systemAdmin, username: "admin-b", tenant: "other-clinic")
        let before = try await archive.identity.store.account(tenant: "default", username: "tester")
        try await archive.bareApp.test(.router) { client in
            for (method, uri, body) in Self.endpoints {
                for token in refused {
                    let answer = try await Self.call(client, method, uri, token: token, json: body)
                    #expect(answer.status == .forbidden, "\(method) \(uri)")
                }
                // Another clinic's admin acts in their own clinic only: a new account lands there, and this
                // clinic's accounts do not exist for them.
                let theirs = try await Self.call(client, method, uri, token: foreign, json: body)
                let own: HTTPResponse.Status? =
                    uri != "/api/v1/users" ? nil : method == .post ? .created : method == .get ? .ok : nil
                #expect(theirs.status == (own ?? .notFound), "\(method) \(uri)")
                if method == .get && uri == "/api/v1/users" {
                    #expect(!String(decoding: theirs.body, as: UTF8.self).contains("\"tester\""))
                }
                #expect(
                    try await Self.call(client, method, uri, token: nil, json: body).status == .unauthorized,
                    "\(method) \(uri)")
            }
        }
        await #expect(try archive.identity.store.account(tenant: "default", username: "tester") == before)
        await #expect(try archive.identity.store.account(tenant: "default", username: "intruder") == nil)
        await #expect(
            try archive.identity.store.account(tenant: "other-clinic", username: "intruder")?.role == .systemAdmin)
    }

    @Test func theAuditEventNamesTheActionAndTheTargetButNoSecret() async throws {
        let archive = try await TestArchive()
        let admin = try await archive.token(for: .systemAdmin, username: "admin")
        let nurse = try await archive.token(for: .nurse, username: "nurse.jo")
        let secrets = try await archive.bareApp.test(.router) { client in
            let made = try await Self.call(
                client, .post, "/api/v1/users", token: admin, json: #"{"username":"dr.kim","role":"physician"}"#)
            _ = try await Self.call(client, .post, "/api/v1/users/dr.kim/disable", token: admin)
            _ = try await Self.call(
                client, .post, "/api/v1/users/dr.kim/password", token: admin,
                json: #"{"password":"chosen passphrase 3"}"#)
            _ = try await Self.call(client, .put, "/api/v1/users/dr.kim/role", token: admin, json: #"{"role":"nurse"}"#)
            _ = try await Self.call(client, .post, "/api/v1/users/tester/disable", token: nurse)
            return try Self.object(made).filter { $0.key == "password" || $0.key == "otpauth_uri" }
                .compactMap { $0.value as? String }
        }
        let log = try await Self.auditLog(archive)
        for action in [
            "account add dr.kim as physician", "account disable dr.kim", "account set-password dr.kim",
            "account set-role dr.kim to nurse", "access denied: account disable tester",
        ] {
            #expect(log.contains("\"action\":\"\(action)\""), "\(action)")
        }
        #expect(log.contains("\"actor\":\"default/admin\""))
        for secret in secrets + ["chosen passphrase 3"] { #expect(!log.contains(secret)) }
    }
}
