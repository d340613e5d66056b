import DICOMCore
import Foundation

/// Server-side views of stored instances: re-encoding under another transfer syntax, rendered images (JPEG or
/// PNG, scaled and clipped as PS3.18's `viewport` asks), and the raw frames and bulk values WADO-RS returns.
public enum Rendering {
    /// Output image formats of a rendered resource.
    public enum Format: Sendable { case jpeg, png }

    /// The `viewport` of PS3.18 8.3.5.1.3: the output size, and optionally the source region `[x, y, width, height]`.
    public struct Viewport: Sendable, Equatable, Hashable {
        public var width: UInt32
        public var height: UInt32
        public var region: [UInt32]?

        public init(width: UInt32, height: UInt32, region: [UInt32]? = nil) {
            self.width = width
            self.height = height
            self.region = region
        }
    }

    /// Renders frame `frame` (1-based) of a Part-10 file held in memory, decoding that frame only. Objects whose
    /// decoded pixel data would exceed 1 GiB, or 200 megapixels per frame, are refused with `.limitExceeded`; the
    /// output is never larger than the source region (no upscaling), its aspect ratio kept.
    public static func render(
        _ part10: Data, frame: Int = 1, format: Format, quality: Int = 90, viewport: Viewport? = nil
    ) throws(DICOMCodecError) -> Data {
        guard frame >= 1 else { throw DICOMCodecError(.unsupported, "frame numbers start at 1") }
        let region = viewport?.region.flatMap { $0.count == 4 ? $0 : nil } ?? [0, 0, 0, 0]
        return try DCMTK.render(
            part10, frame: frame - 1, region: region, width: viewport?.width ?? 0, height: viewport?.height ?? 0,
            png: format == .png, quality: quality)
    }

    /// The Part-10 file re-encoded under `transferSyntax` (DCMTK decodes JPEG and RLE; it encodes none).
    public static func transcode(_ part10: Data, to transferSyntax: String) throws(DICOMCodecError) -> Data {
        try DCMTK.transcode(part10, transferSyntax: transferSyntax)
    }

    /// The bytes of frame `number` (1-based) of a Part-10 file held in memory, as stored: the compressed bitstream
    /// of an encapsulated frame, or the frame's slice of native pixel data.
    public static func frame(_ number: Int, of part10: Data) throws(DICOMCodecError) -> Data {
        guard let frame = try frames([number], of: part10).first else {
            throw DICOMCodecError(.noSuchFrame, "no such frame")
        }
        return frame
    }

    /// Frames `numbers` (1-based, in the order asked, repeats allowed) of a Part-10 file held in memory, with one
    /// parse: each distinct frame is copied once. A number past the object's real frame count throws
    /// `.noSuchFrame`; nothing traps, whatever the number.
    public static func frames(_ numbers: [Int], of part10: Data) throws(DICOMCodecError) -> [Data] {
        var distinct: [Int] = []
        var position: [Int: Int] = [:]
        for number in numbers {
            guard number >= 1 else { throw DICOMCodecError(.unsupported, "frame numbers start at 1") }
            if position[number] == nil {
                position[number] = distinct.count
                distinct.append(number - 1)
            }
        }
        guard !distinct.isEmpty else { return [] }
        let read = try DCMTK.frames(part10, indices: distinct)
        return numbers.map { read[position[$0] ?? 0] }
    }

    /// The number of frames the object really holds: 0 without pixel data; Number of Frames (1 when absent) as far
    /// as the pixel data actually contains them.
    public static func numberOfFrames(of part10: Data) throws(DICOMCodecError) -> Int {
        try DCMTK.numberOfFrames(part10)
    }

    /// One top-level element's whole value (an Encapsulated Document of any size, an ICC profile, ...).
    public static func value(_ tag: Tag, of part10: Data) throws(DICOMCodecError) -> Data {
        try DCMTK.elementValue(part10, tag: tag)
    }
}
