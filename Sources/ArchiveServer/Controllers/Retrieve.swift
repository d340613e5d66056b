import Archive
import DICOMCodec
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The study, series or instance a WADO-RS URL names.
struct Target {
    var study: String
    var series: String?
    var instance: String?
}

/// Rendered images and thumbnails, derived once and kept in memory: bounded by bytes (least recently used go
/// first), and identical requests arriving together share one render.
final class RenderCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: (data: Data, used: UInt64)] = [:]
    private var inFlight: [String: Task<Data, Error>] = [:]
    private var bytes = 0
    private var clock: UInt64 = 0
    let capacityBytes: Int

    init(capacityBytes: Int = 64 << 20) {
        self.capacityBytes = capacityBytes
    }

    /// Bytes held (for tests and metrics).
    var size: Int { lock.withLock { bytes } }

    func value(_ key: String, make: @escaping @Sendable () async throws -> Data) async throws -> Data {
        enum Found {
            case cached(Data)
            case pending(Task<Data, Error>)
            case mine(Task<Data, Error>)
        }
        let found: Found = lock.withLock {
            if let entry = entries[key] {
                clock += 1
                entries[key]?.used = clock
                return .cached(entry.data)
            }
            if let task = inFlight[key] { return .pending(task) }
            let task = Task { try await make() }
            inFlight[key] = task
            return .mine(task)
        }
        switch found {
        case .cached(let data): return data
        case .pending(let task): return try await task.value
        case .mine(let task):
            do {
                let made = try await task.value
                lock.withLock {
                    inFlight[key] = nil
                    insert(key, made)
                }
                return made
            } catch {
                lock.withLock { inFlight[key] = nil }
                throw error
            }
        }
    }

    /// Called with the lock held.
    private func insert(_ key: String, _ data: Data) {
        guard data.count <= capacityBytes / 8, entries[key] == nil else { return }
        clock += 1
        entries[key] = (data, clock)
        bytes += data.count
        while bytes > capacityBytes, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
            bytes -= oldest.value.data.count
            entries[oldest.key] = nil
        }
    }
}

extension DICOMwebMiddleware {
    /// The instances a target names, in order; 404 when the study, series or instance is unknown.
    func instances(_ target: Target) throws -> [InstanceRecord] {
        let catalog = service.index.catalog()
        guard let study = catalog.studies[target.study] else { throw HTTPFailure(.notFound, "no such study") }
        var found: [InstanceRecord] = []
        for seriesUID in study.seriesUIDs where target.series == nil || target.series == seriesUID {
            guard let series = catalog.series[seriesUID] else { continue }
            for uid in series.instanceUIDs where target.instance == nil || target.instance == uid {
                if let instance = catalog.instances[uid] { found.append(instance) }
            }
        }
        if found.isEmpty {
            throw HTTPFailure(.notFound, target.instance != nil ? "no such instance" : "no such series")
        }
        return found.sorted { SearchService.instanceOrder($0, $1, catalog) }
    }

    func instanceURL(_ record: InstanceRecord) -> String {
        "\(dicomwebBase)/studies/\(record.studyInstanceUID)/series/\(record.seriesInstanceUID)/instances/\(record.sopInstanceUID)"
    }

    static let lossyTransferSyntaxes: Set<String> = [
        "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102",
        "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105", "1.2.840.10008.1.2.4.106",
        "1.2.840.10008.1.2.4.203",
    ]
    static let nativeTransferSyntaxes: Set<String> = [
        UID.implicitVRLittleEndian, UID.explicitVRLittleEndian, "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
    ]

