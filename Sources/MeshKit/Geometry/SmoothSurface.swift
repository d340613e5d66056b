/// A triangle mesh read as what it is: samples of a smooth surface (skin) taken with noise.
///
/// Two corrections matter when a comparison asks for a few micrometres of mean displacement over a region:
/// - Normals: a capture's per-vertex noise (0.1–0.3 mm at 0.5–1 mm spacing) tilts one-ring vertex normals by tens
///   of degrees. The normals here are averaged over `rings` rings of neighbours, which keeps the surface's shape at
///   a few millimetres and removes most of the noise.
/// - Chords: a flat triangle lies inside a convex surface by up to κh²/8 (κ curvature, h edge length). On a face
///   that bias has one sign almost everywhere and is of the order of the change being measured. The smooth surface
///   here is the Phong tessellation with α = ½ (Boubekeur & Alexa 2008), which is exact for a paraboloid: at
///   barycentric weights w of triangle (v₁, v₂, v₃) the point q = Σ wᵢvᵢ moves to q + ½ Σ wᵢ ((vᵢ − q)·nᵢ) nᵢ.
struct SmoothSurface: Sendable {
    let mesh: Mesh
    let normals: [SIMD3<Double>]
    /// Incident triangles of each vertex (compressed rows).
    let ringStart: [Int32]
    let ringTriangles: [Int32]

    /// `closestPoints`: whether `closestOnRing` will be asked (it needs each vertex's triangles).
    init(_ mesh: Mesh, rings: Int = 2, closestPoints: Bool = true) {
        self.mesh = mesh
        var normals = mesh.vertexNormals()
        for _ in 0..<rings {
            var sums = [SIMD3<Double>](repeating: .zero, count: mesh.vertexCount)
            for tri in mesh.triangles {
                let (i, j, k) = (Int(tri.x), Int(tri.y), Int(tri.z))
                let sum = normals[i] + normals[j] + normals[k]
                sums[i] += sum
                sums[j] += sum
                sums[k] += sum
            }
            for index in sums.indices where dot(sums[index], sums[index]) > 0 {
                normals[index] = normalized(sums[index])
            }
        }
        self.normals = normals
        guard closestPoints else {
            ringStart = []
            ringTriangles = []
            return
        }
        var counts = [Int32](repeating: 0, count: mesh.vertexCount + 1)
        for tri in mesh.triangles {
            counts[Int(tri.x) + 1] += 1
            counts[Int(tri.y) + 1] += 1
            counts[Int(tri.z) + 1] += 1
        }
        for index in 1..<counts.count { counts[index] += counts[index - 1] }
        var fill = counts
        var incident = [Int32](repeating: 0, count: 3 * mesh.triangleCount)
        for (t, tri) in mesh.triangles.enumerated() {
            for v in [Int(tri.x), Int(tri.y), Int(tri.z)] {
                incident[Int(fill[v])] = Int32(t)
                fill[v] += 1
            }
        }
        self.ringStart = counts
        self.ringTriangles = incident
    }

    /// The most triangles around one vertex that `closestOnRing` looks at.
    static let largestRing: Int32 = 64

    /// Barycentric weights of `p` (on or near the plane of triangle abc).
    static func barycentric(
        _ p: SIMD3<Double>, _ a: SIMD3<Double>, _ b: SIMD3<Double>, _ c: SIMD3<Double>
    ) -> SIMD3<Double> {
        let v0 = b - a
        let v1 = c - a
        let v2 = p - a
        let d00 = dot(v0, v0)
        let d01 = dot(v0, v1)
        let d11 = dot(v1, v1)
        let d20 = dot(v2, v0)
        let d21 = dot(v2, v1)
        let denominator = d00 * d11 - d01 * d01
        // Relative: a sliver's weights would be huge or not numbers.
        guard denominator > 1e-12 * d00 * d11, denominator.isFinite else { return SIMD3(1, 0, 0) }
        let v = (d11 * d20 - d01 * d21) / denominator
        let w = (d00 * d21 - d01 * d20) / denominator
        return SIMD3(1 - v - w, v, w)
    }

    /// At point `q` of triangle `t`: the interpolated unit normal, and how far the smooth surface lies from `q`
    /// along it (positive on the normal's side).
    func surface(at q: SIMD3<Double>, triangle t: Int) -> (normal: SIMD3<Double>, offset: Double) {
        let tri = mesh.triangles[t]
        let (i, j, k) = (Int(tri.x), Int(tri.y), Int(tri.z))
        let (a, b, c) = (mesh.positions[i], mesh.positions[j], mesh.positions[k])
        var w = Self.barycentric(q, a, b, c)
        w = vmax(w, .zero)
        w /= max(w.sum(), 1e-300)
        let (na, nb, nc) = (normals[i], normals[j], normals[k])
        let normal = normalized(na * w.x + nb * w.y + nc * w.z)
        let offset =
            0.5
            * (w.x * dot(a - q, na) * dot(na, normal) + w.y * dot(b - q, nb) * dot(nb, normal)
                + w.z * dot(c - q, nc) * dot(nc, normal))
        // A smooth surface's departure from its chord is a fraction of an edge; across a crease, a hole's fill or
        // normals that disagree it is not, and then the chord is the better guess.
        let longest = max(length(b - a), length(c - b), length(a - c))
        guard offset.isFinite, abs(offset) <= 0.25 * longest else { return (normal, 0) }
        return (normal, offset)
    }

    /// The closest point to `p` on the triangles around vertex `v` (the nearest vertex's ring holds the closest
    /// point of the surface but for rare configurations, at a fraction of a tree search's cost).
    func closestOnRing(of v: Int, to p: SIMD3<Double>) -> (point: SIMD3<Double>, triangle: Int)? {
        // A hub of many triangles (a hostile or broken capture) is not searched: the vertex's plane stands in.
        guard v + 1 < ringStart.count, ringStart[v + 1] - ringStart[v] <= Self.largestRing else { return nil }
        var best = Double.infinity
        var result: (SIMD3<Double>, Int)?
        for slot in Int(ringStart[v])..<Int(ringStart[v + 1]) {
            let t = Int(ringTriangles[slot])
            let (a, b, c) = mesh.corners(t)
            let q = BVH.closestPointOnTriangle(p, a, b, c)
            let d = q - p
            let distance = dot(d, d)
            if distance < best {
                best = distance
                result = (q, t)
            }
        }
        return result
    }
}
