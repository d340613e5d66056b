import DICOMCore
import Foundation

/// A DICOM Part-10 file as read: its File Meta Information and its dataset. Bulk values (pixel data,
/// encapsulated documents, long binary values) are `.bulk(length:)`, never loaded.
public struct DICOMFile: Sendable {
    public var meta: Dataset
    public var dataset: Dataset

    public var transferSyntaxUID: String? { meta.string(.transferSyntaxUID) }
}

/// Reading and writing DICOM Part-10 files through DCMTK.
public enum Part10 {
    /// Binary values longer than this are left on disk when reading.
    public static let defaultBulkThreshold: UInt32 = 1024

    /// Checks once that DCMTK is usable (its data dictionary is loaded). Call at start-up.
    public static func initialize() throws(DICOMCodecError) { try DCMTK.initialize() }

    public static func read(path: String, bulkThreshold: UInt32 = defaultBulkThreshold) throws(DICOMCodecError)
        -> DICOMFile
    {
        try decodeWalk(DCMTK.readFile(path, bulkThreshold: bulkThreshold))
    }

    public static func read(data: Data, bulkThreshold: UInt32 = defaultBulkThreshold) throws(DICOMCodecError)
        -> DICOMFile
    {
        try decodeWalk(DCMTK.readBuffer(data, bulkThreshold: bulkThreshold))
    }

    /// Reads one top-level element's whole value, for example the Encapsulated Document.
    public static func readValue(path: String, tag: Tag) throws(DICOMCodecError) -> Data {
        try DCMTK.readElementValue(path, tag: tag)
    }

    /// Writes `dataset` as a Part-10 file. The file appears whole at `path` or not at all.
    public static func write(_ dataset: Dataset, transferSyntax: String, to path: String) throws(DICOMCodecError) {
        let bytes: Data
        do {
            bytes = try dataset.encodedExplicitVRLittleEndian()
        } catch {
            throw DICOMCodecError(.invalidMetadata, error.message)
        }
        try DCMTK.writePart10(bytes, transferSyntax: transferSyntax, to: path)
    }

    /// Encodes `dataset` as a whole Part-10 file in memory (File Meta Information built by DCMTK).
    public static func encode(_ dataset: Dataset, transferSyntax: String) throws(DICOMCodecError) -> Data {
        let bytes: Data
        do {
            bytes = try dataset.encodedExplicitVRLittleEndian()
        } catch {
            throw DICOMCodecError(.invalidMetadata, error.message)
        }
        return try DCMTK.encodePart10(bytes, transferSyntax: transferSyntax)
    }

    // MARK: walk format (see CDCMTK.h)

    static func decodeWalk(_ walk: Data) throws(DICOMCodecError) -> DICOMFile {
        var reader = WalkReader(bytes: [UInt8](walk))
        var stack: [(tag: Tag, items: [Dataset], current: Dataset?)] = []
        var top = Dataset()
        func malformed() -> DICOMCodecError { DICOMCodecError(.malformedDICOM, "internal walk record is malformed") }

        func add(_ element: DataElement) {
            if stack.isEmpty {
                top.set(element)
            } else {
                stack[stack.count - 1].current?.set(element)
            }
        }
        while !reader.atEnd {
            guard let kind = reader.u8() else { throw malformed() }
            switch kind {
            case 1:
                guard let group = reader.u16(), let element = reader.u16(), let vrBytes = reader.take(2),
                    let bulk = reader.u8(), let length = reader.u32()
                else { throw malformed() }
                let tag = Tag(group, element)
                let vr = VR(rawValue: String(decoding: vrBytes, as: UTF8.self)) ?? .UN
                if bulk == 1 {
                    add(DataElement(tag, vr, .bulk(length: length)))
                    continue
                }
                guard let value = reader.take(Int(length)) else { throw malformed() }
                do {
                    add(DataElement(tag, vr, try Value.decode(Data(value), vr: vr)))
                } catch {
                    throw DICOMCodecError(.malformedDICOM, "value of \(tag) is malformed: \(error.message)")
                }
            case 2:
                guard let group = reader.u16(), let element = reader.u16() else { throw malformed() }
                stack.append((Tag(group, element), [], nil))
            case 3:
                guard !stack.isEmpty else { throw malformed() }
                stack[stack.count - 1].current = Dataset()
            case 4:
                guard let item = stack.last?.current else { throw malformed() }
                stack[stack.count - 1].items.append(item)
                stack[stack.count - 1].current = nil
            case 5:
                guard let finished = stack.popLast() else { throw malformed() }
                add(DataElement(finished.tag, .SQ, .sequence(finished.items)))
            default:
                throw malformed()
            }
        }
        guard stack.isEmpty else { throw malformed() }
        var meta = Dataset()
        var dataset = Dataset()
        for element in top.elements {
            if element.tag.group == 0x0002 { meta.set(element) } else { dataset.set(element) }
        }
        return DICOMFile(meta: meta, dataset: dataset)
    }
}

private struct WalkReader {
    let bytes: [UInt8]
    var offset = 0

    var atEnd: Bool { offset >= bytes.count }

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, bytes.count - offset >= count else { return nil }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    mutating func u8() -> UInt8? { take(1)?.first }

    mutating func u16() -> UInt16? {
        guard let slice = take(2) else { return nil }
        return UInt16(slice[slice.startIndex]) | UInt16(slice[slice.startIndex + 1]) << 8
    }

    mutating func u32() -> UInt32? {
        guard let slice = take(4) else { return nil }
        return slice.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}
