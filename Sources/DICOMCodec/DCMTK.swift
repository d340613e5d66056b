import CDCMTK
import DICOMCore
import Foundation

/// Thin Swift face of the CDCMTK shim: converts status codes into `DICOMCodecError` and shim buffers into `Data`.
enum DCMTK {
    static func initialize() throws(DICOMCodecError) {
        // One nesting limit for the shim and the DICOM JSON the index keeps: an object read here must read back.
        guard Int(CDCMTK_MAXIMUM_NESTING) == DICOMJSON.maximumDepth else {
            throw DICOMCodecError(.initialization, "the shim's nesting limit differs from DICOM JSON's")
        }
        try call { error, capacity in cdcmtk_initialize(error, capacity) }
    }

    static func readFile(_ path: String, bulkThreshold: UInt32) throws(DICOMCodecError) -> Data {
        try buffer { out, length, error, capacity in
            cdcmtk_read_file(path, bulkThreshold, out, length, error, capacity)
        }
    }

    static func readBuffer(_ data: Data, bulkThreshold: UInt32) throws(DICOMCodecError) -> Data {
        try buffer { out, length, error, capacity in
            data.withUnsafeBytes { raw in
                cdcmtk_read_buffer(
                    raw.bindMemory(to: UInt8.self).baseAddress, raw.count, bulkThreshold, out, length, error, capacity)
            }
        }
    }

    static func readElementValue(_ path: String, tag: Tag) throws(DICOMCodecError) -> Data {
        try buffer { out, length, error, capacity in
            cdcmtk_read_element_value(path, tag.group, tag.element, out, length, error, capacity)
        }
    }

    static func writePart10(_ dataset: Data, transferSyntax: String, to path: String) throws(DICOMCodecError) {
        try call { error, capacity in
            dataset.withUnsafeBytes { raw in
                cdcmtk_write_part10(
                    raw.bindMemory(to: UInt8.self).baseAddress, raw.count, transferSyntax, path, error, capacity)
            }
        }
    }

    static func encodePart10(_ dataset: Data, transferSyntax: String) throws(DICOMCodecError) -> Data {
        try buffer { out, length, error, capacity in
            dataset.withUnsafeBytes { raw in
                cdcmtk_encode_part10(
                    raw.bindMemory(to: UInt8.self).baseAddress, raw.count, transferSyntax, out, length, error, capacity)
            }
        }
    }

    static func elementValue(_ part10: Data, tag: Tag) throws(DICOMCodecError) -> Data {
        try buffer { out, length, error, capacity in
            part10.withUnsafeBytes { raw in
                cdcmtk_element_value(
                    raw.bindMemory(to: UInt8.self).baseAddress, raw.count, tag.group, tag.element, out, length, error,
                    capacity)
            }
        }
    }

    /// Frames by 0-based index, parsed once; an index beyond 32 bits is "no such frame", never a trap.
    static func frames(_ part10: Data, indices: [Int]) throws(DICOMCodecError) -> [Data] {
        var numbers: [UInt32] = []
        numbers.reserveCapacity(indices.count)
        for index in indices {
            guard let number = UInt32(exactly: index) else { throw noSuchFrame(index) }
            numbers.append(number)
        }
        var lengths = [Int](repeating: 0, count: numbers.count)
        let joined = try buffer { out, length, error, capacity in
            part10.withUnsafeBytes { raw in
                numbers.withUnsafeBufferPointer { list in
                    lengths.withUnsafeMutableBufferPointer { sizes in
                        cdcmtk_frames(
                            raw.bindMemory(to: UInt8.self).baseAddress, raw.count, list.baseAddress, list.count, out,
                            length, sizes.baseAddress, error, capacity)
                    }
                }
            }
        }
        var frames: [Data] = []
        frames.reserveCapacity(lengths.count)
        var start = joined.startIndex
        for size in lengths {
            guard size >= 0, joined.endIndex - start >= size else {
                throw DICOMCodecError(.malformedDICOM, "frame lengths do not add up")
            }
            frames.append(joined.subdata(in: start..<start + size))
            start += size
        }
        return frames
    }

    static func numberOfFrames(_ part10: Data) throws(DICOMCodecError) -> Int {
        var frames: UInt32 = 0
        try call { error, capacity in
            part10.withUnsafeBytes { raw in
                cdcmtk_number_of_frames(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &frames, error, capacity)
            }
        }
        return Int(frames)
    }

    static func noSuchFrame(_ index: Int) -> DICOMCodecError {
        DICOMCodecError(.noSuchFrame, "no such frame: frame \(index < Int.max ? index + 1 : index)")
    }

    static func transcode(_ part10: Data, transferSyntax: String) throws(DICOMCodecError) -> Data {
        try buffer { out, length, error, capacity in
            part10.withUnsafeBytes { raw in
                cdcmtk_transcode(
                    raw.bindMemory(to: UInt8.self).baseAddress, raw.count, transferSyntax, out, length, error, capacity)
            }
        }
    }

    static func render(
        _ part10: Data, frame: Int, region: [UInt32], width: UInt32, height: UInt32, png: Bool, quality: Int
    ) throws(DICOMCodecError) -> Data {
        guard let index = UInt32(exactly: frame) else { throw noSuchFrame(frame) }
        guard region.count == 4 else { throw DICOMCodecError(.unsupported, "a viewport region has four numbers") }
        let level = Int32(min(max(quality, 1), 100))
        return try buffer { out, length, error, capacity in
            part10.withUnsafeBytes { raw in
                region.withUnsafeBufferPointer { area in
                    cdcmtk_render(
                        raw.bindMemory(to: UInt8.self).baseAddress, raw.count, index, area.baseAddress, width,
                        height, png ? 1 : 0, level, out, length, error, capacity)
                }
            }
        }
    }

