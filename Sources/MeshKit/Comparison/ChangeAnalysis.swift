import Foundation

/// What changed between two captures of the same region, measured on BEFORE's surface after AFTER has been
/// registered onto it.
public struct ChangeReport: Sendable {
    /// Net volume between the surfaces inside the region, mL (positive = outward growth).
    public var volumeChangeML: Double
    /// 95 % interval of the volume change, mL: from the registration's covariance (its residuals) and the
    /// capture noise measured on the unchanged surface outside the region (see `VolumeUncertainty`).
    public var volumeChangeCI95ML: ClosedRange<Double>
    /// The parts of that interval.
    public var volumeUncertainty: VolumeUncertainty
    /// Standard deviation of the measured displacement on the unchanged surface (both captures' noise together,
    /// robust estimate), mm; nil when no unchanged surface was measured.
    public var surfaceNoiseMM: Double? { volumeUncertainty.surfaceNoiseMM }
    public var positiveVolumeML: Double
    public var negativeVolumeML: Double
    /// Area of BEFORE inside the region that was measured, mm².
    public var roiAreaMM2: Double
    /// Area of BEFORE inside the region where AFTER was not found along the normal, mm².
    public var uncoveredAreaMM2: Double
    /// Area-weighted mean signed displacement, mm.
    public var meanDisplacementMM: Double
    /// Signed displacement of largest magnitude after one-ring smoothing (noise inflates a raw maximum), mm.
    public var maxDisplacementMM: Double
    /// 95th percentile of |displacement| over the region's vertices, mm.
    public var p95DisplacementMM: Double
    /// AFTER's area minus BEFORE's area inside the region, mm².
    public var areaChangeMM2: Double
    public var registrationRMSMM: Double
    /// Maps AFTER's coordinates into BEFORE's frame.
    public var transform: RigidTransform
    /// For two closed meshes: enclosed volume of AFTER minus BEFORE, mL.
    public var enclosedVolumeChangeML: Double?
    /// Histogram of signed displacement over the region (area-weighted, mm² per bin).
    public var histogram: Histogram
    /// Per BEFORE vertex: signed distance to AFTER along BEFORE's normal (NaN where AFTER was not found).
    public var vertexDistancesMM: [Double]
}

/// Area per displacement bin.
public struct Histogram: Sendable {
    public var binWidthMM: Double
    public var lowerMM: Double
    public var areasMM2: [Double]

    public init(binWidthMM: Double, lowerMM: Double, areasMM2: [Double]) {
        self.binWidthMM = binWidthMM
        self.lowerMM = lowerMM
        self.areasMM2 = areasMM2
    }
}

/// A spatial index built in parallel with the others.
private enum Index: Sendable {
    case bvh(BVH)
    case tree(KDTree)
    case smooth(SmoothSurface)
}

/// Computes a `ChangeReport`.
public struct ChangeAnalysis: Sendable {
    public struct Options: Sendable {
        public var region: Region?
        /// Extra margin around the region that ICP also ignores, mm.
        public var exclusionMarginMM = 10.0
        /// Landmarks: same names in both; at least three.
        public var landmarks: (before: [String: SIMD3<Double>], after: [String: SIMD3<Double>])?
        /// Furthest separation searched along the normal, mm.
        public var maximumDistanceMM = 25.0
        public var histogramBinMM = 0.25
        public var registration = Registration.Options()

        public init() {}
    }

