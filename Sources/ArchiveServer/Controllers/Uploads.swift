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
    func upload(_ request: Request, kind: String, note: AuditNote) async throws -> Response {
        note.action = kind == "photos" ? "upload photos" : "upload scan"
        guard let contentType = request.headers[.contentType], let media = MediaType(contentType),
            media.type == "multipart"
        else {
            throw HTTPFailure(.unsupportedMediaType, "uploads are multipart/form-data (or multipart/related)")
        }
        let parts = try await readMultipart(request, contentType: contentType)
        defer { for part in parts { part.spool?.remove() } }
        var metadata = ClinicalMetadata()
        var files: [(name: String, type: String?, data: Data)] = []
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
            files.append((part.fileName ?? part.fieldName ?? "", type, data))
        }
        guard !files.isEmpty else { throw HTTPFailure(.badRequest, "no file was sent") }
        let context = InstanceContext(metadata: metadata, uids: try UIDGenerator())
        note.studyUID = context.studyInstanceUID

        var prepared: [PreparedInstance] = []
        do {
            if kind == "photos" {
                let series = context.uids.make()
                for (number, file) in files.enumerated() {
                    guard PhotoConverter.kind(of: file.data) != nil else {
                        throw HTTPFailure(.unsupportedMediaType, "file \(number + 1) is not a JPEG or PNG image")
                    }
                    prepared.append(
                        try PhotoConverter.convert(
                            file.data, context: context,
                            placement: .init(seriesInstanceUID: series, seriesNumber: 1, instanceNumber: number + 1)))
                }
            } else {
                prepared = try convertScan(files, context: context)
            }
        } catch let error as DICOMCodecError {
            throw HTTPFailure(.unprocessableContent, error.message)
        }
        // Every file is converted before anything is stored, so a file that cannot be converted stores nothing. (A
        // storage failure part-way, a full disk, answers 500 and can leave the instances stored before it.)
        var stored: [InstanceRecord] = []
        for instance in prepared {
            let bytes: Data
            do {
                bytes = try Part10.encode(instance.dataset, transferSyntax: instance.transferSyntaxUID)
            } catch {
                throw HTTPFailure(.internalServerError, "the DICOM object could not be encoded")
            }
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
            let owner = kind == "photos" ? stored[number] : stored[0]
            let type = file.type ?? "application/octet-stream"
            do {
                try service.keepOriginal(
                    file.data, mediaType: type, fileName: file.name.isEmpty ? nil : file.name,
                    for: owner.sopInstanceUID)
            } catch {
                throw HTTPFailure(.internalServerError, "the original file could not be kept: \(error.message)")
            }
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
    func originals(_ sopInstanceUID: String, number: Int?, note: AuditNote) throws -> Response {
        guard UID.isValid(sopInstanceUID), let record = service.index.instance(sopInstanceUID) else {
            throw HTTPFailure(.notFound, "no such instance")
        }
        note.action = number == nil ? "list originals" : "retrieve original"
        note.studyUID = record.studyInstanceUID
        note.seriesUIDs = [record.seriesInstanceUID]
        note.instanceUIDs = [sopInstanceUID]
        let kept = try service.index.originals(of: sopInstanceUID)
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
        return Responses.bytes(try service.readOriginal(original, of: sopInstanceUID), contentType: original.mediaType)
    }
}
