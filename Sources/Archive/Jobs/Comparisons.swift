import Crypto
import DICOMCodec
import DICOMCore
import Foundation
import MeshKit

/// A comparison asked of the server (`POST /api/v1/comparisons`): two stored 3D captures of one patient, the region
/// of interest in BEFORE's frame (mm), optional landmarks and a title. Kept as the job's sealed payload, with the
/// patient's keyed hash (for listing by patient) and who asked.
public struct ComparisonRequest: Sendable, Equatable {
    public enum ROI: Sendable, Equatable {
        case sphere(SIMD3<Double>, radius: Double)
        case box(SIMD3<Double>, SIMD3<Double>)

        var region: Region {
            switch self {
            case .sphere(let center, let radius): .sphere(center: center, radius: radius)
            case .box(let a, let b): .box(minimum: pointwiseMin(a, b), maximum: pointwiseMax(a, b))
            }
        }

        var json: [String: Any] {
            switch self {
            case .sphere(let c, let r): ["sphere": [c.x, c.y, c.z, r]]
            case .box(let a, let b): ["box": [a.x, a.y, a.z, b.x, b.y, b.z]]
            }
        }
    }

    public var before: String
    public var after: String
    public var roi: ROI
    public var landmarks: (before: [String: SIMD3<Double>], after: [String: SIMD3<Double>])?
    public var title: String?
    /// The patient both captures belong to (keyed hash), set when the request is accepted.
    public var patient: String = ""
    public var requestedBy: String = ""

    public static func == (a: Self, b: Self) -> Bool {
        a.before == b.before && a.after == b.after && a.roi == b.roi && a.title == b.title && a.patient == b.patient
            && a.requestedBy == b.requestedBy && a.landmarks?.before == b.landmarks?.before
            && a.landmarks?.after == b.landmarks?.after
    }

    /// Parses a request body. Malformed JSON or a missing UID is `.invalidRequest` (400); a region or landmarks
    /// that cannot be used is `.unprocessable` (422).
    public init(json body: Data) throws(ArchiveError) {
        guard body.count <= 1 << 20, let fields = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        else {
            throw ArchiveError(
                .invalidRequest,
                "a comparison is {\"before\": SOPInstanceUID, \"after\": SOPInstanceUID, \"roi\": {\"sphere\": [x,y,z,r]}}"
            )
        }
        guard let before = fields["before"] as? String, let after = fields["after"] as? String,
            UID.isValid(before), UID.isValid(after)
        else { throw ArchiveError(.invalidRequest, "\"before\" and \"after\" must be SOP Instance UIDs") }
        guard before != after else {
            throw ArchiveError(.unprocessable, "\"before\" and \"after\" name the same instance")
        }
        self.before = before
        self.after = after
        roi = try Self.roi(fields["roi"])
        if let value = fields["landmarks"], !(value is NSNull) { landmarks = try Self.landmarks(value) }
        if let value = fields["title"], !(value is NSNull) {
            guard let title = value as? String, title.utf8.count <= 256 else {
                throw ArchiveError(.unprocessable, "\"title\" must be a string of at most 256 bytes")
            }
            self.title = title
        }
        patient = fields["patient"] as? String ?? ""
        requestedBy = fields["requestedBy"] as? String ?? ""
    }

