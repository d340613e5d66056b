import Foundation

/// Rigid registration of a moving surface onto a fixed one: point-to-plane ICP, trimmed, gated by distance,
/// restricted to the overlap (correspondences that fall off the fixed surface's edge are dropped), optionally
/// blind to an excluded region (the treated area, so that it does not drag the alignment). Landmarks are
/// optional: without them a coarse global search over rotations and translations comes first.
public struct Registration: Sendable {
    public struct Options: Sendable {
        /// Points of the moving surface used per iteration (evenly subsampled).
        public var samplePoints = 30000
        public var maximumIterations = 60
        /// Fraction of correspondences kept, best first.
        public var trimFraction = 0.85
        /// Region (in the fixed surface's frame) whose points are ignored, already including any margin.
        public var excluded: Region?
        /// Initial transform (from landmarks); nil runs the global search.
        public var initial: RigidTransform?

        public init() {}
    }

    /// The outcome: the transform taking the moving surface into the fixed surface's frame, and the RMS of the
    /// point-to-plane residuals over the correspondences used in the last iteration.
    public struct Result: Sendable {
        public var transform: RigidTransform
        public var rmsMM: Double
        public var correspondences: Int
        public var iterations: Int
    }

    let fixed: Mesh
    let fixedBVH: BVH
    let fixedFaceNormals: [SIMD3<Double>]
    let fixedBoundaryTriangles: [Bool]
    let edgeLength: Double

    public init(fixed: Mesh, bvh: BVH? = nil) {
        self.fixed = fixed
        self.fixedBVH = bvh ?? BVH(fixed)
        self.fixedFaceNormals = fixed.faceNormals()
        self.fixedBoundaryTriangles = fixed.boundaryTriangles()
        self.edgeLength = fixed.meanEdgeLength()
    }

    public func register(moving: Mesh, options: Options = Options()) throws(MeshError) -> Result {
        let all = moving.positions
        guard all.count >= 6, fixed.triangleCount > 0 else {
            throw MeshError(.registrationFailed, "surfaces are too small to register")
        }
        let stride = max(1, all.count / options.samplePoints)
        let samples = Swift.stride(from: 0, to: all.count, by: stride).map { all[$0] }
        var start: RigidTransform
        if let initial = options.initial {
            start = initial
        } else {
            start = try globalSearch(samples: samples, options: options)
        }
        return try refine(
            samples: samples, from: start, options: options, iterations: options.maximumIterations, gate: nil)
    }

    /// Tries rotations within ±20° about the three axes (and the principal-axes alignment) around the centroids,
    /// each polished by a short ICP on a few hundred points; keeps the best.
    func globalSearch(samples: [SIMD3<Double>], options: Options) throws(MeshError) -> RigidTransform {
        let coarseStride = max(1, samples.count / 800)
        let coarse = Swift.stride(from: 0, to: samples.count, by: coarseStride).map { samples[$0] }
        let movingCentre = coarse.reduce(SIMD3<Double>.zero, +) / Double(coarse.count)
        let fixedCentre = fixed.centroid
        var candidates: [RigidTransform] = []
        let angles = [-0.3, 0.0, 0.3]
        for ax in angles {
            for ay in angles {
                for az in angles {
                    let rotation = RigidTransform(axis: SIMD3(0, 0, 1), angle: az)
                        .composed(after: RigidTransform(axis: SIMD3(0, 1, 0), angle: ay))
                        .composed(after: RigidTransform(axis: SIMD3(1, 0, 0), angle: ax))
                    let centred = RigidTransform(
                        rotation: rotation.rotation, translation: fixedCentre - rotation.rotate(movingCentre))
                    candidates.append(centred)
                }
            }
        }
        var bestScore = Double.infinity
        var best = candidates[13]
        let gate = max(30.0, fixed.boundingBox.diagonal / 4)
        for candidate in candidates {
            guard
                let result = try? refine(samples: coarse, from: candidate, options: options, iterations: 15, gate: gate)
            else {
                continue
            }
            // Score: residual with a penalty for poor coverage.
            let coverage = Double(result.correspondences) / Double(coarse.count)
            let score = result.rmsMM / max(coverage, 0.05)
            if score < bestScore {
                bestScore = score
                best = result.transform
            }
        }
        guard bestScore.isFinite else {
            throw MeshError(.registrationFailed, "no initial alignment found; give landmarks")
        }
        return best
    }

