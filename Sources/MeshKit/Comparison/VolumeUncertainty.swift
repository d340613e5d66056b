import Foundation

/// How far a measured volume change may be from the truth: the standard deviation behind
/// `ChangeReport.volumeChangeCI95ML`.
///
/// Two independent parts, both estimated from the two captures themselves:
/// - Registration. The volume is Σ wᵢ dᵢ over the region (wᵢ a third of the area of each measured triangle around
///   vertex i, dᵢ its displacement along the normal nᵢ). A small rigid error (ω, t) of the alignment moves every
///   dᵢ by nᵢ·(ω × pᵢ + t), so the volume by gᵀ(ω, t) with g = Σ wᵢ (pᵢ × nᵢ, nᵢ); its variance is gᵀ C g with C
///   the registration's covariance (`Registration.Result.covariance`, from its residuals), times
///   `registrationCalibration`.
/// - Capture noise. On the surface outside the region and its margin nothing changed, so the displacement there
///   is both captures' noise (and what the alignment left). Summed over 5 mm cubes, its variance per mm² of
///   surface, times the region's area, is the variance of the region's sum, neighbours' correlation included.
///   Without an unchanged surface (no region), the registration's residual scale stands in, as if independent
///   at three times the mean vertex area.
public struct VolumeUncertainty: Sendable {
    /// Standard deviation of the volume from the alignment, mL.
    public var registrationSDML: Double
    /// Standard deviation of the volume from both captures' noise inside the region, mL.
    public var noiseSDML: Double
    /// Standard deviation allowed for the method itself (discretisation), mL.
    public var methodSDML: Double
    /// Robust standard deviation of the displacement on the unchanged surface, mm (nil without one).
    public var surfaceNoiseMM: Double?

    /// The three parts together (independent), mL.
    public var standardDeviationML: Double {
        (registrationSDML * registrationSDML + noiseSDML * noiseSDML + methodSDML * methodSDML).squareRoot()
    }

    /// The 95 % interval around a measured volume (normal quantile 1.96); −∞...∞ (JSON `[null, null]`) when it
    /// could not be estimated (no registration covariance, or a volume that is not a number).
    public func interval95(around volumeML: Double) -> ClosedRange<Double> {
        let half = 1.959964 * standardDeviationML
        guard volumeML.isFinite, half.isFinite else { return -Double.infinity...Double.infinity }
        return (volumeML - half)...(volumeML + half)
    }

