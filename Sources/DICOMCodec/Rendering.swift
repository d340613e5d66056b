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

    /// Renders frame `frame` (1-based) of a Part-10 file held in memory.
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

    /// The bytes of frame `number` (1-based) of a dataset read with every value loaded: the concatenated fragments
    /// of an encapsulated frame (one fragment per frame, or all fragments for a single frame), or the frame's slice
    /// of native pixel data.
    public static func frame(_ number: Int, of dataset: Dataset) -> Data? {
        guard number >= 1, let pixels = dataset[.pixelData] else { return nil }
        let frames = dataset.int(.numberOfFrames) ?? 1
        guard number <= max(frames, 1) else { return nil }
        switch pixels.value {
        case .fragments(let fragments):
            if frames <= 1 { return fragments.reduce(into: Data()) { $0.append($1) } }
            guard fragments.count == frames else { return nil }
            return fragments[number - 1]
        case .bytes(let data):
            guard let rows = dataset.int(.rows), let columns = dataset.int(.columns),
                let bits = dataset.int(.bitsAllocated)
            else { return nil }
            let samples = dataset.int(.samplesPerPixel) ?? 1
            let size = rows * columns * samples * bits / 8
            let start = (number - 1) * size
            guard size > 0, start + size <= data.count else { return nil }
            return data.subdata(in: data.startIndex + start..<data.startIndex + start + size)
        default:
            return nil
        }
    }
}
