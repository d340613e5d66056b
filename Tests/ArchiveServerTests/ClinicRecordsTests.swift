import Archive
import DICOMCodec
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import ArchiveServer

/// The clinic's records around the images over HTTP (issue 12 §1-2): patients, treatments with versions, tags beside
/// the instances, the timeline, before/after pairs, annotation layers and consents, each decided by the access
/// policy, sealed at rest and still there after a restart.
@Suite struct ClinicRecordsTests {
    struct Reply {
        var status: HTTPResponse.Status
        var body: Any?
        var headers: HTTPFields
        var object: [String: Any] { body as? [String: Any] ?? [:] }
        var list: [[String: Any]] { body as? [[String: Any]] ?? [] }
    }

    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, _ fields: Any? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        let body = try fields.map { ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: $0)) }
        return try await client.execute(uri: uri, method: method, headers: extra, body: body) { response in
            let data = Data(response.body.readableBytesView)
            return Reply(
                status: response.status, body: data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data),
                headers: response.headers)
        }
    }

    /// Patient P-1 (Doe^Jane): a frontal and a left-lateral photo before (2026-01-05), a frontal after (2026-03-01)
    /// and at follow-up (2026-06-01), all of the face; patient P-2 (Roe^Richard): one photo. Returns the UIDs.
    static func storeVisits(_ archive: TestArchive) async throws -> [String: String] {
        var uids: [String: String] = [:]
        let visits: [(String, String, String, String, String)] = [
            ("before-frontal", "P-1", "20260105", "frontal", "before"),
            ("before-lateral", "P-1", "20260105", "lateral-left", "before"),
            ("after-frontal", "P-1", "20260301", "frontal", "after"),
            ("followup-frontal", "P-1", "20260601", "frontal", "follow-up"),
            ("other-patient", "P-2", "20260105", "frontal", "before"),
        ]
        for (name, id, date, view, timing) in visits {
            var metadata = TestArchive.metadata(patient: id == "P-1" ? "Doe^Jane" : "Roe^Richard", id: id, date: date)
            try metadata.setRegion("face")
            try metadata.setView(view)
            try metadata.setTiming(timing)
            let photo = try TestArchive.photo(metadata)
            guard case .stored = await archive.service.store(photo.bytes) else { throw HTTPFailure(.badRequest, name) }
            uids[name] = photo.instance
        }
        return uids
    }

    @Test func patientsTreatmentsTagsTimelineAndPairs() async throws {
        var archive = try await TestArchive()
        let uids = try await Self.storeVisits(archive)
        let treatmentID: String = try await archive.app.test(.router) { client in
            // Patients: named by their images, searched by name prefix, ID, birth date.
            var reply = try await Self.call(client, .get, "/api/v1/patients")
            #expect(reply.status == .ok && reply.object["total"] as? Int == 2)
            let first = try #require((reply.object["patients"] as? [[String: Any]])?.first)
            #expect(first["patientID"] as? String == "P-1" && first["name"] as? String == "Doe^Jane")
            #expect(first["instances"] as? Int == 4 && first["lastVisit"] as? String == "2026-06-01")
            reply = try await Self.call(client, .get, "/api/v1/patients?name=ro")
            #expect((reply.object["patients"] as? [[String: Any]])?.map { $0["patientID"] as? String } == ["P-2"])
            reply = try await Self.call(client, .get, "/api/v1/patients?patientID=P-1&limit=1")
            #expect(reply.object["total"] as? Int == 1)
            #expect(try await Self.call(client, .get, "/api/v1/patients?limit=0").status == .badRequest)
            #expect(try await Self.call(client, .get, "/api/v1/patients?sort=name").status == .badRequest)
            // Registered before any image; a second registration of the same patient is a conflict.
            reply = try await Self.call(
                client, .post, "/api/v1/patients",
                ["patientID": "P-3", "name": "Poe^Edgar", "birthDate": "1970-01-19", "sex": "m"])
            #expect(reply.status == .created && reply.object["registered"] as? Bool == true)
            #expect(reply.object["sex"] as? String == "M" && reply.object["instances"] as? Int == 0)
            #expect(try await Self.call(client, .post, "/api/v1/patients", ["patientID": "P-3"]).status == .conflict)
            #expect(try await Self.call(client, .post, "/api/v1/patients", ["patientID": "P-1"]).status == .conflict)
            #expect(try await Self.call(client, .post, "/api/v1/patients", ["name": "x"]).status == .badRequest)
            reply = try await Self.call(client, .get, "/api/v1/patients?birthDate=1970-01-19")
            #expect(reply.object["total"] as? Int == 1)
            #expect(try await Self.call(client, .get, "/api/v1/patients/P-3").object["name"] as? String == "Poe^Edgar")
            #expect(try await Self.call(client, .get, "/api/v1/patients/P-9").status == .notFound)

            // Treatments: created, changed with If-Match, a stale change refused, deleted as a version.
            reply = try await Self.call(
                client, .post, "/api/v1/patients/P-1/treatments",
                ["service": "Botox forehead", "date": "2026-02-01", "regions": ["Face"], "provider": "Dr A"])
            #expect(reply.status == .created && reply.headers[.eTag] == "\"1\"")
            let id = try #require(reply.object["id"] as? String)
            #expect(reply.object["regions"] as? [String] == ["face"])
            reply = try await Self.call(
                client, .put, "/api/v1/patients/P-1/treatments/\(id)",
                ["service": "Botox forehead", "date": "2026-02-01", "regions": ["face"], "notes": "20 U"],
                headers: headers([(.ifMatch, "\"1\"")]))
            #expect(reply.status == .ok && reply.object["version"] as? Int == 2)
            reply = try await Self.call(
                client, .put, "/api/v1/patients/P-1/treatments/\(id)", ["service": "Lost", "date": "2026-02-01"],
                headers: headers([(.ifMatch, "\"1\"")]))
            #expect(reply.status == .conflict)
            // A version past any real one is refused, not added to (it would overflow).
            reply = try await Self.call(
                client, .put, "/api/v1/patients/P-1/treatments/\(id)", ["service": "Lost", "date": "2026-02-01"],
                headers: headers([(.ifMatch, "\"9223372036854775807\"")]))
            #expect(reply.status == .badRequest)
            #expect(
                try await Self.call(client, .post, "/api/v1/patients/P-1/treatments", ["service": "x"]).status
                    == .badRequest)
            #expect(
                try await Self.call(
                    client, .post, "/api/v1/patients/P-1/treatments", ["service": "x", "date": "2026-13-01"]
                ).status == .badRequest)
            #expect(try await Self.call(client, .get, "/api/v1/patients/P-2/treatments/\(id)").status == .notFound)
            let gone = try await Self.call(
                client, .post, "/api/v1/patients/P-1/treatments", ["service": "Filler cheeks", "date": "2026-01-20"])
            let goneID = try #require(gone.object["id"] as? String)
            #expect(
                try await Self.call(client, .delete, "/api/v1/patients/P-1/treatments/\(goneID)").status == .noContent)
            #expect(try await Self.call(client, .get, "/api/v1/patients/P-1/treatments/\(goneID)").status == .gone)
            reply = try await Self.call(client, .get, "/api/v1/patients/P-1/treatments/\(goneID)/versions")
            #expect(reply.list.map { $0["version"] as? Int } == [1, 2] && reply.list.last?["deleted"] as? Bool == true)
            reply = try await Self.call(client, .get, "/api/v1/patients/P-1/treatments")
            #expect(reply.list.map { $0["id"] as? String } == [id] && reply.list.first?["notes"] as? String == "20 U")
            return id
        }

        try await archive.app.test(.router) { client in
            // Tags: the object's own first; a patch keeps them and adds, each change a version.
            let before = try #require(uids["before-frontal"])
            var reply = try await Self.call(client, .get, "/api/v1/instances/\(before)/tags")
            #expect(reply.object["version"] as? Int == 0 && reply.object["timing"] as? String == "before")
            #expect(reply.object["region"] as? String == "face" && reply.object["view"] as? String == "frontal")
            reply = try await Self.call(
                client, .patch, "/api/v1/instances/\(before)/tags",
                [
                    "quality": "marketing-approved", "subregion": "Forehead", "custom": ["Study A"],
                    "treatment": treatmentID,
                ])
            #expect(reply.status == .ok && reply.object["version"] as? Int == 1)
            #expect(reply.object["timing"] as? String == "before" && reply.object["subregion"] as? String == "forehead")
            #expect(reply.object["custom"] as? [String] == ["study a"])
            reply = try await Self.call(client, .patch, "/api/v1/instances/\(before)/tags", ["timing": "during"])
            #expect(
                reply.object["timing"] as? String == "during"
                    && reply.object["quality"] as? String == "marketing-approved")
            reply = try await Self.call(client, .patch, "/api/v1/instances/\(before)/tags", ["timing": "before"])
            #expect(reply.object["version"] as? Int == 3)
            for bad: [String: Any] in [
                ["timing": "later"], ["quality": "gallery"], ["colour": "red"], [:],
                ["treatment": "00000000-0000-0000-0000-000000000000"],
            ] {
                let status = try await Self.call(client, .patch, "/api/v1/instances/\(before)/tags", bad).status
                #expect(status == .badRequest || status == .unprocessableContent, "\(bad)")
            }
            reply = try await Self.call(
                client, .patch, "/api/v1/instances/\(before)/tags", ["view": "x"],
                headers: headers([(.ifMatch, "\"1\"")]))
            #expect(reply.status == .conflict)
            reply = try await Self.call(client, .get, "/api/v1/instances/\(before)/tags/versions")
            #expect(reply.list.map { $0["timing"] as? String } == ["before", "during", "before"])
            #expect(try await Self.call(client, .get, "/api/v1/instances/1.2.3.4/tags").status == .notFound)

            // The timeline: captures and treatments in day order, per region; filtered by dates.
            reply = try await Self.call(client, .get, "/api/v1/patients/P-1/timeline")
            let regions = reply.object["regions"] as? [[String: Any]] ?? []
            #expect(regions.map { $0["region"] as? String } == ["face"])
            let entries = regions.first?["entries"] as? [[String: Any]] ?? []
            #expect(
                entries.map { $0["date"] as? String } == [
                    "2026-01-05", "2026-01-05", "2026-02-01", "2026-03-01", "2026-06-01",
                ])
            #expect(entries.map { $0["type"] as? String } == ["capture", "capture", "treatment", "capture", "capture"])
            reply = try await Self.call(client, .get, "/api/v1/patients/P-1/timeline?from=2026-02-15&view=frontal")
            let later = (reply.object["regions"] as? [[String: Any]])?.first?["entries"] as? [[String: Any]] ?? []
            #expect(later.map { $0["sopInstanceUID"] as? String } == [uids["after-frontal"], uids["followup-frontal"]])
            reply = try await Self.call(client, .get, "/api/v1/patients/P-1/timeline?region=forehead")
            let forehead = (reply.object["regions"] as? [[String: Any]])?.first?["entries"] as? [[String: Any]] ?? []
            #expect(forehead.compactMap { $0["sopInstanceUID"] as? String } == [before])
            #expect(
                try await Self.call(client, .get, "/api/v1/patients/P-1/timeline?from=yesterday").status == .badRequest)

            // Pairs: the suggestion (earliest before, latest after or follow-up) and two chosen days.
            reply = try await Self.call(
                client, .get, "/api/v1/comparisons/suggest?patientID=P-1&region=face&view=frontal")
            #expect(reply.status == .ok)
            #expect((reply.object["before"] as? [String: Any])?["sopInstanceUID"] as? String == before)
            #expect((reply.object["after"] as? [String: Any])?["sopInstanceUID"] as? String == uids["followup-frontal"])
            #expect(reply.object["daysElapsed"] as? Int == 147)
            #expect(
                (reply.object["treatmentsBetween"] as? [[String: Any]])?.map { $0["id"] as? String } == [treatmentID])
            reply = try await Self.call(
                client, .get, "/api/v1/patients/P-1/compare?before=2026-01-05&after=2026-03-01&view=frontal")
            #expect((reply.object["after"] as? [String: Any])?["sopInstanceUID"] as? String == uids["after-frontal"])
            #expect(reply.object["daysElapsed"] as? Int == 55)
            reply = try await Self.call(
                client, .get, "/api/v1/patients/P-1/compare?before=2026-01-05&after=2026-03-01&view=submental")
            #expect(reply.status == .notFound)
            #expect(
                try await Self.call(client, .get, "/api/v1/patients/P-1/compare?before=2026-01-05").status
                    == .badRequest)

            // Annotation layers: checked against the image, versioned, deleted as a version.
            reply = try await Self.call(
                client, .post, "/api/v1/instances/\(before)/annotations",
                [
                    "name": "Injection sites",
                    "items": [
                        ["type": "measurement", "points": [[10, 10], [13, 14]], "color": "#FF0000"],
                        ["type": "text", "points": [[5, 5]], "text": "4 U"],
                    ],
                ])
            #expect(reply.status == .created)
            let layer = try #require(reply.object["id"] as? String)
            let items = reply.object["items"] as? [[String: Any]] ?? []
            #expect(items.first?["lengthPixels"] as? Double == 5 && items.first?["color"] as? String == "#ff0000")
            for bad: [String: Any] in [
                ["name": "x", "items": [["type": "arrow", "points": [[1, 1]]]]],
                ["name": "x", "items": [["type": "line", "points": [[1, 1], [1, 100000]]]]],
                ["name": "x", "items": [["type": "text", "points": [[1, 1]]]]],
                ["name": "", "items": []],
            ] {
                #expect(
                    try await Self.call(client, .post, "/api/v1/instances/\(before)/annotations", bad).status
                        == .badRequest)
            }
            reply = try await Self.call(
                client, .put, "/api/v1/instances/\(before)/annotations/\(layer)",
                ["name": "Injection sites", "items": [["type": "circle", "points": [[20, 20], [25, 20]]]]])
            #expect(reply.object["version"] as? Int == 2)
            #expect(try await Self.call(client, .get, "/api/v1/instances/\(before)/annotations").list.count == 1)
            #expect(
                try await Self.call(client, .delete, "/api/v1/instances/\(before)/annotations/\(layer)").status
                    == .noContent)
            #expect(try await Self.call(client, .get, "/api/v1/instances/\(before)/annotations").list.isEmpty)
            reply = try await Self.call(client, .get, "/api/v1/instances/\(before)/annotations/\(layer)/versions")
            #expect(reply.list.count == 3)
        }

        // Who may: a medical assistant outside the care team sees no patient and changes nothing; front desk never
        // searches; without a token, 401.
        let physician = archive.token
        archive.token = try await archive.token(for: .medicalAssistant)
        try await archive.app.test(.router) { client in
            #expect(try await Self.call(client, .get, "/api/v1/patients").object["total"] as? Int == 0)
            #expect(try await Self.call(client, .get, "/api/v1/patients/P-1").status == .forbidden)
            #expect(try await Self.call(client, .get, "/api/v1/patients/P-1/timeline").status == .forbidden)
            let uid = try #require(uids["before-frontal"])
            #expect(
                try await Self.call(client, .patch, "/api/v1/instances/\(uid)/tags", ["timing": "after"]).status
                    == .forbidden)
            #expect(
                try await Self.call(
                    client, .post, "/api/v1/patients/P-1/treatments", ["service": "x", "date": "2026-01-01"]
                )
                .status == .forbidden)
        }
        archive.token = try await archive.token(for: .frontDesk)
        try await archive.app.test(.router) { client in
            let status = try await Self.call(client, .get, "/api/v1/patients").status
            #expect(status == .forbidden)
        }
        try await archive.bareApp.test(.router) { client in
            let status = try await Self.call(client, .get, "/api/v1/patients").status
            #expect(status == .unauthorized)
        }
        archive.token = physician

        // Nothing of it is stored in the clear.
        for file in archive.allFiles() {
            let data = try Data(contentsOf: file)
            for secret in ["Botox forehead", "Injection sites", "Poe^Edgar", "study a"] {
                #expect(data.range(of: Data(secret.utf8)) == nil, "\(secret) in \(file.lastPathComponent)")
            }
        }
    }

    @Test func consentsAreRecordedWithTheirFormAndWithdrawn() async throws {
        let (folder, consentID) = try await Self.recordAndWithdrawAConsent()
        // After a restart the records are all there.
        let reopened = try await TestArchive(reopening: folder)
        try await reopened.app.test(.router) { client in
            let reply = try await Self.call(client, .get, "/api/v1/patients/P-1/consents/\(consentID)")
            #expect(reply.status == .ok && reply.object["withdrawn"] != nil && reply.object["version"] as? Int == 2)
            #expect(try await Self.call(client, .get, "/api/v1/patients").object["total"] as? Int == 2)
        }
    }

    static func recordAndWithdrawAConsent() async throws -> (URL, String) {
        var archive = try await TestArchive()
        let uids = try await Self.storeVisits(archive)
        let otherUID = try #require(uids["other-patient"])
        let service = archive.service
        let pdf = Data("%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".utf8)
        let consentID: String = try await archive.app.test(.router) { client in
            var reply = try await Self.call(
                client, .post, "/api/v1/patients/P-1/consents",
                [
                    "kind": "marketing", "channels": ["website", "social"], "scope": "all", "signer": "Jane Doe",
                    "signedDate": "2026-01-05", "form": pdf.base64EncodedString(),
                ])
            #expect(reply.status == .created && reply.object["active"] as? Bool == true)
            let form = try #require(reply.object["form"] as? String)
            let stored = try #require(service.index.instance(form))
            #expect(stored.sopClassUID == EncapsulatedPDF.sopClass)
            let study = service.index.catalog().studies[stored.studyInstanceUID]
            #expect(study?.attributes.string(.patientID) == "P-1")
            #expect(study?.attributes.string(.studyDescription) == "Consent form")
            let id = try #require(reply.object["id"] as? String)
            for (bad, status): ([String: Any], HTTPResponse.Status) in [
                (["kind": "marketing", "scope": "all", "signer": "J", "signedDate": "2026-01-05"], .badRequest),
                (
                    [
                        "kind": "marketing", "channels": ["website"], "scope": ["instances": [otherUID]],
                        "signer": "J", "signedDate": "2026-01-05",
                    ], .unprocessableContent
                ),
                (
                    [
                        "kind": "clinical", "signer": "J", "signedDate": "2026-01-05",
                        "form": Data("GIF89a".utf8).base64EncodedString(),
                    ],
                    .unsupportedMediaType
                ),
            ] {
                #expect(
                    try await Self.call(client, .post, "/api/v1/patients/P-1/consents", bad).status == status, "\(bad)")
            }
            // A scanned form of a few megabytes is taken (the body's limit is the form's, not a record's).
            var scan = Data("%PDF-1.4\n".utf8)
            scan.append(Data(repeating: 0x20, count: 3 << 20))
            reply = try await Self.call(
                client, .post, "/api/v1/patients/P-2/consents",
                [
                    "kind": "clinical", "signer": "R", "signedDate": "2026-01-05",
                    "form": scan.base64EncodedString(),
                ])
            #expect(reply.status == .created && reply.object["form"] != nil)
            reply = try await Self.call(client, .get, "/api/v1/patients/P-1/consents")
            #expect(reply.list.map { $0["id"] as? String } == [id])
            #expect(try await Self.call(client, .get, "/api/v1/patients/P-2/consents/\(id)").status == .notFound)
            reply = try await Self.call(client, .post, "/api/v1/patients/P-1/consents/\(id)/withdraw")
            #expect(reply.status == .ok && reply.object["active"] as? Bool == false)
            #expect((reply.object["withdrawn"] as? [String: Any])?["by"] as? String == "default/tester")
            #expect(
                try await Self.call(client, .post, "/api/v1/patients/P-1/consents/\(id)/withdraw").status == .conflict)
            return id
        }
        // A nurse may record consent; a medical assistant may not (even in the care team).
        archive.token = try await archive.token(for: .medicalAssistant)
        try await archive.app.test(.router) { client in
            let reply = try await Self.call(
                client, .post, "/api/v1/patients/P-1/consents",
                ["kind": "clinical", "signer": "J", "signedDate": "2026-01-05"])
            #expect(reply.status == .forbidden)
        }
        return (archive.folder, consentID)
    }

    /// The entries of a stored (uncompressed) ZIP, read from its local headers.
    static func zipEntries(_ data: Data) -> [String: Data] {
        let bytes = [UInt8](data)
        var entries: [String: Data] = [:]
        var offset = 0
        func le(_ at: Int, _ count: Int) -> Int { (0..<count).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        while offset + 30 <= bytes.count, le(offset, 4) == 0x0403_4B50 {
            let size = le(offset + 18, 4)
            let nameLength = le(offset + 26, 2)
            let extra = le(offset + 28, 2)
            let name = String(decoding: bytes[(offset + 30)..<(offset + 30 + nameLength)], as: UTF8.self)
            let start = offset + 30 + nameLength + extra
            entries[name] = Data(bytes[start..<(start + size)])
            offset = start + size
        }
        return entries
    }

    @Test func theMarketingExportHoldsOnlyWhatConsentAllowsNow() async throws {
        var archive = try await TestArchive()
        archive.settings.practiceName = "Lakeside Aesthetics"
        let uids = try await Self.storeVisits(archive)
        let (first, second) = (try #require(uids["before-frontal"]), try #require(uids["after-frontal"]))
        let export: @Sendable (any TestClientProtocol, String) async throws -> [String: Data] = { client, channel in
            let reply = try await client.execute(
                uri: "/api/v1/exports", method: .post,
                body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: ["channel": channel]))
            ) { response in
                #expect(response.status == .ok && response.headers[.contentType] == "application/zip")
                return Data(response.body.readableBytesView)
            }
            return Self.zipEntries(reply)
        }
        let withdrawn: String = try await archive.app.test(.router) { client in
            // Tagged marketing-approved: both frontal photos of P-1, P-1's lateral (no consent covers it) and P-2's
            // (no consent at all).
            for name in ["before-frontal", "after-frontal", "before-lateral", "other-patient"] {
                let reply = try await Self.call(
                    client, .patch, "/api/v1/instances/\(try #require(uids[name]))/tags",
                    ["quality": "marketing-approved"])
                #expect(reply.status == .ok)
            }
            var consents: [String] = []
            for uid in [first, second] {
                let reply = try await Self.call(
                    client, .post, "/api/v1/patients/P-1/consents",
                    [
                        "kind": "marketing", "channels": ["website"], "scope": ["instances": [uid]],
                        "signer": "Jane Doe",
                        "signedDate": "2026-01-01",
                    ])
                consents.append(try #require(reply.object["id"] as? String))
            }
            var files = try await export(client, "website")
            #expect(files.keys.filter { $0.hasPrefix("photos/") }.count == 2)
            let manifest = try #require(files["manifest.json"])
            let fields = try #require(try JSONSerialization.jsonObject(with: manifest) as? [String: Any])
            let exportID = try #require(fields["export"] as? String)
            #expect(fields["count"] as? Int == 2 && fields["practice"] as? String == "Lakeside Aesthetics")
            for (name, data) in files {
                for secret in ["Doe", "P-1", "Jane", "2026", "20260105"]
                where name != "manifest.json" || secret != "2026" {
                    #expect(data.range(of: Data(secret.utf8)) == nil && !name.contains(secret), "\(secret) in \(name)")
                }
                guard name.hasPrefix("photos/") else { continue }
                #expect(data.starts(with: [0xFF, 0xD8]) && data.range(of: Data("Exif".utf8)) == nil)
                #expect(data.range(of: Data("DICM".utf8)) == nil)
                let mark = try #require(Watermark.read(try RGBImage.decode(data)))
                #expect(mark.practice == Watermark.practiceCode("Lakeside Aesthetics"))
                #expect(String(format: "%06x", mark.mark) == String(exportID.prefix(6)))
            }
            // Another channel: nothing leaves.
            files = try await export(client, "social")
            #expect(files.keys.filter { $0.hasPrefix("photos/") }.isEmpty && files["manifest.json"] != nil)
            // Withdraw the second photo's consent: the next export differs by exactly that photo.
            let before = Set(try await export(client, "website").keys.filter { $0.hasPrefix("photos/") })
            _ = try await Self.call(client, .post, "/api/v1/patients/P-1/consents/\(consents[1])/withdraw")
            let after = Set(try await export(client, "website").keys.filter { $0.hasPrefix("photos/") })
            #expect(before.count == 2 && after.count == 1 && after.isSubset(of: before))
            // With P-2's consent too, one export discloses photos of two patients: its audit event names both.
            _ = try await Self.call(
                client, .post, "/api/v1/patients/P-2/consents",
                [
                    "kind": "marketing", "channels": ["website"], "scope": "all", "signer": "R",
                    "signedDate": "2026-01-01",
                ])
            #expect(try await export(client, "website").keys.filter { $0.hasPrefix("photos/") }.count == 2)
            #expect(try await Self.call(client, .post, "/api/v1/exports", ["channel": "fax"]).status == .badRequest)
            #expect(
                try await Self.call(client, .post, "/api/v1/exports", ["channel": "website", "filters": ["from": "x"]])
                    .status == .badRequest)
            return consents[1]
        }
        _ = withdrawn
        await archive.service.audit.flush()
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        let last = try #require(log.split(separator: "\n").last { $0.contains("\"action\":\"export ") })
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect((fields["resultPatients"] as? [String])?.count == 2 && (fields["instances"] as? [String])?.count == 2)
        archive.token = try await archive.token(for: .nurse)
        try await archive.app.test(.router) { client in
            let status = try await Self.call(client, .post, "/api/v1/exports", ["channel": "website"]).status
            #expect(status == .forbidden)
        }
    }

    @Test func shareLinksShowOnlyWhatWasSharedExpireAndRevoke() async throws {
        var archive = try await TestArchive()
        archive.settings.practiceName = "Lakeside Aesthetics"
        let uids = try await Self.storeVisits(archive)
        let shared = try #require(uids["before-frontal"])
        let (url, providerURL, disclosure): (String, String, String) = try await archive.app.test(.router) { client in
            var reply = try await Self.call(
                client, .post, "/api/v1/shares", ["patientID": "P-1", "instances": [shared], "audience": "patient"])
            #expect(reply.status == .created)
            let url = try #require(reply.object["url"] as? String)
            let expiresText = try #require(reply.object["expires"] as? String)
            let expires = try #require(Self.instant(expiresText))
            #expect(abs(expires.timeIntervalSinceNow - 30 * 86_400) < 120, "a patient link lives 30 days")
            // Refused: another patient's photo, too long a life, a provider without a disclosure consent.
            let other = try #require(uids["other-patient"])
            for (body, status): ([String: Any], HTTPResponse.Status) in [
                (["patientID": "P-1", "instances": [other], "audience": "patient"], .unprocessableContent),
                (
                    ["patientID": "P-1", "instances": [shared], "audience": "patient", "expires": "2099-01-01"],
                    .unprocessableContent
                ),
                (["patientID": "P-1", "instances": [shared], "audience": "provider"], .unprocessableContent),
                (["patientID": "P-1", "audience": "patient"], .badRequest),
                (["patientID": "P-1", "instances": [shared], "audience": "public"], .badRequest),
            ] {
                #expect(try await Self.call(client, .post, "/api/v1/shares", body).status == status, "\(body)")
            }
            let consent = try await Self.call(
                client, .post, "/api/v1/patients/P-1/consents",
                [
                    "kind": "disclosure", "recipient": "Dr Smith, Lakeside Dermatology", "signer": "Jane Doe",
                    "signedDate": "2026-01-01",
                ])
            let disclosure = try #require(consent.object["id"] as? String)
            // The consent names its recipient: a link to someone else is refused.
            reply = try await Self.call(
                client, .post, "/api/v1/shares",
                ["patientID": "P-1", "instances": [shared], "audience": "provider", "recipient": "Dr Jones"])
            #expect(reply.status == .unprocessableContent)
            reply = try await Self.call(
                client, .post, "/api/v1/shares", ["patientID": "P-1", "instances": [shared], "audience": "provider"])
            #expect(
                reply.status == .created && reply.object["recipient"] as? String == "Dr Smith, Lakeside Dermatology")
            let providerURL = try #require(reply.object["url"] as? String)
            let providerText = try #require(reply.object["expires"] as? String)
            let providerExpires = try #require(Self.instant(providerText))
            #expect(abs(providerExpires.timeIntervalSinceNow - 7 * 86_400) < 120)
            #expect(try await Self.call(client, .get, "/api/v1/shares?patientID=P-1").list.count == 2)
            return (url, providerURL, disclosure)
        }
        let path = String(url.dropFirst("https://archive.example".count))
        let token = String(path.dropFirst("/share/".count))
        // Without any account: the page shows the one photo, the photo is watermarked.
        try await archive.bareApp.test(.router) { client in
            let page = try await client.execute(uri: path, method: .get) { response in
                #expect(
                    response.status == .ok
                        && response.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
                return String(decoding: response.body.readableBytesView, as: UTF8.self)
            }
            #expect(page.contains("/share/\(token)/photos/\(shared)") && !page.contains("Doe") && !page.contains("P-1"))
            let jpeg = try await client.execute(uri: "\(path)/photos/\(shared)", method: .get) { response in
                #expect(response.status == .ok && response.headers[.contentType] == "image/jpeg")
                return Data(response.body.readableBytesView)
            }
            let mark = try #require(Watermark.read(try RGBImage.decode(jpeg)))
            #expect(mark.practice == Watermark.practiceCode("Lakeside Aesthetics"))
            for other in [uids["before-lateral"], uids["other-patient"]] {
                let status = try await client.execute(uri: "\(path)/photos/\(try #require(other))", method: .get) {
                    $0.status
                }
                #expect(status == .notFound, "only what was shared")
            }
            let status = try await client.execute(uri: "/share/\(String(repeating: "A", count: 43))", method: .get) {
                $0.status
            }
            #expect(status == .notFound)
            #expect(try await client.execute(uri: "\(path)/report.pdf", method: .get) { $0.status } == .notFound)
        }
        // The provider's link ends with the disclosure consent it was made under.
        let providerPath = String(providerURL.dropFirst("https://archive.example".count))
        try await archive.bareApp.test(.router) { client in
            let status = try await client.execute(uri: providerPath, method: .get) { $0.status }
            #expect(status == .ok)
        }
        try await archive.app.test(.router) { client in
            let status = try await Self.call(client, .post, "/api/v1/patients/P-1/consents/\(disclosure)/withdraw")
                .status
            #expect(status == .ok)
        }
        try await archive.bareApp.test(.router) { client in
            let status = try await client.execute(uri: providerPath, method: .get) { $0.status }
            #expect(status == .gone)
        }
        // Revoked: the URL answers 410, and the revocation cannot be repeated.
        try await archive.app.test(.router) { client in
            var revoked = 0
            for share in try await Self.call(client, .get, "/api/v1/shares?patientID=P-1").list {
                let id = try #require(share["id"] as? String)
                #expect(try await Self.call(client, .delete, "/api/v1/shares/\(id)").status == .noContent)
                #expect(try await Self.call(client, .delete, "/api/v1/shares/\(id)").status == .gone)
                revoked += 1
            }
            #expect(revoked == 2)
        }
        try await archive.bareApp.test(.router) { client in
            let page = try await client.execute(uri: path, method: .get) { $0.status }
            let photo = try await client.execute(uri: "\(path)/photos/\(shared)", method: .get) { $0.status }
            #expect(page == .gone && photo == .gone)
        }
        // Each opening is in the clinic's audit log under the share, naming no patient in the clear.
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        #expect(log.contains("\"share/"))
        #expect(log.contains("share opened") && log.contains("share download") && !log.contains("Doe^Jane"))
        let link = ShareLink(
            audience: .patient, instances: [], comparison: nil, report: nil, expires: Date().addingTimeInterval(-1),
            consent: nil, recipient: nil)
        #expect(!link.isOpen(at: Date()), "expired")
    }

    static func instant(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    @Test func theAuditTrailIsReadByPatientAndUserAndExportedAsDICOMAuditMessages() async throws {
        var archive = try await TestArchive()
        let uids = try await Self.storeVisits(archive)
        try await archive.app.test(.router) { client in
            _ = try await Self.call(client, .get, "/api/v1/patients/P-1/timeline")
            _ = try await Self.call(
                client, .post, "/api/v1/patients/P-1/consents",
                ["kind": "clinical", "signer": "Jane Doe", "signedDate": "2026-01-05"])
            _ = try await Self.call(client, .get, "/api/v1/patients/P-2")
            let status = try await Self.call(client, .get, "/api/v1/audit").status
            #expect(status == .forbidden, "a physician does not read the trail")
        }
        archive.token = try await archive.token(for: .auditor, username: "privacy.officer")
        try await archive.app.test(.router) { client in
            var reply = try await Self.call(client, .get, "/api/v1/audit?patientID=P-1")
            let entries = reply.object["entries"] as? [[String: Any]] ?? []
            let actions = entries.compactMap { $0["action"] as? String }
            #expect(
                actions.contains { $0.hasPrefix("timeline read") }
                    && actions.contains { $0.hasPrefix("consent granted") })
            #expect(!actions.contains { $0.hasPrefix("patient read") }, "P-2's read is not P-1's")
            #expect(entries.allSatisfy { ($0["patients"] as? [String])?.count ?? 0 >= 1 })
            reply = try await Self.call(client, .get, "/api/v1/audit?user=tester&from=2000-01-01&to=2999-12-31&limit=2")
            #expect(
                (reply.object["entries"] as? [[String: Any]])?.count == 2 && (reply.object["total"] as? Int ?? 0) >= 3)
            #expect(try await Self.call(client, .get, "/api/v1/audit?from=yesterday").status == .badRequest)
            #expect(try await Self.call(client, .get, "/api/v1/audit?patient=P-1").status == .badRequest)
            let xml = try await client.execute(uri: "/api/v1/audit?format=dicom&patientID=P-1", method: .get) {
                response in
                #expect(response.headers[.contentType]?.hasPrefix("application/xml") == true)
                return String(decoding: response.body.readableBytesView, as: UTF8.self)
            }
            #expect(xml.contains("<AuditMessage><EventIdentification EventActionCode=\"C\""))
            #expect(xml.contains("csd-code=\"110110\" codeSystemName=\"DCM\" originalText=\"Patient Record\""))
            #expect(!xml.contains("P-1") && !xml.contains("Doe"), "patients by keyed hash only")
            _ = uids
        }
    }

    @Test func theRetentionListFollowsThePolicyAndLegalHolds() async throws {
        var archive = try await TestArchive()
        _ = try await Self.storeVisits(archive)
        try await archive.app.test(.router) { client in
            let status = try await Self.call(client, .get, "/api/v1/retention/due").status
            #expect(status == .forbidden, "the practice manager's")
        }
        archive.token = try await archive.token(for: .practiceManager)
        try await archive.app.test(.router) { client in
            var reply = try await Self.call(client, .get, "/api/v1/retention/policy")
            #expect(reply.object["minimumYears"] as? Int == 10 && reply.object["state"] == nil)
            reply = try await Self.call(client, .put, "/api/v1/retention/policy", ["state": "CA", "minimumYears": 8])
            #expect(
                reply.status == .ok && reply.object["adultYears"] as? Int == 10
                    && reply.object["rule"] as? String == "CA 10 y")
            #expect(
                try await Self.call(client, .put, "/api/v1/retention/policy", ["state": "XX"]).status == .badRequest)
            // P-1 was last seen 2026-06-01, P-2 on 2026-01-05: ten years later only P-2 is due.
            reply = try await Self.call(client, .get, "/api/v1/retention/due?asOf=2036-01-06")
            let due = (reply.object["patients"] as? [[String: Any]] ?? []).map { $0["patientID"] as? String }
            #expect(due == ["P-2"])
            #expect((reply.object["patients"] as? [[String: Any]])?.first?["dueDate"] as? String == "2036-01-05")
            reply = try await Self.call(client, .get, "/api/v1/retention/due?asOf=2036-06-01")
            #expect((reply.object["patients"] as? [[String: Any]])?.count == 2)
            // A legal hold keeps P-2 off the list until it is released.
            #expect(
                try await Self.call(client, .put, "/api/v1/patients/P-2/legal-hold", ["reason": "litigation"]).status
                    == .ok)
            reply = try await Self.call(client, .get, "/api/v1/retention/due?asOf=2036-01-06")
            #expect(
                (reply.object["patients"] as? [[String: Any]])?.isEmpty == true && reply.object["held"] as? Int == 1)
            #expect(try await Self.call(client, .delete, "/api/v1/patients/P-2/legal-hold").status == .noContent)
            #expect(try await Self.call(client, .delete, "/api/v1/patients/P-2/legal-hold").status == .notFound)
            reply = try await Self.call(client, .get, "/api/v1/retention/due?asOf=2036-01-06")
            #expect((reply.object["patients"] as? [[String: Any]])?.count == 1)
            #expect(try await Self.call(client, .get, "/api/v1/retention/due?asOf=soon").status == .badRequest)
        }
    }
}
