import Archive
import DICOMCodec
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import ArchiveServer

/// The authorization matrix of issue 9, generated: every role × every route × own/other patient × own/other tenant
/// × with/without break-the-glass, over HTTP, against the guide's table written out here independently of
/// `AccessPolicy` (so a change to the policy that breaks the table fails). And a property test: QIDO never answers a
/// study its caller may not see, over random care teams and grants.
@Suite struct AuthorizationMatrixTests {
    // The guide's table (issue 9 §3), as the roles' rights.
    static let viewAll: Set<Role> = [.nurse, .physician, .practiceManager, .integration]
    static let viewOwn: Set<Role> = [.medicalAssistant]
    static let store: Set<Role> = [.medicalAssistant, .nurse, .physician, .device]
    static let delete: Set<Role> = [.physician]
    static let admin: Set<Role> = [.practiceManager, .systemAdmin]
    static let audit: Set<Role> = [.auditor, .practiceManager]
    static let careTeam: Set<Role> = [.physician, .practiceManager]
    static let breakGlass: Set<Role> = [.medicalAssistant]

    /// What a route does, as the table sees it.
    enum Kind: String {
        case me, search, read, store, upload, delete, careTeamRead, careTeamWrite, breakGlass, grants, deletions,
            metrics, users
    }

    /// Who asks about whom.
    struct Case: CustomStringConvertible {
        var role: Role
        var sameTenant: Bool
        var ownPatient: Bool
        var brokeGlass: Bool
        var description: String {
            "\(role) \(sameTenant ? "own" : "other") tenant, \(ownPatient ? "own" : "other") patient"
                + (brokeGlass ? ", after break-the-glass" : "")
        }
    }

    /// The expected status, from the table alone.
    static func expected(_ kind: Kind, _ c: Case) -> HTTPResponse.Status {
        let sees = viewAll.contains(c.role) || viewOwn.contains(c.role)
        switch kind {
        case .me:
            return .ok
        case .search:
            return sees ? .ok : .forbidden
        case .read:
            guard sees else { return .forbidden }
            guard c.sameTenant else { return .notFound }
            if viewAll.contains(c.role) { return .ok }
            return c.ownPatient || c.brokeGlass ? .ok : .forbidden
        case .store:
            return store.contains(c.role) ? .ok : .forbidden
        case .upload:
            return store.contains(c.role) ? .created : .forbidden
        case .delete:
            guard delete.contains(c.role) else { return .forbidden }
            return c.sameTenant ? .ok : .notFound
        case .careTeamRead, .careTeamWrite:
            return careTeam.contains(c.role) ? .ok : .forbidden
        case .breakGlass:
            return breakGlass.contains(c.role) ? .created : .forbidden
        case .grants, .deletions:
            return audit.contains(c.role) ? .ok : .forbidden
        case .users:
            return admin.contains(c.role) ? .ok : .forbidden
        case .metrics:
            // Server-wide counts: the operator's own (default) tenant's admins only.
            return admin.contains(c.role) && c.sameTenant ? .ok : .forbidden
        }
    }

    /// Whether the patient's study is in the caller's search answer.
    static func searchFinds(_ c: Case) -> Bool {
        guard c.sameTenant else { return false }
        if viewAll.contains(c.role) { return true }
        return viewOwn.contains(c.role) && (c.ownPatient || c.brokeGlass)
    }

    typealias Photo = (bytes: Data, study: String, series: String, instance: String)

    struct Route: Sendable {
        var name: String
        var kind: Kind
        var method: HTTPRequest.Method
        /// The path for a patient's photo.
        var path: @Sendable (Photo, String) -> String
        var contentType: String? = nil
        /// The body for a patient (a fresh photo for stores).
        var body: @Sendable (String) throws -> ByteBuffer = { _ in ByteBuffer() }
    }