    /// The stored form (the job's payload).
    public var payload: Data {
        var fields: [String: Any] = [
            "before": before, "after": after, "roi": roi.json, "patient": patient, "requestedBy": requestedBy,
        ]
        if let title { fields["title"] = title }
        if let landmarks {
            func side(_ points: [String: SIMD3<Double>]) -> [String: [Double]] {
                points.mapValues { [$0.x, $0.y, $0.z] }
            }
            fields["landmarks"] = ["before": side(landmarks.before), "after": side(landmarks.after)]
        }
        return (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data()
    }

    static func numbers(_ value: Any?, count: Int) -> [Double]? {
        guard let list = value as? [Any], list.count == count else { return nil }
        let numbers = list.compactMap { ($0 as? NSNumber)?.doubleValue }
        // Coordinates in mm: anything beyond 10 m is not a face.
        guard numbers.count == count, numbers.allSatisfy({ $0.isFinite && abs($0) <= 10_000 }) else { return nil }
        return numbers
    }

    static func roi(_ value: Any?) throws(ArchiveError) -> ROI {
        let usage = "\"roi\" must be {\"sphere\": [x,y,z,r]} with r > 0 or {\"box\": [x0,y0,z0,x1,y1,z1]}, in mm"
        guard let object = value as? [String: Any], object.count == 1 else {
            throw ArchiveError(.unprocessable, usage)
        }
        if let sphere = numbers(object["sphere"], count: 4), sphere[3] > 0 {
            return .sphere(SIMD3(sphere[0], sphere[1], sphere[2]), radius: sphere[3])
        }
        if let box = numbers(object["box"], count: 6) {
            let a = SIMD3(box[0], box[1], box[2])
            let b = SIMD3(box[3], box[4], box[5])
            guard (0..<3).allSatisfy({ a[$0] != b[$0] }) else {
                throw ArchiveError(.unprocessable, "the \"box\" region has no volume")
            }
            return .box(a, b)
        }
        throw ArchiveError(.unprocessable, usage)
    }

    static func landmarks(_ value: Any) throws(ArchiveError) -> (
        before: [String: SIMD3<Double>], after: [String: SIMD3<Double>]
    ) {
        let usage =
            "\"landmarks\" must be {\"before\": {\"name\": [x,y,z], ...}, \"after\": {...}} with 3 or more shared names"
        guard let object = value as? [String: Any], let before = object["before"] as? [String: Any],
            let after = object["after"] as? [String: Any], before.count <= 1000, after.count <= 1000
        else { throw ArchiveError(.unprocessable, usage) }
        func side(_ entries: [String: Any]) throws(ArchiveError) -> [String: SIMD3<Double>] {
            var points: [String: SIMD3<Double>] = [:]
            for (name, value) in entries {
                guard name.utf8.count <= 64, let xyz = numbers(value, count: 3) else {
                    throw ArchiveError(.unprocessable, usage)
                }
                points[name] = SIMD3(xyz[0], xyz[1], xyz[2])
            }
            return points
        }
        let (b, a) = (try side(before), try side(after))
        guard Set(b.keys).intersection(a.keys).count >= 3 else { throw ArchiveError(.unprocessable, usage) }
        return (b, a)
    }
}

/// Comparison jobs over one clinic's archive: accepting a request (both captures stored, 3D, of one patient) onto
/// the job queue, and running one (the same measurement as `facet compare`, on the stored documents' bytes).
public struct Comparisons: Sendable {
    /// The queue's kind for comparison jobs.
    public static let kind = "comparison"
    /// SOP classes a comparison takes: the surfaces (an MTL holds no geometry).
    public static let surfaceClasses: Set<String> = [UID.encapsulatedOBJStorage, UID.encapsulatedSTLStorage]

    public let archive: ArchiveService
    public let retrieve: RetrieveService
    public let queue: any JobQueue
    /// Stores the report objects back (nil: measure only).
    public let ingest: IngestService?
    /// Where the measurement runs (CPU work for seconds: never on a cooperative thread).
    public let pool: BlockingPool

    /// How many comparisons one process runs at once: one per core.
    public static let concurrency = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// The process's threads for comparisons (one per core; jobs are claimed only when a thread is free, so its
    /// queue stays short). MeshKit parallelises inside a comparison too.
    public static let measurementPool = BlockingPool(threads: concurrency, queueLimit: Int.max)

    public init(
        archive: ArchiveService, retrieve: RetrieveService, queue: any JobQueue, pool: BlockingPool,
        ingest: IngestService? = nil
    ) {
        self.archive = archive
        self.retrieve = retrieve
        self.queue = queue
        self.pool = pool
        self.ingest = ingest
    }

    /// The job queue of an archive's index (the same tables on SQLite and PostgreSQL).
    public static func queue(for archive: ArchiveService) -> (any JobQueue)? {
        if let index = archive.index as? PostgresStudyIndex { return PostgresJobQueue(index: index) }
        if let index = archive.index as? SQLiteStudyIndex {
            return SQLiteJobQueue(index: index, tenant: archive.keys.tenant)
        }
        return nil
    }

    /// The two stored instances of a request: 404 for an unknown UID, 422 for an instance that is not a surface.
    public func captures(_ request: ComparisonRequest) throws(ArchiveError) -> (
        before: InstanceRecord, after: InstanceRecord
    ) {
        let catalog = archive.index.catalog()
        func capture(_ uid: String, _ side: String) throws(ArchiveError) -> InstanceRecord {
            guard let record = catalog.instances[uid] else {
                throw ArchiveError(.notFound, "no stored instance is the \(side) capture")
            }
            guard Self.surfaceClasses.contains(record.sopClassUID) else {
                throw ArchiveError(
                    .unprocessable, "the \(side) capture is not a 3D surface (Encapsulated OBJ or STL)")
            }
            return record
        }
        return (try capture(request.before, "before"), try capture(request.after, "after"))
    }

