import DICOMCodec
import DICOMCore
import Foundation

/// What WADO-RS reads: the resolution of a study, series or instance to its stored instances, the transfer-syntax
/// policy, frames, bulk values, metadata and rendered images (through DICOMCodec). Blocking work (decryption,
/// DCMTK) runs on the blocking pool; callers get values or `ArchiveError`s whose codes say what HTTP answer they
/// deserve (not-found 404, not-acceptable 406, invalid-request 400, integrity 500).
public struct RetrieveService: Sendable {
    public let archive: ArchiveService
    public let pool: BlockingPool

    public init(archive: ArchiveService, pool: BlockingPool) {
        self.archive = archive
        self.pool = pool
    }

    /// The study, series or instance a WADO-RS URL names.
    public struct Target: Sendable {
        public var study: String
        public var series: String?
        public var instance: String?

        public init(study: String, series: String? = nil, instance: String? = nil) {
            self.study = study
            self.series = series
            self.instance = instance
        }
    }

    // MARK: resolution

    /// The instances a target names, in order; not-found when the study, series or instance is unknown.
    public func instances(_ target: Target) throws(ArchiveError) -> [InstanceRecord] {
        let catalog = archive.index.catalog()
        guard let study = catalog.studies[target.study] else { throw ArchiveError(.notFound, "no such study") }
        var found: [InstanceRecord] = []
        for seriesUID in study.seriesUIDs where target.series == nil || target.series == seriesUID {
            guard let series = catalog.series[seriesUID] else { continue }
            for uid in series.instanceUIDs where target.instance == nil || target.instance == uid {
                if let instance = catalog.instances[uid] { found.append(instance) }
            }
        }
        if found.isEmpty {
            throw ArchiveError(.notFound, target.instance != nil ? "no such instance" : "no such series")
        }
        return found.sorted { SearchService.instanceOrder($0, $1, catalog) }
    }

    // MARK: instances and the transfer-syntax policy

    public static let lossyTransferSyntaxes: Set<String> = [
        "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102",
        "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105", "1.2.840.10008.1.2.4.106",
        "1.2.840.10008.1.2.4.203",
    ]
    public static let nativeTransferSyntaxes: Set<String> = [
        UID.implicitVRLittleEndian, UID.explicitVRLittleEndian, "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
    ]

    /// Refuses, before any work, a requested transfer syntax that some of `records` cannot be sent in (Facet
    /// converts to Explicit VR Little Endian only). `wanted`: nil for the default, `*` for as stored.
    public func checkSendable(_ records: [InstanceRecord], wanted: String?) throws(ArchiveError) {
        guard let wanted, wanted != "*" else { return }
        guard UID.isValid(wanted) else { throw ArchiveError(.invalidRequest, "transfer-syntax is not a UID") }
        for record in records where record.transferSyntaxUID != wanted && wanted != UID.explicitVRLittleEndian {
            throw ArchiveError(
                .notAcceptable, "Facet converts to Explicit VR Little Endian only (or send transfer-syntax=*)")
        }
    }

    /// The bytes to send for `record` when `wanted` is the requested transfer syntax (nil: the default, Explicit
    /// VR Little Endian, which lossy-compressed objects are exempt from; `*`: as stored). `admitted`: a later part
    /// of an answer under way, which queues however full the pool is.
    public func instanceBytes(_ record: InstanceRecord, wanted: String?, admitted: Bool = false) async throws
        -> (data: Data, transferSyntax: String)
    {
        let (archive, pool) = (self.archive, self.pool)
        return try await pool.objects.holding(admitted: admitted) {
            let data = try await archive.read(record)
            return try await pool.run(alwaysQueue: true) {
                let stored = record.transferSyntaxUID
                let target = wanted ?? UID.explicitVRLittleEndian
                if wanted == "*" || target == stored { return (data, stored) }
                // Lossy-compressed pixel data is sent as stored unless asked otherwise (PS3.18 8.7.3.4); a native
                // syntax other than Explicit VR Little Endian never goes on the web.
                if wanted == nil && !Self.nativeTransferSyntaxes.contains(stored)
                    && (Self.lossyTransferSyntaxes.contains(stored)
                        || record.attributes.string(.lossyImageCompression) == "01")
                {
                    return (data, stored)
                }
                guard target == UID.explicitVRLittleEndian else {
                    throw ArchiveError(
                        .notAcceptable, "Facet converts to Explicit VR Little Endian only (or send transfer-syntax=*)")
                }
                do {
                    return (try Rendering.transcode(data, to: target), target)
                } catch {
                    throw ArchiveError(
                        .notAcceptable,
                        "an instance cannot be converted to Explicit VR Little Endian; ask with transfer-syntax=*")
                }
            }
        }
    }

