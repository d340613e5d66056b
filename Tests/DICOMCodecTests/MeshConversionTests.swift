import DICOMCore
import Foundation
import MeshKit
import Testing

@testable import DICOMCodec

@Suite struct MeshConversionTests {
    @Test func aRepeatedMtllibMakesOneMTLObjectAndStrayFilesAreRefused() throws {
        let obj = try Fixtures.data("meshes/face/face.obj")
        let mtl = try Fixtures.data("meshes/face/face.mtl")
        let texture = try Fixtures.data("meshes/face/face_texture.jpg")
        let repeated = Data("mtllib face.mtl\nmtllib face.mtl\nmtllib face.mtl\n".utf8) + obj
        let instances = try MeshConverter.convertOBJ(
            repeated, files: ["face.mtl": mtl, "face_texture.jpg": texture], context: try Fixtures.context(),
            seriesNumber: 2, textureSeriesNumber: 3)
        #expect(instances.filter { $0.sopClassUID == UID.encapsulatedMTLStorage }.count == 1)
        // A file the mesh never names would be stored unvalidated: refused.
        #expect(throws: DICOMCodecError.self) {
            try MeshConverter.convertOBJ(
                obj, files: ["face.mtl": mtl, "face_texture.jpg": texture, "notes.html": Data("<script>".utf8)],
                context: try Fixtures.context(), seriesNumber: 2, textureSeriesNumber: 3)
        }
    }

    @Test func binarySTLIsEncapsulatedByteForByte() throws {
        let source = try Fixtures.data("meshes/cube-binary.stl")
        #expect(source.prefix(5) == Data("solid".utf8))  // binary despite the word: decided by length
        let instances = try MeshConverter.convertSTL(source, context: try Fixtures.context(), seriesNumber: 2)
        #expect(instances.count == 1)
        let (url, file) = try Fixtures.roundTrip(instances[0])
        #expect(try Part10.readValue(path: url.path, tag: .encapsulatedDocument).prefix(source.count) == source)
        let dataset = file.dataset
        #expect(dataset.string(.sopClassUID) == UID.encapsulatedSTLStorage)
        #expect(dataset.string(.modality) == "M3D")
        #expect(dataset.string(.mimeTypeOfEncapsulatedDocument) == "model/stl")
        #expect(dataset.int(.encapsulatedDocumentLength) == source.count)
        #expect(dataset.items(.measurementUnitsCodeSequence)?.first?.string(.codeValue) == "mm")
        #expect(dataset.items(.measurementUnitsCodeSequence)?.first?.string(.codingSchemeDesignator) == "UCUM")
        #expect(dataset.string(.frameOfReferenceUID) != nil)
        for tag in [Tag.manufacturer, .manufacturerModelName, .deviceSerialNumber, .softwareVersions] {
            #expect(dataset.string(tag)?.isEmpty == false)
        }
    }

    @Test func asciiSTLIsConvertedToBinaryByMeshKit() throws {
        let ascii = try Fixtures.data("meshes/cube-ascii.stl")
        let instances = try MeshConverter.convertSTL(ascii, context: try Fixtures.context(), seriesNumber: 2)
        let (url, file) = try Fixtures.roundTrip(instances[0])
        let document = try Part10.readValue(path: url.path, tag: .encapsulatedDocument)
        let length = try #require(file.dataset.int(.encapsulatedDocumentLength))
        let stored = document.prefix(length)
        #expect(STLReader.isBinary(stored))
        let original = try STLReader.read(ascii)
        let converted = try STLReader.read(stored)
        #expect(converted.triangles == original.triangles)
        #expect(converted.positions == original.positions)
        #expect(file.dataset.string(.documentTitle)?.contains("converted from ASCII") == true)
    }

    @Test func brokenMeshesAreRefusedWithMeshKitsReason() throws {
        let context = try Fixtures.context()
        let counted = #expect(throws: DICOMCodecError.self) {
            try MeshConverter.convertSTL(try Fixtures.data("bad/count-mismatch.stl"), context: context, seriesNumber: 2)
        }
        #expect(counted?.code == .invalidMesh)
        #expect(counted?.message.contains("claims 4000000000 triangles") == true)
        let folder = try Fixtures.temporaryDirectory()
        let obj = folder.appendingPathComponent("bad.obj")
        try "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 5\n".write(to: obj, atomically: true, encoding: .utf8)
        let index = #expect(throws: DICOMCodecError.self) {
            try MeshConverter.convertOBJ(at: obj, context: context, seriesNumber: 2, textureSeriesNumber: 3)
        }
        #expect(index?.message.contains("out of range") == true)
    }

    @Test func plyIsConvertedToAnEncapsulatedOBJWithItsColours() throws {
        var ply = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        ply += "property uchar red\nproperty uchar green\nproperty uchar blue\nelement face 1\n"
        ply +=
            "property list uchar int vertex_indices\nend_header\n0 0 0 255 0 0\n10 0 0 0 255 0\n0 10 0 0 0 255\n3 0 1 2\n"
        let instances = try MeshConverter.convertPLY(Data(ply.utf8), context: try Fixtures.context(), seriesNumber: 2)
        let (url, file) = try Fixtures.roundTrip(instances[0])
        #expect(file.dataset.string(.sopClassUID) == UID.encapsulatedOBJStorage)
        let length = try #require(file.dataset.int(.encapsulatedDocumentLength))
        let obj = try OBJReader.read(try Part10.readValue(path: url.path, tag: .encapsulatedDocument).prefix(length))
        #expect(obj.colors == [SIMD3(255, 0, 0), SIMD3(0, 255, 0), SIMD3(0, 0, 255)])
        #expect(obj.areaMM2 == 50)
    }

    @Test func objBringsItsMTLAndTextureLinkedByRelativeURI() throws {
        let instances = try MeshConverter.convertOBJ(
            at: Fixtures.url("meshes/face/face.obj"), context: try Fixtures.context(), seriesNumber: 2,
            textureSeriesNumber: 3)
        let bySOPClass = Dictionary(grouping: instances, by: \.sopClassUID)
        let obj = try #require(bySOPClass[UID.encapsulatedOBJStorage]?.first)
        let mtl = try #require(bySOPClass[UID.encapsulatedMTLStorage]?.first)
        let texture = try #require(bySOPClass[UID.vlPhotographicImageStorage]?.first)
        #expect(instances.count == 3)

        #expect(obj.dataset.string(.modelGroupUID) != nil)
        #expect(obj.dataset.string(.modelGroupUID) == mtl.dataset.string(.modelGroupUID))
        #expect(obj.dataset.string(.seriesInstanceUID) == mtl.dataset.string(.seriesInstanceUID))
        #expect(texture.dataset.string(.studyInstanceUID) == obj.dataset.string(.studyInstanceUID))
        #expect(obj.dataset.string(.mimeTypeOfEncapsulatedDocument) == "model/obj")
        #expect(mtl.dataset.string(.mimeTypeOfEncapsulatedDocument) == "model/mtl")

        let objReference = try #require(obj.dataset.items(.referencedInstanceSequence)?.first)
        #expect(objReference.string(.referencedSOPInstanceUID) == mtl.sopInstanceUID)
        #expect(objReference.string(Tag(0x0068, 0x7005)) == "face.mtl")
        let mtlReference = try #require(mtl.dataset.items(.referencedInstanceSequence)?.first)
        #expect(mtlReference.string(.referencedSOPInstanceUID) == texture.sopInstanceUID)
        #expect(mtlReference.string(Tag(0x0068, 0x7005)) == "face_texture.jpg")

        let (url, _) = try Fixtures.roundTrip(obj)
        let original = try Fixtures.data("meshes/face/face.obj")
        #expect(try Part10.readValue(path: url.path, tag: .encapsulatedDocument).prefix(original.count) == original)
    }

    @Test(arguments: [
        ("bad/missing-mtl.obj", DICOMCodecError.Code.missingFile),
        ("bad/escape/relative.obj", .unsafePath),
        ("bad/escape/absolute.obj", .unsafePath),
    ])
    func objReferencesOutsideItsFolderOrMissingAreRefused(_ name: String, _ code: DICOMCodecError.Code) throws {
        let context = try Fixtures.context()
        let error = #expect(throws: DICOMCodecError.self) {
            try MeshConverter.convertOBJ(
                at: Fixtures.url(name), context: context, seriesNumber: 2, textureSeriesNumber: 3)
        }
        #expect(error?.code == code)
    }

    @Test func aSymlinkLeadingOutOfTheFolderIsRefused() throws {
        let folder = try Fixtures.temporaryDirectory()
        try "mtllib link.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n".write(
            to: folder.appendingPathComponent("m.obj"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(
            atPath: folder.appendingPathComponent("link.mtl").path, withDestinationPath: "/etc/hostname")
        let context = try Fixtures.context()
        let error = #expect(throws: DICOMCodecError.self) {
            try MeshConverter.convertOBJ(
                at: folder.appendingPathComponent("m.obj"), context: context, seriesNumber: 2, textureSeriesNumber: 3)
        }
        #expect(error?.code == .unsafePath)
    }

    @Test func textureStatementOptionsAreSkipped() {
        let references = OBJReferences.textures(
            "newmtl a\nmap_Kd -s 1 1 1 -o 0.5 0.5 skin tex.jpg\nmap_Ka -clamp on a.png\nmap_Kd skin tex.jpg\n")
        #expect(references.map(\.uri) == ["skin tex.jpg", "a.png"])
        let libraries = OBJReferences.materialLibraries("mtllib a.mtl b.mtl\r\nmtllib \\\n c.mtl\n") { _ in false }
        #expect(libraries.map(\.uri) == ["a.mtl", "b.mtl", "c.mtl"])
    }
}
