import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// WADO-RS (PS3.18 10.4): instances (study, series, instance), metadata, bulk data and frames. Resolution,
/// transfer-syntax policy and reading are the RetrieveService's; here is negotiation and encoding.
struct WADORoutes {
    let services: ServerServices

    /// The study, series and instance resources, with the depth `target` reads from them.
    static let levels = [
        ("/dicomweb/studies/:study", 0), ("/dicomweb/studies/:study/series/:series", 1),
        ("/dicomweb/studies/:study/series/:series/instances/:instance", 2),
    ]

    func add(to router: Router<FacetRequestContext>) {
        for (path, depth) in Self.levels {
            router.get(RouterPath(stringLiteral: path)) { request, context in
                try await instances(request, context, try Self.target(context, depth: depth))
            }
            router.get(RouterPath(stringLiteral: path + "/metadata")) { request, context in
                try await metadata(request, context, try Self.target(context, depth: depth))
            }
        }
        let instance = "/dicomweb/studies/:study/series/:series/instances/:instance"
        router.get(RouterPath(stringLiteral: instance + "/bulkdata/:tag")) { request, context in
            try await bulkdata(
                request, context, try Self.target(context, depth: 2), tag: context.parameters.get("tag") ?? "")
        }
        router.get(RouterPath(stringLiteral: instance + "/frames/:frames")) { request, context in
            let target = try Self.target(context, depth: 2)
            return try await frames(
                request, context, target, list: try Self.frameList(context.parameters.get("frames") ?? ""))
        }
    }

    /// The study, series or instance named by the URL (`depth` 0, 1, 2); 400 for a malformed UID.
    static func target(_ context: FacetRequestContext, depth: Int) throws -> RetrieveService.Target {
        var target = RetrieveService.Target(study: try RequestParts.uid(context, "study"))
        if depth >= 1 { target.series = try RequestParts.uid(context, "series") }
        if depth >= 2 { target.instance = try RequestParts.uid(context, "instance") }
        context.audit.studyUID = target.study
        return target
    }

    /// The most frame numbers one request may name.
    static let maximumFramesPerRequest = 1000