    /// Queues a checked request; returns the job's id.
    public func submit(_ request: ComparisonRequest) async throws(ArchiveError) -> String {
        try await queue.enqueue(
            kind: Self.kind, payload: request.payload, subject: request.patient.isEmpty ? nil : request.patient)
    }

    /// What a finished comparison keeps: `facet compare --json`'s object as the measurement wrote it, and the
    /// report objects stored back into the AFTER study.
    public struct Outcome: Sendable, Equatable {
        public var result: String
        public var srInstance: String?
        public var heatmapInstance: String?
        public var pdfInstance: String?

        public init(
            result: String, srInstance: String? = nil, heatmapInstance: String? = nil, pdfInstance: String? = nil
        ) {
            self.result = result
            self.srInstance = srInstance
            self.heatmapInstance = heatmapInstance
            self.pdfInstance = pdfInstance
        }

        /// `{"report":{...},"result":RESULT}`, RESULT kept as text (every digit as written).
        public var encoded: Data {
            func uid(_ value: String?) -> String { value.map { "\"\($0)\"" } ?? "null" }
            return Data(
                ("{\"report\":{\"srInstance\":\(uid(srInstance)),\"heatmapInstance\":\(uid(heatmapInstance)),"
                    + "\"pdfInstance\":\(uid(pdfInstance))},"
                    + "\"result\":\(result)}").utf8)
        }

        /// Reads `encoded` (or a bare result, as stored before reports existed).
        public init(decoding data: Data) {
            let text = String(decoding: data, as: UTF8.self)
            guard text.hasPrefix("{\"report\":{"), let split = text.range(of: "},\"result\":"), text.hasSuffix("}")
            else {
                self.init(result: text)
                return
            }
            let report = String(text[text.index(text.startIndex, offsetBy: 10)..<split.lowerBound]) + "}"
            let fields = (try? JSONSerialization.jsonObject(with: Data(report.utf8))) as? [String: Any] ?? [:]
            self.init(
                result: String(text[split.upperBound..<text.index(before: text.endIndex)]),
                srInstance: fields["srInstance"] as? String, heatmapInstance: fields["heatmapInstance"] as? String,
                pdfInstance: fields["pdfInstance"] as? String)
        }
    }

    /// Runs a comparison: reads both documents, measures, and (with an ingest service) stores the SR measurement
    /// report, the change map and the PDF report as new series of the AFTER study, through the same ingest as every
    /// other object. `progress` hears 0...1 as the steps go by; `stillMine` is asked just before anything is stored
    /// (a job cancelled meanwhile, or taken by another worker, stores nothing). The objects' UIDs derive from the job
    /// id, so a job run again after its worker died finds what an earlier run stored instead of storing it twice.
    public func run(
        _ request: ComparisonRequest, job: String = "", progress: @escaping @Sendable (Double) -> Void,
        stillMine: @escaping @Sendable () async -> Bool = { true }
    ) async throws(ArchiveError) -> Outcome {
        let (before, after) = try captures(request)
        progress(0.02)
        // Both read (decrypted, checked, unwrapped) at once.
        async let beforeRead = documentResult(before)
        async let afterRead = documentResult(after)
        let beforeBytes = try await beforeRead.get()
        let afterBytes = try await afterRead.get()
        progress(0.05)
        var options = ChangeAnalysis.Options()
        options.region = request.roi.region
        options.landmarks = request.landmarks
        let formats = (Self.format(before), Self.format(after))
        let wantReport = ingest != nil
        let measured = try await pool.runTyped { [options] () throws(ArchiveError) -> Measured in
            do throws(MeshError) {
                // Both read at once (the larger takes a core of its own).
                let read = parallelMap(2, minimumChunk: 1) { range in
                    range.map { side in
                        Result { () throws(MeshError) -> Mesh in
                            try MeshReader.read(
                                side == 0 ? beforeBytes : afterBytes, format: side == 0 ? formats.0 : formats.1)
                        }
                    }
                }
                var beforeMesh = try read[0].get()
                let afterMesh = try read[1].get()
                let report = try ChangeAnalysis.compare(
                    before: beforeMesh, after: afterMesh, options: options,
                    progress: { step in progress(Self.fraction(of: step)) })
                let scale = report.defaultHeatmapScaleMM
                // The change map: BEFORE's surface coloured by displacement (no texture).
                let colors = ChangeAnalysis.heatmapColors(report.vertexDistancesMM, scaleMM: scale)
                beforeMesh.colors = colors
                beforeMesh.texcoords = nil
                beforeMesh.triangleTexcoords = nil
                beforeMesh.triangleMaterials = nil
                beforeMesh.materials = []
                beforeMesh.materialLibraries = []
                let views = wantReport ? ComparisonPDF.views(beforeMesh, colors: colors) : []
                return Measured(
                    json: report.json(heatmapScaleMM: scale), report: report, scale: scale,
                    heatmap: wantReport ? MeshWriter.coloredOBJ(beforeMesh) : Data(), views: views)
            } catch {
                throw ArchiveError(.unprocessable, "the comparison failed: \(error.message)")
            }
        }
        var outcome = Outcome(result: measured.json)
        guard ingest != nil else { return outcome }
        progress(0.95)
        guard await stillMine() else { throw ArchiveError(.conflict, "the comparison is no longer this worker's") }
        let stored = try await storeReport(request, before: before, after: after, measured: measured, job: job)
        outcome.srInstance = stored.sr
        outcome.heatmapInstance = stored.heatmap
        outcome.pdfInstance = stored.pdf
        return outcome
    }