    static func decodeJPEG(
        _ jpeg: Data, transferSyntax: String, rows: Int, columns: Int, samplesPerPixel: Int, photometric: String
    ) throws(DICOMCodecError) -> Data {
        guard let rows16 = UInt16(exactly: rows), let columns16 = UInt16(exactly: columns),
            let samples16 = UInt16(exactly: samplesPerPixel)
        else { throw DICOMCodecError(.invalidImage, "JPEG dimensions do not fit DICOM's 16-bit rows and columns") }
        return try buffer { out, length, error, capacity in
            jpeg.withUnsafeBytes { raw in
                cdcmtk_decode_jpeg(
                    raw.bindMemory(to: UInt8.self).baseAddress, raw.count, transferSyntax, rows16, columns16,
                    samples16, photometric, out, length, error, capacity)
            }
        }
    }

    static func decodePNG(_ png: Data, maxDimension: UInt32, maxPixels: UInt64) throws(DICOMCodecError) -> (
        cdcmtk_png_info, Data
    ) {
        var info = cdcmtk_png_info()
        let pixels = try buffer { out, length, error, capacity in
            png.withUnsafeBytes { raw in
                cdcmtk_decode_png(
                    raw.bindMemory(to: UInt8.self).baseAddress, raw.count, maxDimension, maxPixels, &info, out,
                    length, error, capacity)
            }
        }
        return (info, pixels)
    }

    /// A PNG (libpng) of interleaved 8-bit RGB or RGBA pixels.
    static func encodePNG(_ pixels: [UInt8], width: Int, height: Int, samplesPerPixel: Int) throws(DICOMCodecError)
        -> Data
    {
        guard width > 0, height > 0, width <= 65535, height <= 65535, samplesPerPixel == 3 || samplesPerPixel == 4,
            pixels.count == width * height * samplesPerPixel
        else { throw DICOMCodecError(.invalidImage, "the picture's size does not match its pixels") }
        return try buffer { out, length, error, capacity in
            pixels.withUnsafeBufferPointer { raw in
                cdcmtk_encode_png(
                    raw.baseAddress, UInt32(width), UInt32(height), UInt8(samplesPerPixel), out, length, error,
                    capacity)
            }
        }
    }

    /// A baseline JFIF JPEG of interleaved 8-bit RGB (no metadata markers).
    static func encodeJPEG(_ pixels: [UInt8], width: Int, height: Int, quality: Int) throws(DICOMCodecError) -> Data {
        guard width > 0, height > 0, width <= 65500, height <= 65500, pixels.count == width * height * 3,
            (1...100).contains(quality)
        else { throw DICOMCodecError(.invalidImage, "the picture's size does not match its pixels") }
        return try buffer { out, length, error, capacity in
            pixels.withUnsafeBufferPointer { raw in
                cdcmtk_encode_jpeg(
                    raw.baseAddress, UInt32(width), UInt32(height), Int32(quality), out, length, error, capacity)
            }
        }
    }

    /// A JPEG file decoded to interleaved 8-bit RGB: (width, height, pixels).
    static func decodeJPEGFile(_ jpeg: Data, maxDimension: UInt32, maxPixels: UInt64) throws(DICOMCodecError) -> (
        Int, Int, Data
    ) {
        var (width, height): (UInt32, UInt32) = (0, 0)
        let pixels = try buffer { out, length, error, capacity in
            jpeg.withUnsafeBytes { raw in
                cdcmtk_decode_jpeg_file(
                    raw.bindMemory(to: UInt8.self).baseAddress, raw.count, maxDimension, maxPixels, &width, &height,
                    out, length, error, capacity)
            }
        }
        return (Int(width), Int(height), pixels)
    }

    // MARK: plumbing

    private static let errorCapacity = 512

    private static func call(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws(DICOMCodecError) {
        var message = [CChar](repeating: 0, count: errorCapacity)
        let status = message.withUnsafeMutableBufferPointer { pointer in
            body(pointer.baseAddress!, errorCapacity)
        }
        guard status == CDCMTK_OK else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw mapError(status, text)
        }
    }

    private static func buffer(
        _ body: (
            UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>,
            Int
        ) -> Int32
    ) throws(DICOMCodecError) -> Data {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var length = 0
        try call { error, capacity in body(&out, &length, error, capacity) }
        guard let out else { return Data() }
        return Data(bytesNoCopy: out, count: length, deallocator: .custom { pointer, _ in cdcmtk_free(pointer) })
    }

    private static func mapError(_ status: Int32, _ text: String) -> DICOMCodecError {
        let message = text.isEmpty ? "DCMTK failure \(status)" : text
        switch Int(status) {
        case Int(CDCMTK_ERR_INIT): return DICOMCodecError(.initialization, message)
        case Int(CDCMTK_ERR_NOT_DICOM): return DICOMCodecError(.notDICOM, message)
        case Int(CDCMTK_ERR_MALFORMED): return DICOMCodecError(.malformedDICOM, message)
        case Int(CDCMTK_ERR_IO): return DICOMCodecError(.io, message)
        case Int(CDCMTK_ERR_LIMIT): return DICOMCodecError(.limitExceeded, message)
        case Int(CDCMTK_ERR_MEMORY): return DICOMCodecError(.limitExceeded, "out of memory: \(message)")
        case Int(CDCMTK_ERR_NO_SUCH_FRAME): return DICOMCodecError(.noSuchFrame, message)
        default: return DICOMCodecError(.unsupported, message)
        }
    }
}
