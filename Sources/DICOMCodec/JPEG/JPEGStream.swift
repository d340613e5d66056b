import Foundation

/// A parsed JPEG interchange stream: its frame header, the metadata segments Facet reads, and a copy with every
/// application (APPn) and comment segment removed. The entropy-coded data is never decoded or changed.
struct JPEGStream: Sendable {
    /// One frame component from the SOF header.
    struct Component: Sendable, Equatable {
        var id: UInt8
        var horizontalSampling: UInt8
        var verticalSampling: UInt8
    }

    /// The coding process named by the SOF marker.
    enum Process: Sendable, Equatable {
        case baseline, extended, progressive, lossless, hierarchical, arithmetic
    }

    var process: Process
    var precision: Int
    var rows: Int
    var columns: Int
    var components: [Component]
    /// The transform flag of an Adobe APP14 segment (0: none, 1: YCbCr, 2: YCCK), if present.
    var adobeTransform: UInt8?
    var hasJFIF: Bool
    /// The TIFF payload of an `Exif` APP1 segment.
    var exif: Data?
    /// The ICC profile assembled from APP2 `ICC_PROFILE` chunks.
    var iccProfile: Data?
    /// Kinds of segments that were removed, for the record (`APP0`, `APP1`, `COM`, ...); counts only.
    var removedSegments: [String: Int]
    /// SOI, kept tables and frame header, the scans with their entropy-coded data, EOI.
    var stripped: Data
    /// Offset in `stripped` of the first SOS marker: everything from there on is byte-identical to the source.
    var scanOffsetInStripped: Int
    /// Offset of the first SOS marker in the source and the end of its EOI marker.
    var sourceScanRange: Range<Int>

    static let maximumSize = 512 << 20