    /// What a measurement hands to the report.
    struct Measured: Sendable {
        var json: String
        var report: ChangeReport
        var scale: Double
        var heatmap: Data
        var views: [SurfaceRenderer.Image]
    }

    /// Builds and stores the SR, the change map and the PDF in the AFTER study; their SOP Instance UIDs.
    func storeReport(
        _ request: ComparisonRequest, before: InstanceRecord, after: InstanceRecord, measured: Measured, job: String
    ) async throws(ArchiveError) -> (sr: String, heatmap: String, pdf: String) {
        let catalog = archive.index.catalog()
        guard let ingest, let study = catalog.studies[after.studyInstanceUID] else {
            throw ArchiveError(.notFound, "the after capture's study is gone")
        }
        let beforeStudy = catalog.studies[before.studyInstanceUID]?.attributes ?? Dataset()
        let captures = [before, after].map {
            MeshConverter.Source(
                sopClassUID: $0.sopClassUID, sopInstanceUID: $0.sopInstanceUID, seriesInstanceUID: $0.seriesInstanceUID,
                studyInstanceUID: $0.studyInstanceUID)
        }
        let report = measured.report
        let figures = ComparisonSR.Figures(report)
        let title = request.title ?? "3D surface comparison"
        let uids: UIDGenerator
        do {
            uids = try UIDGenerator()
        } catch {
            throw ArchiveError(.io, "UIDs for the comparison report cannot be made")
        }
        // One UID per object and series, the same on every run of this job.
        func uid(_ what: String) -> String { job.isEmpty ? uids.make() : Self.hashUID("facet-job:\(job):\(what)") }
        let planned = (sr: uid("sr"), map: uid("map"), pdf: uid("pdf"))
        let series = (sr: uid("sr-series"), map: uid("map-series"), pdf: uid("pdf-series"))
        let tracking = uid("tracking")
        let tenant = archive.keys.tenant
        let content = Self.content(
            request, study: study.attributes, beforeStudy: beforeStudy, before: before, after: after, figures: figures,
            scale: measured.scale, histogram: report.histogram, views: measured.views)
        let encoded = try await pool.runTyped { () throws(ArchiveError) -> [(String, Data)] in
            do throws(DICOMCodecError) {
                let sr = ComparisonSR.make(
                    study: study.attributes, before: captures[0], after: captures[1], figures: figures, title: title,
                    seriesInstanceUID: series.sr, sopInstanceUID: planned.sr, trackingUID: tracking,
                    deviceUID: Self.hashUID("facet-device:\(tenant)"), softwareVersion: Facet.version)
                var metadata = ClinicalMetadata(study: study.attributes)
                metadata.studyInstanceUID = after.studyInstanceUID
                metadata.seriesDescription = "Facet change map"
                var map = try MeshConverter.derivedOBJ(
                    measured.heatmap, title: "Change map: \(title) (displacement, mm)",
                    context: InstanceContext(metadata: metadata, uids: uids), seriesNumber: 902,
                    frameOfReference: before.attributes.string(.frameOfReferenceUID), sources: captures)
                metadata.seriesDescription = "Facet comparison report (PDF)"
                var pdf = try EncapsulatedPDF.make(
                    try ComparisonPDF.make(content), title: "Comparison report: \(title)",
                    context: InstanceContext(metadata: metadata, uids: uids), seriesNumber: 903, sources: captures)
                for (object, instance, seriesUID) in [(0, planned.map, series.map), (1, planned.pdf, series.pdf)] {
                    var dataset = object == 0 ? map.dataset : pdf.dataset
                    dataset.set(.sopInstanceUID, .UI, instance)
                    dataset.set(.seriesInstanceUID, .UI, seriesUID)
                    if let issuer = study.attributes.string(Tag(0x0010, 0x0021)) {
                        dataset.set(Tag(0x0010, 0x0021), .LO, issuer)
                    }
                    if object == 0 { map.dataset = dataset } else { pdf.dataset = dataset }
                }
                return [
                    (planned.sr, try Part10.encode(sr, transferSyntax: UID.explicitVRLittleEndian)),
                    (planned.map, try Part10.encode(map.dataset, transferSyntax: map.transferSyntaxUID)),
                    (planned.pdf, try Part10.encode(pdf.dataset, transferSyntax: pdf.transferSyntaxUID)),
                ]
            } catch {
                throw ArchiveError(.io, "the comparison report could not be made: \(error.message)")
            }
        }
        // What an earlier run of this job stored already is not stored again.
        let missing = encoded.filter { archive.index.catalog().instances[$0.0] == nil }
        let caller = IngestService.Caller(actor: "facet/comparisons", address: "local", request: job)
        let outcomes = await ingest.store(
            missing.map { object in .bytes({ object.1 }) }, expectedStudy: after.studyInstanceUID, caller: caller)
        for outcome in outcomes {
            switch outcome {
            case .stored:
                continue
            case .failed(_, _, _, let message, let retryable):
                throw ArchiveError(retryable ? .unavailable : .io, "a comparison report was not stored: \(message)")
            default:
                throw ArchiveError(.io, "a comparison report was not stored")
            }
        }
        return (planned.sr, planned.map, planned.pdf)
    }