    public static func compare(
        before: Mesh, after: Mesh, options: Options = Options(), progress: (@Sendable (String) -> Void)? = nil
    ) throws(MeshError) -> ChangeReport {
        progress?("indexing both surfaces")
        // Both hierarchies are built at once, AFTER's in its own frame: distances and areas are the same in any
        // frame, so queries are moved into AFTER's frame instead of moving AFTER.
        let built = parallelMap(5, minimumChunk: 1) { range -> [Index] in
            range.map { job in
                switch job {
                case 0: .bvh(BVH(before))
                case 1: .bvh(BVH(after))
                case 2: .tree(KDTree(before.positions))
                case 3: .smooth(SmoothSurface(before))
                default: .smooth(SmoothSurface(after, closestPoints: false))
                }
            }
        }
        guard case .bvh(let beforeBVH) = built[0], case .bvh(let afterBVH) = built[1],
            case .tree(let beforeTree) = built[2], case .smooth(let beforeSmooth) = built[3],
            case .smooth(let afterSmooth) = built[4]
        else { throw MeshError(.registrationFailed, "spatial indexes could not be built") }
        var registrationOptions = options.registration
        registrationOptions.excluded = options.region.map { $0.expanded(by: options.exclusionMarginMM) }
        if case .vertices(let mask)? = options.region {
            let box = BoundingBox(mask.compactMap { $0 < before.vertexCount ? before.positions[$0] : nil })
            registrationOptions.excluded = .box(
                minimum: box.minimum - SIMD3(repeating: options.exclusionMarginMM),
                maximum: box.maximum + SIMD3(repeating: options.exclusionMarginMM))
        }
        if let landmarks = options.landmarks {
            let names = landmarks.before.keys.filter { landmarks.after[$0] != nil }.sorted()
            guard names.count >= 3 else {
                throw MeshError(.registrationFailed, "fewer than three landmarks are named in both captures")
            }
            let aligned = try LandmarkRegistration.align(
                moving: names.compactMap { landmarks.after[$0] }, fixed: names.compactMap { landmarks.before[$0] })
            registrationOptions.initial = aligned.transform
        }
        progress?("registering AFTER onto BEFORE")
        let registrar = Registration(fixed: before, tree: beforeTree, smooth: beforeSmooth)
        let registration = try registrar.register(moving: after, options: registrationOptions)
        let toAfter = registration.transform.inverse

        progress?("measuring displacement")
        // Along BEFORE's ring-averaged normals, to AFTER read as a smooth surface: the crossing with AFTER's
        // triangles, moved by the chord correction there (see `SmoothSurface`).
        let normals = beforeSmooth.normals
        let maximum = options.maximumDistanceMM
        let distances = parallelMap(before.vertexCount, minimumChunk: 4096) { range -> [Double] in
            range.map { v in
                let n = normals[v]
                let origin = toAfter.apply(before.positions[v])
                let direction = toAfter.rotate(n)
                guard dot(n, n) > 0.5,
                    let hit = afterBVH.nearestCrossing(from: origin, direction: direction, maximum: maximum)
                else { return .nan }
                let surface = afterSmooth.surface(at: origin + direction * hit.t, triangle: hit.triangle)
                let incidence = dot(direction, surface.normal)
                return abs(incidence) > 0.5 ? hit.t + surface.offset / incidence : hit.t
            }
        }

        // Region membership.
        let inRegion: [Bool]
        switch options.region {
        case .vertices(let mask)?: inRegion = (0..<before.vertexCount).map { mask.contains($0) }
        case let region?: inRegion = before.positions.map { region.contains($0) }
        case nil: inRegion = [Bool](repeating: true, count: before.vertexCount)
        }

        // Integrate along BEFORE's normals over BEFORE's area: each triangle contributes area × mean separation.
        var volume = 0.0
        var positive = 0.0
        var negative = 0.0
        var area = 0.0
        var uncovered = 0.0
        var weighted = 0.0
        let binWidth = options.histogramBinMM
        let lower = -maximum
        var bins = [Double](repeating: 0, count: Int((2 * maximum / binWidth).rounded(.up)))
        for t in 0..<before.triangleCount {
            let tri = before.triangles[t]
            let (i, j, k) = (Int(tri.x), Int(tri.y), Int(tri.z))
            guard (inRegion[i] ? 1 : 0) + (inRegion[j] ? 1 : 0) + (inRegion[k] ? 1 : 0) >= 2 else { continue }
            let triangleArea = before.triangleArea(t)
            let d = (distances[i], distances[j], distances[k])
            guard d.0.isFinite, d.1.isFinite, d.2.isFinite else {
                uncovered += triangleArea
                continue
            }
            let mean = (d.0 + d.1 + d.2) / 3
            // The solid between the triangle and its image moved along the vertex normals (three tetrahedra):
            // unlike area × mean distance, it follows the surface's curvature, which matters for a several-mm
            // change on a rounded face.
            let contribution = prismVolume(
                before.positions[i], before.positions[j], before.positions[k], normals[i] * d.0, normals[j] * d.1,
                normals[k] * d.2)
            volume += contribution
            if contribution > 0 { positive += contribution } else { negative += contribution }
            area += triangleArea
            weighted += contribution
            let bin = Int(((mean - lower) / binWidth).rounded(.down))
            if bin >= 0 && bin < bins.count { bins[bin] += triangleArea }
        }
        guard area > 0 else { throw MeshError(.registrationFailed, "AFTER does not cover the region of interest") }
        let uncertainty = VolumeUncertainty(
            before: before, normals: normals, distances: distances, inRegion: inRegion,
            unchanged: registrationOptions.excluded.map { excluded in before.positions.map { !excluded.contains($0) } }
                ?? [Bool](repeating: false, count: before.vertexCount),
            registration: registration, volumeMM3: volume)

        // One-ring smoothing before the maximum; percentile on raw magnitudes.
        var neighbourSum = [Double](repeating: 0, count: before.vertexCount)
        var neighbourCount = [Int32](repeating: 0, count: before.vertexCount)
        func pair(_ u: Int, _ v: Int) {
            let du = distances[u]
            let dv = distances[v]
            if du.isFinite && dv.isFinite {
                neighbourSum[u] += dv
                neighbourCount[u] += 1
                neighbourSum[v] += du
                neighbourCount[v] += 1
            }
        }
        for tri in before.triangles {
            let (i, j, k) = (Int(tri.x), Int(tri.y), Int(tri.z))
            // Only the region's vertices are read below.
            guard inRegion[i] || inRegion[j] || inRegion[k] else { continue }
            pair(i, j)
            pair(j, k)
            pair(k, i)
        }
        var maxSigned = 0.0
        var magnitudes: [Double] = []
        for v in 0..<before.vertexCount where inRegion[v] && distances[v].isFinite {
            magnitudes.append(abs(distances[v]))
            // Each edge is seen from both of its triangles, so every neighbour counts twice: the mean is unaffected.
            let smoothed =
                neighbourCount[v] > 0 ? (distances[v] + neighbourSum[v] / Double(neighbourCount[v])) / 2 : distances[v]
            if abs(smoothed) > abs(maxSigned) { maxSigned = smoothed }
        }
        var p95 = 0.0
        let largestMagnitude = magnitudes.max() ?? 0
        if !magnitudes.isEmpty {
            p95 = Registration.quickSelect(&magnitudes, min(magnitudes.count - 1, Int(Double(magnitudes.count) * 0.95)))
        }

        // Area change: AFTER triangles whose centroid falls (projected onto BEFORE) inside the measured region.
        // AFTER lies within the largest displacement measured there (plus a triangle's reach) of BEFORE's region,
        // so only centroids that near are looked up.
        progress?("measuring area change")
        let reach = min(maximum, largestMagnitude + 2 * before.meanEdgeLength() + 1)
        let regionMask = inRegion
        let measured = distances
        let toBefore = registration.transform
        let afterArea = parallelMap(after.triangleCount, minimumChunk: 4096) { range -> [Double] in
            var sum = 0.0
            for t in range {
                let (a, b, c) = after.corners(t)
                let centre = toBefore.apply((a + b + c) / 3)
                if let region = options.region, !region.mayContain(centre, margin: reach) { continue }
                guard let hit = beforeBVH.closestPoint(to: centre, within: reach) else { continue }
                let tri = before.triangles[hit.triangle]
                let (i, j, k) = (Int(tri.x), Int(tri.y), Int(tri.z))
                let members = (regionMask[i] ? 1 : 0) + (regionMask[j] ? 1 : 0) + (regionMask[k] ? 1 : 0)
                guard members >= 2, measured[i].isFinite, measured[j].isFinite, measured[k].isFinite else { continue }
                sum += after.triangleArea(t)
            }
            return [sum]
        }.reduce(0, +)

        // Enclosed volumes only for closed meshes; an open BEFORE (the usual face scan) skips the edge analysis.
        var enclosedChange: Double?
        if !registrar.fixedIsOpen, let v0 = before.enclosedVolumeMM3(), let v1 = after.enclosedVolumeMM3() {
            enclosedChange = (v1 - v0) / 1000
        }

        return ChangeReport(
            volumeChangeML: volume / 1000, volumeChangeCI95ML: uncertainty.interval95(around: volume / 1000),
            volumeUncertainty: uncertainty, positiveVolumeML: positive / 1000, negativeVolumeML: negative / 1000,
            roiAreaMM2: area, uncoveredAreaMM2: uncovered, meanDisplacementMM: weighted / area,
            maxDisplacementMM: maxSigned,
            p95DisplacementMM: p95, areaChangeMM2: afterArea - area, registrationRMSMM: registration.rmsMM,
            transform: registration.transform, enclosedVolumeChangeML: enclosedChange,
            histogram: Histogram(binWidthMM: binWidth, lowerMM: lower, areasMM2: bins), vertexDistancesMM: distances)
    }

