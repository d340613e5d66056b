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

@Suite struct QIDOTests {
    static func loaded() async throws -> TestArchive {
        let archive = try await TestArchive()
        var bodies: [Data] = []
        bodies.append(
            try TestArchive.photo(TestArchive.metadata(patient: "Doe^Jane", id: "P-1", date: "20260105")).bytes)
        bodies.append(
            try TestArchive.photo(TestArchive.metadata(patient: "Doe^John", id: "P-2", date: "20260210")).bytes)
        bodies.append(
            try TestArchive.photo(TestArchive.metadata(patient: "Smith^Ann", id: "P-3", date: "20251231")).bytes)
        for body in bodies {
            guard case .stored = await archive.service.store(body) else {
                Issue.record("not stored")
                continue
            }
        }
        return archive
    }

    func search(_ archive: TestArchive, _ uri: String, accept: String? = nil) async throws -> (Answer, [[String: Any]])
    {
        let answer = try await archive.app.test(.router) { client in
            try await client.execute(
                uri: uri, method: .get, headers: accept.map { headers([(.accept, $0)]) } ?? [:]
            ) { response in Answer(response) }
        }
        let isJSON = answer.status == .ok && answer.headers[.contentType] == "application/dicom+json"
        let array = isJSON ? (try JSONSerialization.jsonObject(with: answer.body) as? [[String: Any]] ?? []) : []
        return (answer, array)
    }

    static func names(_ results: [[String: Any]]) -> [String] {
        results.compactMap {
            (($0["00100010"] as? [String: Any])?["Value"] as? [[String: Any]])?.first?["Alphabetic"] as? String
        }.sorted()
    }

    @Test func matchingRules() async throws {
        let archive = try await Self.loaded()
        // Case-insensitive PN wildcard, percent-encoded.
        var (_, results) = try await search(archive, "/dicomweb/studies?PatientName=doe%2A")
        #expect(Self.names(results) == ["Doe^Jane", "Doe^John"])
        (_, results) = try await search(archive, "/dicomweb/studies?00100010=D?e%5EJ*")
        #expect(Self.names(results) == ["Doe^Jane", "Doe^John"])
        // Exact PatientID through the blind index; case matters outside PN.
        (_, results) = try await search(archive, "/dicomweb/studies?PatientID=P-2")
        #expect(Self.names(results) == ["Doe^John"])
        (_, results) = try await search(archive, "/dicomweb/studies?PatientID=p-2")
        #expect(results.isEmpty)
        // Date ranges, open on either side.
        (_, results) = try await search(archive, "/dicomweb/studies?StudyDate=20260101-20260131")
        #expect(Self.names(results) == ["Doe^Jane"])
        (_, results) = try await search(archive, "/dicomweb/studies?StudyDate=-20260105")
        #expect(Self.names(results) == ["Doe^Jane", "Smith^Ann"])
        (_, results) = try await search(archive, "/dicomweb/studies?StudyDate=20260106-")
        #expect(Self.names(results) == ["Doe^John"])
        // Combined date-time range: 2026-01-05 10:15 lies after 10:00 that day.
        (_, results) = try await search(archive, "/dicomweb/studies?StudyDate=20260105-20260210&StudyTime=1000-0900")
        #expect(Self.names(results) == ["Doe^Jane"])
        // Lower-level keys and aggregates at the study level.
        (_, results) = try await search(archive, "/dicomweb/studies?ModalitiesInStudy=XC&PatientName=Smith*")
        #expect(Self.names(results) == ["Smith^Ann"])
        #expect((results.first?["00201208"] as? [String: Any])?["Value"] as? [Int] == [1])
        (_, results) = try await search(archive, "/dicomweb/studies?Modality=M3D")
        #expect(results.isEmpty)
        // A UID list.
        let catalog = archive.service.index.catalog()
        let two = catalog.studies.keys.sorted().prefix(2)
        (_, results) = try await search(archive, "/dicomweb/studies?StudyInstanceUID=\(two.joined(separator: ","))")
        #expect(results.count == 2)
        // Nothing matches: 200 and [].
        let (empty, none) = try await search(archive, "/dicomweb/studies?PatientID=nobody")
        #expect(empty.status == .ok && none.isEmpty && empty.body == Data("[]".utf8))
    }

