import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import ArchiveServer

/// Who is asking, through HTTP: tokens required, logins and client credentials, the access policy on every route
/// family (roles, care teams, tenants), and the audit of refusals.
@Suite struct AuthTests {
    static func bearer(_ token: String) -> (HTTPField.Name, String) { (.authorization, "Bearer \(token)") }

    /// The TOTP code of an `otpauth://` URI's secret, now (or `stepsAhead` steps later: a second login of one
    /// account within one step needs the next code, each code being usable once).
    static func code(_ uri: String, stepsAhead: Int64 = 0) throws -> String {
        let secret = try #require(
            URLComponents(string: uri)?.queryItems?.first(where: { $0.name == "secret" })?.value)
        let totp = TOTP(secret: try #require(Base32.decode(secret)))
        return totp.code(step: totp.step(at: Date()) + stepsAhead)
    }

    @Test func everyArchivePathWantsATokenButHealthCapabilitiesAndLogin() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        guard case .stored = await archive.service.store(photo.bytes) else {
            throw HTTPFailure(.badRequest, "not stored")
        }
        try await archive.bareApp.test(.router) { client in
            for (uri, method) in [
                ("/dicomweb/studies", HTTPRequest.Method.get), ("/dicomweb/studies/\(photo.study)", .get),
                ("/dicomweb/studies/\(photo.study)/rendered", .get), ("/dicomweb/studies", .post),
                ("/api/v1/photos", .post), ("/api/v1/instances/\(photo.instance)/originals", .get),
                ("/api/v1/auth/me", .get), ("/metrics", .get),
            ] {
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .unauthorized, "\(method) \(uri)")
                    #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                }
            }
            // A forged token is refused the same way, with no detail.
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer("eyJhbGciOiJub25lIn0.e30.")])
            ) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("not valid"))
            }
            for uri in ["/health/live", "/health/ready"] {
                try await client.execute(uri: uri, method: .get) { response in #expect(response.status == .ok) }
            }
            try await client.execute(uri: "/dicomweb", method: .options) { response in
                #expect(response.status == .ok)
            }
        }
        // The refusals are audited, with why.
        await archive.service.audit.flush()
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        #expect(log.contains("\"outcome\":\"failure-401\""))
        #expect(log.contains("\"detail\":"))
    }

    @Test func loginLogoutAndWhoAmI() async throws {
        let archive = try await TestArchive()
        let made = try await archive.identity.administration.add(
            tenant: "default", username: "dr-who", role: .physician, password: "correct horse battery")
        let uri = try #require(made.otpauthURI)
        try await archive.bareApp.test(.router) { client in
            func login(_ fields: [String: String]) async throws -> TestResponse {
                try await client.execute(
                    uri: "/api/v1/auth/login", method: .post, headers: headers([(.contentType, "application/json")]),
                    body: ByteBuffer(data: try JSONSerialization.data(withJSONObject: fields)))
            }
            // Wrong password, unknown user, missing TOTP: one answer for all.
            var messages = Set<String>()
            for fields in [
                ["username": "dr-who", "password": "wrong", "totp": try Self.code(uri)],
                ["username": "nobody", "password": "correct horse battery", "totp": "000000"],
                ["username": "dr-who", "password": "correct horse battery"],
            ] {
                let answer = try await login(fields)
                #expect(answer.status == .unauthorized)
                messages.insert(String(buffer: answer.body))
            }
            #expect(messages.count == 1)
            let answer = try await login([
                "username": "dr-who", "password": "correct horse battery", "totp": try Self.code(uri),
            ])
            #expect(answer.status == .ok)
            let body = try #require(try json(answer.body) as? [String: Any])
            #expect(body["token_type"] as? String == "Bearer")
            #expect((body["expires_in"] as? Int ?? 0) > 3600)
            let token = try #require(body["access_token"] as? String)
            try await client.execute(uri: "/api/v1/auth/me", method: .get, headers: headers([Self.bearer(token)])) {
                response in
                let me = try #require(try json(response.body) as? [String: Any])
                #expect(me["username"] as? String == "dr-who" && me["role"] as? String == "physician")
            }
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(token)])
            ) { response in #expect(response.status == .ok) }
            try await client.execute(
                uri: "/api/v1/auth/logout", method: .post, headers: headers([Self.bearer(token)])
            ) { response in #expect(response.status == .noContent) }
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(token)])
            ) { response in #expect(response.status == .unauthorized) }
        }
    }

    @Test func machinesGetTokensByClientCredentialsAndOnlyTheirOwnRights() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        let device = try await archive.identity.administration.add(
            tenant: "default", username: "camera-1", role: .device)
        let emr = try await archive.identity.administration.add(tenant: "default", username: "emr", role: .integration)
        try await archive.bareApp.test(.router) { client in
            func token(form: String, basic: (String, String)? = nil) async throws -> String? {
                var fields = [(HTTPField.Name.contentType, "application/x-www-form-urlencoded")]
                if let basic {
                    fields.append((.authorization, "Basic " + Data("\(basic.0):\(basic.1)".utf8).base64EncodedString()))
                }
                let answer = try await client.execute(
                    uri: "/api/v1/auth/token", method: .post, headers: headers(fields),
                    body: ByteBuffer(string: form))
                guard answer.status == .ok else { return nil }
                return (try json(answer.body) as? [String: Any])?["access_token"] as? String
            }
            let deviceID = try #require(device.clientID)
            let deviceSecret = try #require(device.clientSecret)
            let deviceToken = try #require(
                try await token(
                    form: "grant_type=client_credentials&client_id=\(deviceID)&client_secret=\(deviceSecret)"))
            let emrID = try #require(emr.clientID)
            let emrSecret = try #require(emr.clientSecret)
            let emrToken = try #require(
                try await token(form: "grant_type=client_credentials", basic: (emrID, emrSecret)))
            #expect(
                try await token(form: "grant_type=client_credentials&client_id=\(deviceID)&client_secret=nope") == nil)
            // A capture station stores but does not read; an EMR reads but does not store.
            try await client.execute(
                uri: "/dicomweb/studies", method: .post,
                headers: headers([(.contentType, TestArchive.stowType), Self.bearer(deviceToken)]),
                body: TestArchive.multipart([photo.bytes])
            ) { response in #expect(response.status == .ok) }
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(deviceToken)])
            ) { response in #expect(response.status == .forbidden) }
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(emrToken)])
            ) { response in
                #expect(response.status == .ok)
                let found = try json(response.body) as? [Any]
                #expect(found?.count == 1)
            }
            try await client.execute(
                uri: "/dicomweb/studies", method: .post,
                headers: headers([(.contentType, TestArchive.stowType), Self.bearer(emrToken)]),
                body: TestArchive.multipart([photo.bytes])
            ) { response in #expect(response.status == .forbidden) }
        }
    }

    @Test func careTeamsRolesAndTenantsDecideWhatIsSeen() async throws {
        let archive = try await TestArchive()
        let mine = try TestArchive.photo(TestArchive.metadata(patient: "Own^Patient", id: "OWN-1"))
        let other = try TestArchive.photo(TestArchive.metadata(patient: "Other^Patient", id: "OTHER-1"))
        for photo in [mine, other] {
            guard case .stored = await archive.service.store(photo.bytes) else {
                throw HTTPFailure(.badRequest, "not stored")
            }
        }
        let assistant = try await archive.token(for: .medicalAssistant, username: "ma")
        try await archive.identity.administration.assign(
            tenant: "default", username: "ma", patientID: "OWN-1", issuer: nil)
        let frontDesk = try await archive.token(for: .frontDesk)
        let admin = try await archive.token(for: .systemAdmin)
        let foreign = try await archive.token(for: .physician, username: "dr-elsewhere", tenant: "other-clinic")
        try await archive.bareApp.test(.router) { client in
            // The medical assistant's search holds only the care team's patient.
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(assistant)])
            ) { response in
                let found = try #require(try json(response.body) as? [[String: Any]])
                #expect(found.count == 1)
                #expect(String(buffer: response.body).contains(mine.study))
                #expect(!String(buffer: response.body).contains(other.study))
            }
            try await client.execute(
                uri: "/dicomweb/studies/\(mine.study)/metadata", method: .get,
                headers: headers([Self.bearer(assistant)])
            ) { response in #expect(response.status == .ok) }
            try await client.execute(
                uri: "/dicomweb/studies/\(other.study)/metadata", method: .get,
                headers: headers([Self.bearer(assistant)])
            ) { response in #expect(response.status == .forbidden) }
            // Roles without images: refused within the tenant; admin never implies PHI.
            for token in [frontDesk, admin] {
                try await client.execute(
                    uri: "/dicomweb/studies/\(mine.study)", method: .get, headers: headers([Self.bearer(token)])
                ) { response in #expect(response.status == .forbidden) }
                try await client.execute(
                    uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(token)])
                ) { response in #expect(response.status == .forbidden) }
            }
            // Another tenant's principal: nothing here exists.
            try await client.execute(
                uri: "/dicomweb/studies/\(mine.study)", method: .get, headers: headers([Self.bearer(foreign)])
            ) { response in #expect(response.status == .notFound) }
        }
        await archive.service.audit.flush()
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        #expect(log.contains("\"action\":\"access denied: WADO metadata\"") && log.contains("\"actor\":\"default/ma\""))
        #expect(!log.contains("OWN-1") && !log.contains("Other^Patient"))
    }

    @Test func pathsTheRouterWouldNormaliseAreRefusedSoNothingSkipsTheAudit() async throws {
        let archive = try await TestArchive()
        try await archive.app.test(.router) { client in
            for uri in [
                "//dicomweb/studies", "/dicomweb//studies", "/dicomweb/./studies", "/api/v1/../metrics", "//metrics",
            ] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .badRequest, "\(uri)")
                }
            }
        }
    }

    @Test func existenceIsNotRevealedToOtherTenantsOrToRolesWithoutImages() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        guard case .stored = await archive.service.store(photo.bytes) else {
            throw HTTPFailure(.badRequest, "not stored")
        }
        let foreign = try await archive.token(for: .physician, username: "dr-away", tenant: "other-clinic")
        let frontDesk = try await archive.token(for: .frontDesk)
        try await archive.bareApp.test(.router) { client in
            for (token, expected) in [(foreign, HTTPResponse.Status.notFound), (frontDesk, .forbidden)] {
                var bodies = Set<String>()
                for study in [photo.study, "1.2.3.4.5.6.7.8.9"] {
                    for suffix in [
                        "", "/metadata", "/rendered", "/series/\(photo.series)/instances/\(photo.instance)/frames/1",
                    ] {
                        try await client.execute(
                            uri: "/dicomweb/studies/\(study)\(suffix)", method: .get,
                            headers: headers([Self.bearer(token)])
                        ) { response in
                            #expect(response.status == expected, "\(study)\(suffix)")
                            bodies.insert(String(buffer: response.body))
                        }
                    }
                }
                #expect(bodies.count == 1)
            }
        }
    }

    @Test func aFailedLoginIsAuditedAsAnonymousWithTheClaimedNameAsDetail() async throws {
        let archive = try await TestArchive()
        try await archive.bareApp.test(.router) { client in
            _ = try await client.execute(
                uri: "/api/v1/auth/login", method: .post, headers: headers([(.contentType, "application/json")]),
                body: ByteBuffer(string: "{\"username\":\"tester\",\"password\":\"guess\"}"))
        }
        await archive.service.audit.flush()
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        #expect(log.contains("\"actor\":\"anonymous\"") && log.contains("\"action\":\"access denied: login\""))
        #expect(log.contains("(as default/tester)") && !log.contains("guess"))
    }

    @Test func careTeamsAndBreakTheGlassOverHTTP() async throws {
        let archive = try await TestArchive()
        let first = try TestArchive.photo(TestArchive.metadata(patient: "First^Patient", id: "P-FIRST"))
        let second = try TestArchive.photo(TestArchive.metadata(patient: "Second^Patient", id: "P-SECOND"))
        for photo in [first, second] {
            guard case .stored = await archive.service.store(photo.bytes) else {
                throw HTTPFailure(.badRequest, "not stored")
            }
        }
        let assistant = try await archive.token(for: .medicalAssistant, username: "ma")
        let manager = try await archive.token(for: .practiceManager, username: "pm")
        let frontDesk = try await archive.token(for: .frontDesk)
        let json = headers([(.contentType, "application/json")])
        try await archive.app.test(.router) { client in
            // The physician (the test client) puts the assistant on the first patient's care team.
            try await client.execute(
                uri: "/api/v1/patients/P-FIRST/care-team", method: .put, headers: json,
                body: ByteBuffer(string: "{\"members\":[\"ma\"]}")
            ) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("\"members\":[\"ma\"]"))
            }
            try await client.execute(
                uri: "/api/v1/patients/P-FIRST/care-team", method: .put,
                headers: headers([(.contentType, "application/json"), Self.bearer(frontDesk)]),
                body: ByteBuffer(string: "{\"members\":[]}")
            ) { response in #expect(response.status == .forbidden) }
            func studies(_ token: String) async throws -> String {
                String(
                    buffer: try await client.execute(
                        uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(token)])
                    ).body)
            }
            var seen = try await studies(assistant)
            #expect(seen.contains(first.study) && !seen.contains(second.study))
            // Break the glass for the second patient: a reason is required; then it is open.
            try await client.execute(
                uri: "/api/v1/break-glass", method: .post,
                headers: headers([(.contentType, "application/json"), Self.bearer(assistant)]),
                body: ByteBuffer(string: "{\"patientID\":\"P-SECOND\",\"reason\":\"\"}")
            ) { response in #expect(response.status == .badRequest) }
            try await client.execute(
                uri: "/api/v1/break-glass", method: .post,
                headers: headers([(.contentType, "application/json"), Self.bearer(assistant)]),
                body: ByteBuffer(string: "{\"patientID\":\"P-SECOND\",\"reason\":\"bleeding after filler\"}")
            ) { response in #expect(response.status == .created) }
            seen = try await studies(assistant)
            #expect(seen.contains(second.study))
            try await client.execute(
                uri: "/api/v1/break-glass", method: .get, headers: headers([Self.bearer(manager)])
            ) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("\"username\":\"ma\""))
            }
            // Only a medical assistant breaks the glass.
            try await client.execute(
                uri: "/api/v1/break-glass", method: .post, headers: json,
                body: ByteBuffer(string: "{\"patientID\":\"P-SECOND\",\"reason\":\"curious\"}")
            ) { response in #expect(response.status == .forbidden) }
        }
        await archive.service.audit.flush()
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        let key = try #require(archive.service.keys.patientKey(patientID: "P-SECOND", issuer: nil))
        #expect(log.contains("break the glass (emergency access to patient \(key)"))
        #expect(!log.contains("P-SECOND") && !log.contains("bleeding"))
    }

    @Test func tooManyLoginAttemptsFromOneAddressAreSlowedDown() async throws {
        var archive = try await TestArchive()
        // The limit is 20 attempts in the window; a long window keeps a busy machine's slow hashing out of it.
        archive.settings.loginAttemptWindow = 3600
        try await archive.bareApp.test(.router) { client in
            var statuses: [HTTPResponse.Status] = []
            // Every attempt counts, refused credentials and malformed bodies alike (the latter keep the test from
            // spending its window on password hashing when the machine is busy).
            for attempt in 0..<25 {
                let body = attempt < 3 ? "{\"username\":\"x\",\"password\":\"y\"}" : "{\"username\":\"x\"}"
                let answer = try await client.execute(
                    uri: "/api/v1/auth/login", method: .post, headers: headers([(.contentType, "application/json")]),
                    body: ByteBuffer(string: body))
                statuses.append(answer.status)
                if answer.status == .tooManyRequests { #expect(answer.headers[.retryAfter] != nil) }
            }
            #expect(statuses.prefix(3).allSatisfy { $0 == .unauthorized })
            #expect(statuses.dropFirst(3).prefix(17).allSatisfy { $0 == .badRequest })
            #expect(statuses.suffix(5).allSatisfy { $0 == .tooManyRequests })
        }
    }
}