    /// A frame list of PS3.18 (`1,3,5`): positive decimal numbers separated by commas, duplicates dropped (the
    /// first mention keeps its place). A number too large for any object is kept as `Int.max` (404 later).
    static func frameList(_ text: String) throws -> [Int] {
        var numbers: [Int] = []
        var seen = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let digits = item.trimmingCharacters(in: .whitespaces)
            guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw HTTPFailure(.badRequest, "frame numbers are positive integers separated by commas")
            }
            let number = Int(digits) ?? Int.max
            guard number >= 1 else { throw HTTPFailure(.badRequest, "frame numbers start at 1") }
            if seen.insert(number).inserted { numbers.append(number) }
            guard numbers.count <= maximumFramesPerRequest else {
                throw HTTPFailure(.badRequest, "at most \(maximumFramesPerRequest) frames per request")
            }
        }
        return numbers
    }

    // MARK: instances

    func instances(_ request: Request, _ context: FacetRequestContext, _ target: RetrieveService.Target) async throws
        -> Response
    {
        let note = context.audit
        note.action = "WADO retrieve"
        try services.preauthorize(context, .read)
        let vary = RequestParts.varyAccept
        var single = false
        var wanted: String?
        var chosen = false
        for entry in RequestParts.accept(request) {
            let media = entry.media
            let ts = media.parameters["transfer-syntax"]
            if media.essence == "application/dicom" {
                guard target.instance != nil else { continue }
                single = true
                wanted = ts
                chosen = true
                break
            }
            if media.type == "multipart" && (media.subtype == "related" || media.subtype == "*")
                || media.essence == "*/*"
            {
                let type = media.parameters["type"]?.lowercased()
                if type == nil || type == "application/dicom" {
                    wanted = ts
                    chosen = true
                    break
                }
            }
        }
        guard chosen else {
            return Responses.failure(
                HTTPFailure(
                    .notAcceptable,
                    "instances are sent as multipart/related; type=\"application/dicom\" (or application/dicom for one)"
                ),
                extra: vary)
        }
        let retrieve = try services.tenant(context).retrieve
        let records = try retrieve.instances(target)
        note.touch(records)
        try await services.authorize(context, .read, study: target.study)
        // Every instance must be sendable before anything is sent (406 rather than a partial answer).
        try retrieve.checkSendable(records, wanted: wanted)
        let requested = wanted
        if single {
            let (data, syntax) = try await retrieve.instanceBytes(records[0], wanted: requested)
            var headers = vary
            headers[.contentLocation] = services.urls.instance(records[0])
            services.metrics.add("served_bytes_total", data.count)
            return Responses.bytes(data, contentType: "application/dicom; transfer-syntax=\(syntax)", extra: headers)
        }
        // The first instance is read (and verified) before the status line goes out, so a damaged blob answers
        // 500; a later damaged one ends the body early: its bytes are never sent. Later instances are read one at a
        // time as the client takes the body (the writer waits for the connection), so memory stays at one object.
        let first = try await retrieve.instanceBytes(records[0], wanted: requested)
        let services = self.services
        return Responses.multipart(
            type: "application/dicom", boundary: Responses.boundary(), count: records.count, extra: vary
        ) { index in
            let record = records[index]
            // Admitted already: later parts queue however full the pool is, rather than cut a 200 answer short.
            let (data, syntax) =
                index == 0 ? first : try await retrieve.instanceBytes(record, wanted: requested, admitted: true)
            services.metrics.add("served_bytes_total", data.count)
            return ("application/dicom; transfer-syntax=\(syntax)", services.urls.instance(record), data)
        }
    }

    // MARK: metadata

    func metadata(_ request: Request, _ context: FacetRequestContext, _ target: RetrieveService.Target) async throws
        -> Response
    {
        context.audit.action = "WADO metadata"
        try services.preauthorize(context, .read)
        let vary = RequestParts.varyAccept
        guard let format = Negotiation.datasetFormat(RequestParts.accept(request)) else {
            return Responses.failure(
                HTTPFailure(.notAcceptable, "metadata is application/dicom+json or multipart/related XML"), extra: vary)
        }
        let records = try services.tenant(context).retrieve.instances(target)
        context.audit.touch(records)
        try await services.authorize(context, .read, study: target.study)
        let urls = services.urls
        let objects = try await services.tenant(context).retrieve.metadata(records, instanceURL: { urls.instance($0) })
        if format == .xml {
            var parts: [(String, String?, Data)] = []
            for json in objects {
                let dataset = try DICOMJSON.decode(Data(json.utf8))
                parts.append(("application/dicom+xml", nil, Data(DICOMXML.encode(dataset).utf8)))
            }
            return Responses.multipart(type: "application/dicom+xml", parts: parts, extra: vary)
        }
        return Responses.text(
            "[" + objects.joined(separator: ",") + "]", contentType: "application/dicom+json", extra: vary)
    }

    // MARK: bulk data and frames

    func bulkdata(
        _ request: Request, _ context: FacetRequestContext, _ target: RetrieveService.Target, tag text: String
    )
        async throws -> Response
    {
        context.audit.action = "WADO bulkdata"
        try services.preauthorize(context, .read)
        guard text.count == 8, let tag = Tag(hex: text) else { throw HTTPFailure(.notFound, "no such bulk data") }
        if tag == .pixelData {
            // Every frame the object really has (not the count a client wrote into it).
            return try await frames(request, context, target, list: nil)
        }
        let record = try services.tenant(context).retrieve.instances(target)[0]
        context.audit.touch([record])
        try await services.authorize(context, .read, study: target.study)
        let vary = RequestParts.varyAccept
        let (data, ownType) = try await services.tenant(context).retrieve.bulkValue(record, tag: tag)
        // The document's own type when the client accepts it (or any type), otherwise application/octet-stream.
        func pick(_ range: MediaType) -> String? {
            let own = ownType.split(separator: "/").map(String.init)
            if own.count == 2 && Negotiation.covers(range, own[0], own[1]) { return ownType }
            if Negotiation.covers(range, "application", "octet-stream") { return "application/octet-stream" }
            return nil
        }
        for entry in RequestParts.accept(request) {
            let media = entry.media
            if media.type == "multipart" && ["related", "*"].contains(media.subtype) {
                let range = MediaType(media.parameters["type"] ?? "application/octet-stream") ?? media
                guard let type = pick(range) else { continue }
                services.metrics.add("served_bytes_total", data.count)
                return Responses.multipart(type: type, parts: [(type, nil, data)], extra: vary)
            }
            if let type = pick(media) {
                services.metrics.add("served_bytes_total", data.count)
                return Responses.bytes(data, contentType: type, extra: vary)
            }
        }
        return Responses.failure(
            HTTPFailure(.notAcceptable, "bulk data is application/octet-stream or \(ownType)"), extra: vary)
    }

    /// The frames of one instance; `list` nil: all of them.
    func frames(_ request: Request, _ context: FacetRequestContext, _ target: RetrieveService.Target, list: [Int]?)
        async throws -> Response
    {
        if context.audit.action.isEmpty { context.audit.action = "WADO frames" }
        try services.preauthorize(context, .read)
        let record = try services.tenant(context).retrieve.instances(target)[0]
        context.audit.touch([record])
        try await services.authorize(context, .read, study: target.study)
        let vary = RequestParts.varyAccept
        guard RetrieveService.hasFrames(record) else { throw HTTPFailure(.notFound, "the instance has no frames") }
        // Numbers beyond what the index says the object has are refused before anything is read.
        if let list { try RetrieveService.checkDeclaredFrames(list, of: record) }
        let stored = record.transferSyntaxUID
        let compressed = !RetrieveService.nativeTransferSyntaxes.contains(stored)
        let compressedType =
            stored == "1.2.840.10008.1.2.4.50" || stored == "1.2.840.10008.1.2.4.51" ? "image/jpeg" : nil
        // Choose: as stored (compressed media type or octet-stream with transfer-syntax=*), or native.
        var native = !compressed
        var chosen = false
        var partType = "application/octet-stream"
        for entry in RequestParts.accept(request) {
            let media = entry.media
            let isMultipart = media.type == "multipart" && ["related", "*"].contains(media.subtype)
            let type =
                isMultipart ? (media.parameters["type"]?.lowercased() ?? "application/octet-stream") : media.essence
            let ts = media.parameters["transfer-syntax"]
            if type == "application/octet-stream" || type == "*/*" {
                if compressed && ts == "*" {
                    native = false
                    partType = compressedType ?? "application/octet-stream"
                } else {
                    native = true
                }
                chosen = true
                break
            }
            if compressed, let compressedType, type == compressedType || type == "image/*" {
                native = false
                partType = compressedType
                chosen = true
                break
            }
        }
        guard chosen else {
            return Responses.failure(
                HTTPFailure(.notAcceptable, "frames are application/octet-stream or the stored image type"), extra: vary
            )
        }
        let (syntax, frames) = try await services.tenant(context).retrieve.frames(record, numbers: list, native: native)
        let parts = frames.map { ("\(partType); transfer-syntax=\(syntax)", String?.none, $0) }
        services.metrics.add("served_bytes_total", frames.reduce(0) { $0 + $1.count })
        return Responses.multipart(type: partType, parts: parts, extra: vary)
    }
}