    @Test func clinicalKeysRegionViewTimingAndLaterality() async throws {
        let archive = try await TestArchive()
        var front = TestArchive.metadata(patient: "Vue^Una", id: "V-1")
        try front.setRegion("face")
        try front.setView("frontal")
        try front.setTiming("before")
        var side = TestArchive.metadata(patient: "Vue^Una", id: "V-1")
        try side.setRegion("breast")
        try side.setView("lateral-left")
        try side.setTiming("after")
        side.laterality = "L"
        for metadata in [front, side] {
            guard case .stored = await archive.service.store(try TestArchive.photo(metadata).bytes) else {
                throw HTTPFailure(.badRequest, "not stored")
            }
        }
        func count(_ query: String) async throws -> Int {
            try await search(archive, "/dicomweb/instances?\(query)").1.count
        }
        #expect(try await count("AnatomicRegionSequence.CodeValue=89545001") == 1)
        #expect(try await count("00082218.00080100=76752008") == 1)
        #expect(try await count("AcquisitionContextSequence.ConceptCodeSequence.CodeValue=FRONTAL") == 1)
        #expect(try await count("AcquisitionContextSequence.ConceptCodeSequence.CodeValue=AFTER") == 1)
        #expect(try await count("ImageLaterality=L") == 1)
        #expect(try await count("PatientID=V-1&Modality=XC") == 2)
    }

    @Test func pagingIncludefieldNegotiationAndErrors() async throws {
        var archive = try await Self.loaded()
        archive.settings.maximumResults = 2
        let (first, page) = try await search(archive, "/dicomweb/studies")
        #expect(page.count == 2)
        #expect(first.headers[.warning]?.contains("additional results") == true)
        let (_, rest) = try await search(archive, "/dicomweb/studies?offset=2")
        #expect(rest.count == 1)
        // Stable order: newest study first.
        #expect(Self.names(Array(page.prefix(1))) == ["Doe^John"])
        let (_, beyond) = try await search(archive, "/dicomweb/studies?offset=10")
        #expect(beyond.isEmpty)

        let (_, plain) = try await search(archive, "/dicomweb/instances?limit=1")
        #expect(plain[0]["00280010"] != nil && plain[0]["00100010"] != nil && plain[0]["0020000E"] != nil)
        let (_, studyLevel) = try await search(archive, "/dicomweb/studies?limit=1&includefield=00280010")
        #expect(studyLevel[0]["00280010"] == nil)  // never instance attributes in a study answer
        let (_, all) = try await search(archive, "/dicomweb/series?limit=1&includefield=all")
        #expect(all[0]["00080060"] != nil && all[0]["00080018"] == nil)

        let (fuzzy, _) = try await search(archive, "/dicomweb/studies?fuzzymatching=true")
        #expect(fuzzy.headers[.warning]?.contains("fuzzymatching parameter is not supported") == true)
        let (refused, _) = try await search(archive, "/dicomweb/studies", accept: "text/html")
        #expect(refused.status == .notAcceptable && refused.headers[.vary] == "Accept")
        let (xml, _) = try await search(
            archive, "/dicomweb/studies", accept: "multipart/related; type=\"application/dicom+xml\"")
        #expect(try parts(xml).count == 2)
        let (badDate, _) = try await search(archive, "/dicomweb/studies?StudyDate=2026-01-05")
        #expect(badDate.status == .badRequest)
        let (badUID, _) = try await search(archive, "/dicomweb/studies?StudyInstanceUID=1.2.x")
        #expect(badUID.status == .badRequest)
        let (badLimit, _) = try await search(archive, "/dicomweb/studies?limit=ten")
        #expect(badLimit.status == .badRequest)
        let (ignored, known) = try await search(archive, "/dicomweb/studies?NotAnAttribute=1&foo=bar")
        #expect(ignored.status == .ok && known.count == 2)
    }
}