    /// What the report shows (the PDF stored at the end of a job, the HTML page drawn on request).
    static func content(
        _ request: ComparisonRequest, study: Dataset, beforeStudy: Dataset, before: InstanceRecord,
        after: InstanceRecord, figures: ComparisonSR.Figures, scale: Double, histogram: Histogram,
        views: [SurfaceRenderer.Image]
    ) -> ComparisonPDF.Content {
        func device(_ record: InstanceRecord) -> String {
            [record.attributes.string(.manufacturer), record.attributes.string(.manufacturerModelName)].compactMap {
                $0
            }.joined(separator: " ")
        }
        return ComparisonPDF.Content(
            title: request.title ?? "3D surface comparison", patientName: study.string(.patientName) ?? "",
            patientID: study.string(.patientID) ?? "", birthDate: study.string(.patientBirthDate) ?? "",
            before: ComparisonPDF.Capture(date: beforeStudy.string(.studyDate) ?? "", device: device(before)),
            after: ComparisonPDF.Capture(date: study.string(.studyDate) ?? "", device: device(after)),
            region: ComparisonPDF.describe(request.roi.region), figures: figures, heatmapScaleMM: scale,
            histogram: histogram, views: views, version: Facet.version)
    }

    /// The HTML report of a finished job: the figures from its result (read from the text, every digit as the
    /// worker wrote it), the views rendered from its stored change map (`changeMap`: the Encapsulated OBJ's
    /// document, BEFORE with vertex colours).
    public func htmlReport(_ request: ComparisonRequest, result: String, changeMap: Data) async throws(ArchiveError)
        -> String
    {
        let catalog = archive.index.catalog()
        guard let before = catalog.instances[request.before], let after = catalog.instances[request.after],
            let study = catalog.studies[after.studyInstanceUID]
        else { throw ArchiveError(.notFound, "a capture of this comparison is gone") }
        let beforeStudy = catalog.studies[before.studyInstanceUID]?.attributes ?? Dataset()
        let keys = [
            "volume_change_ml", "positive_volume_ml", "negative_volume_ml", "roi_area_mm2", "area_change_mm2",
            "mean_displacement_mm", "max_displacement_mm", "p95_displacement_mm", "registration_rms_mm",
            "heatmap_scale_mm",
        ]
        let n = FHIRMapping.numbers(in: result, keys: keys)
        func value(_ key: String) -> Double { n[key] ?? .nan }
        let interval = FHIRMapping.bounds(in: result, key: "volume_change_ci95_ml")
        let figures = ComparisonSR.Figures(
            volumeChangeML: value("volume_change_ml"), positiveVolumeML: value("positive_volume_ml"),
            negativeVolumeML: value("negative_volume_ml"), roiAreaMM2: value("roi_area_mm2"),
            areaChangeMM2: value("area_change_mm2"), meanDisplacementMM: value("mean_displacement_mm"),
            maxDisplacementMM: value("max_displacement_mm"), p95DisplacementMM: value("p95_displacement_mm"),
            registrationRMSMM: value("registration_rms_mm"),
            volumeChangeCI95ML: interval.map { $0.lower...max($0.lower, $0.upper) })
        var histogram = Histogram(binWidthMM: 0.25, lowerMM: 0, areasMM2: [])
        if let object = try? JSONSerialization.jsonObject(with: Data(result.utf8)) as? [String: Any],
            let fields = object["histogram"] as? [String: Any]
        {
            histogram = Histogram(
                binWidthMM: (fields["bin_width_mm"] as? NSNumber)?.doubleValue ?? 0.25,
                lowerMM: (fields["lower_mm"] as? NSNumber)?.doubleValue ?? 0,
                areasMM2: (fields["area_mm2"] as? [Any])?.map { ($0 as? NSNumber)?.doubleValue ?? 0 } ?? [])
        }
        let views = try await pool.runTyped { () throws(ArchiveError) -> [SurfaceRenderer.Image] in
            do throws(MeshError) {
                let mesh = try MeshReader.read(changeMap, format: .obj)
                let colors = mesh.colors ?? [SIMD3<UInt8>](repeating: SIMD3(128, 128, 128), count: mesh.vertexCount)
                return ComparisonPDF.views(mesh, colors: colors, size: ComparisonHTML.viewSize)
            } catch {
                throw ArchiveError(.io, "the change map cannot be read: \(error.message)")
            }
        }
        let content = Self.content(
            request, study: study.attributes, beforeStudy: beforeStudy, before: before, after: after,
            figures: figures, scale: value("heatmap_scale_mm").isFinite ? value("heatmap_scale_mm") : 1,
            histogram: histogram, views: views)
        return try await pool.runTyped { () throws(ArchiveError) -> String in
            do throws(DICOMCodecError) {
                return try ComparisonHTML.make(content)
            } catch {
                throw ArchiveError(.io, "the HTML report cannot be made: \(error.message)")
            }
        }
    }

