import ArgumentParser
import DICOMCore
import Foundation
import MeshKit

/// `facet mesh`: inspect 3D surface files.
struct MeshCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh", abstract: "Inspect 3D surface files (OBJ, PLY, STL).", subcommands: [MeshInfoCommand.self])
}

/// `facet mesh info FILE`.
struct MeshInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Validate and measure a mesh: area, enclosed volume, topology.",
        discussion: """
            JSON keys: format, vertices, triangles, area_mm2, volume_ml (null unless the mesh is closed), \
            watertight, components, boundary_loops, degenerate_faces, bbox_mm, plus duplicate_faces, \
            non_manifold_edges and flipped_faces.
            """)

    @Argument(help: "An OBJ, PLY or STL file.")
    var file: String

    @Option(help: "Units the file is written in: mm, cm, m or in.")
    var units: String = "mm"

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let unit = try parseUnit(units)
        let (mesh, format) = try loadMesh(file, unit: unit)
        let info = MeshInfo(mesh: mesh, format: format)
        if json {
            print(JSONText.object(infoFields(info)))
        } else {
            print("format            \(info.format.rawValue)")
            print("vertices          \(info.vertices)")
            print("triangles         \(info.triangles)")
            print("area              \(format3(info.areaMM2)) mm²")
            print("volume            \(info.volumeML.map { format3($0) + " mL" } ?? "n/a (not closed)")")
            print("watertight        \(info.watertight)")
            print("components        \(info.components)")
            print("boundary loops    \(info.boundaryLoops)")
            print("degenerate faces  \(info.degenerateFaces)")
            print("duplicate faces   \(info.duplicateFaces)")
            print("flipped faces     \(info.flippedFaces)")
            let box = info.boundingBox
            print("bbox              \(format3(box.size.x)) × \(format3(box.size.y)) × \(format3(box.size.z)) mm")
        }
    }

    func infoFields(_ info: MeshInfo) -> [(String, String)] {
        let box = info.boundingBox
        return [
            ("format", JSONText.string(info.format.rawValue)),
            ("vertices", String(info.vertices)),
            ("triangles", String(info.triangles)),
            ("area_mm2", JSONText.number(info.areaMM2)),
            ("volume_ml", info.volumeML.map(JSONText.number) ?? "null"),
            ("watertight", String(info.watertight)),
            ("components", String(info.components)),
            ("boundary_loops", String(info.boundaryLoops)),
            ("degenerate_faces", String(info.degenerateFaces)),
            (
                "bbox_mm",
                "[[\(JSONText.number(box.minimum.x)),\(JSONText.number(box.minimum.y)),\(JSONText.number(box.minimum.z))],"
                    + "[\(JSONText.number(box.maximum.x)),\(JSONText.number(box.maximum.y)),\(JSONText.number(box.maximum.z))]]"
            ),
            ("duplicate_faces", String(info.duplicateFaces)),
            ("non_manifold_edges", String(info.nonManifoldEdges)),
            ("flipped_faces", String(info.flippedFaces)),
        ]
    }
}

func parseUnit(_ text: String) throws -> LengthUnit {
    guard let unit = LengthUnit(rawValue: text.lowercased()) else {
        throw fail("unknown unit; expected mm, cm, m or in", code: 2)
    }
    return unit
}

func loadMesh(_ path: String, unit: LengthUnit) throws -> (Mesh, MeshFormat) {
    do {
        return try MeshReader.read(contentsOf: URL(fileURLWithPath: path), unit: unit)
    } catch {
        throw fail(error.message)
    }
}

func format3(_ value: Double) -> String { String(format: "%.3f", value) }

/// Small JSON writer with stable key order.
enum JSONText {
    static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    static func number(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }

    static func string(_ value: String) -> String { DICOMJSON.quote(value) }
}
