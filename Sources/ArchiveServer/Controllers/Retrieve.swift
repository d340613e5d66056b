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

/// Rendered images and thumbnails, derived once and kept in memory (bounded by count).
final class RenderCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: Data] = [:]
    private var order: [String] = []
    private let capacity = 256

    func value(_ key: String, make: () throws -> Data) rethrows -> Data {
        lock.lock()
        if let found = entries[key] {
            lock.unlock()
            return found
        }
        lock.unlock()
        let made = try make()
        lock.lock()
        defer { lock.unlock() }
        if entries[key] == nil {
            entries[key] = made
            order.append(key)
            if order.count > capacity { entries[order.removeFirst()] = nil }
        }
        return made
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

    func retrieveInstances(_ request: Request, _ target: Target, _ note: AuditNote) throws -> Response {
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
        if single {
            let (data, syntax) = try instanceBytes(records[0], wanted: wanted)
            var headers = vary
            headers[.contentLocation] = instanceURL(records[0])
            metrics.add("served_bytes_total", data.count)
            return Responses.bytes(data, contentType: "application/dicom; transfer-syntax=\(syntax)", extra: headers)
        }
        // The first instance is read (and verified) before the status line goes out, so a damaged blob answers 500;
        // a later damaged one ends the body early: its bytes are never sent.
        let first = try instanceBytes(records[0], wanted: wanted)
        let boundary = Responses.boundary()
        let service = self
        let requested = wanted
        return Responses.multipart(type: "application/dicom", boundary: boundary, extra: vary) {
            AsyncThrowingStream { continuation in
                do {
                    for (index, record) in records.enumerated() {
                        let (data, syntax) = index == 0 ? first : try service.instanceBytes(record, wanted: requested)
                        service.metrics.add("served_bytes_total", data.count)
                        continuation.yield(
                            ("application/dicom; transfer-syntax=\(syntax)", service.instanceURL(record), data))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
    }

    // MARK: metadata

    func retrieveMetadata(_ request: Request, _ target: Target, _ note: AuditNote) throws -> Response {
        var vary = HTTPFields()
        vary[.vary] = "Accept"
        guard let format = Negotiation.datasetFormat(accept(request)) else {
            return Responses.failure(
                HTTPFailure(.notAcceptable, "metadata is application/dicom+json or multipart/related XML"), extra: vary)
        }
        let records = try instances(target)
        note.seriesUIDs = Array(Set(records.map(\.seriesInstanceUID))).sorted()
        note.instanceUIDs = records.map(\.sopInstanceUID)
        var objects: [String] = []
        for record in records {
            guard let json = try service.metadataJSON(record.sopInstanceUID, instanceURL: instanceURL(record)) else {
                continue
            }
            objects.append(json)
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

    func bulkdata(_ request: Request, _ target: Target, tag text: String, _ note: AuditNote) throws -> Response {
        guard text.count == 8, let tag = Tag(hex: text) else { throw HTTPFailure(.notFound, "no such bulk data") }
        let record = try instances(target)[0]
        note.seriesUIDs = [record.seriesInstanceUID]
        note.instanceUIDs = [record.sopInstanceUID]
        var vary = HTTPFields()
        vary[.vary] = "Accept"
        // The index knows the frames, the document's length and its type: one DCMTK parse, for the value itself.
        let attributes = record.attributes
        if tag == .pixelData {
            return try frames(request, target, list: Array(1...max(1, attributes.int(.numberOfFrames) ?? 1)), note)
        }
        var data: Data
        do {
            data = try Rendering.value(tag, of: try service.read(record))
        } catch let error as DICOMCodecError {
            throw HTTPFailure(.notFound, "no such bulk data: \(error.message)")
        }
        var ownType = "application/octet-stream"
        if tag == .encapsulatedDocument {
            // Strip the pad byte: the document's own length is in (0042,0015).
            if let length = attributes.int(.encapsulatedDocumentLength), length <= data.count {
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

    func frames(_ request: Request, _ target: Target, list: [Int], _ note: AuditNote) throws -> Response {
        let record = try instances(target)[0]
        note.seriesUIDs = [record.seriesInstanceUID]
        note.instanceUIDs = [record.sopInstanceUID]
        var vary = HTTPFields()
        vary[.vary] = "Accept"
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
        var data = try service.read(record)
        var syntax = stored
        if native && compressed {
            do {
                data = try Rendering.transcode(data, to: UID.explicitVRLittleEndian)
                syntax = UID.explicitVRLittleEndian
            } catch {
                throw HTTPFailure(.notAcceptable, "the frames cannot be decompressed; ask with transfer-syntax=*")
            }
        } else if native && stored != UID.explicitVRLittleEndian {
            data = try Rendering.transcode(data, to: UID.explicitVRLittleEndian)
            syntax = UID.explicitVRLittleEndian
        }
        var parts: [(String, String?, Data)] = []
        for number in list {
            let frame: Data
            do {
                frame = try Rendering.frame(number, of: data)
            } catch {
                throw HTTPFailure(.notFound, "frame \(number): \(error.message)")
            }
            parts.append(("\(partType); transfer-syntax=\(syntax)", nil, frame))
        }
        return Responses.multipart(type: partType, parts: parts, extra: vary)
    }

    // MARK: rendered and thumbnails

    func rendered(
        _ request: Request, _ target: Target, frames: [Int]?, query: [(name: String, value: String)], thumbnail: Bool,
        _ note: AuditNote
    ) throws -> Response {
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
                    numbers[0]! > 0, numbers[1]! > 0, numbers[0]! <= 8192, numbers[1]! <= 8192
                else {
                    throw HTTPFailure(
                        .badRequest, "viewport is vw,vh or vw,vh,sx,sy,sw,sh (non-negative integers, at most 8192)")
                }
                viewport = .init(
                    width: numbers[0]!, height: numbers[1]!,
                    region: numbers.count == 6 ? numbers[2...].map { $0! } : nil)
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
        note.seriesUIDs = Array(Set(records.map(\.seriesInstanceUID))).sorted()
        note.instanceUIDs = records.map(\.sopInstanceUID)
        let contentType = format == .png ? "image/png" : "image/jpeg"
        func render(_ record: InstanceRecord, frame: Int) throws -> Data {
            let key =
                "\(record.sopInstanceUID)|\(record.blob.sha256)|\(frame)|\(format)|\(quality)|\(String(describing: viewport))"
            return try renders.value(key) {
                do {
                    return try Rendering.render(
                        try service.read(record), frame: frame, format: format, quality: quality, viewport: viewport)
                } catch let error as DICOMCodecError {
                    throw HTTPFailure(error.code == .unsupported ? .notAcceptable : .badRequest, error.message)
                }
            }
        }
        if let frames {
            let images = try frames.map { try render(records[0], frame: $0) }
            if images.count == 1 || thumbnail {
                return Responses.bytes(images[0], contentType: contentType, extra: vary)
            }
            return Responses.multipart(type: contentType, parts: images.map { (contentType, nil, $0) }, extra: vary)
        }
        if target.instance != nil || thumbnail {
            return Responses.bytes(try render(records[0], frame: 1), contentType: contentType, extra: vary)
        }
        let images = try records.map { (contentType, Optional(instanceURL($0)), try render($0, frame: 1)) }
        return Responses.multipart(type: contentType, parts: images, extra: vary)
    }
}

extension ArchiveService {
    /// SOP classes with pixel data (for rendering).
    static func imageLike(_ sopClass: String) -> Bool { imageStorage.contains(sopClass) }
}
