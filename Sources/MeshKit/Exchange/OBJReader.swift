import Foundation

/// Reads Wavefront OBJ: `v` (with optional `r g b`), `vt`, `vn`, `f` in all four index forms with negative
/// (relative) indices, polygons fan-triangulated, `usemtl`, `mtllib`, `o`/`g`, comments, `\` continuations and
/// any line ending. Indices are checked against the counts at their line; NaN and infinite coordinates are
/// refused with the line number.
public enum OBJReader {
    public static func read(_ data: Data, limits: MeshLimits = .default) throws(MeshError) -> Mesh {
        guard !data.isEmpty else { throw MeshError(.empty, "OBJ file is empty") }
        guard data.count <= limits.maximumFileBytes else {
            throw MeshError(.limitExceeded, "OBJ file is larger than \(limits.maximumFileBytes >> 20) MiB")
        }
        let result: Result<Mesh, MeshError> = data.withUnsafeBytes { raw in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else {
                return .failure(MeshError(.empty, "OBJ file is empty"))
            }
            var parser = Parser(scanner: TextScanner(base: base, count: raw.count), limits: limits)
            do throws(MeshError) {
                return .success(try parser.parse())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private struct Parser {
        var scanner: TextScanner
        let limits: MeshLimits
        var positions: [SIMD3<Double>] = []
        var colors: [SIMD3<UInt8>] = []
        var texcoords: [SIMD2<Float>] = []
        var normalCount = 0
        var triangles: [SIMD3<UInt32>] = []
        var cornerTexcoords: [SIMD3<UInt32>] = []
        var triangleMaterials: [UInt16] = []
        var materials: [String] = []
        var materialIndex: [String: UInt16] = [:]
        var currentMaterial: UInt16 = 0
        var usesMaterials = false
        var anyTexcoordFace = false
        var libraries: [String] = []
        // Scratch for one polygon.
        var polygon: [Int] = []
        var polygonTexcoords: [Int] = []

        init(scanner: TextScanner, limits: MeshLimits) {
            self.scanner = scanner
            self.limits = limits
            let estimate = min(scanner.end / 40, 20_000_000)
            positions.reserveCapacity(estimate)
            triangles.reserveCapacity(estimate * 2)
        }

        func fail(_ code: MeshError.Code, _ what: String) -> MeshError {
            MeshError(code, "OBJ line \(scanner.line): \(what)")
        }

        mutating func parse() throws(MeshError) -> Mesh {
            while !scanner.atEnd {
                scanner.skipSpaces()
                if scanner.atLineEnd {
                    scanner.nextLine()
                    continue
                }
                let keyword = scanner.token()
                if scanner.matches(keyword, "v") {
                    try vertex()
                } else if scanner.matches(keyword, "f") {
                    try face()
                } else if scanner.matches(keyword, "vt") {
                    guard let u = scanner.double(), u.isFinite else { throw fail(.malformed, "vt needs a number") }
                    let v = scanner.double() ?? 0
                    texcoords.append(SIMD2(Float(u), Float(v.isFinite ? v : 0)))
                } else if scanner.matches(keyword, "vn") {
                    normalCount += 1
                } else if scanner.matches(keyword, "usemtl") {
                    let name = scanner.restOfLine()
                    usesMaterials = true
                    if let index = materialIndex[name] {
                        currentMaterial = index
                    } else {
                        guard materials.count < Int(UInt16.max) else {
                            throw fail(.limitExceeded, "too many materials")
                        }
                        currentMaterial = UInt16(materials.count)
                        materialIndex[name] = currentMaterial
                        materials.append(name)
                    }
                } else if scanner.matches(keyword, "mtllib") {
                    let rest = scanner.restOfLine()
                    if !rest.isEmpty && libraries.count < 64 { libraries.append(rest) }
                }
                scanner.nextLine()
            }
            guard !positions.isEmpty else { throw MeshError(.empty, "OBJ has no vertices") }
            guard !triangles.isEmpty else { throw MeshError(.empty, "OBJ has no faces") }
            let hasColors = colors.count == positions.count && !colors.isEmpty
            return Mesh(
                positions: positions, triangles: triangles, colors: hasColors ? colors : nil,
                texcoords: anyTexcoordFace ? texcoords : nil,
                triangleTexcoords: anyTexcoordFace ? cornerTexcoords : nil,
                materials: materials, triangleMaterials: usesMaterials ? triangleMaterials : nil,
                materialLibraries: libraries)
        }

        mutating func vertex() throws(MeshError) {
            guard let x = scanner.double(), let y = scanner.double(), let z = scanner.double() else {
                throw fail(.malformed, "a vertex needs three numbers")
            }
            guard x.isFinite && y.isFinite && z.isFinite else {
                throw fail(.nonFinite, "vertex coordinate is NaN or infinite")
            }
            guard positions.count < limits.maximumVertices else {
                throw fail(.limitExceeded, "more than \(limits.maximumVertices) vertices")
            }
            positions.append(SIMD3(x, y, z))
            if let r = scanner.double(), let g = scanner.double(), let b = scanner.double() {
                // Colours are 0…1 by convention; some exporters write 0…255.
                let scale = max(r, g, b) > 1.0 ? 1.0 : 255.0
                func channel(_ value: Double) -> UInt8 { UInt8(max(0, min(255, (value * scale).rounded()))) }
                if colors.count == positions.count - 1 { colors.append(SIMD3(channel(r), channel(g), channel(b))) }
            }
        }

        mutating func face() throws(MeshError) {
            polygon.removeAll(keepingCapacity: true)
            polygonTexcoords.removeAll(keepingCapacity: true)
            var withTexcoords = true
            while true {
                scanner.skipSpaces()
                if scanner.atLineEnd { break }
                guard let v = scanner.integer() else { throw fail(.malformed, "face vertex is not an index") }
                polygon.append(try resolve(v, count: positions.count, what: "vertex"))
                var vt: Int?
                if !scanner.atEnd && scanner.base[scanner.position] == 0x2F {
                    scanner.position += 1
                    if !scanner.atEnd && scanner.base[scanner.position] != 0x2F {
                        guard let t = scanner.integer() else { throw fail(.malformed, "texture index is not a number") }
                        vt = try resolve(t, count: texcoords.count, what: "texture coordinate")
                    }
                    if !scanner.atEnd && scanner.base[scanner.position] == 0x2F {
                        scanner.position += 1
                        guard let n = scanner.integer() else { throw fail(.malformed, "normal index is not a number") }
                        _ = try resolve(n, count: normalCount, what: "normal")
                    }
                }
                if let vt { polygonTexcoords.append(vt) } else { withTexcoords = false }
                guard
                    scanner.atEnd || TextScanner.isSpace(scanner.base[scanner.position]) || scanner.atLineEnd
                        || scanner.base[scanner.position] == 0x5C
                else { throw fail(.malformed, "unexpected character in a face") }
            }
            guard polygon.count >= 3 else { throw fail(.malformed, "a face needs at least three vertices") }
            guard triangles.count + polygon.count - 2 <= limits.maximumTriangles else {
                throw fail(.limitExceeded, "more than \(limits.maximumTriangles) triangles")
            }
            if withTexcoords && !polygonTexcoords.isEmpty {
                if !anyTexcoordFace {
                    anyTexcoordFace = true
                    cornerTexcoords = Array(repeating: SIMD3(0, 0, 0), count: triangles.count)
                }
            }
            for index in 1..<(polygon.count - 1) {
                triangles.append(SIMD3(UInt32(polygon[0]), UInt32(polygon[index]), UInt32(polygon[index + 1])))
                if anyTexcoordFace {
                    if withTexcoords && polygonTexcoords.count == polygon.count {
                        cornerTexcoords.append(
                            SIMD3(
                                UInt32(polygonTexcoords[0]), UInt32(polygonTexcoords[index]),
                                UInt32(polygonTexcoords[index + 1])))
                    } else {
                        cornerTexcoords.append(SIMD3(0, 0, 0))
                    }
                }
                triangleMaterials.append(currentMaterial)
            }
        }

        /// 1-based or negative (relative to the count so far) index → 0-based, checked.
        func resolve(_ index: Int, count: Int, what: String) throws(MeshError) -> Int {
            if index > 0 && index <= count { return index - 1 }
            if index < 0 && -index <= count { return count + index }
            if index == 0 { throw fail(.indexOutOfRange, "\(what) index 0 (OBJ indices start at 1)") }
            throw fail(.indexOutOfRange, "\(what) index \(index) is out of range (\(count) defined so far)")
        }
    }
}

/// Bounds applied to untrusted mesh input.
public struct MeshLimits: Sendable {
    public var maximumFileBytes: Int
    public var maximumVertices: Int
    public var maximumTriangles: Int

    public init(maximumFileBytes: Int = 4 << 30, maximumVertices: Int = 50_000_000, maximumTriangles: Int = 100_000_000)
    {
        self.maximumFileBytes = maximumFileBytes
        self.maximumVertices = maximumVertices
        self.maximumTriangles = maximumTriangles
    }

    public static let `default` = MeshLimits()
}