    /// The bytes to send for `record` when `wanted` is the requested transfer syntax (nil: the default, Explicit
    /// VR Little Endian, which lossy-compressed photos are exempt from; `*`: as stored).
    func instanceBytes(_ record: InstanceRecord, wanted: String?) throws -> (data: Data, transferSyntax: String) {
        let stored = record.transferSyntaxUID
        let data = try service.read(record)
        let target = wanted ?? UID.explicitVRLittleEndian
        if wanted == "*" || target == stored { return (data, stored) }
        // Lossy-compressed pixel data is sent as stored unless asked otherwise (PS3.18 8.7.3.4); a native syntax
        // other than Explicit VR Little Endian never goes on the web.
        if wanted == nil && !Self.nativeTransferSyntaxes.contains(stored)
            && (Self.lossyTransferSyntaxes.contains(stored)
                || record.attributes.string(.lossyImageCompression) == "01")
        {
            return (data, stored)
        }
        guard target == UID.explicitVRLittleEndian else {
            throw HTTPFailure(
                .notAcceptable, "Facet converts to Explicit VR Little Endian only (or send transfer-syntax=*)")
        }
        do {
            return (try Rendering.transcode(data, to: target), target)
        } catch {
            throw HTTPFailure(
                .notAcceptable,
                "an instance cannot be converted to Explicit VR Little Endian; ask with transfer-syntax=*")
        }
    }

    // MARK: instances

