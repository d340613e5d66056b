import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// The clinic upload API: what a capture app or a 3D station without DICOM sends. `POST /api/v1/photos` takes
/// JPEG/PNG parts, `POST /api/v1/scans` one mesh (OBJ with its MTL and textures, PLY or STL), each with a JSON
/// part (`metadata`, or any `application/json` part) holding patient, study, region, view and timing. Bodies are
/// `multipart/form-data` or `multipart/related`. The IngestService converts and stores them exactly like STOW-RS.
struct UploadRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        router.post("/api/v1/photos") { request, context in try await upload(request, context, kind: .photos) }
        router.post("/api/v1/scans") { request, context in try await upload(request, context, kind: .scan) }
    }

    func upload(_ request: Request, _ context: FacetRequestContext, kind: IngestService.UploadKind) async throws
        -> Response
    {
        let note = context.audit
        note.action = kind.action
        guard let contentType = request.headers[.contentType], let media = MediaType(contentType),
            media.type == "multipart"
        else {
            throw HTTPFailure(.unsupportedMediaType, "uploads are multipart/form-data (or multipart/related)")
        }
        try await services.authorize(context, .store)
        try services.pool.admit()
        let parts = try await MultipartBody.read(request, contentType: contentType, services: services)
        defer { for part in parts { part.spool?.remove() } }
        var metadata: Data?
        var files: [IngestService.UploadedFile] = []
        for part in parts {
            let type = part.contentType?.essence
            let data = try part.data()
            if type == "application/json" || (part.fieldName == "metadata" && part.fileName == nil) {
                metadata = data
                continue
            }
            files.append(.init(name: part.fileName ?? part.fieldName ?? "", mediaType: type, data: data))
        }
        let result = try await services.tenant(context).ingest.ingest(
            kind, files: files, metadata: metadata, caller: services.caller(context),
            studyChosen: { note.studyUID = $0 }, intentRecorded: { note.intentRecorded = true })
        note.touch(result.stored)
        let urls = services.urls
        var body = "{\"studyInstanceUID\":\(Responses.jsonString(result.studyInstanceUID)),"
        body += "\"retrieveURL\":\(Responses.jsonString(urls.study(result.studyInstanceUID))),"
        body += "\"instances\":["
        body += result.stored.map { record in
            "{\"sopClassUID\":\(Responses.jsonString(record.sopClassUID)),"
                + "\"sopInstanceUID\":\(Responses.jsonString(record.sopInstanceUID)),"
                + "\"seriesInstanceUID\":\(Responses.jsonString(record.seriesInstanceUID)),"
                + "\"retrieveURL\":\(Responses.jsonString(urls.instance(record))),"
                + "\"originalsURL\":\(Responses.jsonString(urls.originals(record.sopInstanceUID)))}"
        }.joined(separator: ",")
        body += "],\"notes\":[" + result.notes.map(Responses.jsonString).joined(separator: ",") + "]}"
        var headers = HTTPFields()
        headers[.location] = urls.study(result.studyInstanceUID)
        return Responses.text(body, status: .created, contentType: "application/json", extra: headers)
    }
}

/// `GET /api/v1/instances/{sop}/originals` lists the uploaded files kept for an instance;
/// `.../originals/{n}` returns the n-th (1-based) byte for byte, as a download.
struct OriginalsRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        router.get("/api/v1/instances/:instance/originals") { _, context in
            try await originals(context, number: nil)
        }
        router.get("/api/v1/instances/:instance/originals/:number") { _, context in
            try await originals(context, number: Int(context.parameters.get("number") ?? "") ?? 0)
        }
    }

    func originals(_ context: FacetRequestContext, number: Int?) async throws -> Response {
        let note = context.audit
        note.action = number == nil ? "list originals" : "retrieve original"
        let uid = context.parameters.get("instance") ?? ""
        try services.preauthorize(context, .read)
        guard UID.isValid(uid), let record = try services.tenant(context).archive.index.instance(uid) else {
            throw HTTPFailure(.notFound, "no such instance")
        }
        note.touch([record])
        try await services.authorize(context, .read, study: record.studyInstanceUID)
        let (_, kept) = try await services.tenant(context).retrieve.originals(of: uid)
        guard let number else {
            let items = kept.enumerated().map { index, original in
                "{\"number\":\(index + 1),\"mediaType\":\(Responses.jsonString(original.mediaType)),"
                    + "\"size\":\(original.blob.size),\"sha256\":\"\(original.blob.sha256)\","
                    + "\"fileName\":\(original.fileName.map(Responses.jsonString) ?? "null")}"
            }
            return Responses.text("[" + items.joined(separator: ",") + "]", contentType: "application/json")
        }
        guard number >= 1 && number <= kept.count else { throw HTTPFailure(.notFound, "no such original") }
        let data = try await services.tenant(context).retrieve.read(kept[number - 1], of: uid)
        // Served as a download, never rendered: the bytes and their declared type came from a client (a page
        // uploaded as a "photo" must not run in Facet's origin).
        var headers = HTTPFields()
        headers[.contentDisposition] = "attachment; filename=\"original-\(number)\""
        headers[.xContentTypeOptions] = "nosniff"
        return Responses.bytes(data, contentType: "application/octet-stream", extra: headers)
    }
}
