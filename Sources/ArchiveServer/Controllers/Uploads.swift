import Archive
import DICOMCodec
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// The clinic upload API: what a capture app or a 3D station without DICOM sends. `POST /api/v1/photos` takes
/// JPEG/PNG parts, `POST /api/v1/scans` one mesh (OBJ with its MTL and textures, PLY or STL), each with a JSON
/// part (`metadata`, or any `application/json` part) holding patient, study, region, view and timing. Bodies
/// are `multipart/form-data` or `multipart/related`. Everything is wrapped by DICOMCodec (meshes validated by
/// MeshKit first) and stored exactly like STOW-RS; a file that cannot be converted stores nothing of the upload.
extension DICOMwebMiddleware {
    /// The most pixels the images of one upload may decode to in memory (a 120 MP PNG and some change).
    static let maximumDecodedPixelsPerUpload: UInt64 = 160_000_000

    func upload(_ request: Request, kind: String, note: AuditNote) async throws -> Response {
        note.action = kind == "photos" ? "upload photos" : "upload scan"
        guard let contentType = request.headers[.contentType], let media = MediaType(contentType),
            media.type == "multipart"
        else {
            throw HTTPFailure(.unsupportedMediaType, "uploads are multipart/form-data (or multipart/related)")
        }
        try pool.admit()
        let parts = try await readMultipart(request, contentType: contentType)
        defer { for part in parts { part.spool?.remove() } }
        var metadata = ClinicalMetadata()
        var received: [(name: String, type: String?, data: Data)] = []
        for part in parts {
            let type = part.contentType?.essence
            let data = try part.data()
            if type == "application/json" || (part.fieldName == "metadata" && part.fileName == nil) {
                do {
                    metadata = try ClinicalMetadata.decode(json: data)
                } catch {
                    throw HTTPFailure(.badRequest, "metadata: \(error.message)")
                }
                continue
            }
            received.append((part.fileName ?? part.fieldName ?? "", type, data))
        }
        let files = received
        guard !files.isEmpty else { throw HTTPFailure(.badRequest, "no file was sent") }
        // Decoding is bounded before it starts: a request may not make more pixels than this in memory.
        var decoded: UInt64 = 0
        for file in files where PhotoConverter.kind(of: file.data) != nil {
            // Saturating: the sum of hostile headers must not overflow.
            let (sum, overflow) = decoded.addingReportingOverflow(PhotoConverter.decodedPixels(of: file.data) ?? 0)
            decoded = overflow ? UInt64.max : sum
            if decoded > Self.maximumDecodedPixelsPerUpload { break }
        }
        guard decoded <= Self.maximumDecodedPixelsPerUpload else {
            throw HTTPFailure(
                .contentTooLarge,
                "the images of one upload decode to more than \(Self.maximumDecodedPixelsPerUpload / 1_000_000) megapixels; send them in several uploads"
            )
        }
        let context = InstanceContext(metadata: metadata, uids: try UIDGenerator())
        note.studyUID = context.studyInstanceUID
        let service = self.service
        let isPhotos = kind == "photos"
        let handler = self
        // Every file is converted (and encoded) before anything is stored, so a file that cannot be converted
        // stores nothing. (A storage failure part-way, a full disk, answers 500 and can leave the instances stored
        // before it.)
        let (prepared, encoded): ([PreparedInstance], [Data]) = try await pool.run(alwaysQueue: true) {
            var prepared: [PreparedInstance] = []
            do {
                if isPhotos {
                    let series = context.uids.make()
                    for (number, file) in files.enumerated() {
                        guard PhotoConverter.kind(of: file.data) != nil else {
                            throw HTTPFailure(.unsupportedMediaType, "file \(number + 1) is not a JPEG or PNG image")
                        }
                        prepared.append(
                            try PhotoConverter.convert(
                                file.data, context: context,
                                placement: .init(
                                    seriesInstanceUID: series, seriesNumber: 1, instanceNumber: number + 1)))
                    }
                } else {
                    prepared = try handler.convertScan(files, context: context)
                }
            } catch let error as DICOMCodecError {
                throw HTTPFailure(.unprocessableContent, error.message)
            }
            let encoded = try prepared.map { instance in
                do {
                    return try Part10.encode(instance.dataset, transferSyntax: instance.transferSyntaxUID)
                } catch {
                    throw HTTPFailure(.internalServerError, "the DICOM object could not be encoded")
                }
            }
            return (prepared, encoded)
        }
        // The intent, naming every instance about to be stored, is on disk before the first of them is.
        let intent = AuditEvent(
            actor: "anonymous", address: note.address, action: "\(note.action) (intent)",
            studyUID: context.studyInstanceUID,
            seriesUIDs: Array(Set(prepared.compactMap { $0.dataset.string(.seriesInstanceUID) })).sorted(),
            instanceUIDs: prepared.map(\.sopInstanceUID), outcome: "intent")
        let audit = service.audit
        do {
            try await pool.run(alwaysQueue: true) { try audit.append(intent, durability: .immediate) }
        } catch {
            logger.error("audit append failed")
            throw HTTPFailure(.serviceUnavailable, "the audit log cannot be written; nothing was stored")
        }
        note.intentRecorded = true
        let stored: [InstanceRecord] = try await pool.run(alwaysQueue: true) {
            var stored: [InstanceRecord] = []
            for bytes in encoded {
                switch service.store(bytes) {
                case .stored(let record, _, _):
                    stored.append(record)
                case .failed(_, _, _, let message):
                    throw HTTPFailure(.internalServerError, "the converted instance could not be stored: \(message)")
                }
            }
            // The uploaded files themselves, byte for byte: each photo beside its instance, every file of a scan
            // beside the mesh instance.
            for (number, file) in files.enumerated() {
                let owner = isPhotos ? stored[number] : stored[0]
                let type = file.type ?? "application/octet-stream"
                do throws(ArchiveError) {
                    try service.keepOriginal(
                        file.data, mediaType: type, fileName: file.name.isEmpty ? nil : file.name,
                        for: owner.sopInstanceUID)
                } catch {
                    throw HTTPFailure(.internalServerError, "the original file could not be kept: \(error.message)")
                }
            }
            return stored
        }
        note.seriesUIDs = Array(Set(stored.map(\.seriesInstanceUID))).sorted()
        note.instanceUIDs = stored.map(\.sopInstanceUID)
        var body = "{\"studyInstanceUID\":\(Responses.jsonString(context.studyInstanceUID)),"
        body += "\"retrieveURL\":\(Responses.jsonString("\(dicomwebBase)/studies/\(context.studyInstanceUID)")),"
        body += "\"instances\":["
        body += stored.map { record in
            "{\"sopClassUID\":\(Responses.jsonString(record.sopClassUID)),"
                + "\"sopInstanceUID\":\(Responses.jsonString(record.sopInstanceUID)),"
                + "\"seriesInstanceUID\":\(Responses.jsonString(record.seriesInstanceUID)),"
                + "\"retrieveURL\":\(Responses.jsonString(instanceURL(record))),"
                + "\"originalsURL\":\(Responses.jsonString("\(settings.baseURL)/api/v1/instances/\(record.sopInstanceUID)/originals"))}"
        }.joined(separator: ",")
        body += "],\"notes\":["
        body += prepared.flatMap(\.notes).map(Responses.jsonString).joined(separator: ",") + "]}"
        var headers = HTTPFields()
        headers[.location] = "\(dicomwebBase)/studies/\(context.studyInstanceUID)"
        return Responses.text(body, status: .created, contentType: "application/json", extra: headers)
    }

