import Foundation

/// Writes binary STL, OBJ (with texture coordinates and vertex colours), and binary little-endian PLY with vertex
/// colours (used for change maps).
public enum MeshWriter {
    public static func binarySTL(_ mesh: Mesh, header: String = "Facet MeshKit") -> Data {
        var out = Data(count: 84 + 50 * mesh.triangleCount)
        out.withUnsafeMutableBytes { raw in
            let title = Array(header.utf8.prefix(80))
            for (index, byte) in title.enumerated() { raw[index] = byte }
            raw.storeBytes(of: UInt32(mesh.triangleCount).littleEndian, toByteOffset: 80, as: UInt32.self)
            for t in 0..<mesh.triangleCount {
                let (a, b, c) = mesh.corners(t)
                let n = normalized(cross(b - a, c - a))
                let values = [n, a, b, c]
                var offset = 84 + 50 * t
                for vector in values {
                    for k in 0..<3 {
                        raw.storeBytes(
                            of: Float(vector[k]).bitPattern.littleEndian, toByteOffset: offset, as: UInt32.self)
                        offset += 4
                    }
                }
                raw.storeBytes(of: UInt16(0), toByteOffset: offset, as: UInt16.self)
            }
        }
        return out
    }

    /// A change map's OBJ, written fast and compact: positions in fixed point with `decimals` digits (4: 0.1 µm,
    /// far below any capture's resolution), vertex colours with three (which still give back each 8-bit value
    /// exactly: k/255 are more than 0.003 apart), triangles without texture or materials.
    public static func coloredOBJ(_ mesh: Mesh, decimals: Int = 4) -> Data {
        let decimals = min(max(decimals, 0), 6)
        var out = [UInt8]()
        out.reserveCapacity(mesh.vertexCount * 48 + mesh.triangleCount * 24 + 32)
        out.append(contentsOf: Array("# Facet MeshKit\n".utf8))
        let space = UInt8(ascii: " ")
        let newline = UInt8(ascii: "\n")
        for (index, p) in mesh.positions.enumerated() {
            out.append(UInt8(ascii: "v"))
            for k in 0..<3 {
                out.append(space)
                appendFixed(p[k], decimals: decimals, to: &out)
            }
            if let colors = mesh.colors, index < colors.count {
                let c = colors[index]
                for k in 0..<3 {
                    out.append(space)
                    appendFixed(Double(c[k]) / 255, decimals: 3, to: &out)
                }
            }
            out.append(newline)
        }
        for t in mesh.triangles {
            out.append(UInt8(ascii: "f"))
            for k in 0..<3 {
                out.append(space)
                appendInteger(UInt64(t[k]) + 1, to: &out)
            }
            out.append(newline)
        }
        return Data(out)
    }

    /// `value` in fixed point (a finite value only; anything else, or beyond ±10¹², as 0).
    static func appendFixed(_ value: Double, decimals: Int, to out: inout [UInt8]) {
        var scale: UInt64 = 1
        for _ in 0..<decimals { scale *= 10 }
        guard value.isFinite, abs(value) < 1e12 else {
            out.append(UInt8(ascii: "0"))
            return
        }
        let scaled = UInt64((abs(value) * Double(scale)).rounded())
        if value < 0 && scaled != 0 { out.append(UInt8(ascii: "-")) }
        appendInteger(scaled / scale, to: &out)
        guard decimals > 0 else { return }
        out.append(UInt8(ascii: "."))
        var divisor = scale / 10
        let fraction = scaled % scale
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8((fraction / divisor) % 10))
            divisor /= 10
        }
    }

    static func appendInteger(_ value: UInt64, to out: inout [UInt8]) {
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            for position in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[position]) }
        }
    }

    public static func obj(_ mesh: Mesh, materialLibrary: String? = nil) -> Data {
        var text = "# Facet MeshKit\n"
        if let materialLibrary { text += "mtllib \(materialLibrary)\n" }
        text.reserveCapacity(mesh.vertexCount * 40 + mesh.triangleCount * 30)
        for (index, p) in mesh.positions.enumerated() {
            text += "v \(p.x) \(p.y) \(p.z)"
            if let colors = mesh.colors {
                let c = colors[index]
                text += " \(Double(c.x) / 255) \(Double(c.y) / 255) \(Double(c.z) / 255)"
            }
            text += "\n"
        }
        let uv = mesh.texcoords != nil && mesh.triangleTexcoords != nil
        if let texcoords = mesh.texcoords, uv { for t in texcoords { text += "vt \(t.x) \(t.y)\n" } }
        var material: UInt16?
        for (index, t) in mesh.triangles.enumerated() {
            if let materials = mesh.triangleMaterials, materials[index] != material,
                Int(materials[index]) < mesh.materials.count
            {
                material = materials[index]
                text += "usemtl \(mesh.materials[Int(materials[index])])\n"
            }
            if uv, let corners = mesh.triangleTexcoords?[index] {
                text += "f \(t.x + 1)/\(corners.x + 1) \(t.y + 1)/\(corners.y + 1) \(t.z + 1)/\(corners.z + 1)\n"
            } else {
                text += "f \(t.x + 1) \(t.y + 1) \(t.z + 1)\n"
            }
        }
        return Data(text.utf8)
    }

    public static func binaryPLY(_ mesh: Mesh, colors: [SIMD3<UInt8>]? = nil) -> Data {
        let vertexColors = colors ?? mesh.colors
        var header = "ply\nformat binary_little_endian 1.0\ncomment Facet MeshKit\n"
        header += "element vertex \(mesh.vertexCount)\nproperty float x\nproperty float y\nproperty float z\n"
        if vertexColors != nil { header += "property uchar red\nproperty uchar green\nproperty uchar blue\n" }
        header += "element face \(mesh.triangleCount)\nproperty list uchar int vertex_indices\nend_header\n"
        let vertexSize = 12 + (vertexColors != nil ? 3 : 0)
        var out = Data(header.utf8)
        let start = out.count
        out.count += vertexSize * mesh.vertexCount + 13 * mesh.triangleCount
        out.withUnsafeMutableBytes { raw in
            var offset = start
            for (index, p) in mesh.positions.enumerated() {
                for k in 0..<3 {
                    raw.storeBytes(of: Float(p[k]).bitPattern.littleEndian, toByteOffset: offset, as: UInt32.self)
                    offset += 4
                }
                if let vertexColors {
                    let c = vertexColors[index]
                    raw[offset] = c.x
                    raw[offset + 1] = c.y
                    raw[offset + 2] = c.z
                    offset += 3
                }
            }
            for t in mesh.triangles {
                raw[offset] = 3
                offset += 1
                for k in 0..<3 {
                    raw.storeBytes(of: Int32(t[k]).littleEndian, toByteOffset: offset, as: Int32.self)
                    offset += 4
                }
            }
        }
        return out
    }
}