    static func routes() -> [Route] {
        @Sendable func instance(_ p: Photo) -> String {
            "/dicomweb/studies/\(p.study)/series/\(p.series)/instances/\(p.instance)"
        }
        let json = "application/json"
        return [
            Route(name: "me", kind: .me, method: .get, path: { _, _ in "/api/v1/auth/me" }),
            Route(
                name: "QIDO studies", kind: .search, method: .get,
                path: { _, id in "/dicomweb/studies?PatientID=\(id)" }),
            Route(
                name: "QIDO series", kind: .search, method: .get,
                path: { p, _ in "/dicomweb/studies/\(p.study)/series" }),
            Route(
                name: "QIDO instances", kind: .search, method: .get,
                path: { _, id in "/dicomweb/instances?PatientID=\(id)" }),
            Route(name: "WADO study", kind: .read, method: .get, path: { p, _ in "/dicomweb/studies/\(p.study)" }),
            Route(
                name: "WADO series", kind: .read, method: .get,
                path: { p, _ in "/dicomweb/studies/\(p.study)/series/\(p.series)" }),
            Route(name: "WADO instance", kind: .read, method: .get, path: { p, _ in instance(p) }),
            Route(
                name: "WADO study metadata", kind: .read, method: .get,
                path: { p, _ in "/dicomweb/studies/\(p.study)/metadata" }),
            Route(
                name: "WADO instance metadata", kind: .read, method: .get, path: { p, _ in instance(p) + "/metadata" }),
            Route(name: "WADO frames", kind: .read, method: .get, path: { p, _ in instance(p) + "/frames/1" }),
            Route(name: "rendered", kind: .read, method: .get, path: { p, _ in instance(p) + "/rendered" }),
            Route(
                name: "thumbnail", kind: .read, method: .get, path: { p, _ in "/dicomweb/studies/\(p.study)/thumbnail" }
            ),
            Route(
                name: "originals", kind: .read, method: .get,
                path: { p, _ in "/api/v1/instances/\(p.instance)/originals" }),
            Route(
                name: "STOW", kind: .store, method: .post, path: { _, _ in "/dicomweb/studies" },
                contentType: TestArchive.stowType,
                body: { id in TestArchive.multipart([try TestArchive.photo(TestArchive.metadata(id: id)).bytes]) }),
            Route(
                name: "upload", kind: .upload, method: .post, path: { _, _ in "/api/v1/photos" },
                contentType: "multipart/form-data; boundary=b0undary", body: { id in try upload(patient: id) }),
            Route(
                name: "care team read", kind: .careTeamRead, method: .get,
                path: { _, id in "/api/v1/patients/\(id)/care-team" }),
            Route(
                name: "care team write", kind: .careTeamWrite, method: .put,
                // A patient of its own, so that the care teams the reads depend on stay as they are.
                path: { _, _ in "/api/v1/patients/M-SPARE/care-team" }, contentType: json,
                body: { _ in ByteBuffer(string: "{\"members\":[]}") }),
            Route(
                name: "break the glass", kind: .breakGlass, method: .post, path: { _, _ in "/api/v1/break-glass" },
                contentType: json,
                body: { id in ByteBuffer(string: "{\"patientID\":\"\(id)\",\"reason\":\"matrix test\"}") }),
            Route(name: "grants", kind: .grants, method: .get, path: { _, _ in "/api/v1/break-glass" }),
            Route(name: "deletions", kind: .deletions, method: .get, path: { _, _ in "/api/v1/deletions" }),
            Route(name: "users", kind: .users, method: .get, path: { _, _ in "/api/v1/users" }),
            Route(name: "metrics", kind: .metrics, method: .get, path: { _, _ in "/metrics" }),
        ]
    }

    static func upload(patient: String) throws -> ByteBuffer {
        let png = try Data(contentsOf: TestArchive.root.appendingPathComponent("photos/gray.png"))
        let meta = "{\"patient\":{\"id\":\"\(patient)\",\"name\":\"Matrix^Test\"}}"
        var body = Data("--b0undary\r\nContent-Disposition: form-data; name=\"metadata\"\r\n".utf8)
        body += Data("Content-Type: application/json\r\n\r\n\(meta)\r\n".utf8)
        body += Data("--b0undary\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n".utf8)
        body += Data("Content-Type: image/png\r\n\r\n".utf8) + png + Data("\r\n--b0undary--\r\n".utf8)
        return ByteBuffer(bytes: body)
    }