    /// Signed volume between triangle (p0, p1, p2) and (p0 + o0, p1 + o1, p2 + o2): positive on the side the
    /// triangle's normal points to.
    static func prismVolume(
        _ p0: SIMD3<Double>, _ p1: SIMD3<Double>, _ p2: SIMD3<Double>, _ o0: SIMD3<Double>, _ o1: SIMD3<Double>,
        _ o2: SIMD3<Double>
    ) -> Double {
        let q0 = p0 + o0
        let q1 = p1 + o1
        let q2 = p2 + o2
        func tetrahedron(_ a: SIMD3<Double>, _ b: SIMD3<Double>, _ c: SIMD3<Double>, _ d: SIMD3<Double>) -> Double {
            dot(b - a, cross(c - a, d - a))
        }
        return (tetrahedron(p0, p1, p2, q0) + tetrahedron(p1, p2, q0, q1) + tetrahedron(p2, q0, q1, q2)) / 6
    }

    /// Colours on a symmetric scale: blue (−scale) through white (0) to red (+scale); grey where unmeasured.
    public static func heatmapColors(_ distances: [Double], scaleMM: Double) -> [SIMD3<UInt8>] {
        distances.map { d in
            guard d.isFinite else { return SIMD3(128, 128, 128) }
            let x = max(-1, min(1, d / max(scaleMM, 1e-9)))
            let fade = UInt8((255 * (1 - abs(x))).rounded())
            return x >= 0 ? SIMD3(255, fade, fade) : SIMD3(fade, fade, 255)
        }
    }
}