    func refine(
        samples: [SIMD3<Double>], from start: RigidTransform, options: Options, iterations: Int,
        gate initialGate: Double?
    ) throws(MeshError) -> Result {
        var transform = start
        var gate = initialGate ?? max(10 * edgeLength, 5.0)
        var rms = Double.infinity
        var used = 0
        var iteration = 0
        let lateralLimit = 0.5 * edgeLength + 1e-9
        var residuals: [(Double, SIMD3<Double>, SIMD3<Double>)] = []
        residuals.reserveCapacity(samples.count)
        while iteration < iterations {
            iteration += 1
            residuals.removeAll(keepingCapacity: true)
            for point in samples {
                let p = transform.apply(point)
                if let excluded = options.excluded, excluded.contains(p) { continue }
                guard let hit = fixedBVH.closestPoint(to: p, within: gate) else { continue }
                let n = fixedFaceNormals[hit.triangle]
                let d = p - hit.point
                let along = dot(d, n)
                if fixedBoundaryTriangles[hit.triangle] {
                    let lateral = (max(0, dot(d, d) - along * along)).squareRoot()
                    if lateral > lateralLimit { continue }  // beyond the edge of the fixed surface
                }
                residuals.append((along, p, n))
            }
            guard residuals.count >= 6 else { throw MeshError(.registrationFailed, "the surfaces do not overlap") }
            // Trim: keep the best fraction by |residual|.
            var magnitudes = residuals.map { abs($0.0) }
            let keepCount = max(6, Int(Double(residuals.count) * options.trimFraction))
            let threshold = Self.quickSelect(&magnitudes, keepCount - 1)
            var ata = [[Double]](repeating: [Double](repeating: 0, count: 6), count: 6)
            var atb = [Double](repeating: 0, count: 6)
            var sum = 0.0
            used = 0
            for (r, p, n) in residuals where abs(r) <= threshold {
                let c = cross(p, n)
                let row = [c.x, c.y, c.z, n.x, n.y, n.z]
                for i in 0..<6 {
                    atb[i] -= row[i] * r
                    for j in i..<6 { ata[i][j] += row[i] * row[j] }
                }
                sum += r * r
                used += 1
            }
            for i in 0..<6 { for j in 0..<i { ata[i][j] = ata[j][i] } }
            rms = (sum / Double(max(used, 1))).squareRoot()
            guard let x = Self.solve(ata, atb) else { break }
            let omega = SIMD3(x[0], x[1], x[2])
            let angle = length(omega)
            let step =
                angle > 0
                ? RigidTransform(axis: omega, angle: angle, translation: SIMD3(x[3], x[4], x[5]))
                : RigidTransform(rotation: RigidTransform.identity.rotation, translation: SIMD3(x[3], x[4], x[5]))
            transform = step.composed(after: transform)
            gate = max(min(gate, 6 * rms + 3 * edgeLength), 0.5)
            if angle < 1e-7 && length(SIMD3(x[3], x[4], x[5])) < 1e-6 { break }
        }
        return Result(transform: transform, rmsMM: rms, correspondences: used, iterations: iteration)
    }

    /// k-th smallest value (0-based), reordering `values`.
    static func quickSelect(_ values: inout [Double], _ k: Int) -> Double {
        MeshKit.quickSelect(&values, 0, values.count, k) { $0 }
        return values[k]
    }

    /// Solves a small symmetric positive system by Gaussian elimination with partial pivoting.
    static func solve(_ matrix: [[Double]], _ rhs: [Double]) -> [Double]? {
        let n = rhs.count
        var a = matrix
        var b = rhs
        for column in 0..<n {
            var pivot = column
            for row in (column + 1)..<n where abs(a[row][column]) > abs(a[pivot][column]) { pivot = row }
            guard abs(a[pivot][column]) > 1e-12 else { return nil }
            a.swapAt(column, pivot)
            b.swapAt(column, pivot)
            for row in (column + 1)..<n {
                let factor = a[row][column] / a[column][column]
                if factor == 0 { continue }
                for k in column..<n { a[row][k] -= factor * a[column][k] }
                b[row] -= factor * b[column]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for row in stride(from: n - 1, through: 0, by: -1) {
            var sum = b[row]
            for k in (row + 1)..<n { sum -= a[row][k] * x[k] }
            x[row] = sum / a[row][row]
        }
        return x
    }
}

extension Mesh {
    /// Per triangle: true when one of its edges is a boundary edge.
    public func boundaryTriangles() -> [Bool] {
        var counts: [UInt64: Int32] = [:]
        counts.reserveCapacity(triangleCount * 2)
        for t in triangles {
            for (u, v) in [(t.x, t.y), (t.y, t.z), (t.z, t.x)] {
                counts[UInt64(min(u, v)) << 32 | UInt64(max(u, v)), default: 0] += 1
            }
        }
        return triangles.map { t in
            [(t.x, t.y), (t.y, t.z), (t.z, t.x)].contains {
                counts[UInt64(min($0, $1)) << 32 | UInt64(max($0, $1))] == 1
            }
        }
    }

    /// Mean edge length in mm (over a sample of triangles).
    public func meanEdgeLength() -> Double {
        guard triangleCount > 0 else { return 1 }
        let step = max(1, triangleCount / 10000)
        var sum = 0.0
        var count = 0
        for t in Swift.stride(from: 0, to: triangleCount, by: step) {
            let (a, b, c) = corners(t)
            sum += length(b - a) + length(c - b) + length(a - c)
            count += 3
        }
        return sum / Double(count)
    }
}
