/// Closed-form rigid alignment of corresponding point pairs (Horn 1987, unit quaternions): the proper rotation
/// and translation that minimise the squared distances; never a reflection or a scale.
public enum LandmarkRegistration {
    /// The transform taking `moving[i]` onto `fixed[i]`, and its RMS residual. Needs at least three pairs that
    /// are not collinear.
    public static func align(moving: [SIMD3<Double>], fixed: [SIMD3<Double>]) throws(MeshError) -> (
        transform: RigidTransform, rmsMM: Double
    ) {
        guard moving.count == fixed.count, moving.count >= 3 else {
            throw MeshError(.registrationFailed, "landmark registration needs at least three matching pairs")
        }
        let weights = [Double](repeating: 1, count: moving.count)
        let transform = try weightedAlign(moving: moving, fixed: fixed, weights: weights)
        var sum = 0.0
        for (p, q) in zip(moving, fixed) {
            let d = transform.apply(p) - q
            sum += dot(d, d)
        }
        return (transform, (sum / Double(moving.count)).squareRoot())
    }

    static func weightedAlign(moving: [SIMD3<Double>], fixed: [SIMD3<Double>], weights: [Double]) throws(MeshError)
        -> RigidTransform
    {
        var total = 0.0
        var pm = SIMD3<Double>.zero
        var qm = SIMD3<Double>.zero
        for index in moving.indices {
            total += weights[index]
            pm += moving[index] * weights[index]
            qm += fixed[index] * weights[index]
        }
        guard total > 0 else { throw MeshError(.registrationFailed, "no landmark weight") }
        pm /= total
        qm /= total
        // Cross-covariance S[a][b] = Σ w (p-pm)_a (q-qm)_b.
        var s = [[Double]](repeating: [0, 0, 0], count: 3)
        for index in moving.indices {
            let p = moving[index] - pm
            let q = fixed[index] - qm
            for a in 0..<3 { for b in 0..<3 { s[a][b] += weights[index] * p[a] * q[b] } }
        }
        let n: [[Double]] = [
            [s[0][0] + s[1][1] + s[2][2], s[1][2] - s[2][1], s[2][0] - s[0][2], s[0][1] - s[1][0]],
            [s[1][2] - s[2][1], s[0][0] - s[1][1] - s[2][2], s[0][1] + s[1][0], s[2][0] + s[0][2]],
            [s[2][0] - s[0][2], s[0][1] + s[1][0], -s[0][0] + s[1][1] - s[2][2], s[1][2] + s[2][1]],
            [s[0][1] - s[1][0], s[2][0] + s[0][2], s[1][2] + s[2][1], -s[0][0] - s[1][1] + s[2][2]],
        ]
        let (values, vectors) = SymmetricEigen.decompose(n)
        var best = 0
        for k in 1..<4 where values[k] > values[best] { best = k }
        let q0 = vectors[0][best]
        let qx = vectors[1][best]
        let qy = vectors[2][best]
        let qz = vectors[3][best]
        let norm = (q0 * q0 + qx * qx + qy * qy + qz * qz).squareRoot()
        guard norm > 0, values[best].isFinite else { throw MeshError(.registrationFailed, "landmarks are degenerate") }
        let (w, x, y, z) = (q0 / norm, qx / norm, qy / norm, qz / norm)
        let rotation = (
            SIMD3(w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)),
            SIMD3(2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)),
            SIMD3(2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z)
        )
        let r = RigidTransform(rotation: rotation, translation: .zero)
        return RigidTransform(rotation: rotation, translation: qm - r.rotate(pm))
    }
}

/// Jacobi eigen-decomposition of a small symmetric matrix.
enum SymmetricEigen {
    /// Eigenvalues and eigenvectors (as columns of the returned matrix).
    static func decompose(_ matrix: [[Double]]) -> ([Double], [[Double]]) {
        let n = matrix.count
        var a = matrix
        var v = (0..<n).map { i in (0..<n).map { j in i == j ? 1.0 : 0.0 } }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in (i + 1)..<n { off += a[i][j] * a[i][j] } }
            if off < 1e-30 { break }
            for p in 0..<n {
                for q in (p + 1)..<n where abs(a[p][q]) > 1e-300 {
                    let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot()
                    let s = t * c
                    for k in 0..<n {
                        let akp = a[k][p]
                        let akq = a[k][q]
                        a[k][p] = c * akp - s * akq
                        a[k][q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p][k]
                        let aqk = a[q][k]
                        a[p][k] = c * apk - s * aqk
                        a[q][k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k][p]
                        let vkq = v[k][q]
                        v[k][p] = c * vkp - s * vkq
                        v[k][q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<n).map { a[$0][$0] }, v)
    }
}