    static func parse(_ data: Data) throws(DICOMCodecError) -> JPEGStream {
        guard data.count <= maximumSize else {
            throw DICOMCodecError(.limitExceeded, "JPEG is larger than \(maximumSize >> 20) MiB")
        }
        let bytes = [UInt8](data)
        func bad(_ why: String) -> DICOMCodecError { DICOMCodecError(.invalidImage, "not a valid JPEG: \(why)") }
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { throw bad("no SOI marker at the start") }

        var out = Data([0xFF, 0xD8])
        var offset = 2
        var frame: (Process, Int, Int, Int, [Component])?
        var adobe: UInt8?
        var jfif = false
        var exif: Data?
        var iccChunks: [Int: Data] = [:]
        var removed: [String: Int] = [:]
        var scanOffset: Int?
        var sourceScanStart: Int?
        var arithmetic = false

        while true {
            // Markers may be preceded by any number of 0xFF fill bytes.
            guard offset < bytes.count, bytes[offset] == 0xFF else {
                throw bad("expected a marker; file is truncated or corrupt")
            }
            while offset < bytes.count && bytes[offset] == 0xFF { offset += 1 }
            guard offset < bytes.count else { throw bad("file ends inside a marker") }
            let marker = bytes[offset]
            offset += 1
            if marker == 0xD9 {
                out.append(contentsOf: [0xFF, 0xD9])
                guard let frame, let scanOffset, let sourceScanStart else { throw bad("no image data before EOI") }
                var icc: Data?
                if !iccChunks.isEmpty {
                    let ordered = iccChunks.keys.sorted()
                    if ordered == Array(1...ordered.count) {
                        icc = ordered.reduce(into: Data()) { $0.append(iccChunks[$1]!) }
                    }
                }
                return JPEGStream(
                    process: arithmetic && frame.0 != .lossless ? .arithmetic : frame.0, precision: frame.1,
                    rows: frame.2,
                    columns: frame.3, components: frame.4, adobeTransform: adobe, hasJFIF: jfif, exif: exif,
                    iccProfile: icc, removedSegments: removed, stripped: out, scanOffsetInStripped: scanOffset,
                    sourceScanRange: sourceScanStart..<offset)
            }
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) {
                throw bad(String(format: "unexpected marker FF%02X outside entropy-coded data", marker))
            }
            guard offset + 2 <= bytes.count else { throw bad("file is truncated inside a segment header") }
            let length = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
            guard length >= 2, offset + length <= bytes.count else {
                throw bad("segment length runs past the end of the file")
            }
            let payload = bytes[(offset + 2)..<(offset + length)]
            let segment = bytes[(offset - 2)..<(offset + length)]
            offset += length

            switch marker {
            case 0xE0...0xEF:
                let name = "APP\(marker - 0xE0)"
                if marker == 0xEE, payload.starts(with: Array("Adobe".utf8)), payload.count >= 12 {
                    adobe = payload[payload.startIndex + 11]
                    out.append(contentsOf: segment)  // colour transform flag only; no identifying content
                    continue
                }
                if marker == 0xE0, payload.starts(with: Array("JFIF\0".utf8)) { jfif = true }
                if marker == 0xE1, payload.starts(with: Array("Exif\0\0".utf8)), exif == nil {
                    exif = Data(payload.dropFirst(6))
                }
                if marker == 0xE2, payload.starts(with: Array("ICC_PROFILE\0".utf8)), payload.count >= 14 {
                    let sequence = Int(payload[payload.startIndex + 12])
                    iccChunks[sequence] = Data(payload.dropFirst(14))
                }
                removed[name, default: 0] += 1
            case 0xFE:
                removed["COM", default: 0] += 1
            case 0xC0...0xCF where marker != 0xC4 && marker != 0xC8 && marker != 0xCC:
                guard frame == nil else { throw bad("more than one frame header") }
                guard payload.count >= 6 else { throw bad("frame header is too short") }
                let p = payload.startIndex
                let count = Int(payload[p + 5])
                guard count >= 1, payload.count == 6 + 3 * count else {
                    throw bad("frame header component count disagrees with its length")
                }
                var components: [Component] = []
                for index in 0..<count {
                    let base = p + 6 + 3 * index
                    let sampling = payload[base + 1]
                    components.append(
                        Component(
                            id: payload[base], horizontalSampling: sampling >> 4, verticalSampling: sampling & 0x0F))
                }
                let process: Process
                switch marker {
                case 0xC0: process = .baseline
                case 0xC1: process = .extended
                case 0xC2: process = .progressive
                case 0xC3: process = .lossless
                case 0xC9, 0xCA, 0xCB: process = .arithmetic
                default: process = .hierarchical
                }
                frame = (
                    process, Int(payload[p]), Int(payload[p + 1]) << 8 | Int(payload[p + 2]),
                    Int(payload[p + 3]) << 8 | Int(payload[p + 4]), components
                )
                out.append(contentsOf: segment)
            case 0xCC:
                arithmetic = true
                out.append(contentsOf: segment)
            case 0xDA:
                guard frame != nil else { throw bad("scan before frame header") }
                if scanOffset == nil {
                    scanOffset = out.count
                    sourceScanStart = offset - length - 2
                }
                out.append(contentsOf: segment)
                // Entropy-coded data runs to the next marker that is neither a stuffed 0x00 nor a restart marker.
                let start = offset
                var cursor = offset
                while true {
                    guard let next = bytes[cursor...].firstIndex(of: 0xFF) else {
                        throw bad("file is truncated inside the image data (no EOI)")
                    }
                    guard next + 1 < bytes.count else { throw bad("file is truncated inside the image data (no EOI)") }
                    let following = bytes[next + 1]
                    if following == 0x00 || (0xD0...0xD7).contains(following) || following == 0xFF {
                        cursor = next + 1
                        continue
                    }
                    cursor = next
                    break
                }
                out.append(contentsOf: bytes[start..<cursor])
                offset = cursor
            default:
                // DQT, DHT, DRI, DNL, EXP and the like: tables the decoder needs.
                out.append(contentsOf: segment)
            }
        }
    }

    /// True when the three components are RGB rather than YCbCr (Adobe transform 0, or component ids R, G, B).
    var isRGB: Bool {
        guard components.count == 3 else { return false }
        if let adobeTransform { return adobeTransform == 0 }
        if hasJFIF { return false }
        return components.map(\.id) == [0x52, 0x47, 0x42]
    }

    /// Chroma subsampled 2:1 horizontally (4:2:2) or in both directions (4:2:0), with both chroma components alike.
    var isChromaSubsampled: Bool {
        guard components.count == 3 else { return false }
        let luma = components[0]
        let chroma = components[1...]
        guard chroma.allSatisfy({ $0.horizontalSampling == 1 && $0.verticalSampling == 1 }) else { return false }
        return luma.horizontalSampling == 2 && (luma.verticalSampling == 1 || luma.verticalSampling == 2)
    }
}
