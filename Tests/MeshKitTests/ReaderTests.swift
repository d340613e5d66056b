import Foundation
import Testing

@testable import MeshKit

@Suite struct ReaderTests {
    static let shapes = ["sphere-2", "sphere-4", "torus-far", "box-quads"]
    static let encodings = [
        "obj", "obj_negative_crlf", "obj_continuation", "obj_vn", "ply_ascii", "ply_le", "ply_be", "stl_binary",
        "stl_ascii", "stl_ascii_upper_tabs_crlf",
    ]

    @Test(arguments: shapes)
    func everyFormatGivesTheExactAreaAndVolume(_ shape: String) throws {
        let closed = try #require(try Generated.manifest()["closed"] as? [String: Any])
        let entry = try #require(closed[shape] as? [String: Any])
        let truth = try #require(entry["truth"] as? [String: Double])
        let files = try #require(entry["files"] as? [String: String])
        for encoding in Self.encodings {
            let file = try #require(files[encoding])
            let mesh = try Generated.read("closed/" + file)
            let info = MeshInfo(mesh: mesh, format: .obj)
            #expect(info.triangles == Int(truth["triangles"] ?? 0), "\(file)")
            #expect(info.vertices == Int(truth["vertices"] ?? 0), "\(file) welded/indexed vertex count")
            #expect(relativeError(info.areaMM2, truth["area_mm2"] ?? 0) < 1e-9, "\(file) area \(info.areaMM2)")
            let volume = try #require(info.volumeML, "\(file) should be closed")
            #expect(relativeError(volume * 1000, truth["volume_mm3"] ?? 0) < 1e-9, "\(file) volume \(volume)")
            #expect(info.watertight && info.components == 1 && info.boundaryLoops == 0)
        }
    }

    @Test(arguments: [
        ("broken/nan.obj", MeshError.Code.nonFinite), ("broken/inf.ply", .nonFinite),
        ("broken/index-out-of-range.obj", .indexOutOfRange), ("broken/index-zero.obj", .indexOutOfRange),
        ("broken/lying-header.ply", .truncated), ("broken/truncated.ply", .truncated),
        ("broken/count-mismatch.stl", .truncated),
    ])
    func brokenFilesAreRefusedWithTheirReason(_ file: String, _ code: MeshError.Code) throws {
        _ = try Generated.manifest()
        let error = #expect(throws: MeshError.self) { try Generated.read(file) }
        #expect(error?.code == code, "\(error?.message ?? "")")
    }

    @Test func objAcceptsAllFourIndexFormsAndNegativeIndices() throws {
        let source = """
            # comment
            v 0 0 0
            v 1 0 0
            v 1 1 0
            v 0 1 0
            vt 0 0
            vt 1 0
            vt 1 1
            vn 0 0 1
            f 1 2 3
            f 1/1 3/3 4/2
            f -4//1 -3//1 -2//1
            f 1/1/1 -2/-1/-1 4/2/1
            """
        let mesh = try OBJReader.read(text(source))
        #expect(mesh.triangles == [SIMD3(0, 1, 2), SIMD3(0, 2, 3), SIMD3(0, 1, 2), SIMD3(0, 2, 3)])
        #expect(mesh.texcoords?.count == 3)
    }

    @Test func objTriangulatesPolygonsAndReadsVertexColours() throws {
        let mesh = try OBJReader.read(
            text("v 0 0 0 1 0 0\r\nv 1 0 0 0 1 0\r\nv 1 1 0 0 0 1\r\nv 0 1 0 0.5 0.5 0.5\r\nf 1 2 3 4\r\n"))
        #expect(mesh.triangleCount == 2)
        #expect(mesh.areaMM2 == 1)
        #expect(mesh.colors == [SIMD3(255, 0, 0), SIMD3(0, 255, 0), SIMD3(0, 0, 255), SIMD3(128, 128, 128)])
    }

    @Test func objIndexIsCheckedAgainstTheCountAtItsLine() {
        // Vertex 4 exists by the end of the file, but not yet on the face's line.
        let error = #expect(throws: MeshError.self) {
            try OBJReader.read(text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\nv 1 1 1\n"))
        }
        #expect(error?.code == .indexOutOfRange)
        #expect(error?.message.contains("line 4") == true)
    }

    @Test func objReadsMaterialsAndLibraries() throws {
        let mesh = try OBJReader.read(
            text("mtllib face.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nusemtl skin\nf 1 2 3\nusemtl lips\nf 2 4 3\n"))
        #expect(mesh.materialLibraries == ["face.mtl"])
        #expect(mesh.materials == ["skin", "lips"])
        #expect(mesh.triangleMaterials == [0, 1])
    }

