import DICOMCore
import Foundation
import Testing

@testable import DICOMCodec

/// `Part10.normalize` repairs what real clients send: a stream that starts with the File Meta group (pydicom 3 with
/// dicomweb-client), and Media Storage UIDs that differ from the dataset's (pydicom's rtplan.dcm).
@Suite struct Part10NormalizeTests {
    static let sopClass = "1.2.840.10008.5.1.4.1.1.88.11"

    static func dataset(sop: String) -> Dataset {
        var dataset = Dataset()
        dataset.set(.sopClassUID, .UI, sopClass)
        dataset.set(.sopInstanceUID, .UI, sop)
        dataset.set(.studyInstanceUID, .UI, "1.2.3.4.5")
        dataset.set(.seriesInstanceUID, .UI, "1.2.3.4.6")
        dataset.set(.modality, .CS, "SR")
        return dataset
    }

    /// A Part-10 file built by hand, with a File Meta group stating `metaClass` and `metaInstance`.
    static func file(metaClass: String, metaInstance: String, dataset: Data) -> Data {
        let e = NestingTests.element
        var meta = e(2, 1, "OB", Data([0, 1]), true) + e(2, 2, "UI", NestingTests.uid(metaClass), true)
        meta += e(2, 3, "UI", NestingTests.uid(metaInstance), true)
        meta += e(2, 0x10, "UI", NestingTests.uid(UID.explicitVRLittleEndian), true)
        meta = e(2, 0, "UL", withUnsafeBytes(of: UInt32(meta.count).littleEndian) { Data($0) }, true) + meta
        return Data(count: 128) + Data("DICM".utf8) + meta + dataset
    }

    @Test func aStreamStartingWithTheMetaGroupGetsAPreamble() throws {
        try Part10.initialize()
        let whole = try Part10.encode(Self.dataset(sop: "1.2.3.4.7"), transferSyntax: UID.explicitVRLittleEndian)
        let stripped = whole.dropFirst(132)
        #expect(throws: DICOMCodecError.self) { try Part10.read(data: stripped) }
        let (data, warnings) = try Part10.normalize(stripped)
        #expect(warnings.isEmpty)
        #expect(data == Data(count: 128) + Data("DICM".utf8) + stripped)
        #expect(try Part10.read(data: data).dataset.string(.sopInstanceUID) == "1.2.3.4.7")
    }

    @Test func aWellFormedFileIsUnchanged() throws {
        try Part10.initialize()
        let whole = try Part10.encode(Self.dataset(sop: "1.2.3.4.7"), transferSyntax: UID.explicitVRLittleEndian)
        let (data, warnings) = try Part10.normalize(whole)
        #expect(data == whole)
        #expect(warnings.isEmpty)
    }

    @Test func differingMediaStorageUIDsAreRewrittenAndTheDatasetKept() throws {
        try Part10.initialize()
        let body = try Self.dataset(sop: "1.2.3.4.7").encodedExplicitVRLittleEndian()
        let original = Self.file(
            metaClass: "1.2.840.10008.5.1.4.1.1.481.5", metaInstance: "1.2.3.999.123456", dataset: body)
        let (data, warnings) = try Part10.normalize(original)
        #expect(
            warnings == [
                "Media Storage SOP Class UID corrected to the SOP Class UID",
                "Media Storage SOP Instance UID corrected to the SOP Instance UID",
            ])
        #expect(data.prefix(132) == original.prefix(132))
        #expect(data.suffix(body.count) == body)
        let file = try Part10.read(data: data)
        #expect(file.meta.string(.mediaStorageSOPInstanceUID) == "1.2.3.4.7")
        #expect(file.meta.string(.mediaStorageSOPClassUID) == Self.sopClass)
        // The group length counts the rewritten group exactly.
        let groupLength = data[140..<144].reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect(132 + 12 + groupLength == data.count - body.count)
    }

    @Test func aStreamWithoutPreambleAndWrongUIDsGetsBothRepairs() throws {
        try Part10.initialize()
        let body = try Self.dataset(sop: "1.2.3.4.7").encodedExplicitVRLittleEndian()
        let original = Self.file(metaClass: Self.sopClass, metaInstance: "1.2.3.8", dataset: body).dropFirst(132)
        let (data, warnings) = try Part10.normalize(original)
        #expect(warnings == ["Media Storage SOP Instance UID corrected to the SOP Instance UID"])
        #expect(try Part10.read(data: data).meta.string(.mediaStorageSOPInstanceUID) == "1.2.3.4.7")
    }

    @Test func anythingElseIsLeftToDCMTKsError() throws {
        try Part10.initialize()
        for garbage in [Data("not dicom at all".utf8), Data(count: 300), Data([0x02, 0x00, 0x00, 0x00])] {
            #expect(throws: DICOMCodecError.self) { try Part10.normalize(garbage) }
        }
    }
}
