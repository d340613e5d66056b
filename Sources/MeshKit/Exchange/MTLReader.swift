import Foundation

/// A material of an MTL file: its diffuse colour and diffuse texture.
public struct Material: Sendable, Equatable {
    public var name: String
    /// `Kd`, 0…1 per channel.
    public var diffuse: SIMD3<Double>?
    /// `map_Kd`: the texture file exactly as written (options removed).
    public var diffuseMap: String?

    public init(name: String, diffuse: SIMD3<Double>? = nil, diffuseMap: String? = nil) {
        self.name = name
        self.diffuse = diffuse
        self.diffuseMap = diffuseMap
    }
}

/// Reads and writes Wavefront MTL: `newmtl`, `Kd`, `map_Kd` (other statements are kept out).
public enum MTLReader {
    public static func read(_ data: Data) throws(MeshError) -> [Material] {
        guard data.count <= 16 << 20 else { throw MeshError(.limitExceeded, "MTL file is larger than 16 MiB") }
        guard let text = String(data: data, encoding: .utf8) ?? String(data: data, encoding: .isoLatin1) else {
            throw MeshError(.malformed, "MTL is not text")
        }
        var materials: [Material] = []
        var number = 0
        for raw in text.split(
            omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
        {
            number += 1
            var line = raw.trimmingCharacters(in: .whitespaces)
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]).trimmingCharacters(in: .whitespaces) }
            guard !line.isEmpty else { continue }
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            switch parts[0] {
            case "newmtl":
                guard parts.count >= 2 else { throw MeshError(.malformed, "MTL line \(number): newmtl needs a name") }
                guard materials.count < 4096 else { throw MeshError(.limitExceeded, "MTL has too many materials") }
                materials.append(Material(name: parts.dropFirst().joined(separator: " ")))
            case "Kd":
                guard !materials.isEmpty else { throw MeshError(.malformed, "MTL line \(number): Kd before newmtl") }
                let values = parts.dropFirst().compactMap(Double.init)
                guard values.count >= 3, values.allSatisfy({ $0.isFinite }) else {
                    throw MeshError(.malformed, "MTL line \(number): Kd needs three numbers")
                }
                materials[materials.count - 1].diffuse = SIMD3(values[0], values[1], values[2])
            case "map_Kd":
                guard !materials.isEmpty else {
                    throw MeshError(.malformed, "MTL line \(number): map_Kd before newmtl")
                }
                materials[materials.count - 1].diffuseMap = textureName(Array(parts.dropFirst()))
            default:
                continue
            }
        }
        return materials
    }

    /// The file name of a texture statement (`map_Kd`, `bump`, ...), after its options (`-s 1 1 1`, `-clamp on`).
    public static func textureName(_ tokens: [String]) -> String? {
        let arity: [String: Int] = [
            "-blendu": 1, "-blendv": 1, "-bm": 1, "-boost": 1, "-cc": 1, "-clamp": 1, "-imfchan": 1, "-mm": 2,
            "-o": 3, "-s": 3, "-t": 3, "-texres": 1, "-type": 1,
        ]
        var rest = tokens[...]
        while let first = rest.first, let count = arity[first] {
            rest = rest.dropFirst()
            var taken = 0
            while taken < count, let next = rest.first, count <= 1 || Double(next) != nil {
                rest = rest.dropFirst()
                taken += 1
            }
        }
        let name = rest.joined(separator: " ")
        return name.isEmpty ? nil : name
    }

    public static func write(_ materials: [Material]) -> Data {
        var text = "# Facet MeshKit\n"
        for material in materials {
            text += "newmtl \(material.name)\n"
            if let kd = material.diffuse { text += "Kd \(kd.x) \(kd.y) \(kd.z)\n" }
            if let map = material.diffuseMap { text += "map_Kd \(map)\n" }
        }
        return Data(text.utf8)
    }
}