    @Test func plyBigEndianWithUnknownElementsAndOddTypes() throws {
        var data = text(
            """
            ply
            format binary_big_endian 1.0
            element vertex 3
            property double z
            property float confidence
            property double x
            property double y
            element extra 1
            property list ushort short values
            element face 1
            property list uint8 uint32 vertex_index
            end_header

            """)
        func be<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.bigEndian) { data.append(contentsOf: $0) }
        }
        for (x, y, z) in [(0.0, 0.0, 1.0), (2.0, 0.0, 1.0), (0.0, 3.0, 1.0)] {
            be(z.bitPattern)
            be(Float(0.5).bitPattern)
            be(x.bitPattern)
            be(y.bitPattern)
        }
        be(UInt16(2))
        be(Int16(7))
        be(Int16(-7))
        data.append(3)
        be(UInt32(0))
        be(UInt32(1))
        be(UInt32(2))
        let mesh = try PLYReader.read(data)
        #expect(mesh.positions == [SIMD3(0, 0, 1), SIMD3(2, 0, 1), SIMD3(0, 3, 1)])
        #expect(mesh.areaMM2 == 3)
    }

    @Test func plyClaimingFourBillionVerticesIsRefusedBeforeAllocation() {
        let header =
            "ply\nformat binary_little_endian 1.0\nelement vertex 4000000000\nproperty float x\nproperty float y\n"
            + "property float z\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n"
        let error = #expect(throws: MeshError.self) { try PLYReader.read(text(header)) }
        #expect(error?.code == .truncated)
    }

    @Test func binarySTLIsDecidedByLengthNotByTheWordSolid() throws {
        let mesh = try Generated.read("closed/sphere-2.stl")
        #expect(mesh.triangleCount == 320)
        let data = try Data(contentsOf: Generated.root.appendingPathComponent("closed/sphere-2.stl"))
        #expect(data.prefix(5) == text("solid"))
        #expect(STLReader.isBinary(data))
    }

    @Test func unitsConvertToMillimetres() throws {
        let mm = try Generated.read("closed/box-quads.obj")
        let cm = try Generated.read("closed/box-quads.obj", unit: .cm)
        let inches = try Generated.read("closed/box-quads.obj", unit: .inch)
        #expect(abs(cm.areaMM2 - mm.areaMM2 * 100) < 1e-6)
        #expect(abs((inches.enclosedVolumeMM3() ?? 0) - (mm.enclosedVolumeMM3() ?? 0) * pow(25.4, 3)) < 1e-3)
    }

    @Test func writersRoundTrip() throws {
        let sphere = try Generated.read("closed/sphere-4.obj")
        var coloured = sphere
        coloured.colors = sphere.positions.map { SIMD3(UInt8(abs($0.x) * 2), 7, 9) }
        let ply = try PLYReader.read(MeshWriter.binaryPLY(coloured))
        #expect(ply.colors == coloured.colors)
        #expect(relativeError(ply.areaMM2, sphere.areaMM2) < 1e-6)
        let stl = try STLReader.read(MeshWriter.binarySTL(sphere))
        #expect(stl.vertexCount == sphere.vertexCount)
        #expect(relativeError(stl.enclosedVolumeMM3() ?? 0, sphere.enclosedVolumeMM3() ?? 1) < 1e-6)
        let obj = try OBJReader.read(MeshWriter.obj(coloured))
        #expect(obj.positions == sphere.positions)
        #expect(obj.triangles == sphere.triangles)
        // The change map's compact OBJ: every colour exactly, positions to 0.1 µm.
        var every = sphere
        every.colors = sphere.positions.indices.map { SIMD3(UInt8($0 % 256), UInt8(255 - $0 % 256), 0) }
        every.positions[0] = SIMD3(-0.00004, 123456.78905, -7.5)
        let compact = try OBJReader.read(MeshWriter.coloredOBJ(every))
        #expect(compact.colors == every.colors)
        #expect(compact.triangles == sphere.triangles)
        for (read, written) in zip(compact.positions, every.positions) {
            #expect(abs(read.x - written.x) <= 0.00005 && abs(read.y - written.y) <= 0.00005)
            #expect(abs(read.z - written.z) <= 0.00005)
        }
        #expect(
            String(decoding: MeshWriter.coloredOBJ(every).prefix(80), as: UTF8.self).contains(
                "v 0.0000 123456.7891 -7.5000"))
    }

    @Test func emptyAndGarbageInputsAreRefused() {
        for data in [Data(), text("hello"), Data(repeating: 0xFF, count: 200)] {
            #expect(throws: MeshError.self) { try OBJReader.read(data) }
            #expect(throws: MeshError.self) { try PLYReader.read(data) }
            #expect(throws: MeshError.self) { try STLReader.read(data) }
        }
    }
}

@Suite struct MTLTests {
    @Test func materialsKeepColourAndTextureWithoutOptions() throws {
        let source =
            "# skin\r\nnewmtl skin\r\nKa 1 1 1\r\nKd 0.9 0.75 0.65\r\nmap_Kd -s 1 1 1 -clamp on skin tex.jpg\r\nnewmtl lips\nKd 1 0 0\n"
        let materials = try MTLReader.read(text(source))
        #expect(materials.map(\.name) == ["skin", "lips"])
        #expect(materials[0].diffuse == SIMD3(0.9, 0.75, 0.65))
        #expect(materials[0].diffuseMap == "skin tex.jpg")
        #expect(materials[1].diffuseMap == nil)
        #expect(try MTLReader.read(MTLReader.write(materials)) == materials)
        #expect(throws: MeshError.self) { try MTLReader.read(text("Kd 1 1 1\n")) }
    }
}
