import DICOMCodec
import DICOMCore
import Foundation

/// The one store pipeline: STOW-RS parts, clinic uploads (photos and scans wrapped by DICOMCodec) and the demo
/// clinic all go through it. Instances are checked, then named in an audit intent that is fsynced before any of
/// them is committed, so no stored instance is ever unaudited; blocking work runs on the blocking pool.
public struct IngestService: Sendable {
    public let archive: ArchiveService
    public let pool: BlockingPool

    public init(archive: ArchiveService, pool: BlockingPool) {
        self.archive = archive
        self.pool = pool
    }

    /// Who stores, as the audit log names them.
    public struct Caller: Sendable {
        public var actor: String
        public var address: String
        /// The request's id, to join the intent with the outcome event and the logs.
        public var request: String?

        public init(actor: String, address: String, request: String? = nil) {
            self.actor = actor
            self.address = address
            self.request = request
        }
    }

    /// One part of a STOW request: its bytes (read when its turn comes), or a failure decided already.
    public enum Part: Sendable {
        case bytes(@Sendable () throws -> Data)
        case refused(StoreOutcome)
    }

    /// How many parts are checked and committed at a time (their fsyncs overlap).
    public static let concurrentParts = 2

    /// Stores STOW parts window by window, in order: each window's parts are checked, their instances named in
    /// an audit intent (fsynced), then committed. If the intent cannot be written, that window's instances fail
    /// with 0xA700 and nothing of them is stored. `intentRecorded` is called once an intent is on disk.
    public func store(
        _ parts: [Part], expectedStudy: String?, caller: Caller, intentRecorded: @Sendable () -> Void = {}
    ) async -> [StoreOutcome] {
        var outcomes: [StoreOutcome] = []
        var start = 0
        while start < parts.count {
            let window = Array(parts[start..<min(parts.count, start + Self.concurrentParts)])
            start += window.count
            let checked = await Self.concurrently(window) { await self.prepare($0, expectedStudy: expectedStudy) }
            let ready = checked.compactMap { result -> PreparedStore? in
                if case .ready(let prepared) = result { return prepared }
                return nil
            }
            var intentOnRecord = true
            if !ready.isEmpty {
                let intent = AuditEvent(
                    actor: caller.actor, address: caller.address, action: "STOW store (intent)",
                    studyUID: expectedStudy ?? ready[0].studyInstanceUID,
                    seriesUIDs: Array(Set(ready.map(\.seriesInstanceUID))).sorted(),
                    instanceUIDs: ready.map(\.sopInstanceUID), outcome: "intent",
                    patient: patient(of: ready[0]), request: caller.request)
                intentOnRecord = await recordIntent(intent)
                if intentOnRecord { intentRecorded() }
            }
            let written = intentOnRecord
            outcomes += await Self.concurrently(checked) { await self.commit($0, intentWritten: written) }
        }
        return outcomes
    }

    /// `body` on every item at once, results in the items' order.
    static func concurrently<Item: Sendable, Result: Sendable>(
        _ items: [Item], _ body: @escaping @Sendable (Item) async -> Result
    ) async -> [Result] {
        await withTaskGroup(of: (Int, Result).self) { group -> [Result] in
            for (index, item) in items.enumerated() { group.addTask { (index, await body(item)) } }
            var results = [Result?](repeating: nil, count: items.count)
            for await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }
    }

    /// The keyed hash of the patient a prepared instance names (its study's patient).
    private func patient(of prepared: PreparedStore) -> String? {
        archive.patientKey(forStudy: prepared.studyInstanceUID)
            ?? prepared.patientID.flatMap { archive.keys.patientKey(patientID: $0, issuer: prepared.issuerOfPatientID) }
    }

    /// Appends an intent event durably (fsynced) on the pool; false when it cannot be written.
    func recordIntent(_ intent: AuditEvent) async -> Bool {
        let audit = archive.audit
        do {
            try await audit.record(intent, durability: .immediate)
            return true
        } catch {
            return false
        }
    }

    private func prepare(_ part: Part, expectedStudy: String?) async -> PrepareResult {
        switch part {
        case .refused(let outcome):
            return .finished(outcome)
        case .bytes(let read):
            let archive = self.archive
            do {
                // The request is admitted: its parts wait for a pool thread however long the queue.
                return try await pool.run(alwaysQueue: true) {
                    archive.prepare(try read(), expectedStudy: expectedStudy)
                }
            } catch {
                return .finished(
                    .failed(
                        sopClassUID: nil, sopInstanceUID: nil, reason: FailureReason.processingFailure,
                        message: "the part could not be read back"))
            }
        }
    }

