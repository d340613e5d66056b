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
        /// Covariance of the transform's parameters (a small rotation vector, then a translation, both in the
        /// fixed frame about its origin) as the last iteration determined them: the residuals' variance (a robust
        /// estimate over every gated correspondence, the trimmed ones included) times the inverse of the
        /// point-to-plane normal matrix. Empty when that matrix was singular.
        public var covariance: [[Double]] = []
        /// That robust residual scale (standard deviation), mm.
        public var residualSigmaMM = 0.0
    }

    let fixed: Mesh
    /// Correspondences are the closest point of the fixed surface read as a smooth surface (`SmoothSurface`:
    /// ring-averaged normals, chords corrected): the nearest fixed vertex is found in the tree and the closest
    /// point on its ring of triangles. The nearest vertex's tangent plane alone, with noisy captures, biases the
    /// alignment by several times its statistical error: the vertex chosen depends on its own noise, and a
    /// noisy vertex normal tilts the plane.
    let fixedTree: KDTree
    let smooth: SmoothSurface
    let fixedNormals: [SIMD3<Double>]
    let fixedBoundaryVertices: [Bool]
    let edgeLength: Double
    /// A sparse sample of the fixed vertices for the global search: a query far from the surface costs the
    /// number of points near it, so misaligned candidates are scored against a few thousand points only.
    let sparse: (tree: KDTree, vertices: [Int], spacing: Double)

    public init(fixed: Mesh, tree: KDTree? = nil) {
        self.init(fixed: fixed, tree: tree, smooth: SmoothSurface(fixed))
    }

    init(fixed: Mesh, tree: KDTree?, smooth: SmoothSurface) {
        self.fixed = fixed
        self.fixedTree = tree ?? KDTree(fixed.positions)
        self.smooth = smooth
        self.fixedNormals = smooth.normals
        var boundary = [Bool](repeating: false, count: fixed.vertexCount)
        for (index, flag) in fixed.boundaryTriangles().enumerated() where flag {
            let t = fixed.triangles[index]
            boundary[Int(t.x)] = true
            boundary[Int(t.y)] = true
            boundary[Int(t.z)] = true
        }
        self.fixedBoundaryVertices = boundary
        self.edgeLength = fixed.meanEdgeLength()
        let step = max(1, fixed.vertexCount / 5000)
        let sparseVertices = Array(Swift.stride(from: 0, to: fixed.vertexCount, by: step))
        self.sparse = (
            KDTree(sparseVertices.map { fixed.positions[$0] }), sparseVertices,
            edgeLength * Double(step).squareRoot()
        )
    }

    /// True when the fixed surface has a boundary (is open).
    public var fixedIsOpen: Bool { fixedBoundaryVertices.contains(true) }

    public func register(moving: Mesh, options: Options = Options()) throws(MeshError) -> Result {
        let all = moving.positions
        guard all.count >= 6, fixed.triangleCount > 0 else {
            throw MeshError(.registrationFailed, "surfaces are too small to register")
        }
        let stride = max(1, all.count / options.samplePoints)
        let samples = Swift.stride(from: 0, to: all.count, by: stride).map { all[$0] }
        let start: RigidTransform
        if let initial = options.initial {
            start = initial
        } else {
            start = try globalSearch(samples: samples, options: options)
        }
        // Coarse to fine: converge on a few thousand points, then polish on all samples.
        let coarseStride = max(1, samples.count / 4000)
        let coarse = Swift.stride(from: 0, to: samples.count, by: coarseStride).map { samples[$0] }
        let rough = try refine(
            samples: coarse, from: start, options: options, iterations: options.maximumIterations, gate: nil)
        return try refine(samples: samples, from: rough.transform, options: options, iterations: 12, gate: nil)
    }

    /// Tries 27 starting rotations (0 and ±17° about each axis, combined) about the centroids, scores each by a
    /// short ICP on a few hundred points against a sparse sample of the fixed surface, polishes the best three,
    /// and keeps the best: captures taken up to about 15° and 30 mm apart converge without landmarks.
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
        // Stage 1: a few iterations on a few hundred points for every candidate; stage 2: polish the best three.
        let gate = max(30.0, fixed.boundingBox.diagonal / 4)
        let fewStride = max(1, coarse.count / 300)
        let few = Swift.stride(from: 0, to: coarse.count, by: fewStride).map { coarse[$0] }
        func score(_ result: Result, _ count: Int) -> Double {
            // Residual with a penalty for poor coverage.
            let coverage = Double(result.correspondences) / Double(max(count, 1))
            return result.rmsMM / max(coverage, 0.05)
        }
        var ranked: [(Double, RigidTransform)] = []
        for candidate in candidates {
            guard
                let result = try? refine(
                    samples: few, from: candidate, options: options, iterations: 4, gate: gate, useSparse: true)
            else {
                continue
            }
            ranked.append((score(result, few.count), result.transform))
        }
        ranked.sort { $0.0 < $1.0 }
        var bestScore = Double.infinity
        var best = candidates[13]
        for (_, candidate) in ranked.prefix(3) {
            guard
                let result = try? refine(
                    samples: coarse, from: candidate, options: options, iterations: 15, gate: gate, useSparse: true)
            else { continue }
            let value = score(result, coarse.count)
            if value < bestScore {
                bestScore = value
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
        gate initialGate: Double?, useSparse: Bool = false
    ) throws(MeshError) -> Result {
        let tree = useSparse ? sparse.tree : fixedTree
        let spacing = useSparse ? sparse.spacing : edgeLength
        var transform = start
        var gate = initialGate ?? max(10 * spacing, 5.0)
        var rms = Double.infinity
        var used = 0
        var iteration = 0
        let lateralLimit = 0.5 * spacing + 1e-9
        var residuals: [(Double, SIMD3<Double>, SIMD3<Double>)] = []
        var normalMatrix: [[Double]] = []
        var residualVariance = 0.0
        var keptThreshold = Double.infinity
        while iteration < iterations {
            iteration += 1
            let current = transform
            let currentGate = gate
            residuals = parallelMap(samples.count, minimumChunk: 1024) { range in
                var found: [(Double, SIMD3<Double>, SIMD3<Double>)] = []
                found.reserveCapacity(range.count)
                for index in range {
                    let p = current.apply(samples[index])
                    if let excluded = options.excluded, excluded.contains(p) { continue }
                    guard let hit = tree.nearest(to: p, within: currentGate) else { continue }
                    let vertex = useSparse ? sparse.vertices[hit.index] : hit.index
                    var n = fixedNormals[vertex]
                    var d = p - fixed.positions[vertex]
                    var along = dot(d, n)
                    // The search on the sparse sample only needs to find the basin; the fine one measures to the
                    // smooth surface.
                    if !useSparse, let closest = smooth.closestOnRing(of: vertex, to: p) {
                        let surface = smooth.surface(at: closest.point, triangle: closest.triangle)
                        n = surface.normal
                        d = p - closest.point
                        along = dot(d, n) - surface.offset
                    }
                    // An unused vertex (no triangle, no normal) or a residual that is not a number says nothing.
                    guard dot(n, n) > 0.5, along.isFinite else { continue }
                    if fixedBoundaryVertices[vertex] {
                        let lateral = (max(0, dot(d, d) - along * along)).squareRoot()
                        if lateral > lateralLimit { continue }  // beyond the edge of the fixed surface
                    }
                    found.append((along, p, n))
                }
                return found
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
            normalMatrix = ata
            keptThreshold = threshold
            residualVariance = pow(1.4826 * Self.quickSelect(&magnitudes, magnitudes.count / 2), 2)
            guard let x = Self.solve(ata, atb) else { break }
            let omega = SIMD3(x[0], x[1], x[2])
            let angle = length(omega)
            let step =
                angle > 0
                ? RigidTransform(axis: omega, angle: angle, translation: SIMD3(x[3], x[4], x[5]))
                : RigidTransform(rotation: RigidTransform.identity.rotation, translation: SIMD3(x[3], x[4], x[5]))
            transform = step.composed(after: transform)
            gate = max(min(gate, 6 * rms + 3 * spacing), 0.5)
            // Converged when a step moves points by about a micrometre (1e-5 rad is 1 µm at 100 mm).
            if angle < 1e-5 && length(SIMD3(x[3], x[4], x[5])) < 1e-3 { break }
        }
        let covariance = Self.clusterCovariance(
            residuals.filter { abs($0.0) <= keptThreshold }, normalMatrix: normalMatrix,
            scale: rms > 0 ? residualVariance / (rms * rms) : 1)
        return Result(
            transform: transform, rmsMM: rms, correspondences: used, iterations: iteration, covariance: covariance,
            residualSigmaMM: residualVariance.squareRoot())
    }

    /// Side of the cubes that group correspondences for the covariance, mm.
    static let clusterSideMM = 5.0

    /// The cluster-robust ("sandwich") covariance of the point-to-plane estimate: N⁻¹ (Σ_b s_b s_bᵀ) N⁻¹ with N
    /// the normal matrix and s_b the sum of row × residual over the correspondences in cube b. Unlike σ² N⁻¹ it
    /// stays honest when neighbouring residuals are correlated (both captures' noise and what the surfaces share
    /// within a few millimetres). `scale` puts back the spread that trimming took from the residuals.
    static func clusterCovariance(
        _ residuals: [(Double, SIMD3<Double>, SIMD3<Double>)], normalMatrix: [[Double]], scale: Double
    ) -> [[Double]] {
        guard normalMatrix.count == 6 else { return [] }
        var inverse: [[Double]] = []
        for column in 0..<6 {
            var unit = [Double](repeating: 0, count: 6)
            unit[column] = 1
            guard let solved = solve(normalMatrix, unit) else { return [] }
            inverse.append(solved)
        }
        var sums: [SIMD3<Int>: [Double]] = [:]
        for (r, p, n) in residuals {
            let c = cross(p, n)
            let key = cube(p, side: clusterSideMM)
            var sum = sums[key] ?? [Double](repeating: 0, count: 6)
            for (i, value) in [c.x, c.y, c.z, n.x, n.y, n.z].enumerated() { sum[i] += value * r }
            sums[key] = sum
        }
        var meat = [[Double]](repeating: [Double](repeating: 0, count: 6), count: 6)
        // In a fixed order: a dictionary's order changes from process to process, and the same inputs must give
        // the same digits (the job and the command line are compared number for number).
        let keys = sums.keys.sorted { ($0.x, $0.y, $0.z) < ($1.x, $1.y, $1.z) }
        for key in keys {
            let sum = sums[key] ?? []
            for i in 0..<6 { for j in 0..<6 { meat[i][j] += sum[i] * sum[j] * scale } }
        }
        var result = [[Double]](repeating: [Double](repeating: 0, count: 6), count: 6)
        for i in 0..<6 {
            for j in 0..<6 {
                var total = 0.0
                for k in 0..<6 { for l in 0..<6 { total += inverse[i][k] * meat[k][l] * inverse[l][j] } }
                result[i][j] = total
            }
        }
        return result
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
    /// Per triangle: true when one of its edges is a boundary edge (used by exactly one triangle).
    public func boundaryTriangles() -> [Bool] {
        var counts = EdgeCounter(expectedEdges: 3 * triangleCount / 2 + 16)
        for t in triangles {
            counts.add(t.x, t.y)
            counts.add(t.y, t.z)
            counts.add(t.z, t.x)
        }
        return triangles.map { t in
            counts.count(t.x, t.y) == 1 || counts.count(t.y, t.z) == 1 || counts.count(t.z, t.x) == 1
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

/// How many triangles use each undirected edge (open addressing, linear probing).
struct EdgeCounter {
    private var keys: [UInt64]
    private var counts: [UInt32]
    private var mask: Int
    private var used = 0

    init(expectedEdges: Int) {
        var capacity = 1024
        while capacity < expectedEdges * 2 { capacity <<= 1 }
        keys = Array(repeating: UInt64.max, count: capacity)
        counts = Array(repeating: 0, count: capacity)
        mask = capacity - 1
    }

    @inline(__always) private static func key(_ u: UInt32, _ v: UInt32) -> UInt64 {
        UInt64(Swift.min(u, v)) << 32 | UInt64(Swift.max(u, v))
    }

    @inline(__always) private func slot(for key: UInt64) -> Int {
        var hash = key &* 0x9E37_79B9_7F4A_7C15
        hash ^= hash >> 29
        var slot = Int(truncatingIfNeeded: hash) & mask
        while keys[slot] != key && keys[slot] != UInt64.max { slot = (slot + 1) & mask }
        return slot
    }

    mutating func add(_ u: UInt32, _ v: UInt32) {
        let key = Self.key(u, v)
        let index = slot(for: key)
        if keys[index] == UInt64.max {
            keys[index] = key
            used += 1
        }
        counts[index] += 1
        if used * 2 > keys.count { grow() }
    }

    func count(_ u: UInt32, _ v: UInt32) -> UInt32 {
        let index = slot(for: Self.key(u, v))
        return keys[index] == UInt64.max ? 0 : counts[index]
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldCounts = counts
        keys = Array(repeating: UInt64.max, count: oldKeys.count * 2)
        counts = Array(repeating: 0, count: oldKeys.count * 2)
        mask = keys.count - 1
        for (index, key) in oldKeys.enumerated() where key != UInt64.max {
            let target = slot(for: key)
            keys[target] = key
            counts[target] = oldCounts[index]
        }
    }
}
