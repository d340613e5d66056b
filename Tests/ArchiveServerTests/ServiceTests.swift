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

@Suite struct ServiceTests {
    @Test func capabilitiesCORSAndHealth() async throws {
        var archive = try await TestArchive()
        archive.settings.corsAllowOrigin = "http://viewer.example"
        let admin = try await archive.token(for: .systemAdmin)
        try await archive.app.test(.router) { client in
            try await client.execute(uri: "/dicomweb/", method: .options) { response in
                #expect(response.headers[.contentType] == "application/vnd.sun.wadl+xml")
                #expect(String(buffer: response.body).contains("RetrieveInstance"))
            }
            try await client.execute(
                uri: "/dicomweb/", method: .options,
                headers: headers([(.origin, "http://viewer.example"), (.accessControlRequestMethod, "GET")])
            ) { response in
                #expect(response.status == .noContent)
                #expect(response.headers[.accessControlAllowOrigin] == "http://viewer.example")
                #expect(response.headers[.accessControlAllowHeaders]?.contains("Authorization") == true)
            }
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([(.origin, "http://viewer.example")])
            ) { response in
                #expect(response.headers[.accessControlExposeHeaders]?.contains("Warning") == true)
            }
            try await client.execute(uri: "/health/ready", method: .get) { response in #expect(response.status == .ok) }
            // Metrics are an admin's (or the scrape token's), not a physician's.
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(
                uri: "/metrics", method: .get, headers: headers([(.authorization, "Bearer \(admin)")])
            ) { response in
                #expect(String(buffer: response.body).contains("facet_http_requests_total{family=\"dicomweb\""))
            }
        }
    }

    @Test func everyRequestIsAuditedWithoutPHIAndTheChainVerifies() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo(TestArchive.metadata(patient: "Zebulon^Quartz", id: "ZQ-77"))
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([photo.bytes])
            ) { _ in }
            try await client.execute(uri: "/dicomweb/studies?PatientName=Zebulon*", method: .get) { _ in }
            try await client.execute(uri: "/dicomweb/studies/\(photo.study)", method: .get) { _ in }
        }
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        let lines = log.split(separator: "\n")
        #expect(lines.count == 4)
        // The store's intent, naming the instance, is on record before the store; its outcome follows.
        #expect(lines[0].contains("STOW store (intent)") && lines[0].contains(photo.instance))
        #expect(lines[1].contains("\"STOW store\"") && lines[1].contains(photo.instance))
        #expect(lines[3].contains("WADO retrieve") && lines[3].contains(photo.study))
        // The patient by keyed hash: the same in the intent and the retrieval, never the ID itself.
        let patient = try #require(archive.service.keys.patientKey(patientID: "ZQ-77", issuer: nil))
        #expect(patient.count == 64)
        #expect(lines[0].contains("\"patient\":\"\(patient)\"") && lines[3].contains("\"patient\":\"\(patient)\""))
        #expect(lines[3].contains("\"request\":\""))
        #expect(!log.contains("Zebulon") && !log.contains("ZQ-77"))
        let verdict = AuditLog.verify(
            folder: archive.folder.appendingPathComponent("audit"), keys: archive.service.keys)
        #expect(verdict.isIntact)
    }

    @Test func nothingIdentifyingIsOnDiskInTheClear() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo(TestArchive.metadata(patient: "Zebulon^Quartz", id: "ZQ-77"))
        guard case .stored = await archive.service.store(photo.bytes) else {
            throw HTTPFailure(.badRequest, "not stored")
        }
        let files = archive.allFiles()
        #expect(files.count >= 4)  // key files, blob, index, audit
        for file in files {
            let bytes = try Data(contentsOf: file)
            #expect(bytes.range(of: Data("Zebulon".utf8)) == nil, "patient name in \(file.lastPathComponent)")
            #expect(bytes.range(of: Data("ZQ-77".utf8)) == nil, "patient ID in \(file.lastPathComponent)")
            #expect(bytes.range(of: Data("DICM".utf8)) == nil, "DICOM preamble in \(file.lastPathComponent)")
            #expect(bytes.range(of: Data([0xFF, 0xD8, 0xFF])) == nil, "JPEG SOI in \(file.lastPathComponent)")
        }
    }

    @Test func oneServerPerDataFolder() async throws {
        let archive = try await TestArchive()
        let error = await #expect(throws: ArchiveError.self) {
            _ = try await ArchiveService.openEmbedded(dataDirectory: archive.folder, environment: [:])
        }
        #expect(error?.message.contains("another facet process") == true)
    }

    @Test func aFlippedByteInABlobIsDetectedAndNotServed() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        guard case .stored(let record, _, _) = await archive.service.store(photo.bytes) else {
            throw HTTPFailure(.badRequest, "not stored")
        }
        let blob = try #require(archive.allFiles().first { $0.lastPathComponent == record.blob.id })
        var bytes = try Data(contentsOf: blob)
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: blob)
        try await archive.app.test(.router) { client in
            try await client.execute(uri: "/dicomweb/studies/\(photo.study)", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(response.body.readableBytesView.firstRange(of: Array("DICM".utf8)) == nil)
            }
            try await client.execute(
                uri: "/dicomweb/studies/\(photo.study)/series/\(photo.series)/instances/\(photo.instance)",
                method: .get, headers: headers([(.accept, "application/dicom")])
            ) { response in
                #expect(response.status == .internalServerError)
            }
        }
    }
}

extension AuditLog.Verdict {
    var isIntact: Bool {
        if case .intact = self { return true }
        return false
    }
}