    func retrieveInstances(_ request: Request, _ target: Target, _ note: AuditNote) async throws -> Response {
        var vary = HTTPFields()
        vary[.vary] = "Accept"
        var single = false
        var wanted: String?
        var chosen = false
        for entry in accept(request) {
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
        let records = try instances(target)
        note.seriesUIDs = Array(Set(records.map(\.seriesInstanceUID))).sorted()
        note.instanceUIDs = records.map(\.sopInstanceUID)
        if let wanted, wanted != "*", !UID.isValid(wanted) {
            throw HTTPFailure(.badRequest, "transfer-syntax is not a UID")
        }
        // Every instance must be sendable before anything is sent (406 rather than a partial answer).
        if let wanted, wanted != "*" {
            for record in records where record.transferSyntaxUID != wanted && wanted != UID.explicitVRLittleEndian {
                throw HTTPFailure(
                    .notAcceptable, "Facet converts to Explicit VR Little Endian only (or send transfer-syntax=*)")
            }
        }
        let requested = wanted
        if single {
            let record = records[0]
            let (data, syntax) = try await pool.run { try self.instanceBytes(record, wanted: requested) }
            var headers = vary
            headers[.contentLocation] = instanceURL(records[0])
            metrics.add("served_bytes_total", data.count)
            return Responses.bytes(data, contentType: "application/dicom; transfer-syntax=\(syntax)", extra: headers)
        }
        // The first instance is read (and verified) before the status line goes out, so a damaged blob answers 500;
        // a later damaged one ends the body early: its bytes are never sent. Later instances are read one at a
        // time as the client takes the body (the writer waits for the connection), so memory stays at one object.
        let firstRecord = records[0]
        let first = try await pool.run { try self.instanceBytes(firstRecord, wanted: requested) }
        let handler = self
        return Responses.multipart(
            type: "application/dicom", boundary: Responses.boundary(), count: records.count, extra: vary
        ) { index in
            let record = records[index]
            // Admitted already: later parts queue however full the pool is, rather than cut a 200 answer short.
            let (data, syntax) =
                index == 0
                ? first
                : try await handler.pool.run(alwaysQueue: true) {
                    try handler.instanceBytes(record, wanted: requested)
                }
            handler.metrics.add("served_bytes_total", data.count)
            return ("application/dicom; transfer-syntax=\(syntax)", handler.instanceURL(record), data)
        }
    }

    // MARK: metadata

    func retrieveMetadata(_ request: Request, _ target: Target, _ note: AuditNote) async throws -> Response {
        var vary = HTTPFields()
        vary[.vary] = "Accept"
        guard let format = Negotiation.datasetFormat(accept(request)) else {
            return Responses.failure(
                HTTPFailure(.notAcceptable, "metadata is application/dicom+json or multipart/related XML"), extra: vary)
        }
        let records = try instances(target)
        note.seriesUIDs = Array(Set(records.map(\.seriesInstanceUID))).sorted()
        note.instanceUIDs = records.map(\.sopInstanceUID)
        let urls = records.map(instanceURL)
        let service = self.service
        let objects: [String] = try await pool.run {
            var objects: [String] = []
            for (record, url) in zip(records, urls) {
                guard let json = try service.metadataJSON(record.sopInstanceUID, instanceURL: url) else { continue }
                objects.append(json)
            }
            return objects
        }
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

    func bulkdata(_ request: Request, _ target: Target, tag text: String, _ note: AuditNote) async throws -> Response {
        guard text.count == 8, let tag = Tag(hex: text) else { throw HTTPFailure(.notFound, "no such bulk data") }
        let record = try instances(target)[0]
        note.seriesUIDs = [record.seriesInstanceUID]
        note.instanceUIDs = [record.sopInstanceUID]
        var vary = HTTPFields()
        vary[.vary] = "Accept"
        // The index knows the document's length and its type: one DCMTK parse, for the value itself.
        let attributes = record.attributes
        if tag == .pixelData {
            // Every frame the object really has (not the count a client wrote into it).
            return try await frames(request, target, list: nil, note)
        }
        let service = self.service
        var data: Data = try await pool.run {
            do {
                return try Rendering.value(tag, of: try service.read(record))
            } catch let error as DICOMCodecError {
                throw HTTPFailure(.notFound, "no such bulk data: \(error.message)")
            }
        }
        var ownType = "application/octet-stream"
        if tag == .encapsulatedDocument {
            // Strip the pad byte: the document's own length is in (0042,0015).
            if let length = attributes.int(.encapsulatedDocumentLength), length >= 0, length <= data.count {
                data = data.prefix(length)
            }
            ownType = attributes.string(.mimeTypeOfEncapsulatedDocument) ?? ownType
        }
        // The document's own type when the client accepts it (or any type), otherwise application/octet-stream.
        func pick(_ range: MediaType) -> String? {
            let own = ownType.split(separator: "/").map(String.init)
            if own.count == 2 && Negotiation.covers(range, own[0], own[1]) { return ownType }
            if Negotiation.covers(range, "application", "octet-stream") { return "application/octet-stream" }
            return nil
        }
        for entry in accept(request) {
            let media = entry.media
            if media.type == "multipart" && ["related", "*"].contains(media.subtype) {
                let range = MediaType(media.parameters["type"] ?? "application/octet-stream") ?? media
                guard let type = pick(range) else { continue }
                metrics.add("served_bytes_total", data.count)
                return Responses.multipart(type: type, parts: [(type, nil, data)], extra: vary)
            }
            if let type = pick(media) {
                metrics.add("served_bytes_total", data.count)
                return Responses.bytes(data, contentType: type, extra: vary)
            }
        }
        return Responses.failure(
            HTTPFailure(.notAcceptable, "bulk data is application/octet-stream or \(ownType)"), extra: vary)
    }

    /// The most frame numbers one request may name.
    static let maximumFramesPerRequest = 1000

    /// A frame list of PS3.18 (`1,3,5`): positive decimal numbers separated by commas, duplicates dropped (the
    /// first mention keeps its place). A number too large for any object is kept as `Int.max` (404 later).
    func frameList(_ text: String) throws -> [Int] {
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
            guard numbers.count <= Self.maximumFramesPerRequest else {
                throw HTTPFailure(.badRequest, "at most \(Self.maximumFramesPerRequest) frames per request")
            }
        }
        return numbers
    }

    /// The frames of one instance; `list` nil: all of them.
    func frames(_ request: Request, _ target: Target, list: [Int]?, _ note: AuditNote) async throws -> Response {
        let record = try instances(target)[0]
        note.seriesUIDs = [record.seriesInstanceUID]
        note.instanceUIDs = [record.sopInstanceUID]
        var vary = HTTPFields()
        vary[.vary] = "Accept"
        guard record.attributes[.pixelData] != nil || ArchiveService.imageLike(record.sopClassUID) else {
            throw HTTPFailure(.notFound, "the instance has no frames")
        }
        // Numbers beyond what the index says the object has are refused before anything is read.
        let declared = max(1, record.attributes.int(.numberOfFrames) ?? 1)
        if let list, let beyond = list.first(where: { $0 > declared }) {
            throw HTTPFailure(
                .notFound,
                "frame \(beyond == Int.max ? "number" : String(beyond)) does not exist (the instance has \(declared))")
        }
        let stored = record.transferSyntaxUID
        let compressed = !Self.nativeTransferSyntaxes.contains(stored)
        let compressedType =
            stored == "1.2.840.10008.1.2.4.50" || stored == "1.2.840.10008.1.2.4.51" ? "image/jpeg" : nil
        // Choose: as stored (compressed media type or octet-stream with transfer-syntax=*), or native.
        var native = !compressed
        var chosen = false
        var partType = "application/octet-stream"
        for entry in accept(request) {
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
        let service = self.service
        let decompress = native && stored != UID.explicitVRLittleEndian
        let (syntax, frames): (String, [Data]) = try await pool.run {
            var data = try service.read(record)
            var syntax = stored
            if decompress {
                do {
                    data = try Rendering.transcode(data, to: UID.explicitVRLittleEndian)
                    syntax = UID.explicitVRLittleEndian
                } catch {
                    throw HTTPFailure(.notAcceptable, "the frames cannot be decompressed; ask with transfer-syntax=*")
                }
            }
            do {
                return (syntax, try Self.extractFrames(list, of: data))
            } catch let error as DICOMCodecError {
                throw HTTPFailure(
                    error.code == .limitExceeded ? .badRequest : .notFound, "frames: \(error.message)")
            }
        }
        let parts = frames.map { ("\(partType); transfer-syntax=\(syntax)", String?.none, $0) }
        metrics.add("served_bytes_total", frames.reduce(0) { $0 + $1.count })
        return Responses.multipart(type: partType, parts: parts, extra: vary)
    }

    /// Frames `list` (nil: every frame the pixel data holds, whatever Number of Frames claims) of a Part-10 object
    /// in memory, from one parse.
    static func extractFrames(_ list: [Int]?, of data: Data) throws(DICOMCodecError) -> [Data] {
        guard let list else {
            // Every frame: together no larger than the (decompressed) object already in memory.
            let count = try Rendering.numberOfFrames(of: data)
            return try Rendering.frames(Array(1...max(1, count)), of: data)
        }
        return try Rendering.frames(list, of: data)
    }

    // MARK: rendered and thumbnails

    /// The most instances one study- or series-level rendered answer carries.
    static let maximumRenderedInstances = 1000

    func rendered(
        _ request: Request, _ target: Target, frames: [Int]?, query: [(name: String, value: String)], thumbnail: Bool,
        _ note: AuditNote
    ) async throws -> Response {
        var vary = HTTPFields()
        vary[.vary] = "Accept"
        var format: Rendering.Format?
        for entry in accept(request) {
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
        var viewport: Rendering.Viewport? = thumbnail ? .init(width: 256, height: 256) : nil
        for (name, value) in query {
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
        var records = try instances(target).filter {
            $0.attributes[.rows] != nil || ArchiveService.imageLike($0.sopClassUID)
        }
        if records.isEmpty {
            throw HTTPFailure(.notAcceptable, "nothing here has pixel data to render (3D models are not rendered)")
        }
        if thumbnail {
            records = [records[0]]
        }
        guard records.count <= Self.maximumRenderedInstances else {
            throw HTTPFailure(
                .badRequest,
                "more than \(Self.maximumRenderedInstances) instances to render: ask per series or per instance")
        }
        if let frames {
            let declared = max(1, records[0].attributes.int(.numberOfFrames) ?? 1)
            if let beyond = frames.first(where: { $0 > declared }) {
                throw HTTPFailure(
                    .notFound,
                    "frame \(beyond == Int.max ? "number" : String(beyond)) does not exist (the instance has \(declared))"
                )
            }
        }
        note.seriesUIDs = Array(Set(records.map(\.seriesInstanceUID))).sorted()
        note.instanceUIDs = records.map(\.sopInstanceUID)
        let contentType = format == .png ? "image/png" : "image/jpeg"
        let handler = self
        let requestedViewport = viewport
        let chosenQuality = quality
        let chosen = records
        /// Renders one frame through the cache. `admitted`: a later part of an answer already under way, which
        /// queues however full the pool is rather than cut the answer short.
        @Sendable func render(_ record: InstanceRecord, frame: Int, admitted: Bool = false) async throws -> Data {
            // No upscaling: a viewport larger than the image is the image's own size, so such requests share one
            // cache entry and never make a larger picture than the data holds.
            let viewport = Self.clamped(
                requestedViewport, rows: record.attributes.int(.rows),
                columns: record.attributes.int(.columns))
            let key =
                "\(record.sopInstanceUID)|\(record.blob.sha256)|\(frame)|\(format)|\(chosenQuality)|\(String(describing: viewport))"
            return try await handler.renders.value(key) {
                try await handler.pool.run(alwaysQueue: admitted) {
                    do {
                        return try Rendering.render(
                            try handler.service.read(record), frame: frame, format: format, quality: chosenQuality,
                            viewport: viewport)
                    } catch let error as DICOMCodecError {
                        throw Self.renderFailure(error)
                    }
                }
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
            let viewport = Self.clamped(
                requestedViewport, rows: first.attributes.int(.rows), columns: first.attributes.int(.columns))
            let images: [Data] = try await pool.run {
                let data = try handler.service.read(first)
                do {
                    return try frames.map { frame throws(DICOMCodecError) in
                        try Rendering.render(
                            data, frame: frame, format: format, quality: chosenQuality, viewport: viewport)
                    }
                } catch let error as DICOMCodecError {
                    throw Self.renderFailure(error)
                }
            }
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
                contentType, handler.instanceURL(chosen[index]),
                index == 0 ? firstImage : try await render(chosen[index], frame: 1, admitted: true)
            )
        }
    }

    /// The most frames one rendered request may name (each is decoded and encoded on its own).
    static let maximumRenderedFramesPerRequest = 64

    /// A codec failure while rendering, as the HTTP answer it deserves.
    static func renderFailure(_ error: DICOMCodecError) -> HTTPFailure {
        switch error.code {
        case .noSuchFrame: return HTTPFailure(.notFound, error.message)
        case .unsupported: return HTTPFailure(.notAcceptable, error.message)
        case .limitExceeded: return HTTPFailure(.notAcceptable, "cannot be rendered: \(error.message)")
        default: return HTTPFailure(.badRequest, error.message)
        }
    }

    /// `viewport` limited to the source (region or whole image): the output keeps the asked aspect ratio but is
    /// never larger than the pixels it shows.
    static func clamped(_ viewport: Rendering.Viewport?, rows: Int?, columns: Int?) -> Rendering.Viewport? {
        guard var viewport else { return nil }
        var sourceWidth = columns ?? 0
        var sourceHeight = rows ?? 0
        if let region = viewport.region, region.count == 4, region[2] > 0, region[3] > 0 {
            sourceWidth = Int(region[2])
            sourceHeight = Int(region[3])
        }
        guard sourceWidth > 0, sourceHeight > 0 else { return viewport }
        // The factor the image would be enlarged by to fit the viewport; above 1, shrink the viewport by it.
        let fit = min(Double(viewport.width) / Double(sourceWidth), Double(viewport.height) / Double(sourceHeight))
        if fit > 1 {
            viewport.width = UInt32(max(1, (Double(viewport.width) / fit).rounded()))
            viewport.height = UInt32(max(1, (Double(viewport.height) / fit).rounded()))
        }
        return viewport
    }
}

extension ArchiveService {
    /// SOP classes with pixel data (for rendering).
    static func imageLike(_ sopClass: String) -> Bool { imageStorage.contains(sopClass) }
}