    /// One mesh per scan upload: the OBJ (with the MTL and textures sent beside it), a PLY or an STL.
    func convertScan(_ files: [(name: String, type: String?, data: Data)], context: InstanceContext) throws
        -> [PreparedInstance]
    {
        func fileKind(_ file: (name: String, type: String?, data: Data)) -> String? {
            let ext = (file.name as NSString).pathExtension.lowercased()
            if ["obj", "ply", "stl", "mtl"].contains(ext) { return ext }
            switch file.type {
            case "model/obj": return "obj"
            case "model/stl", "model/x.stl-binary", "application/sla": return "stl"
            case "model/mtl": return "mtl"
            case "application/ply", "model/ply": return "ply"
            default: return nil
            }
        }
        let meshes = files.filter { ["obj", "ply", "stl"].contains(fileKind($0) ?? "") }
        guard meshes.count == 1, let mesh = meshes.first else {
            throw HTTPFailure(
                .badRequest, meshes.isEmpty ? "no OBJ, PLY or STL file was sent" : "send one mesh per scan upload")
        }
        // Only an OBJ has companions (its MTL and textures, checked against its references); a file beside an
        // STL or PLY would be kept unvalidated.
        if fileKind(mesh) != "obj" && files.count > 1 {
            throw HTTPFailure(
                .unprocessableContent, "an STL or PLY scan is one file; \(files.count - 1) other file(s) were sent")
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

    /// `GET /api/v1/instances/{sop}/originals` lists the uploaded files kept for an instance;
    /// `.../originals/{n}` returns the n-th (1-based) byte for byte.
    func originals(_ sopInstanceUID: String, number: Int?, note: AuditNote) async throws -> Response {
        guard UID.isValid(sopInstanceUID), let record = service.index.instance(sopInstanceUID) else {
            throw HTTPFailure(.notFound, "no such instance")
        }
        note.action = number == nil ? "list originals" : "retrieve original"
        note.studyUID = record.studyInstanceUID
        note.seriesUIDs = [record.seriesInstanceUID]
        note.instanceUIDs = [sopInstanceUID]
        let service = self.service
        let kept = try await pool.run { try service.index.originals(of: sopInstanceUID) }
        guard let number else {
            let items = kept.enumerated().map { index, original in
                "{\"number\":\(index + 1),\"mediaType\":\(Responses.jsonString(original.mediaType)),"
                    + "\"size\":\(original.blob.size),\"sha256\":\"\(original.blob.sha256)\","
                    + "\"fileName\":\(original.fileName.map(Responses.jsonString) ?? "null")}"
            }
            return Responses.text("[" + items.joined(separator: ",") + "]", contentType: "application/json")
        }
        guard number >= 1 && number <= kept.count else { throw HTTPFailure(.notFound, "no such original") }
        let original = kept[number - 1]
        let data = try await pool.run { try service.readOriginal(original, of: sopInstanceUID) }
        // Served as a download, never rendered: the bytes and their declared type came from a client (a page
        // uploaded as a "photo" must not run in Facet's origin).
        var headers = HTTPFields()
        headers[.contentDisposition] = "attachment; filename=\"original-\(number)\""
        headers[.xContentTypeOptions] = "nosniff"
        return Responses.bytes(data, contentType: "application/octet-stream", extra: headers)
    }
}
