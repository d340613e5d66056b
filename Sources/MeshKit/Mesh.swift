/// A triangle mesh indexed by position. Coordinates are millimetres in Float64; topology is built from position
/// indices only, so texture seams never split a surface.
public struct Mesh: Sendable {
    public var positions: [SIMD3<Double>]
    public var triangles: [SIMD3<UInt32>]
    /// Per-vertex colour, when the file has one.
    public var colors: [SIMD3<UInt8>]?
    /// Texture coordinates and, per triangle, the texture coordinate index of each corner (OBJ `vt`).
    public var texcoords: [SIMD2<Float>]?
    public var triangleTexcoords: [SIMD3<UInt32>]?
    /// Material names (`usemtl`) and, per triangle, the index of its material.
    public var materials: [String]
    public var triangleMaterials: [UInt16]?
    /// Material libraries named by the file (`mtllib`), in order.
    public var materialLibraries: [String]

    public init(
        positions: [SIMD3<Double>] = [], triangles: [SIMD3<UInt32>] = [], colors: [SIMD3<UInt8>]? = nil,
        texcoords: [SIMD2<Float>]? = nil, triangleTexcoords: [SIMD3<UInt32>]? = nil, materials: [String] = [],
        triangleMaterials: [UInt16]? = nil, materialLibraries: [String] = []
    ) {
        self.positions = positions
        self.triangles = triangles
        self.colors = colors
        self.texcoords = texcoords
        self.triangleTexcoords = triangleTexcoords
        self.materials = materials
        self.triangleMaterials = triangleMaterials
        self.materialLibraries = materialLibraries
    }

    public var vertexCount: Int { positions.count }
    public var triangleCount: Int { triangles.count }

    @inline(__always) public func corners(_ triangle: Int) -> (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>) {
        let t = triangles[triangle]
        return (positions[Int(t.x)], positions[Int(t.y)], positions[Int(t.z)])
    }

    /// Applies a rigid transform (4×4 row-major, last row 0 0 0 1) to every position.
    public mutating func transform(by matrix: RigidTransform) {
        for index in positions.indices { positions[index] = matrix.apply(positions[index]) }
    }

    public func transformed(by matrix: RigidTransform) -> Mesh {
        var copy = self
        copy.transform(by: matrix)
        return copy
    }

    /// Multiplies every coordinate, for unit conversion.
    public mutating func scale(by factor: Double) {
        guard factor != 1 else { return }
        for index in positions.indices { positions[index] *= factor }
    }
}

/// Length units a mesh file may be written in; Facet works in millimetres.
public enum LengthUnit: String, Sendable, CaseIterable {
    case mm, cm, m
    case inch = "in"

    public var millimetres: Double {
        switch self {
        case .mm: 1
        case .cm: 10
        case .m: 1000
        case .inch: 25.4
        }
    }
}

/// Formats MeshKit reads and writes.
public enum MeshFormat: String, Sendable {
    case obj, ply, stl
}

@inline(__always) func cross(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}

@inline(__always) func dot(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double { (a * b).sum() }

@inline(__always) func length(_ a: SIMD3<Double>) -> Double { (a * a).sum().squareRoot() }

@inline(__always) func normalized(_ a: SIMD3<Double>) -> SIMD3<Double> {
    let l = length(a)
    return l > 0 ? a / l : .zero
}

/// Component-wise minimum and maximum, written out so that they inline in hot loops.
@inline(__always) func vmin(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
    SIMD3(Swift.min(a.x, b.x), Swift.min(a.y, b.y), Swift.min(a.z, b.z))
}

@inline(__always) func vmax(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
    SIMD3(Swift.max(a.x, b.x), Swift.max(a.y, b.y), Swift.max(a.z, b.z))
}
