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

/// A fresh archive in a temporary folder, with instances made by DICOMCodec from the committed fixtures.
struct TestArchive {
    let folder: URL
    let service: ArchiveService
    var settings = ServerSettings()

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("testdata")

    init(duplicates: DuplicatePolicy = .reject) throws {
        try Part10.initialize()
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("facet-server-\(UUID().uuidString)")
        (service, _) = try ArchiveService.openEmbedded(
            dataDirectory: folder, duplicatePolicy: duplicates, environment: [:])
        settings.publicBaseURL = "https://archive.example"
        settings.maximumResults = 50
    }

    var app: some ApplicationProtocol {
        buildApplication(settings: settings, service: service, logger: Logger(label: "test"))
    }

    static func metadata(patient: String = "Doe^Jane", id: String = "P-1", date: String = "20260105")
        -> ClinicalMetadata
    {
        var metadata = ClinicalMetadata()
        metadata.patientName = patient
        metadata.patientID = id
        metadata.studyDate = date
        metadata.studyTime = "101500"
        metadata.accessionNumber = "ACC-\(id)"
        return metadata
    }

    /// A VL Photographic instance (JPEG baseline, unchanged) as Part-10 bytes.
    static func photo(_ metadata: ClinicalMetadata = metadata(), file: String = "photos/ycbcr-422.jpg", number: Int = 1)
        throws -> (bytes: Data, study: String, series: String, instance: String)
    {
        let context = InstanceContext(metadata: metadata, uids: try UIDGenerator())
        let prepared = try PhotoConverter.convert(
            try Data(contentsOf: root.appendingPathComponent(file)), context: context,
            placement: .init(seriesInstanceUID: context.uids.make(), seriesNumber: 1, instanceNumber: number))
        return (
            try Part10.encode(prepared.dataset, transferSyntax: prepared.transferSyntaxUID),
            context.studyInstanceUID, prepared.dataset.string(.seriesInstanceUID)!, prepared.sopInstanceUID
        )
    }

    static func multipart(_ parts: [Data], boundary: String = "b0undary", type: String = "application/dicom")
        -> ByteBuffer
    {
        var body = Data()
        for part in parts {
            body += Data("--\(boundary)\r\nContent-Type: \(type)\r\n\r\n".utf8) + part + Data("\r\n".utf8)
        }
        body += Data("--\(boundary)--\r\n".utf8)
        return ByteBuffer(bytes: body)
    }

    static let stowType = "multipart/related; type=\"application/dicom\"; boundary=b0undary"

    /// Every regular file under the data folder, for the at-rest checks.
    func allFiles() -> [URL] {
        let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey])
        return (enumerator?.allObjects as? [URL] ?? []).filter {
            (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true
        }
    }
}

/// A response kept after the test client is gone.
struct Answer: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: Data

    init(_ response: TestResponse) {
        status = response.status
        headers = response.headers
        body = Data(response.body.readableBytesView)
    }
}

func json(_ buffer: ByteBuffer) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
}

func headers(_ pairs: [(HTTPField.Name, String)]) -> HTTPFields {
    var fields = HTTPFields()
    for (name, value) in pairs { fields.append(HTTPField(name: name, value: value)) }
    return fields
}

/// The parts of a multipart/related response body (boundary from its Content-Type).
func parts(_ response: TestResponse) throws -> [(headers: String, body: Data)] {
    try parts(Answer(response))
}

func parts(_ answer: Answer) throws -> [(headers: String, body: Data)] {
    let type = try #require(answer.headers[.contentType])
    let reader = try MultipartRelatedReader(contentType: type, temporaryFolder: FileManager.default.temporaryDirectory)
    try reader.consume(answer.body)
    return try reader.finish().map { part in
        (part.headers.map { "\($0.key): \($0.value)" }.joined(separator: "\n"), try part.data())
    }
}