    // MARK: originals of uploads

    /// The instance and the uploaded files kept beside it, in upload order; not-found for an unknown instance.
    public func originals(of sopInstanceUID: String) async throws -> (record: InstanceRecord, files: [OriginalFile]) {
        guard UID.isValid(sopInstanceUID), let record = archive.index.instance(sopInstanceUID) else {
            throw ArchiveError(.notFound, "no such instance")
        }
        let index = archive.index
        let files = try await index.originals(of: sopInstanceUID)
        return (record, files)
    }

    /// One kept original, byte for byte, verified like every blob.
    public func read(_ original: OriginalFile, of sopInstanceUID: String) async throws -> Data {
        let archive = self.archive
        return try await pool.objects.holding(admitted: false) {
            try await archive.readOriginal(original, of: sopInstanceUID)
        }
    }

    // MARK: metadata

    /// Each instance's metadata as one DICOM JSON object, BulkDataURIs made absolute under its URL.
    public func metadata(_ records: [InstanceRecord], instanceURL: @escaping @Sendable (InstanceRecord) -> String)
        async throws -> [String]
    {
        var objects: [String] = []
        for record in records {
            guard let json = try await archive.metadataJSON(record.sopInstanceUID, instanceURL: instanceURL(record))
            else { continue }
            objects.append(json)
        }
        return objects
    }

    // MARK: bulk data and frames

    /// One top-level bulk value of an instance, and its own media type (an Encapsulated Document's, without its
    /// pad byte; otherwise application/octet-stream).
    public func bulkValue(_ record: InstanceRecord, tag: Tag) async throws -> (data: Data, mediaType: String) {
        let (archive, pool) = (self.archive, self.pool)
        var data: Data = try await pool.objects.holding(admitted: false) {
            let object = try await archive.read(record)
            return try await pool.run(alwaysQueue: true) {
                do throws(DICOMCodecError) {
                    return try Rendering.value(tag, of: object)
                } catch {
                    throw ArchiveError(.notFound, "no such bulk data: \(error.message)")
                }
            }
        }
        var mediaType = "application/octet-stream"
        if tag == .encapsulatedDocument {
            // Strip the pad byte: the document's own length is in (0042,0015).
            if let length = record.attributes.int(.encapsulatedDocumentLength), length >= 0, length <= data.count {
                data = data.prefix(length)
            }
            mediaType = record.attributes.string(.mimeTypeOfEncapsulatedDocument) ?? mediaType
        }
        return (data, mediaType)
    }

    /// Whether `record` has frames at all (pixel data).
    public static func hasFrames(_ record: InstanceRecord) -> Bool {
        record.attributes[.pixelData] != nil || ArchiveService.imageLike(record.sopClassUID)
    }

    /// Refuses frame numbers beyond what the index says the object has, before anything is read.
    public static func checkDeclaredFrames(_ numbers: [Int], of record: InstanceRecord) throws(ArchiveError) {
        let declared = max(1, record.attributes.int(.numberOfFrames) ?? 1)
        if let beyond = numbers.first(where: { $0 > declared }) {
            throw ArchiveError(
                .notFound,
                "frame \(beyond == Int.max ? "number" : String(beyond)) does not exist (the instance has \(declared))")
        }
    }