    @Test func everyRoleRouteTenantPatientAndBreakTheGlassGetsWhatTheTableSays() async throws {
        let archive = try await TestArchive()
        let own = try TestArchive.photo(TestArchive.metadata(patient: "Own^Patient", id: "M-OWN"))
        let other = try TestArchive.photo(TestArchive.metadata(patient: "Other^Patient", id: "M-OTHER"))
        for photo in [own, other] {
            guard case .stored = await archive.service.store(photo.bytes) else {
                throw HTTPFailure(.badRequest, "not stored")
            }
        }
        // One account per role and tenant; the default tenant's are all on the own patient's care team.
        var tokens: [String: String] = [:]
        for role in Role.allCases {
            for tenant in ["default", "clinic-b"] {
                let name = "\(tenant == "default" ? "a" : "b")-\(role.rawValue)"
                tokens["\(tenant)/\(role)"] = try await archive.token(for: role, username: name, tenant: tenant)
                // Clinic B's own patient M-OWN (another person: same ID, another clinic) has clinic B's accounts.
                try await archive.identity.administration.assign(
                    tenant: tenant, username: name, patientID: "M-OWN", issuer: nil)
            }
        }
        let routes = Self.routes()
        let tokenTable = tokens
        let (checked, mismatches) = try await archive.bareApp.test(.router) { client in
            var checked = 0
            var mismatches: [String] = []
            // Without a token, every route but the open ones is 401.
            for route in routes {
                let answer = try await client.execute(
                    uri: route.path(own, "M-OWN"), method: route.method,
                    headers: route.contentType.map { headers([(.contentType, $0)]) } ?? [:],
                    body: try route.body("M-OWN"))
                if answer.status != .unauthorized { mismatches.append("no token, \(route.name): \(answer.status)") }
                checked += 1
            }
            for brokeGlass in [false, true] {
                for role in Role.allCases {
                    for sameTenant in [true, false] {
                        let token = try #require(tokenTable["\(sameTenant ? "default" : "clinic-b")/\(role)"])
                        if brokeGlass {
                            // The principal tries to open the other patient (only a medical assistant can).
                            _ = try await client.execute(
                                uri: "/api/v1/break-glass", method: .post,
                                headers: headers([
                                    (.contentType, "application/json"), (.authorization, "Bearer \(token)"),
                                ]),
                                body: ByteBuffer(string: "{\"patientID\":\"M-OTHER\",\"reason\":\"emergency\"}"))
                        }
                        for ownPatient in [true, false] {
                            let c = Case(
                                role: role, sameTenant: sameTenant, ownPatient: ownPatient, brokeGlass: brokeGlass)
                            let id = ownPatient ? "M-OWN" : "M-OTHER"
                            for route in routes {
                                let target = ownPatient ? own : other
                                var fields = headers([(.authorization, "Bearer \(token)")])
                                if let type = route.contentType { fields[.contentType] = type }
                                let answer = try await client.execute(
                                    uri: route.path(target, id), method: route.method, headers: fields,
                                    body: try route.body(id))
                                let want = Self.expected(route.kind, c)
                                checked += 1
                                if answer.status != want {
                                    mismatches.append(
                                        "\(c), \(route.name): \(answer.status.code), expected \(want.code)")
                                    continue
                                }
                                if route.kind == .search && answer.status == .ok && route.name != "QIDO series" {
                                    let found = String(buffer: answer.body).contains(target.study)
                                    if found != Self.searchFinds(c) {
                                        mismatches.append("\(c), \(route.name): study \(found ? "found" : "not found")")
                                    }
                                }
                            }
                            // Delete, on a fresh victim of the patient (it may succeed).
                            let victim = try TestArchive.photo(TestArchive.metadata(id: id))
                            _ = await archive.service.store(victim.bytes)
                            let answer = try await client.execute(
                                uri: "/dicomweb/studies/\(victim.study)", method: .delete,
                                headers: headers([
                                    (.authorization, "Bearer \(token)"), (.contentType, "application/json"),
                                ]),
                                body: ByteBuffer(string: "{\"reason\":\"matrix test\"}"))
                            checked += 1
                            if answer.status != Self.expected(.delete, c) {
                                mismatches.append("\(c), delete: \(answer.status.code)")
                            }
                        }
                    }
                }
            }
            return (checked, mismatches)
        }
        #expect(
            mismatches.isEmpty, "\(mismatches.count) of \(checked): \(mismatches.prefix(20).joined(separator: "; "))")
        #expect(checked > 1000)
    }

    /// A small deterministic generator, so a failing case can be replayed from its seed.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func qidoNeverAnswersAStudyItsCallerMayNotSee(seed: UInt64) async throws {
        var random = SeededGenerator(state: seed)
        let archive = try await TestArchive()
        let patients = (0..<8).map { "Q-\(seed)-\($0)" }
        var studiesOf: [String: [String]] = [:]
        for id in patients {
            for _ in 0..<Int.random(in: 1...2, using: &random) {
                let photo = try TestArchive.photo(TestArchive.metadata(patient: "Prop^\(id)", id: id))
                guard case .stored = await archive.service.store(photo.bytes) else {
                    throw HTTPFailure(.badRequest, "not stored")
                }
                studiesOf[id, default: []].append(photo.study)
            }
        }
        // Three medical assistants with random care teams and random grants.
        var visible: [String: Set<String>] = [:]
        var tokens: [String: String] = [:]
        for n in 0..<3 {
            let name = "ma-\(n)"
            tokens[name] = try await archive.token(for: .medicalAssistant, username: name)
            var allowed = Set<String>()
            for id in patients where Bool.random(using: &random) {
                try await archive.identity.administration.assign(
                    tenant: "default", username: name, patientID: id, issuer: nil)
                allowed.insert(id)
            }
            for id in patients where !allowed.contains(id) && Int.random(in: 0..<4, using: &random) == 0 {
                let principal = Principal(tenant: "default", username: name, role: .medicalAssistant)
                let key = try #require(archive.identity.patient(id, issuer: nil, tenant: "default"))
                _ = try await archive.identity.access.breakGlass(principal, patient: key, reason: "property test")
                allowed.insert(id)
            }
            visible[name] = Set(allowed.flatMap { studiesOf[$0] ?? [] })
        }
        let everyStudy = Set(studiesOf.values.joined())
        let tokenTable = tokens
        let visibleTable = visible
        let studyTable = studiesOf
        try await archive.bareApp.test(.router) { client in
            for (name, token) in tokenTable {
                let auth = headers([(.authorization, "Bearer \(token)")])
                let expected = try #require(visibleTable[name])
                // Every page size: paging must not let an invisible study in, nor lose a visible one.
                for limit in [1, 3, 50] {
                    var seen = Set<String>()
                    var offset = 0
                    while offset < 100 {
                        let answer = try await client.execute(
                            uri: "/dicomweb/studies?limit=\(limit)&offset=\(offset)", method: .get, headers: auth)
                        let items = (try json(answer.body) as? [[String: Any]]) ?? []
                        for item in items {
                            if let uid = ((item["0020000D"] as? [String: Any])?["Value"] as? [String])?.first {
                                seen.insert(uid)
                            }
                        }
                        if items.count < limit { break }
                        offset += limit
                    }
                    #expect(seen == expected, "seed \(seed), \(name), limit \(limit)")
                }
                // A search by the ID of a patient the caller may not see finds nothing.
                for id in patients where (studyTable[id] ?? []).allSatisfy({ !expected.contains($0) }) {
                    let answer = try await client.execute(
                        uri: "/dicomweb/studies?PatientID=\(id)", method: .get, headers: auth)
                    #expect(String(buffer: answer.body) == "[]", "seed \(seed), \(name), \(id)")
                }
                // Instance and series searches hold nothing else.
                for uri in ["/dicomweb/instances", "/dicomweb/series"] {
                    let body = String(buffer: try await client.execute(uri: uri, method: .get, headers: auth).body)
                    for study in everyStudy.subtracting(expected) { #expect(!body.contains(study), "\(uri) \(name)") }
                    for study in expected { #expect(body.contains(study), "\(uri) \(name)") }
                }
            }
        }
    }
}
