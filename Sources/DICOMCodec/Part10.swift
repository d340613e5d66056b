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

    // MARK: normalising what clients send

    /// Repairs two things real clients send before an object is read, leaving every other fault to DCMTK's error:
    /// (a) a stream that starts with the File Meta group and has no 128-byte preamble and `DICM` (pydicom 3 with
    /// dicomweb-client, for a dataset built in memory) gets a zero preamble and `DICM`; (b) a Media Storage SOP
    /// Instance (or Class) UID (0002,0003)/(0002,0002) that differs from the dataset's SOP Instance (Class) UID is
    /// rewritten to the dataset's, with a recomputed group length (0002,0000); the dataset bytes are unchanged. (b)
    /// returns a warning for each corrected UID; (a) needs none.
    public static func normalize(_ data: Data) throws(DICOMCodecError) -> (data: Data, warnings: [String]) {
        let result = try readNormalized(data: data)
        return (result.data, result.warnings)
    }

    /// `normalize` and `read(data:)` with one DCMTK parse: the normalised bytes, what they hold, the warnings.
    public static func readNormalized(data: Data, bulkThreshold: UInt32 = defaultBulkThreshold)
        throws(DICOMCodecError) -> (data: Data, file: DICOMFile, warnings: [String])
    {
        var bytes = data
        if !hasPreamble(bytes) && startsWithMetaGroup(bytes) {
            bytes = Data(count: 128) + Data("DICM".utf8) + bytes
        }
        var file = try read(data: bytes, bulkThreshold: bulkThreshold)
        guard hasPreamble(bytes), let meta = metaGroup(bytes) else { return (bytes, file, []) }
        var replacements: [Tag: String] = [:]
        var warnings: [String] = []
        let pairs: [(Tag, Tag, String)] = [
            (.mediaStorageSOPClassUID, .sopClassUID, "Media Storage SOP Class UID corrected to the SOP Class UID"),
            (
                .mediaStorageSOPInstanceUID, .sopInstanceUID,
                "Media Storage SOP Instance UID corrected to the SOP Instance UID"
            ),
        ]
        for (metaTag, datasetTag, warning) in pairs {
            guard let own = file.dataset.string(datasetTag), !own.isEmpty, let stated = file.meta.string(metaTag),
                stated != own, meta.elements.contains(where: { $0.tag == metaTag })
            else { continue }
            replacements[metaTag] = own
            warnings.append(warning)
        }
        guard !replacements.isEmpty else { return (bytes, file, []) }
        var group = Data()
        for element in meta.elements where element.tag != Tag(0x0002, 0x0000) {
            if let uid = replacements[element.tag] {
                var value = Data(uid.utf8)
                if value.count % 2 == 1 { value.append(0) }
                group += explicitHeader(element.tag, vr: "UI", length: value.count) + value
                file.meta.set(element.tag, .UI, uid)
            } else {
                group += bytes[(bytes.startIndex + element.start)..<(bytes.startIndex + element.end)]
            }
        }
        let groupLength = withUnsafeBytes(of: UInt32(group.count).littleEndian) { Data($0) }
        var rebuilt = bytes.prefix(132)
        rebuilt += explicitHeader(Tag(0x0002, 0x0000), vr: "UL", length: 4) + groupLength + group
        rebuilt += bytes[(bytes.startIndex + meta.end)...]
        return (Data(rebuilt), file, warnings)
    }

    /// 128 bytes of preamble, then `DICM`.
    static func hasPreamble(_ data: Data) -> Bool {
        data.count >= 132 && data[(data.startIndex + 128)..<(data.startIndex + 132)] == Data("DICM".utf8)
    }

    /// The bytes start with an explicit VR little-endian element of group 0002.
    static func startsWithMetaGroup(_ data: Data) -> Bool {
        guard data.count >= 8 else { return false }
        let b = data.startIndex
        guard data[b] == 0x02, data[b + 1] == 0x00 else { return false }
        return VR(rawValue: String(decoding: data[(b + 4)..<(b + 6)], as: UTF8.self)) != nil
    }

    /// One element of the File Meta group: its tag and where its bytes (header included) are.
    struct MetaElement {
        var tag: Tag
        var start: Int
        var end: Int
    }

    /// The File Meta group's elements after the preamble (explicit VR little endian, as PS3.10 requires), or nil
    /// when it cannot be walked (left for DCMTK to judge).
    static func metaGroup(_ data: Data) -> (elements: [MetaElement], end: Int)? {
        let b = data.startIndex
        func u16(_ at: Int) -> Int { Int(data[b + at]) | Int(data[b + at + 1]) << 8 }
        var offset = 132
        var elements: [MetaElement] = []
        while data.count - offset >= 8, u16(offset) == 0x0002 {
            let tag = Tag(0x0002, UInt16(u16(offset + 2)))
            guard let vr = VR(rawValue: String(decoding: data[(b + offset + 4)..<(b + offset + 6)], as: UTF8.self))
            else { return nil }
            let length: Int
            let headerSize: Int
            if vr.hasLongLength {
                guard data.count - offset >= 12 else { return nil }
                length = u16(offset + 8) | u16(offset + 10) << 16
                headerSize = 12
            } else {
                length = u16(offset + 6)
                headerSize = 8
            }
            guard length != 0xFFFF_FFFF, data.count - offset - headerSize >= length else { return nil }
            elements.append(MetaElement(tag: tag, start: offset, end: offset + headerSize + length))
            offset += headerSize + length
        }
        return elements.isEmpty ? nil : (elements, offset)
    }

    static func explicitHeader(_ tag: Tag, vr: String, length: Int) -> Data {
        var out = Data()
        out += withUnsafeBytes(of: tag.group.littleEndian) { Data($0) }
        out += withUnsafeBytes(of: tag.element.littleEndian) { Data($0) }
        out += Data(vr.utf8)
        out += withUnsafeBytes(of: UInt16(truncatingIfNeeded: length).littleEndian) { Data($0) }
        return out
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