    /// Frames `numbers` (nil: every frame the pixel data holds, whatever Number of Frames claims) from one parse:
    /// as stored, or `native` (decompressed by DCMTK to Explicit VR Little Endian). Returns the transfer syntax
    /// the frames are in.
    public func frames(_ record: InstanceRecord, numbers: [Int]?, native: Bool) async throws
        -> (transferSyntax: String, frames: [Data])
    {
        if let numbers { try Self.checkDeclaredFrames(numbers, of: record) }
        let decompress = native && record.transferSyntaxUID != UID.explicitVRLittleEndian
        let (archive, pool) = (self.archive, self.pool)
        return try await pool.objects.holding(admitted: false) {
            let data = try await archive.read(record)
            return try await pool.run(alwaysQueue: true) { [data] in
                var data = data
                var syntax = record.transferSyntaxUID
                if decompress {
                    do {
                        data = try Rendering.transcode(data, to: UID.explicitVRLittleEndian)
                        syntax = UID.explicitVRLittleEndian
                    } catch {
                        throw ArchiveError(
                            .notAcceptable, "the frames cannot be decompressed; ask with transfer-syntax=*")
                    }
                }
                do throws(DICOMCodecError) {
                    guard let numbers else {
                        // Every frame: together no larger than the (decompressed) object already in memory.
                        let count = try Rendering.numberOfFrames(of: data)
                        return (syntax, try Rendering.frames(Array(1...max(1, count)), of: data))
                    }
                    return (syntax, try Rendering.frames(numbers, of: data))
                } catch {
                    throw ArchiveError(.notFound, "frames: \(error.message)")
                }
            }
        }
    }

    // MARK: rendered

    /// Output formats of rendered images (DICOMCodec's; servers name them through this service).
    public typealias ImageFormat = Rendering.Format

    /// The `viewport` of PS3.18 8.3.5.1.3 (DICOMCodec's).
    public typealias Viewport = Rendering.Viewport

    /// `viewport` limited to the source (region or whole image): the output keeps the asked aspect ratio but is
    /// never larger than the pixels it shows.
    public static func clamped(_ viewport: Viewport?, rows: Int?, columns: Int?) -> Viewport? {
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

    /// A photo as it leaves the clinic (exports, share links): rendered upright (its EXIF orientation applied) to at
    /// most `longestSide` pixels, the visible mark drawn, the invisible one written, encoded as a plain JPEG (no
    /// DICOM, no EXIF, XMP, GPS or IPTC).
    public func watermarkedJPEG(
        _ record: InstanceRecord, payload: Watermark.Payload, visible: String, longestSide: Int = 2048,
        quality: Int = 90
    ) async throws -> Data {
        let (archive, pool) = (self.archive, self.pool)
        let orientation =
            record.attributes.string(Tag(0x0009, 0x0010)) == PrivateTags.creator
            ? record.attributes.int(PrivateTags.exifOrientation) : nil
        return try await pool.objects.holding(admitted: true) {
            let data = try await archive.read(record)
            return try await pool.run(alwaysQueue: true) {
                do throws(DICOMCodecError) {
                    var image = try RGBImage.render(data, longestSide: longestSide, exifOrientation: orientation)
                    Watermark.drawVisible(visible, on: &image)
                    if image.width >= Watermark.minimumSize.width && image.height >= Watermark.minimumSize.height {
                        try Watermark.embed(payload, into: &image)
                    }
                    return try image.jpeg(quality: quality)
                } catch {
                    throw ArchiveError(.unprocessable, "a photo cannot be prepared for export: \(error.message)")
                }
            }
        }
    }

    /// Frames of one instance rendered (the object read once); the viewport is clamped to the image.
    public func render(
        _ record: InstanceRecord, frames: [Int], format: ImageFormat, quality: Int, viewport: Viewport?,
        admitted: Bool = false
    ) async throws -> [Data] {
        let clamped = Self.clamped(
            viewport, rows: record.attributes.int(.rows), columns: record.attributes.int(.columns))
        let (archive, pool) = (self.archive, self.pool)
        return try await pool.objects.holding(admitted: admitted) {
            let data = try await archive.read(record)
            return try await pool.run(alwaysQueue: true) {
                do throws(DICOMCodecError) {
                    return try frames.map { frame throws(DICOMCodecError) in
                        try Rendering.render(
                            data, frame: frame, format: format, quality: quality, viewport: clamped)
                    }
                } catch {
                    switch error.code {
                    case .noSuchFrame: throw ArchiveError(.notFound, error.message)
                    case .unsupported: throw ArchiveError(.notAcceptable, error.message)
                    case .limitExceeded: throw ArchiveError(.notAcceptable, "cannot be rendered: \(error.message)")
                    default: throw ArchiveError(.invalidRequest, error.message)
                    }
                }
            }
        }
    }
}
