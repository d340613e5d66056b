import DICOMCore
import Foundation
import Testing

@testable import DICOMCodec

@Suite struct Part10Tests {
    func writtenPhoto() throws -> URL {
        let instance = try PhotoConverter.convert(
            try Fixtures.data("photos/phone-gps.jpg"), context: try Fixtures.context(), placement: Fixtures.placement)
        return try Fixtures.roundTrip(instance).url
    }

    @Test func readingLeavesPixelDataOnDisk() throws {
        let file = try Part10.read(path: try writtenPhoto().path)
        #expect(file.dataset[.pixelData]?.value == .bulk(length: UInt32.max))
        #expect(file.meta.string(.transferSyntaxUID) == UID.jpegBaseline)
        #expect(file.meta.string(.mediaStorageSOPClassUID) == UID.vlPhotographicImageStorage)
        #expect(file.meta.string(.mediaStorageSOPInstanceUID) == file.dataset.string(.sopInstanceUID))
    }

    @Test func readingFromABufferMatchesReadingTheFile() throws {
        let url = try writtenPhoto()
        let fromFile = try Part10.read(path: url.path)
        let fromBuffer = try Part10.read(data: try Data(contentsOf: url))
        #expect(fromFile.dataset.string(.sopInstanceUID) == fromBuffer.dataset.string(.sopInstanceUID))
        #expect(fromFile.dataset.tags == fromBuffer.dataset.tags)
    }

    @Test func longTextValuesAreReadFromFilesAndBuffers() throws {
        var dataset = Dataset()
        dataset.set(.sopClassUID, .UI, UID.encapsulatedSTLStorage)
        dataset.set(.sopInstanceUID, .UI, "1.2.3.4.5")
        let text = String(repeating: "Ünïcode text, ", count: 400)
        dataset.set(Tag(0x0020, 0x4000), .LT, text)  // Image Comments, ~5.6 kB
        let url = try Fixtures.temporaryDirectory().appendingPathComponent("long.dcm")
        try Part10.write(dataset, transferSyntax: UID.explicitVRLittleEndian, to: url.path)
        #expect(
            try Part10.read(path: url.path).dataset.string(Tag(0x0020, 0x4000))
                == text.trimmingCharacters(in: .whitespaces))
        let fromBuffer = try Part10.read(data: try Data(contentsOf: url))
        #expect(fromBuffer.dataset.string(Tag(0x0020, 0x4000)) == text.trimmingCharacters(in: .whitespaces))
    }

    @Test func encapsulatedIconPixelDataInsideASequenceIsLeftOnDisk() throws {
        let instance = try PhotoConverter.convert(
            try Fixtures.data("photos/gray.jpg"), context: try Fixtures.context(), placement: Fixtures.placement)
        var dataset = instance.dataset
        var icon = Dataset()
        icon.set(.samplesPerPixel, .US, unsigned: 1)
        icon.set(.photometricInterpretation, .CS, "MONOCHROME2")
        icon.set(.rows, .US, unsigned: 240)
        icon.set(.columns, .US, unsigned: 320)
        icon.set(.bitsAllocated, .US, unsigned: 8)
        icon.set(.bitsStored, .US, unsigned: 8)
        icon.set(.highBit, .US, unsigned: 7)
        icon.set(.pixelRepresentation, .US, unsigned: 0)
        icon.set(try #require(dataset[.pixelData]))
        dataset.set(Tag(0x0088, 0x0200), sequence: [icon])  // Icon Image Sequence
        let url = try Fixtures.temporaryDirectory().appendingPathComponent("icon.dcm")
        try Part10.write(dataset, transferSyntax: instance.transferSyntaxUID, to: url.path)
        let read = try Part10.read(path: url.path)
        let item = try #require(read.dataset.items(Tag(0x0088, 0x0200))?.first)
        #expect(item[.pixelData]?.value == .bulk(length: UInt32.max))
        #expect(item.int(.rows) == 240)
    }

    @Test func nonDICOMInputIsRefused() throws {
        let folder = try Fixtures.temporaryDirectory()
        for (name, bytes) in [
            ("empty", Data()), ("text", Data("hello".utf8)), ("jpeg", try Fixtures.data("photos/gray.jpg")),
        ] {
            let url = folder.appendingPathComponent(name)
            try bytes.write(to: url)
            let error = #expect(throws: DICOMCodecError.self) { try Part10.read(path: url.path) }
            #expect(error?.code == .notDICOM)
            #expect(throws: DICOMCodecError.self) { try Part10.read(data: bytes) }
        }
    }

    @Test func truncatedDICOMIsRefused() throws {
        let bytes = try Data(contentsOf: try writtenPhoto())
        let folder = try Fixtures.temporaryDirectory()
        for cut in [140, 400, bytes.count / 2] {
            let url = folder.appendingPathComponent("cut-\(cut).dcm")
            try bytes.prefix(cut).write(to: url)
            let error = #expect(throws: DICOMCodecError.self) { try Part10.read(path: url.path) }
            #expect(error?.code == .malformedDICOM)
        }
    }

    @Test func aFailedWriteLeavesNoFile() throws {
        var dataset = Dataset()
        dataset.set(.sopClassUID, .UI, UID.vlPhotographicImageStorage)
        let folder = try Fixtures.temporaryDirectory()
        let target = folder.appendingPathComponent("missing-folder/x.dcm")
        #expect(throws: DICOMCodecError.self) {
            try Part10.write(dataset, transferSyntax: UID.explicitVRLittleEndian, to: target.path)
        }
        #expect(!FileManager.default.fileExists(atPath: target.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test func dicomizerWritesNothingForAnOBJWhoseTextureFails() throws {
        let folder = try Fixtures.temporaryDirectory()
        let source = folder.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n".write(
            to: source.appendingPathComponent("m.obj"), atomically: true, encoding: .utf8)
        try "newmtl a\nmap_Kd tex.jpg\n".write(
            to: source.appendingPathComponent("m.mtl"), atomically: true, encoding: .utf8)
        try Data("not a jpeg".utf8).write(to: source.appendingPathComponent("tex.jpg"))
        let output = folder.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let outcomes = Dicomizer(context: try Fixtures.context(), outputDirectory: output).run([
            source.appendingPathComponent("m.obj"), Fixtures.url("photos/gray.jpg"),
        ])
        #expect(outcomes[0].error != nil && outcomes[0].written.isEmpty)
        #expect(outcomes[1].error == nil && outcomes[1].written.count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: output.path).count == 1)
    }
}
