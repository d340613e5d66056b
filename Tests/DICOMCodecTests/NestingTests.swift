import DICOMCore
import Foundation
import Testing

@testable import DICOMCodec

/// DCMTK parses sequences recursively; a hostile file of nested empty sequences would overflow the stack. The shim
/// scans the structure first and refuses nesting deeper than DICOM JSON's limit (32 sequences), in every transfer
/// syntax, so that everything it reads can be indexed as DICOM JSON and decoded again.
@Suite struct NestingTests {
    static func element(_ group: UInt16, _ element: UInt16, _ vr: String, _ value: Data, explicit: Bool = true) -> Data
    {
        var out = Data()
        func le16(_ v: UInt16) { out += withUnsafeBytes(of: v.littleEndian) { Data($0) } }
        func le32(_ v: UInt32) { out += withUnsafeBytes(of: v.littleEndian) { Data($0) } }
        le16(group)
        le16(element)
        if !explicit {
            le32(UInt32(value.count))
        } else if ["OB", "SQ", "UN", "UT", "OW"].contains(vr) {
            out += Data(vr.utf8) + Data([0, 0])
            le32(UInt32(value.count))
        } else {
            out += Data(vr.utf8)
            le16(UInt16(value.count))
        }
        return out + value
    }

    static func uid(_ text: String) -> Data { Data(text.utf8) + (text.utf8.count % 2 == 1 ? Data([0]) : Data()) }

    /// A Part-10 file whose dataset nests `depth` sequences of undefined length (Request Attributes Sequence).
    static func nested(depth: Int, syntax: String) -> Data {
        var meta = element(2, 1, "OB", Data([0, 1])) + element(2, 2, "UI", uid("1.2.840.10008.5.1.4.1.1.7"))
        meta += element(2, 3, "UI", uid("1.2.3.4")) + element(2, 0x10, "UI", uid(syntax))
        meta = element(2, 0, "UL", withUnsafeBytes(of: UInt32(meta.count).littleEndian) { Data($0) }) + meta
        let explicit = syntax != UID.implicitVRLittleEndian
        var body = element(8, 0x16, "UI", uid("1.2.840.10008.5.1.4.1.1.7"), explicit: explicit)
        body += element(8, 0x18, "UI", uid("1.2.3.4"), explicit: explicit)
        let open: Data = {
            var sequence = Data([0x40, 0x00, 0x75, 0x02])
            sequence +=
                explicit ? Data("SQ".utf8) + Data([0, 0, 0xFF, 0xFF, 0xFF, 0xFF]) : Data([0xFF, 0xFF, 0xFF, 0xFF])
            return sequence + Data([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF])
        }()
        let close = Data([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0])
        var data = Data(count: 128) + Data("DICM".utf8) + meta + body
        for _ in 0..<depth { data += open }
        for _ in 0..<depth { data += close }
        return data
    }

    @Test(arguments: [UID.explicitVRLittleEndian, UID.implicitVRLittleEndian])
    func deepNestingIsRefusedNotACrash(syntax: String) throws {
        try Part10.initialize()
        let hostile = Self.nested(depth: 100_000, syntax: syntax)
        let error = #expect(throws: DICOMCodecError.self) { try Part10.read(data: hostile) }
        #expect(error?.message.contains("nested more than \(DICOMJSON.maximumDepth)") == true)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("deep-\(UUID().uuidString).dcm")
        try hostile.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: DICOMCodecError.self) { try Part10.read(path: url.path) }
        #expect(throws: DICOMCodecError.self) { try Rendering.transcode(hostile, to: UID.explicitVRLittleEndian) }
    }

    @Test(arguments: [UID.explicitVRLittleEndian, UID.implicitVRLittleEndian])
    func ordinaryNestingIsRead(syntax: String) throws {
        try Part10.initialize()
        let file = try Part10.read(data: Self.nested(depth: 20, syntax: syntax))
        var depth = 0
        var items = file.dataset.items(Tag(0x0040, 0x0275))
        while let item = items?.first {
            depth += 1
            items = item.items(Tag(0x0040, 0x0275))
        }
        #expect(depth == 20)
    }

    static func depth(of dataset: Dataset) -> Int {
        var depth = 0
        var items = dataset.items(Tag(0x0040, 0x0275))
        while let item = items?.first {
            depth += 1
            items = item.items(Tag(0x0040, 0x0275))
        }
        return depth
    }

    @Test(arguments: [UID.explicitVRLittleEndian, UID.implicitVRLittleEndian])
    func nestingExactlyAtTheSharedLimitIsReadAndIndexable(syntax: String) throws {
        try Part10.initialize()
        let file = try Part10.read(data: Self.nested(depth: DICOMJSON.maximumDepth, syntax: syntax))
        #expect(Self.depth(of: file.dataset) == DICOMJSON.maximumDepth)
        // What the index would keep decodes again.
        let decoded = try DICOMJSON.decode(Data(DICOMJSON.encode(file.dataset).utf8))
        #expect(Self.depth(of: decoded) == DICOMJSON.maximumDepth)
    }

    @Test(arguments: [UID.explicitVRLittleEndian, UID.implicitVRLittleEndian])
    func oneLevelBeyondTheSharedLimitIsRefused(syntax: String) throws {
        try Part10.initialize()
        let hostile = Self.nested(depth: DICOMJSON.maximumDepth + 1, syntax: syntax)
        let error = #expect(throws: DICOMCodecError.self) { try Part10.read(data: hostile) }
        #expect(error?.code == .limitExceeded)
    }
}