    private func commit(_ result: PrepareResult, intentWritten: Bool) async -> StoreOutcome {
        switch result {
        case .finished(let outcome):
            return outcome
        case .ready(let prepared) where !intentWritten:
            return .failed(
                sopClassUID: prepared.sopClassUID, sopInstanceUID: prepared.sopInstanceUID,
                reason: FailureReason.outOfResources, message: "not stored: the audit log cannot be written")
        case .ready(let prepared):
            return await archive.commit(prepared)
        }
    }

    // MARK: clinic uploads

    /// A file of an upload as it arrived.
    public struct UploadedFile: Sendable {
        public var name: String
        public var mediaType: String?
        public var data: Data

        public init(name: String, mediaType: String?, data: Data) {
            self.name = name
            self.mediaType = mediaType
            self.data = data
        }
    }

    /// Photos (JPEG/PNG, one instance each) or one scan (OBJ with its MTL and textures, PLY or STL).
    public enum UploadKind: String, Sendable {
        case photos
        case scan

        /// The audit action of such an upload.
        public var action: String { self == .photos ? "upload photos" : "upload scan" }
    }

    /// What an upload stored.
    public struct UploadResult: Sendable {
        public var studyInstanceUID: String
        public var stored: [InstanceRecord]
        public var notes: [String]
    }

    /// The most pixels the images of one upload may decode to in memory (a 120 MP PNG and some change).
    public static let maximumDecodedPixelsPerUpload: UInt64 = 160_000_000

    /// Converts an upload (every file before anything is stored, so a file that cannot be converted stores
    /// nothing), records the intent naming every instance, stores them and keeps each uploaded file byte for byte
    /// beside its instance. `metadata` is the JSON of `facet dicomize --metadata`. A storage failure part-way (a
    /// full disk) can leave the instances stored before it.
    public func ingest(
        _ kind: UploadKind, files: [UploadedFile], metadata: Data?, caller: Caller,
        studyChosen: @Sendable (String) -> Void = { _ in }, intentRecorded: @Sendable () -> Void = {}
    ) async throws(ArchiveError) -> UploadResult {
        var clinical = ClinicalMetadata()
        if let metadata {
            do {
                clinical = try ClinicalMetadata.decode(json: metadata)
            } catch {
                throw ArchiveError(.invalidRequest, "metadata: \(error.message)")
            }
        }
        guard !files.isEmpty else { throw ArchiveError(.invalidRequest, "no file was sent") }
        // Decoding is bounded before it starts: a request may not make more pixels than this in memory.
        var decoded: UInt64 = 0
        for file in files where PhotoConverter.kind(of: file.data) != nil {
            // Saturating: the sum of hostile headers must not overflow.
            let (sum, overflow) = decoded.addingReportingOverflow(PhotoConverter.decodedPixels(of: file.data) ?? 0)
            decoded = overflow ? UInt64.max : sum
            if decoded > Self.maximumDecodedPixelsPerUpload { break }
        }
        guard decoded <= Self.maximumDecodedPixelsPerUpload else {
            throw ArchiveError(
                .tooLarge,
                "the images of one upload decode to more than \(Self.maximumDecodedPixelsPerUpload / 1_000_000) megapixels; send them in several uploads"
            )
        }
        let context: InstanceContext
        do {
            context = InstanceContext(metadata: clinical, uids: try UIDGenerator())
        } catch {
            throw ArchiveError(.io, "UIDs cannot be made: \(error.message)")
        }
        studyChosen(context.studyInstanceUID)
        let (prepared, encoded): ([PreparedInstance], [Data]) = try await run { () throws(ArchiveError) in
            var prepared: [PreparedInstance] = []
            do {
                switch kind {
                case .photos:
                    let series = context.uids.make()
                    for (number, file) in files.enumerated() {
                        guard PhotoConverter.kind(of: file.data) != nil else {
                            throw ArchiveError(.unsupportedMediaType, "file \(number + 1) is not a JPEG or PNG image")
                        }
                        prepared.append(
                            try PhotoConverter.convert(
                                file.data, context: context,
                                placement: .init(
                                    seriesInstanceUID: series, seriesNumber: 1, instanceNumber: number + 1)))
                    }
                case .scan:
                    prepared = try Self.convertScan(files, context: context)
                }
            } catch let error as ArchiveError {
                throw error
            } catch let error as DICOMCodecError {
                throw ArchiveError(.unprocessable, error.message)
            } catch {
                throw ArchiveError(.unprocessable, "the upload cannot be converted")
            }
            var encoded: [Data] = []
            for instance in prepared {
                do {
                    encoded.append(try Part10.encode(instance.dataset, transferSyntax: instance.transferSyntaxUID))
                } catch {
                    throw ArchiveError(.io, "the DICOM object could not be encoded")
                }
            }
            return (prepared, encoded)
        }
        // The intent, naming every instance about to be stored, is on disk before the first of them is.
        let intent = AuditEvent(
            actor: caller.actor, address: caller.address, action: "\(kind.action) (intent)",
            studyUID: context.studyInstanceUID,
            seriesUIDs: Array(Set(prepared.compactMap { $0.dataset.string(.seriesInstanceUID) })).sorted(),
            instanceUIDs: prepared.map(\.sopInstanceUID), outcome: "intent",
            patient: clinical.patientID.flatMap { self.archive.keys.patientKey(patientID: $0, issuer: nil) },
            request: caller.request)
        guard await recordIntent(intent) else {
            throw ArchiveError(.audit, "the audit log cannot be written; nothing was stored")
        }
        intentRecorded()
        var stored: [InstanceRecord] = []
        for bytes in encoded {
            let archive = self.archive
            let prepared = try await run(alwaysQueue: true) { archive.prepare(bytes) }
            let outcome: StoreOutcome
            switch prepared {
            case .finished(let finished): outcome = finished
            case .ready(let ready): outcome = await archive.commit(ready)
            }
            switch outcome {
            case .stored(let record, _, _):
                stored.append(record)
            case .failed(_, _, _, let message, _):
                throw ArchiveError(.io, "the converted instance could not be stored: \(message)")
            }
        }
        // The uploaded files themselves, byte for byte: each photo beside its instance, every file of a scan
        // beside the mesh instance.
        for (number, file) in files.enumerated() {
            let owner = kind == .photos ? stored[number] : stored[0]
            do throws(ArchiveError) {
                try await archive.keepOriginal(
                    file.data, mediaType: file.mediaType ?? "application/octet-stream",
                    fileName: file.name.isEmpty ? nil : file.name, for: owner.sopInstanceUID)
            } catch {
                throw ArchiveError(.io, "the original file could not be kept: \(error.message)")
            }
        }
        return UploadResult(
            studyInstanceUID: context.studyInstanceUID, stored: stored, notes: prepared.flatMap(\.notes))
    }

