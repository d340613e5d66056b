import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// WADO-RS rendered and thumbnail resources (PS3.18 8.3.5, 9.5): JPEG or PNG of a study, series, instance or
/// frames, with `quality` and `viewport`; cached by content and bounded (RetrieveService renders).
struct RenderedRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        for (path, depth) in [
            ("/dicomweb/studies/:study", 0), ("/dicomweb/studies/:study/series/:series", 1),
            ("/dicomweb/studies/:study/series/:series/instances/:instance", 2),
        ] {
            for thumbnail in [false, true] {
                router.get(RouterPath(stringLiteral: path + (thumbnail ? "/thumbnail" : "/rendered"))) {
                    request, context in
                    try await rendered(
                        request, context, try WADORoutes.target(context, depth: depth), frames: nil,
                        thumbnail: thumbnail)
                }
            }
        }
        let frames = "/dicomweb/studies/:study/series/:series/instances/:instance/frames/:frames"
        for thumbnail in [false, true] {
            router.get(RouterPath(stringLiteral: frames + (thumbnail ? "/thumbnail" : "/rendered"))) {
                request, context in
                let target = try WADORoutes.target(context, depth: 2)
                return try await rendered(
                    request, context, target, frames: try WADORoutes.frameList(context.parameters.get("frames") ?? ""),
                    thumbnail: thumbnail)
            }
        }
    }

    /// The most instances one study- or series-level rendered answer carries.
    static let maximumRenderedInstances = 1000
    /// The most frames one rendered request may name (each is decoded and encoded on its own).
    static let maximumRenderedFramesPerRequest = 64

    func rendered(
        _ request: Request, _ context: FacetRequestContext, _ target: RetrieveService.Target, frames: [Int]?,
        thumbnail: Bool
    ) async throws -> Response {
        let note = context.audit
        note.action = thumbnail ? "WADO thumbnail" : "WADO rendered"
        try services.preauthorize(context, .read)
        let vary = RequestParts.varyAccept
        var format: RetrieveService.ImageFormat?
        for entry in RequestParts.accept(request) {
            let media = entry.media
            if Negotiation.covers(media, "image", "jpeg") {
                format = .jpeg
                break
            }
            if Negotiation.covers(media, "image", "png") {
                format = .png
                break
            }
            if media.type == "multipart", let type = media.parameters["type"]?.lowercased() {
                if type == "image/jpeg" {
                    format = .jpeg
                    break
                }
                if type == "image/png" {
                    format = .png
                    break
                }
            }
        }
        guard let format else {
            return Responses.failure(
                HTTPFailure(.notAcceptable, "rendered images are image/jpeg or image/png"), extra: vary)
        }
        var quality = 90
        var viewport: RetrieveService.Viewport? = thumbnail ? .init(width: 256, height: 256) : nil
        for (name, value) in try RequestParts.queryItems(request) {
            switch name {
            case "quality":
                guard let number = Int(value), (1...100).contains(number) else {
                    throw HTTPFailure(.badRequest, "quality must be an integer 1-100")
                }
                quality = number
            case "viewport":
                let numbers = value.split(separator: ",", omittingEmptySubsequences: false).map {
                    UInt32($0.trimmingCharacters(in: .whitespaces))
                }
                guard numbers.count == 2 || numbers.count == 6, numbers.allSatisfy({ $0 != nil }),
                    let width = numbers[0], let height = numbers[1], width > 0, height > 0, width <= 8192,
                    height <= 8192
                else {
                    throw HTTPFailure(
                        .badRequest, "viewport is vw,vh or vw,vh,sx,sy,sw,sh (non-negative integers, at most 8192)")
                }
                viewport = .init(
                    width: width, height: height, region: numbers.count == 6 ? numbers[2...].compactMap { $0 } : nil)
            default:
                continue
            }
        }
        let clinic = try services.tenant(context)
        let retrieve = clinic.retrieve
        let tenant = clinic.tenant
        let resolved = try retrieve.instances(target)
        try await services.authorize(context, .read, study: target.study)
        var records = resolved.filter {
            $0.attributes[.rows] != nil || ArchiveService.imageLike($0.sopClassUID)
        }
        if records.isEmpty {
            throw HTTPFailure(.notAcceptable, "nothing here has pixel data to render (3D models are not rendered)")
        }
        if thumbnail { records = [records[0]] }
        guard records.count <= Self.maximumRenderedInstances else {
            throw HTTPFailure(
                .badRequest,
                "more than \(Self.maximumRenderedInstances) instances to render: ask per series or per instance")
        }
        note.touch(records)
        if let frames { try RetrieveService.checkDeclaredFrames(frames, of: records[0]) }
        let contentType = format == .png ? "image/png" : "image/jpeg"
        let services = self.services
        let chosenQuality = quality
        let chosenViewport = viewport
        let chosen = records
        /// One frame through the cache. `admitted`: a later part of an answer under way, which queues however
        /// full the pool is rather than cut the answer short.
        @Sendable func render(_ record: InstanceRecord, frame: Int, admitted: Bool = false) async throws -> Data {
            // The clamped viewport is the key: requests asking more than the image has share one entry.
            let viewport = RetrieveService.clamped(
                chosenViewport, rows: record.attributes.int(.rows), columns: record.attributes.int(.columns))
            let key =
                "\(tenant)|\(record.sopInstanceUID)|\(record.blob.sha256)|\(frame)|\(format)|\(chosenQuality)|\(String(describing: viewport))"
            return try await services.renders.value(key) {
                try await retrieve.render(
                    record, frames: [frame], format: format, quality: chosenQuality, viewport: viewport,
                    admitted: admitted)[0]
            }
        }
        if let frames {
            let first = chosen[0]
            if frames.count == 1 || thumbnail {
                return Responses.bytes(try await render(first, frame: frames[0]), contentType: contentType, extra: vary)
            }
            // Several frames of one object: read (decrypted, verified) once, each frame decoded on its own.
            guard frames.count <= Self.maximumRenderedFramesPerRequest else {
                throw HTTPFailure(
                    .badRequest, "at most \(Self.maximumRenderedFramesPerRequest) rendered frames per request")
            }
            let images = try await retrieve.render(
                first, frames: frames, format: format, quality: chosenQuality, viewport: chosenViewport)
            return Responses.multipart(type: contentType, parts: images.map { (contentType, nil, $0) }, extra: vary)
        }
        if target.instance != nil || thumbnail {
            return Responses.bytes(try await render(chosen[0], frame: 1), contentType: contentType, extra: vary)
        }
        // One image at a time, as the client reads them.
        let firstImage = try await render(chosen[0], frame: 1)
        return Responses.multipart(
            type: contentType, boundary: Responses.boundary(), count: chosen.count, extra: vary
        ) { index in
            (
                contentType, services.urls.instance(chosen[index]),
                index == 0 ? firstImage : try await render(chosen[index], frame: 1, admitted: true)
            )
        }
    }
}