@Suite struct STOWTests {
    @Test func storesReportsAndRefusesAsPS318Says() async throws {
        let archive = try TestArchive()
        let first = try TestArchive.photo()
        let other = try TestArchive.photo(TestArchive.metadata(patient: "Roe^Rick", id: "P-2"))
        try await archive.app.test(.router) { client in
            // 200: stored, with RetrieveURL under the public base URL.
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([first.bytes])
            ) { response in
                #expect(response.status == .ok)
                let object = try #require(try json(response.body) as? [String: Any])
                let items = try #require((object["00081199"] as? [String: Any])?["Value"] as? [[String: Any]])
                #expect(items.count == 1)
                let url = (items[0]["00081190"] as? [String: Any])?["Value"] as? [String]
                #expect(
                    url?.first?.hasPrefix("https://archive.example/dicomweb/studies/\(first.study)/series/") == true)
                #expect(object["00081198"] == nil)
            }
            // The same bytes again: success, nothing new. Same UID, other bytes: 409 with 0x0111.
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([first.bytes])
            ) { response in #expect(response.status == .ok) }
            var bytes = first.bytes
            bytes[bytes.count - 3] ^= 0x01
            let changed = bytes
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([changed])
            ) { response in
                #expect(response.status == .conflict)
                let object = try #require(try json(response.body) as? [String: Any])
                let failed = try #require((object["00081198"] as? [String: Any])?["Value"] as? [[String: Any]])
                #expect((failed[0]["00081197"] as? [String: Any])?["Value"] as? [Int] == [0x0111])
            }
            // Wrong study in the URL: 409; a garbage part next to a good one: 202 naming the failure.
            try await client.execute(
                uri: "/dicomweb/studies/1.2.3.4", method: .post,
                headers: headers([(.contentType, TestArchive.stowType)]), body: TestArchive.multipart([other.bytes])
            ) { response in #expect(response.status == .conflict) }
            try await client.execute(
                uri: "/dicomweb/studies", method: .post,
                headers: headers([(.contentType, "multipart/related; type=application/dicom; boundary=\"b0undary\"")]),
                body: TestArchive.multipart([Data("not dicom".utf8), other.bytes])
            ) { response in
                #expect(response.status == .accepted)
                let object = try #require(try json(response.body) as? [String: Any])
                let failed = try #require((object["00081198"] as? [String: Any])?["Value"] as? [[String: Any]])
                #expect((failed[0]["00081197"] as? [String: Any])?["Value"] as? [Int] == [0xC000])
                #expect(response.headers[.warning]?.contains("part 1") == true)
            }
            // Only garbage: 400. Not multipart: 415. Unterminated body: 400.
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([Data("garbage".utf8)])
            ) { response in #expect(response.status == .badRequest) }
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, "application/dicom")]),
                body: ByteBuffer(bytes: first.bytes)
            ) { response in #expect(response.status == .unsupportedMediaType) }
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: ByteBuffer(string: "--b0undary\r\nContent-Type: application/dicom\r\n\r\nabc")
            ) { response in #expect(response.status == .badRequest) }
        }
        #expect(archive.service.index.catalog().instances.count == 2)
    }

    @Test func newVersionPolicyKeepsTheOldBytesAside() async throws {
        let archive = try TestArchive(duplicates: .newVersion)
        let first = try TestArchive.photo()
        var bytes = first.bytes
        bytes[bytes.count - 3] ^= 0x01
        let changed = bytes
        try await archive.app.test(.router) { client in
            for body in [first.bytes, changed] {
                try await client.execute(
                    uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                    body: TestArchive.multipart([body])
                ) { response in #expect(response.status == .ok) }
            }
        }
        let record = try #require(archive.service.index.instance(first.instance))
        #expect(try archive.service.read(record) == changed)
        #expect(try archive.service.index.referencedBlobIDs().count == 2)
    }
}