    /// Runs typed-throwing blocking work on the pool, keeping its error type (a full queue is `.busy`).
    func run<T: Sendable>(alwaysQueue: Bool = false, _ body: @escaping @Sendable () throws(ArchiveError) -> T)
        async throws(ArchiveError) -> T
    {
        do {
            return try await pool.run(alwaysQueue: alwaysQueue, body)
        } catch let error as ArchiveError {
            throw error
        } catch is BlockingPool.Busy {
            throw ArchiveError(.busy, "the server is busy; try again shortly")
        } catch {
            throw ArchiveError(.io, "the upload could not be processed")
        }
    }

    /// One mesh per scan upload: the OBJ (with the MTL and textures sent beside it), a PLY or an STL.
    static func convertScan(_ files: [UploadedFile], context: InstanceContext) throws -> [PreparedInstance] {
        func fileKind(_ file: UploadedFile) -> String? {
            let ext = (file.name as NSString).pathExtension.lowercased()
            if ["obj", "ply", "stl", "mtl"].contains(ext) { return ext }
            switch file.mediaType {
            case "model/obj": return "obj"
            case "model/stl", "model/x.stl-binary", "application/sla": return "stl"
            case "model/mtl": return "mtl"
            case "application/ply", "model/ply": return "ply"
            default: return nil
            }
        }
        let meshes = files.filter { ["obj", "ply", "stl"].contains(fileKind($0) ?? "") }
        guard meshes.count == 1, let mesh = meshes.first else {
            throw ArchiveError(
                .invalidRequest, meshes.isEmpty ? "no OBJ, PLY or STL file was sent" : "send one mesh per scan upload")
        }
        // Only an OBJ has companions (its MTL and textures, checked against its references); a file beside an
        // STL or PLY would be kept unvalidated.
        if fileKind(mesh) != "obj" && files.count > 1 {
            throw ArchiveError(
                .unprocessable, "an STL or PLY scan is one file; \(files.count - 1) other file(s) were sent")
        }
        switch fileKind(mesh) {
        case "stl": return try MeshConverter.convertSTL(mesh.data, context: context, seriesNumber: 1)
        case "ply": return try MeshConverter.convertPLY(mesh.data, context: context, seriesNumber: 1)
        default:
            var companions: [String: Data] = [:]
            let meshFolder = mesh.name.replacingOccurrences(of: "\\", with: "/").split(separator: "/").dropLast()
            for file in files where file.name != mesh.name {
                // Names relative to the OBJ's folder, as the OBJ's references are.
                var components = file.name.replacingOccurrences(of: "\\", with: "/").split(separator: "/")
                if components.starts(with: meshFolder) { components.removeFirst(meshFolder.count) }
                companions[components.joined(separator: "/")] = file.data
            }
            return try MeshConverter.convertOBJ(
                mesh.data, files: companions, context: context, seriesNumber: 1, textureSeriesNumber: 2)
        }
    }
}