    /// The CSP source that allows the HTML report's one style element (`'sha256-…'` without the quotes).
    public static let reportStyleSource =
        "sha256-" + Data(SHA256.hash(data: Data(ComparisonHTML.style.utf8))).base64EncodedString()

    /// A UID of the 2.25 arc made from a text (its SHA-256, 128 bits in decimal): the same text, the same UID.
    static func hashUID(_ text: String) -> String {
        var value = Array(SHA256.hash(data: Data(text.utf8)).prefix(16))
        var digits: [UInt8] = []
        while value.contains(where: { $0 != 0 }) {
            var remainder = 0
            for index in value.indices {
                let current = remainder * 256 + Int(value[index])
                value[index] = UInt8(current / 10)
                remainder = current % 10
            }
            digits.append(UInt8(remainder))
        }
        return "2.25." + (digits.isEmpty ? "0" : String(digits.reversed().map { Character(String($0)) }))
    }

    /// How far along a step of `ChangeAnalysis.compare` is.
    static func fraction(of step: String) -> Double {
        switch step {
        case "indexing both surfaces": 0.1
        case "registering AFTER onto BEFORE": 0.3
        case "measuring displacement": 0.6
        case "measuring area change": 0.85
        default: 0.5
        }
    }

    static func format(_ record: InstanceRecord) -> MeshFormat {
        record.sopClassUID == UID.encapsulatedSTLStorage ? .stl : .obj
    }

    func documentResult(_ record: InstanceRecord) async -> Result<Data, ArchiveError> {
        do throws(ArchiveError) {
            return .success(try await document(record))
        } catch {
            return .failure(error)
        }
    }

    func document(_ record: InstanceRecord) async throws(ArchiveError) -> Data {
        do {
            return try await retrieve.bulkValue(record, tag: .encapsulatedDocument).data
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "a stored capture cannot be read")
        }
    }
}
