import Archive
import DICOMCodec
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MeshKit
import NIOCore
import Testing

@testable import ArchiveServer

/// Comparison jobs over HTTP (issue 11 §1) on a generated before/after pair with a known bump: the job runs on the
/// queue, its result is `facet compare --json`'s object with the same numbers, and bad requests queue nothing.
@Suite struct ComparisonTests {
    static let pairs = TestArchive.root.appendingPathComponent("generated/pairs")

    /// The generated pair's truth (from `testdata/generate_meshes.py`).
    struct Pair {
        let roi: [Double]
        let volumeML: Double
    }

    static func pair(_ name: String) throws -> Pair {
        let manifest = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: TestArchive.root.appendingPathComponent("generated/manifest.json")))
                as? [String: Any])
        let pairs = try #require(manifest["pairs"] as? [String: Any])
        let entry = try #require(pairs[name] as? [String: Any])
        let center = try #require(entry["bump_center_mm"] as? [Double])
        let radius = try #require(entry["roi_radius_mm"] as? Double)
        return Pair(roi: center + [radius], volumeML: try #require(entry["volume_change_ml"] as? Double))
    }

    /// Stores the cheek pair (BEFORE as OBJ with its MTL, AFTER as PLY converted to OBJ) for one patient; returns
    /// the two surfaces' SOP Instance UIDs and where their documents are retrieved.
    static func storeCheekPair(_ archive: TestArchive, patientID: String = "P-1") async throws -> (
        before: String, after: String, paths: [String]
    ) {
        let first = InstanceContext(
            metadata: TestArchive.metadata(id: patientID, date: "20260105"), uids: try UIDGenerator())
        // The generator's MTL names a texture it does not write: any JPEG stands in for it.
        let before = try MeshConverter.convertOBJ(
            try Data(contentsOf: pairs.appendingPathComponent("cheek_before.obj")),
            files: [
                "cheek_before.mtl": try Data(contentsOf: pairs.appendingPathComponent("cheek_before.mtl")),
                "cheek_before.jpg": try Data(
                    contentsOf: TestArchive.root.appendingPathComponent("photos/ycbcr-422.jpg")),
            ], context: first, seriesNumber: 1, textureSeriesNumber: 2)
        let second = InstanceContext(
            metadata: TestArchive.metadata(id: patientID, date: "20260301"), uids: try UIDGenerator())
        let after = try MeshConverter.convertPLY(
            try Data(contentsOf: pairs.appendingPathComponent("cheek_after.ply")), context: second, seriesNumber: 1)
        for instance in before + after {
            guard
                case .stored = await archive.service.store(
                    try Part10.encode(instance.dataset, transferSyntax: instance.transferSyntaxUID))
            else { throw HTTPFailure(.badRequest, "not stored") }
        }
        let surfaces = [
            try #require(before.first { $0.sopClassUID == UID.encapsulatedOBJStorage }),
            try #require(after.first),
        ]
        let paths = surfaces.map { instance in
            "/dicomweb/studies/\(instance.dataset.string(.studyInstanceUID)!)/series/"
                + "\(instance.dataset.string(.seriesInstanceUID)!)/instances/\(instance.sopInstanceUID)"
        }
        return (surfaces[0].sopInstanceUID, surfaces[1].sopInstanceUID, paths)
    }

    static func body(_ fields: [String: Any]) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: fields))
    }

    /// Polls a job until it has ended (or two minutes passed).
    static func awaitEnd(_ client: some TestClientProtocol, _ id: String) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(120)
        while true {
            let job = try await client.execute(uri: "/api/v1/comparisons/\(id)", method: .get) { response in
                #expect(response.status == .ok)
                return try #require(try json(response.body) as? [String: Any])
            }
            let status = job["status"] as? String ?? ""
            if ["done", "failed", "cancelled"].contains(status) || Date() > deadline { return job }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    @Test func aComparisonRunsOnTheQueueAndAnswersWhatTheCommandLineAnswers() async throws {
        let archive = try await TestArchive()
        let (before, after, paths) = try await Self.storeCheekPair(archive)
        let truth = try Self.pair("cheek-0.9ml")
        try await archive.app.test(.router) { client in
            let id = try await client.execute(
                uri: "/api/v1/comparisons", method: .post, headers: headers([(.contentType, "application/json")]),
                body: try Self.body(["before": before, "after": after, "roi": ["sphere": truth.roi], "title": "Cheek"])
            ) { response in
                #expect(response.status == .accepted)
                let answer = try #require(try json(response.body) as? [String: Any])
                #expect(answer["status"] as? String == "queued")
                let id = try #require(answer["id"] as? String)
                #expect(response.headers[.location] == "https://archive.example/api/v1/comparisons/\(id)")
                return id
            }
            let job = try await Self.awaitEnd(client, id)
            #expect(job["status"] as? String == "done", "\(job)")
            #expect(job["progress"] as? Double == 1)
            #expect(job["before"] as? String == before && job["title"] as? String == "Cheek")
            let result = try #require(job["result"] as? [String: Any])
            let volume = try #require(result["volume_change_ml"] as? Double)
            #expect(abs(volume - truth.volumeML) <= max(0.05, 0.03 * truth.volumeML), "\(volume) vs \(truth.volumeML)")

            // The same measurement on the documents a client retrieves gives the same JSON, digit for digit.
            var documents: [Data] = []
            for path in paths {
                documents.append(
                    try await client.execute(
                        uri: path + "/bulkdata/00420011", method: .get, headers: headers([(.accept, "model/obj")])
                    ) { response in Data(response.body.readableBytesView) })
            }
            var options = ChangeAnalysis.Options()
            options.region = .sphere(center: SIMD3(truth.roi[0], truth.roi[1], truth.roi[2]), radius: truth.roi[3])
            let report = try ChangeAnalysis.compare(
                before: try MeshReader.read(documents[0], format: .obj),
                after: try MeshReader.read(documents[1], format: .obj), options: options)
            let expected = try #require(
                try JSONSerialization.jsonObject(
                    with: Data(report.json(heatmapScaleMM: report.defaultHeatmapScaleMM).utf8))
                    as? NSDictionary)
            #expect(NSDictionary(dictionary: result) == expected)

            // The SR and the change map were stored in the AFTER study and are found by QIDO.
            let objects = try #require(job["report"] as? [String: Any])
            let stored = [objects["srInstance"] as? String, objects["heatmapInstance"] as? String].compactMap { $0 }
            #expect(stored.count == 2)
            let afterStudy = try #require(archive.service.index.catalog().instances[after]?.studyInstanceUID)
            for uid in stored {
                try await client.execute(uri: "/dicomweb/instances?SOPInstanceUID=\(uid)", method: .get) { response in
                    let found = try #require(try json(response.body) as? [[String: Any]])
                    #expect(found.count == 1)
                    let study = (found.first?["0020000D"] as? [String: Any])?["Value"] as? [String]
                    #expect(study == [afterStudy])
                }
            }

            // Listed for the patient, and not for another.
            try await client.execute(uri: "/api/v1/comparisons?patientID=P-1", method: .get) { response in
                let list = try #require(try json(response.body) as? [[String: Any]])
                #expect(list.map { $0["id"] as? String } == [id])
            }
            try await client.execute(uri: "/api/v1/comparisons?patientID=P-2", method: .get) { response in
                let list = try json(response.body) as? [[String: Any]]
                #expect(list?.isEmpty == true)
            }
            // An ended job cannot be cancelled.
            try await client.execute(uri: "/api/v1/comparisons/\(id)", method: .delete) { response in
                #expect(response.status == .conflict)
            }
        }
    }

    @Test func badRequestsAreRefusedWithTheReasonAndQueueNothing() async throws {
        let archive = try await TestArchive()
        let (before, after, _) = try await Self.storeCheekPair(archive)
        let (_, otherPatient, _) = try await Self.storeCheekPair(archive, patientID: "P-2")
        let photo = try TestArchive.photo()
        guard case .stored = await archive.service.store(photo.bytes) else { throw HTTPFailure(.badRequest, "photo") }
        let sphere: [String: Any] = ["sphere": [35, -10, 52.7, 24.5]]
        let cases: [([String: Any], HTTPResponse.Status, String)] = [
            (["before": before, "after": "1.2.3.999", "roi": sphere], .notFound, "after"),
            (["before": photo.instance, "after": after, "roi": sphere], .unprocessableContent, "not a 3D surface"),
            (["before": before, "after": otherPatient, "roi": sphere], .unprocessableContent, "one patient"),
            (["before": before, "after": after, "roi": ["sphere": [1, 2, 3, 0]]], .unprocessableContent, "roi"),
            (["before": before, "after": after, "roi": ["box": [1, 2, 3, 4, 5]]], .unprocessableContent, "roi"),
            (["before": before, "after": after], .unprocessableContent, "roi"),
            (["before": before, "after": after, "roi": ["sphere": [1, 2, "x", 4]]], .unprocessableContent, "roi"),
            (
                [
                    "before": before, "after": after, "roi": sphere,
                    "landmarks": ["before": ["a": [0, 0, 0]], "after": [:]],
                ],
                .unprocessableContent, "landmarks"
            ),
            (["before": "not a uid", "after": after, "roi": sphere], .badRequest, "SOP Instance UIDs"),
        ]
        let requests = try cases.map { (try Self.body($0.0), $0.1, $0.2, "\($0.0)") }
        try await archive.app.test(.router) { client in
            for (body, status, reason, fields) in requests {
                try await client.execute(
                    uri: "/api/v1/comparisons", method: .post, headers: headers([(.contentType, "application/json")]),
                    body: body
                ) { response in
                    #expect(response.status == status, "\(fields)")
                    let error = (try? json(response.body) as? [String: Any])?["error"] as? String ?? ""
                    #expect(error.contains(reason), "\(error)")
                }
            }
            try await client.execute(
                uri: "/api/v1/comparisons", method: .post, body: ByteBuffer(string: "{not json")
            ) { response in #expect(response.status == .badRequest) }
            try await client.execute(uri: "/api/v1/comparisons", method: .get) { response in
                let list = try json(response.body) as? [[String: Any]]
                #expect(list?.isEmpty == true, "nothing was queued")
            }
            try await client.execute(uri: "/api/v1/comparisons/\(UUID().uuidString.lowercased())", method: .get) {
                response in #expect(response.status == .notFound)
            }
        }
    }

    /// A job queued while no server runs (or left by one that stopped) is run by the next server that starts.
    @Test func aJobQueuedBeforeTheServerStartsIsRunByIt() async throws {
        let archive = try await TestArchive()
        let (before, after, _) = try await Self.storeCheekPair(archive)
        let truth = try Self.pair("cheek-0.9ml")
        let queue = try #require(Comparisons.queue(for: archive.service))
        var asked = try ComparisonRequest(
            json: try JSONSerialization.data(withJSONObject: [
                "before": before, "after": after, "roi": ["sphere": truth.roi],
            ]))
        let study = try #require(archive.service.index.catalog().instances[before]?.studyInstanceUID)
        let record = try #require(archive.service.index.catalog().studies[study])
        asked.patient = try #require(archive.identity.patient(of: record, tenant: "default")).hex
        let id = try await queue.enqueue(kind: Comparisons.kind, payload: asked.payload)
        try await archive.app.test(.router) { client in
            let job = try await Self.awaitEnd(client, id)
            #expect(job["status"] as? String == "done", "\(job)")
            let volume = try #require((job["result"] as? [String: Any])?["volume_change_ml"] as? Double)
            #expect(abs(volume - truth.volumeML) <= max(0.05, 0.03 * truth.volumeML))
        }
    }

    /// A job cancelled before its report is stored stores nothing; a job run again (its worker died after storing)
    /// finds the objects of the earlier run by their job-derived UIDs and stores nothing twice.
    @Test func aCancelledRunStoresNothingAndARerunStoresNothingTwice() async throws {
        let archive = try await TestArchive()
        let (before, after, _) = try await Self.storeCheekPair(archive)
        let truth = try Self.pair("cheek-0.9ml")
        let pool = BlockingPool(threads: 2, queueLimit: 100)
        let comparisons = Comparisons(
            archive: archive.service, retrieve: RetrieveService(archive: archive.service, pool: pool),
            queue: try #require(Comparisons.queue(for: archive.service)), pool: pool,
            ingest: IngestService(archive: archive.service, pool: pool))
        let asked = try ComparisonRequest(
            json: try JSONSerialization.data(withJSONObject: [
                "before": before, "after": after, "roi": ["sphere": truth.roi],
            ]))
        let count = archive.service.index.catalog().instances.count
        let refused = await Self.code {
            () async throws(ArchiveError) -> Comparisons.Outcome in
            try await comparisons.run(asked, job: "job-1", progress: { _ in }, stillMine: { false })
        }
        #expect(refused == .conflict)
        #expect(archive.service.index.catalog().instances.count == count, "a cancelled run stores nothing")
        let first = try await comparisons.run(asked, job: "job-2", progress: { _ in })
        #expect(archive.service.index.catalog().instances.count == count + 3)
        let again = try await comparisons.run(asked, job: "job-2", progress: { _ in })
        #expect(again == first)
        #expect(archive.service.index.catalog().instances.count == count + 3, "nothing stored twice")
    }

    static func code<T>(_ body: () async throws(ArchiveError) -> T) async -> ArchiveError.Code? {
        do throws(ArchiveError) {
            _ = try await body()
            return nil
        } catch {
            return error.code
        }
    }

    /// Roles that may not see the patient are refused; a front-desk account may not ask at all.
    @Test func theAccessPolicyDecidesWhoMayAskAndRead() async throws {
        var archive = try await TestArchive()
        let (before, after, _) = try await Self.storeCheekPair(archive)
        let request = try Self.body(["before": before, "after": after, "roi": ["sphere": [35, -10, 52.7, 24.5]]])
        let physician = archive.token
        archive.token = try await archive.token(for: .frontDesk)
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/api/v1/comparisons", method: .post, body: request
            ) { response in #expect(response.status == .forbidden) }
        }
        archive.token = try await archive.token(for: .medicalAssistant)
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/api/v1/comparisons", method: .post, body: request
            ) { response in #expect(response.status == .forbidden, "not in the patient's care team") }
        }
        archive.token = physician
        let id = try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/api/v1/comparisons", method: .post, body: request
            ) { response in try #require(try json(response.body) as? [String: Any])["id"] as? String }
        }
        archive.token = try await archive.token(for: .medicalAssistant, username: "ma2")
        try await archive.app.test(.router) { client in
            try await client.execute(uri: "/api/v1/comparisons/\(try #require(id))", method: .get) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/api/v1/comparisons", method: .get) { response in
                let list = try json(response.body) as? [[String: Any]]
                #expect(list?.isEmpty == true, "only the patients this account may see")
            }
            // The reports are the patient's too: decided before anything is read or drawn.
            for report in ["report.pdf", "report.html"] {
                try await client.execute(uri: "/api/v1/comparisons/\(try #require(id))/\(report)", method: .get) {
                    response in #expect(response.status == .forbidden, "\(report)")
                }
            }
        }
        // Without a token: 401 before the job is even looked up.
        try await archive.bareApp.test(.router) { client in
            for report in ["report.pdf", "report.html"] {
                try await client.execute(uri: "/api/v1/comparisons/\(try #require(id))/\(report)", method: .get) {
                    response in #expect(response.status == .unauthorized, "\(report)")
                }
            }
        }
    }
}