@Suite struct QIDOTests {
    static func loaded() async throws -> TestArchive {
        let archive = try TestArchive()
        var bodies: [Data] = []
        bodies.append(
            try TestArchive.photo(TestArchive.metadata(patient: "Doe^Jane", id: "P-1", date: "20260105")).bytes)
        bodies.append(
            try TestArchive.photo(TestArchive.metadata(patient: "Doe^John", id: "P-2", date: "20260210")).bytes)
        bodies.append(
            try TestArchive.photo(TestArchive.metadata(patient: "Smith^Ann", id: "P-3", date: "20251231")).bytes)
        for body in bodies {
            guard case .stored = archive.service.store(body) else {
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
        let archive = try TestArchive()
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
            guard case .stored = archive.service.store(try TestArchive.photo(metadata).bytes) else {
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

@Suite struct WADOTests {
    @Test func retrievesWhatWasStoredByteForByte() async throws {
        let archive = try TestArchive()
        let photo = try TestArchive.photo()
        guard case .stored = archive.service.store(photo.bytes) else { throw HTTPFailure(.badRequest, "not stored") }
        let base = "/dicomweb/studies/\(photo.study)/series/\(photo.series)/instances/\(photo.instance)"
        try await archive.app.test(.router) { client in
            // Lossy JPEG photos keep their transfer syntax; the bytes are exactly what was stored.
            try await client.execute(uri: "/dicomweb/studies/\(photo.study)", method: .get) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body).prefix(300))")
                let found = try parts(response)
                #expect(found.count == 1 && found[0].body == photo.bytes)
                #expect(found[0].headers.contains("transfer-syntax=1.2.840.10008.1.2.4.50"))
            }
            try await client.execute(uri: base, method: .get, headers: headers([(.accept, "application/dicom")])) {
                response in
                #expect(Data(response.body.readableBytesView) == photo.bytes)
            }
            try await client.execute(
                uri: base, method: .get,
                headers: headers([
                    (.accept, "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.70")
                ])
            ) { response in #expect(response.status == .notAcceptable) }
            try await client.execute(uri: "/dicomweb/studies/1.2.3", method: .get) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: base, method: .get, headers: headers([(.accept, "image/png")])) { response in
                #expect(response.status == .notAcceptable)
            }
            // Metadata: bulk values by absolute BulkDataURI; frames; rendered and thumbnail.
            try await client.execute(uri: base + "/metadata", method: .get) { response in
                let objects = try #require(try json(response.body) as? [[String: Any]])
                let pixel = objects[0]["7FE00010"] as? [String: Any]
                #expect(pixel?["BulkDataURI"] as? String == "https://archive.example\(base)/bulkdata/7FE00010")
                #expect((objects[0]["00100010"] as? [String: Any]) != nil)
            }
            try await client.execute(
                uri: base + "/frames/1", method: .get,
                headers: headers([(.accept, "multipart/related; type=\"image/jpeg\"")])
            ) { response in
                let frame = try parts(response)
                #expect(frame.count == 1 && frame[0].body.starts(with: [0xFF, 0xD8]))
            }
            try await client.execute(
                uri: base + "/rendered?quality=50&viewport=64,64", method: .get,
                headers: headers([(.accept, "image/png")])
            ) { response in
                #expect(response.headers[.contentType] == "image/png")
                let png = Data(response.body.readableBytesView)
                #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
                // IHDR: the image fits in 64 x 64.
                let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }
                let height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
                #expect(max(width, height) == 64)
            }
            try await client.execute(uri: "/dicomweb/studies/\(photo.study)/thumbnail", method: .get) { response in
                #expect(response.headers[.contentType] == "image/jpeg")
                #expect(Data(response.body.readableBytesView).starts(with: [0xFF, 0xD8]))
            }
            try await client.execute(uri: base + "/rendered?viewport=0,10", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: base + "/frames/0", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            let many = (1...1001).map(String.init).joined(separator: ",")
            try await client.execute(uri: base + "/frames/\(many)", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(
                uri: base + "/frames/2", method: .get,
                headers: headers([(.accept, "multipart/related; type=\"image/jpeg\"")])
            ) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func encapsulatedOBJBulkDataIsTheOriginalFile() async throws {
        let archive = try TestArchive()
        let context = InstanceContext(metadata: TestArchive.metadata(), uids: try UIDGenerator())
        let objURL = TestArchive.root.appendingPathComponent("meshes/face/face.obj")
        let prepared = try MeshConverter.convertOBJ(
            at: objURL, context: context, seriesNumber: 1, textureSeriesNumber: 2)
        for instance in prepared {
            guard
                case .stored = archive.service.store(
                    try Part10.encode(instance.dataset, transferSyntax: instance.transferSyntaxUID))
            else { throw HTTPFailure(.badRequest, "not stored") }
        }
        let obj = try #require(prepared.first { $0.sopClassUID == UID.encapsulatedOBJStorage })
        let series = try #require(obj.dataset.string(.seriesInstanceUID))
        let base = "/dicomweb/studies/\(context.studyInstanceUID)/series/\(series)/instances/\(obj.sopInstanceUID)"
        let original = try Data(contentsOf: objURL)
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: base + "/bulkdata/00420011", method: .get, headers: headers([(.accept, "model/obj")])
            ) {
                response in
                #expect(response.headers[.contentType] == "model/obj")
                #expect(Data(response.body.readableBytesView) == original)
            }
            try await client.execute(
                uri: base + "/bulkdata/00420011", method: .get,
                headers: headers([(.accept, "multipart/related; type=\"application/octet-stream\"")])
            ) { response in
                let found = try parts(response)
                #expect(found.first?.body == original)
            }
            try await client.execute(
                uri:
                    "/dicomweb/studies/\(context.studyInstanceUID)/series?ModelGroupUID=\(obj.dataset.string(.modelGroupUID)!)"
                    + "&includefield=00420012",
                method: .get
            ) { response in
                let found = try #require(try json(response.body) as? [[String: Any]])
                #expect(found.count == 1)
            }
            try await client.execute(uri: "/dicomweb/instances?MIMETypeOfEncapsulatedDocument=model/mtl", method: .get)
            {
                response in
                let found = try #require(try json(response.body) as? [[String: Any]])
                #expect(found.count == 1)
            }
            try await client.execute(uri: base + "/rendered", method: .get) { response in
                #expect(response.status == .notAcceptable)
            }
        }
    }
}

@Suite struct ServiceTests {
    @Test func capabilitiesCORSAndHealth() async throws {
        var archive = try TestArchive()
        archive.settings.corsAllowOrigin = "http://viewer.example"
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
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(String(buffer: response.body).contains("facet_http_requests_total{family=\"dicomweb\""))
            }
        }
    }

    @Test func everyRequestIsAuditedWithoutPHIAndTheChainVerifies() async throws {
        let archive = try TestArchive()
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
        #expect(!log.contains("Zebulon") && !log.contains("ZQ-77"))
        let verdict = AuditLog.verify(
            folder: archive.folder.appendingPathComponent("audit"), keys: archive.service.keys)
        #expect(verdict.isIntact)
    }

    @Test func nothingIdentifyingIsOnDiskInTheClear() async throws {
        let archive = try TestArchive()
        let photo = try TestArchive.photo(TestArchive.metadata(patient: "Zebulon^Quartz", id: "ZQ-77"))
        guard case .stored = archive.service.store(photo.bytes) else { throw HTTPFailure(.badRequest, "not stored") }
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

    @Test func oneServerPerDataFolder() throws {
        let archive = try TestArchive()
        let error = #expect(throws: ArchiveError.self) {
            _ = try ArchiveService.openEmbedded(dataDirectory: archive.folder, environment: [:])
        }
        #expect(error?.message.contains("another facet process") == true)
    }

    @Test func aFlippedByteInABlobIsDetectedAndNotServed() async throws {
        let archive = try TestArchive()
        let photo = try TestArchive.photo()
        guard case .stored(let record, _, _) = archive.service.store(photo.bytes) else {
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
