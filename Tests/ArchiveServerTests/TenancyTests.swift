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

/// Clinics in one server (each its own archive and key), soft delete, and what the audit trail says about
/// searches and emergency access.
@Suite struct TenancyTests {
    static func bearer(_ token: String) -> (HTTPField.Name, String) { (.authorization, "Bearer \(token)") }

    static func log(_ folder: URL) throws -> String {
        try String(contentsOf: folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
    }

    @Test func eachClinicHasItsOwnArchiveKeyAndAuditLogAndSeesNothingOfAnother() async throws {
        let (folder, foreign, study) = try await firstClinicVisit()
        // After a restart the clinic's folder is opened at start and still serves.
        let reopened = try await TestArchive(reopening: folder)
        try await reopened.bareApp.test(.router) { client in
            try await client.execute(
                uri: "/dicomweb/studies/\(study)/metadata", method: .get, headers: headers([Self.bearer(foreign)])
            ) { response in #expect(response.status == .ok) }
        }
    }

    /// Two clinics' first day; returns the data folder, clinic B's token and its study.
    func firstClinicVisit() async throws -> (URL, String, String) {
        let archive = try await TestArchive()
        let home = try TestArchive.photo(TestArchive.metadata(patient: "Home^Patient", id: "H-1"))
        guard case .stored = await archive.service.store(home.bytes) else {
            throw HTTPFailure(.badRequest, "not stored")
        }
        let away = try TestArchive.photo(TestArchive.metadata(patient: "Away^Patient", id: "A-1"))
        let foreign = try await archive.token(for: .physician, username: "dr-b", tenant: "clinic-b")
        let tenantFolder = archive.folder.appendingPathComponent("tenants/clinic-b")
        try await archive.bareApp.test(.router) { client in
            // Clinic B stores its own study: it lands in its own folder.
            try await client.execute(
                uri: "/dicomweb/studies", method: .post,
                headers: headers([(.contentType, TestArchive.stowType), Self.bearer(foreign)]),
                body: TestArchive.multipart([away.bytes])
            ) { response in #expect(response.status == .ok) }
            // Each clinic's search holds its own study only; each other's study is absent (404), not refused.
            let theirs = String(
                buffer: try await client.execute(
                    uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(foreign)])
                ).body)
            #expect(theirs.contains(away.study) && !theirs.contains(home.study))
            let ours = String(
                buffer: try await client.execute(
                    uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(archive.token)])
                ).body)
            #expect(ours.contains(home.study) && !ours.contains(away.study))
            for (token, study) in [(foreign, home.study), (archive.token, away.study)] {
                try await client.execute(
                    uri: "/dicomweb/studies/\(study)/metadata", method: .get, headers: headers([Self.bearer(token)])
                ) { response in #expect(response.status == .notFound) }
            }
            try await client.execute(
                uri: "/dicomweb/studies/\(away.study)/metadata", method: .get, headers: headers([Self.bearer(foreign)])
            ) { response in #expect(response.status == .ok) }
            // A failed login to clinic B is clinic B's business: its audit log, not the operator's.
            try await client.execute(
                uri: "/api/v1/auth/login", method: .post, headers: headers([(.contentType, "application/json")]),
                body: ByteBuffer(string: "{\"username\":\"dr-b\",\"password\":\"guess\",\"tenant\":\"clinic-b\"}")
            ) { response in #expect(response.status == .unauthorized) }
        }
        #expect(archive.service.index.catalog().studies[away.study] == nil)
        // Its own tenant key, sealed under the master key; its own blobs and audit log.
        let keyFile = archive.folder.appendingPathComponent("keys/tenant-clinic-b.key")
        #expect(FileManager.default.fileExists(atPath: keyFile.path))
        #expect(FileManager.default.fileExists(atPath: tenantFolder.appendingPathComponent("index.sqlite").path))
        let theirLog = try Self.log(tenantFolder)
        #expect(theirLog.contains("\"actor\":\"clinic-b/dr-b\"") && theirLog.contains(away.study))
        #expect(theirLog.contains("access denied: login") && theirLog.contains("(as clinic-b/dr-b)"))
        await archive.service.audit.flush()
        #expect(!(try Self.log(archive.folder)).contains("clinic-b/"))
        // Nothing of clinic B's patient in the clear in its folder.
        let enumerator = FileManager.default.enumerator(at: tenantFolder, includingPropertiesForKeys: nil)
        for case let file as URL in enumerator?.allObjects ?? [] where !file.hasDirectoryPath {
            let bytes = (try? Data(contentsOf: file)) ?? Data()
            #expect(bytes.range(of: Data("Away^Patient".utf8)) == nil, "\(file.lastPathComponent)")
        }
        return (archive.folder, foreign, away.study)
    }

    @Test func aPhysicianSoftDeletesWithAReasonAndNothingIsErased() async throws {
        let (folder, photo, second) = try await deleteOneInstance()
        // Still deleted after a restart; the whole study then goes, and the same instance can be stored again.
        let archive = try await TestArchive(reopening: folder)
        #expect(archive.service.index.instance(photo.instance) == nil)
        let instanceURL = "/dicomweb/studies/\(photo.study)/series/\(photo.series)/instances/\(photo.instance)"
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/dicomweb/studies/\(second.study)", method: .delete,
                headers: headers([(.contentType, "application/json")]),
                body: ByteBuffer(string: "{\"reason\":\"consent withdrawn\"}")
            ) { response in
                #expect(response.status == .ok)
                let object = try json(response.body) as? [String: Any]
                #expect(object?["deleted"] as? Int == 1)
            }
            try await client.execute(uri: "/dicomweb/studies?StudyInstanceUID=\(second.study)", method: .get) {
                response in #expect(String(buffer: response.body) == "[]")
            }
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([photo.bytes])
            ) { response in #expect(response.status == .ok) }
            try await client.execute(uri: instanceURL, method: .get) { response in #expect(response.status == .ok) }
        }
        #expect(try await archive.service.index.deletions().count == 2)
    }

    typealias Photo = (bytes: Data, study: String, series: String, instance: String)

    /// A physician deletes one of two instances; returns the data folder, the deleted photo and the other one.
    func deleteOneInstance() async throws -> (URL, Photo, Photo) {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        let second = try TestArchive.photo(number: 2)
        for item in [photo, second] {
            guard case .stored = await archive.service.store(item.bytes) else {
                throw HTTPFailure(.badRequest, "not stored")
            }
        }
        let nurse = try await archive.token(for: .nurse)
        let instanceURL = "/dicomweb/studies/\(photo.study)/series/\(photo.series)/instances/\(photo.instance)"
        let jsonType = (HTTPField.Name.contentType, "application/json")
        try await archive.app.test(.router) { client in
            // Only a physician deletes, and only with a reason.
            try await client.execute(
                uri: instanceURL, method: .delete, headers: headers([jsonType, Self.bearer(nurse)]),
                body: ByteBuffer(string: "{\"reason\":\"duplicate\"}")
            ) { response in #expect(response.status == .forbidden) }
            for body in ["", "{}", "{\"reason\":\"  \"}"] {
                try await client.execute(
                    uri: instanceURL, method: .delete, headers: headers([jsonType]), body: ByteBuffer(string: body)
                ) { response in #expect(response.status == .badRequest, "\(body)") }
            }
            try await client.execute(
                uri: "/dicomweb/studies/1.2.3.4.5.6.7.8.9", method: .delete, headers: headers([jsonType]),
                body: ByteBuffer(string: "{\"reason\":\"wrong patient Doe\"}")
            ) { response in #expect(response.status == .notFound) }
            try await client.execute(
                uri: instanceURL, method: .delete, headers: headers([jsonType]),
                body: ByteBuffer(string: "{\"reason\":\"wrong patient Doe\"}")
            ) { response in
                #expect(response.status == .ok)
                let object = try #require(try json(response.body) as? [String: Any])
                #expect(object["deleted"] as? Int == 1)
                #expect(object["sopInstanceUIDs"] as? [String] == [photo.instance])
            }
            // Gone from retrieval and search; its neighbour stays.
            try await client.execute(uri: instanceURL, method: .get) { response in
                #expect(response.status == .notFound)
            }
            // Its study (it had one instance) leaves the search; the other study stays.
            let left = String(buffer: try await client.execute(uri: "/dicomweb/studies", method: .get).body)
            #expect(!left.contains(photo.study) && left.contains(second.study))
        }
        // The auditor reads what was deleted and why; a nurse may not.
        let auditor = try await archive.token(for: .auditor)
        try await archive.bareApp.test(.router) { client in
            let list = try await client.execute(
                uri: "/api/v1/deletions", method: .get, headers: headers([Self.bearer(auditor)]))
            #expect(list.status == .ok)
            let items = try #require(try json(list.body) as? [[String: Any]])
            #expect(items.first?["sopInstanceUID"] as? String == photo.instance)
            #expect(items.first?["reason"] as? String == "wrong patient Doe")
            #expect(items.first?["actor"] as? String == "default/tester")
            try await client.execute(uri: "/api/v1/deletions", method: .get, headers: headers([Self.bearer(nurse)])) {
                #expect($0.status == .forbidden)
            }
        }
        let kept = try await archive.service.index.deletions()
        #expect(kept.map(\.sopInstanceUID) == [photo.instance])
        #expect(kept.first?.deletion.reason == "wrong patient Doe" && kept.first?.deletion.actor == "default/tester")
        // Nothing erased: the blob is still on disk; the reason is sealed in the index and kept out of the log.
        let blob = try #require(kept.first?.blob)
        #expect(try await archive.service.blobs.get(blob.id, owner: photo.instance).count > 0)
        await archive.service.audit.flush()
        let log = try Self.log(archive.folder)
        #expect(log.contains("\"action\":\"delete (intent)\"") && log.contains("\"action\":\"delete\""))
        #expect(!log.contains("wrong patient"))
        #expect(
            archive.allFiles().allSatisfy {
                ((try? Data(contentsOf: $0)) ?? Data()).range(of: Data("wrong patient".utf8)) == nil
            })

        return (archive.folder, photo, second)
    }

    @Test func searchesNameWhatTheyAnsweredAndGrantedReadsAreEmergencyAccess() async throws {
        let archive = try await TestArchive()
        let granted = try TestArchive.photo(TestArchive.metadata(patient: "Granted^Patient", id: "P-GRANT"))
        guard case .stored = await archive.service.store(granted.bytes) else {
            throw HTTPFailure(.badRequest, "not stored")
        }
        let assistant = try await archive.token(for: .medicalAssistant, username: "ma")
        let key = try #require(archive.service.keys.patientKey(patientID: "P-GRANT", issuer: nil))
        try await archive.bareApp.test(.router) { client in
            try await client.execute(
                uri: "/api/v1/break-glass", method: .post,
                headers: headers([(.contentType, "application/json"), Self.bearer(assistant)]),
                body: ByteBuffer(string: "{\"patientID\":\"P-GRANT\",\"reason\":\"swelling after filler\"}")
            ) { response in #expect(response.status == .created) }
            try await client.execute(
                uri: "/dicomweb/studies/\(granted.study)/metadata", method: .get,
                headers: headers([Self.bearer(assistant)])
            ) { response in #expect(response.status == .ok) }
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(archive.token)])
            ) { response in #expect(response.status == .ok) }
            // The assistant's own search answers with the granted patient: emergency access too.
            try await client.execute(
                uri: "/dicomweb/studies?PatientID=P-GRANT", method: .get, headers: headers([Self.bearer(assistant)])
            ) { response in #expect(String(buffer: response.body).contains(granted.study)) }
        }
        await archive.service.audit.flush()
        let lines = try Self.log(archive.folder).split(separator: "\n")
        let read = try #require(lines.first { $0.contains("\"actor\":\"default/ma\"") && $0.contains("WADO metadata") })
        #expect(read.contains("emergency access under break-the-glass"))
        let emergencySearch = try #require(
            lines.first { $0.contains("\"actor\":\"default/ma\"") && $0.contains("QIDO study") })
        #expect(emergencySearch.contains("emergency access under break-the-glass"))
        let search = try #require(
            lines.first { $0.contains("\"action\":\"QIDO study\"") && $0.contains("default/tester") })
        #expect(search.contains("\"resultStudies\":[\"\(granted.study)\"]"))
        #expect(search.contains("\"resultPatients\":[\"\(key)\"]"))
    }

    @Test func aDeletedUploadTakesItsOriginalsWithItEvenWhenItsUIDComesBack() async throws {
        let archive = try await TestArchive()
        let upload = try AuthorizationMatrixTests.upload(patient: "UP-DEL")
        try await archive.app.test(.router) { client in
            let made = try await client.execute(
                uri: "/api/v1/photos", method: .post,
                headers: headers([(.contentType, "multipart/form-data; boundary=b0undary")]), body: upload)
            #expect(made.status == .created)
            let record = try #require(archive.service.index.catalog().instances.values.first)
            let instanceURL =
                "/dicomweb/studies/\(record.studyInstanceUID)/series/\(record.seriesInstanceUID)/instances/\(record.sopInstanceUID)"
            let originals = "/api/v1/instances/\(record.sopInstanceUID)/originals"
            #expect(String(buffer: try await client.execute(uri: originals, method: .get).body).contains("image/png"))
            let stored = try await client.execute(
                uri: instanceURL, method: .get, headers: headers([(.accept, "application/dicom; transfer-syntax=*")]))
            #expect(stored.status == .ok)
            let deleted = try await client.execute(
                uri: instanceURL, method: .delete, headers: headers([(.contentType, "application/json")]),
                body: ByteBuffer(string: "{\"reason\":\"wrong patient\"}"))
            #expect(deleted.status == .ok)
            try await client.execute(uri: originals, method: .get) { #expect($0.status == .notFound) }
            // The same object stored again (a copy from a workstation): its old originals do not come back.
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([Data(stored.body.readableBytesView)])
            ) { #expect($0.status == .ok) }
            try await client.execute(uri: originals, method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "[]")
            }
        }
    }
}
