import Foundation

/// Reads a mesh file of any supported format, deciding the format by content where it can (binary STL by length,
/// `ply` magic) and by extension otherwise, then converts to millimetres.
public enum MeshReader {
    public static func format(of data: Data, pathExtension: String) -> MeshFormat? {
        if data.starts(with: Array("ply".utf8)) { return .ply }
        if STLReader.isBinary(data) { return .stl }
        switch pathExtension.lowercased() {
        case "obj": return .obj
        case "ply": return .ply
        case "stl": return .stl
        default: return nil
        }
    }

    public static func read(
        _ data: Data, format: MeshFormat, unit: LengthUnit = .mm, limits: MeshLimits = .default
    ) throws(MeshError) -> Mesh {
        var mesh: Mesh
        switch format {
        case .obj: mesh = try OBJReader.read(data, limits: limits)
        case .ply: mesh = try PLYReader.read(data, limits: limits)
        case .stl: mesh = try STLReader.read(data, limits: limits)
        }
        mesh.scale(by: unit.millimetres)
        return mesh
    }

    public static func read(contentsOf url: URL, unit: LengthUnit = .mm, limits: MeshLimits = .default)
        throws(MeshError)
        -> (Mesh, MeshFormat)
    {
        let data: Data
        do {
            // The size is checked before anything is read.
            let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            guard size <= limits.maximumFileBytes else {
                throw MeshError(.limitExceeded, "mesh file is larger than \(limits.maximumFileBytes >> 20) MiB")
            }
            data = try Data(contentsOf: url)
        } catch let error as MeshError {
            throw error
        } catch {
            throw MeshError(.malformed, "mesh file cannot be read")
        }
        guard let format = format(of: data, pathExtension: url.pathExtension) else {
            throw MeshError(.unsupported, "unrecognised mesh format (expected OBJ, PLY or STL)")
        }
        return (try read(data, format: format, unit: unit, limits: limits), format)
    }
}