    init(
        before: Mesh, normals: [SIMD3<Double>], distances: [Double], inRegion: [Bool], unchanged: [Bool],
        registration: Registration.Result, volumeMM3: Double
    ) {
        var weights = [Double](repeating: 0, count: before.vertexCount)
        for t in 0..<before.triangleCount {
            let tri = before.triangles[t]
            let (i, j, k) = (Int(tri.x), Int(tri.y), Int(tri.z))
            guard (inRegion[i] ? 1 : 0) + (inRegion[j] ? 1 : 0) + (inRegion[k] ? 1 : 0) >= 2,
                distances[i].isFinite, distances[j].isFinite, distances[k].isFinite
            else { continue }
            let share = before.triangleArea(t) / 3
            weights[i] += share
            weights[j] += share
            weights[k] += share
        }

        var gradient = [Double](repeating: 0, count: 6)
        for v in 0..<before.vertexCount where weights[v] > 0 {
            let n = normals[v]
            let c = cross(before.positions[v], n)
            let row = [c.x, c.y, c.z, n.x, n.y, n.z]
            for i in 0..<6 { gradient[i] += weights[v] * row[i] }
        }
        var registrationVariance = 0.0
        if registration.covariance.count == 6 {
            for i in 0..<6 {
                for j in 0..<6 { registrationVariance += gradient[i] * registration.covariance[i][j] * gradient[j] }
            }
        }

        // Noise on the unchanged surface, in cubes: the variance of Σ aᵢ dᵢ per mm² of surface (aᵢ a third of
        // the area around vertex i), whatever the correlation of neighbours within a cube; robust (the median
        // over cubes of S²/A, divided by the median of a χ²₁ variable) against the odd cube that did change.
        var values: [Double] = []
        for v in 0..<before.vertexCount where unchanged[v] && distances[v].isFinite { values.append(distances[v]) }
        var measuredNoise: Double?
        var variancePerArea =
            pow(registration.residualSigmaMM, 2) * 3 * before.areaMM2 / Double(max(1, before.vertexCount))
        if values.count >= 100 {
            let median = Registration.quickSelect(&values, values.count / 2)
            var deviations = values.map { abs($0 - median) }
            measuredNoise = 1.4826 * Registration.quickSelect(&deviations, deviations.count / 2)
            var vertexArea = [Double](repeating: 0, count: before.vertexCount)
            for t in 0..<before.triangleCount {
                let tri = before.triangles[t]
                let share = before.triangleArea(t) / 3
                vertexArea[Int(tri.x)] += share
                vertexArea[Int(tri.y)] += share
                vertexArea[Int(tri.z)] += share
            }
            var cubes: [SIMD3<Int>: SIMD2<Double>] = [:]
            let side = Registration.clusterSideMM
            for v in 0..<before.vertexCount where unchanged[v] && distances[v].isFinite {
                let p = before.positions[v]
                let key = cube(p, side: side)
                cubes[key, default: .zero] += SIMD2(vertexArea[v] * (distances[v] - median), vertexArea[v])
            }
            var ratios = cubes.values.filter { $0.y >= side * side / 2 }.map { $0.x * $0.x / $0.y }
            if ratios.count >= 8 { variancePerArea = Registration.quickSelect(&ratios, ratios.count / 2) / 0.454936 }
        }
        let noiseVariance = variancePerArea * weights.reduce(0, +)
        // Without a covariance (a singular last step) the alignment's share is unknown: the interval is not
        // estimated rather than too narrow.
        registrationSDML =
            registration.covariance.count == 6 && registrationVariance.isFinite
            ? Self.registrationCalibration * max(0, registrationVariance).squareRoot() / 1000 : .infinity
        noiseSDML = noiseVariance.isFinite ? max(0, noiseVariance).squareRoot() / 1000 : .infinity
        let regionArea = weights.reduce(0, +)
        methodSDML =
            (Self.methodAllowance * abs(volumeMM3) + Self.methodAllowanceMM * regionArea) / 1000 / 3.0.squareRoot()
        surfaceNoiseMM = measuredNoise
    }
}

extension VolumeUncertainty {
    /// Half-width of the method's own error, taken as uniformly distributed: a fraction of the volume plus a
    /// mean displacement over the region's area, twice the largest errors measured on noiseless generated pairs
    /// (0.15 % of the volume, and 0.0002 mL over a 4,000 mm² region of an unchanged surface: 0.05 µm).
    static let methodAllowance = 0.003
    static let methodAllowanceMM = 0.0001

    /// What the linearised covariance misses of ICP's real spread. An ICP estimate is the fixed point of
    /// alternating correspondence and alignment; its covariance is larger than the Gauss–Newton one of its last
    /// step (Censi, "An accurate closed-form estimate of ICP's covariance", ICRA 2007), most in the directions a
    /// rounded surface barely constrains. On a calibration grid of 128 generated pairs (testdata/generate_meshes.py
    /// --accuracy 4 --first-seed 1000, seeds 1000–1127: the registration error measured against the known transform), the
    /// registration error was 1.6 of its sandwich estimate by the median of |z| (1.08 against 0.674 for a normal
    /// variable) and 1.54 by RMS. `make bench-accuracy` checks the resulting coverage on other seeds.
    static let registrationCalibration = 1.6
}

/// The integer cube of side `side` holding `p` (coordinates clamped, so any finite input has a key).
func cube(_ p: SIMD3<Double>, side: Double) -> SIMD3<Int> {
    func cell(_ x: Double) -> Int { Int(max(-1e15, min(1e15, (x / side).rounded(.down)))) }
    return SIMD3(cell(p.x), cell(p.y), cell(p.z))
}
