/// Axis-aligned bounding box in millimetres.
public struct BoundingBox: Sendable, Equatable {
    public var minimum: SIMD3<Double>
    public var maximum: SIMD3<Double>

    public init(minimum: SIMD3<Double>, maximum: SIMD3<Double>) {
        self.minimum = minimum
        self.maximum = maximum
    }

    public init(_ points: some Sequence<SIMD3<Double>>) {
        var low = SIMD3<Double>(repeating: .infinity)
        var high = SIMD3<Double>(repeating: -.infinity)
        for p in points {
            low = vmin(low, p)
            high = vmax(high, p)
        }
        self.init(minimum: low, maximum: high)
    }

    public var size: SIMD3<Double> { maximum - minimum }
    public var center: SIMD3<Double> { (minimum + maximum) / 2 }
    public var diagonal: Double { length(size) }

    public func contains(_ p: SIMD3<Double>) -> Bool {
        p.x >= minimum.x && p.y >= minimum.y && p.z >= minimum.z && p.x <= maximum.x && p.y <= maximum.y
            && p.z <= maximum.z
    }
}

extension Mesh {
    /// Twice the area vector of a triangle (cross product of two edges).
    @inline(__always) public func areaVector(_ triangle: Int) -> SIMD3<Double> {
        let (a, b, c) = corners(triangle)
        return cross(b - a, c - a)
    }

    @inline(__always) public func triangleArea(_ triangle: Int) -> Double { length(areaVector(triangle)) / 2 }

    /// Surface area in mm², accumulated in Float64.
    public var areaMM2: Double {
        var sum = 0.0
        for t in 0..<triangleCount { sum += length(areaVector(t)) }
        return sum / 2
    }

    public var boundingBox: BoundingBox { BoundingBox(positions) }

    /// Mean of the vertex positions.
    public var centroid: SIMD3<Double> {
        guard !positions.isEmpty else { return .zero }
        var sum = SIMD3<Double>.zero
        for p in positions { sum += p }
        return sum / Double(positions.count)
    }

    /// Area-weighted vertex normals (unit length; zero for vertices on no proper triangle).
    public func vertexNormals() -> [SIMD3<Double>] {
        var normals = [SIMD3<Double>](repeating: .zero, count: vertexCount)
        for t in 0..<triangleCount {
            let n = areaVector(t)
            let tri = triangles[t]
            normals[Int(tri.x)] += n
            normals[Int(tri.y)] += n
            normals[Int(tri.z)] += n
        }
        for index in normals.indices { normals[index] = normalized(normals[index]) }
        return normals
    }

    /// Unit normal of each triangle.
    public func faceNormals() -> [SIMD3<Double>] { (0..<triangleCount).map { normalized(areaVector($0)) } }
}
