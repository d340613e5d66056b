/// A bounding volume hierarchy over a mesh's triangles: closest point on the surface, and the nearest crossing of
/// a line through a point.
public struct BVH: Sendable {
    struct Node {
        var low: SIMD3<Double>
        var high: SIMD3<Double>
        /// Leaf: first triangle slot and count. Inner: right child index (left child is the next node), count 0.
        var start: Int32
        var count: Int32
    }

    private(set) var nodes: [Node] = []
    private(set) var order: [Int32]
    private var a: [SIMD3<Double>]
    private var b: [SIMD3<Double>]
    private var c: [SIMD3<Double>]

    public init(_ mesh: Mesh) {
        let n = mesh.triangleCount
        order = (0..<n).map { Int32($0) }
        a = []
        b = []
        c = []
        a.reserveCapacity(n)
        b.reserveCapacity(n)
        c.reserveCapacity(n)
        for t in 0..<n {
            let (p, q, r) = mesh.corners(t)
            a.append(p)
            b.append(q)
            c.append(r)
        }
        guard n > 0 else { return }
        var centroids = (0..<n).map { (a[$0] + b[$0] + c[$0]) / 3 }
        nodes.reserveCapacity(2 * n / 2 + 1)
        build(0, n, &centroids)
        // Store corners in leaf order for locality.
        a = order.map { a[Int($0)] }
        b = order.map { b[Int($0)] }
        c = order.map { c[Int($0)] }
    }

    private mutating func build(_ start: Int, _ end: Int, _ centroids: inout [SIMD3<Double>]) {
        var low = SIMD3<Double>(repeating: .infinity)
        var high = SIMD3<Double>(repeating: -.infinity)
        var centreLow = low
        var centreHigh = high
        for slot in start..<end {
            let t = Int(order[slot])
            low = vmin(low, vmin(a[t], vmin(b[t], c[t])))
            high = vmax(high, vmax(a[t], vmax(b[t], c[t])))
            centreLow = vmin(centreLow, centroids[t])
            centreHigh = vmax(centreHigh, centroids[t])
        }
        let index = nodes.count
        nodes.append(Node(low: low, high: high, start: Int32(start), count: Int32(end - start)))
        guard end - start > 4 else { return }
        let extent = centreHigh - centreLow
        let axis = extent.x >= extent.y && extent.x >= extent.z ? 0 : (extent.y >= extent.z ? 1 : 2)
        let middle = (start + end) / 2
        quickSelect(&order, start, end, middle) { centroids[Int($0)][axis] }
        nodes[index].count = 0
        build(start, middle, &centroids)
        nodes[index].start = Int32(nodes.count)
        build(middle, end, &centroids)
    }

    @inline(__always) private static func boxDistanceSquared(
        _ p: SIMD3<Double>, _ low: SIMD3<Double>, _ high: SIMD3<Double>
    ) -> Double {
        let d = vmax(vmax(low - p, p - high), .zero)
        return (d * d).sum()
    }

    /// The closest point on the surface to `p`, its triangle, and the squared distance; nil for an empty mesh.
    public func closestPoint(to p: SIMD3<Double>, within maximum: Double = .infinity) -> (
        point: SIMD3<Double>, triangle: Int, distanceSquared: Double
    )? {
        guard !nodes.isEmpty else { return nil }
        var best = maximum * maximum
        var bestPoint = SIMD3<Double>.zero
        var bestTriangle = -1
        // Median splits keep the tree balanced (depth ≤ log2 n), so a fixed stack on the call frame suffices.
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: Self.stackCapacity) { stack in
            var top = 1
            stack[0] = 0
            while top > 0 {
                top -= 1
                let current = Int(stack[top])
                let node = nodes[current]
                if Self.boxDistanceSquared(p, node.low, node.high) >= best { continue }
                if node.count > 0 {
                    for slot in Int(node.start)..<Int(node.start + node.count) {
                        let q = Self.closestPointOnTriangle(p, a[slot], b[slot], c[slot])
                        let d = q - p
                        let distance = (d * d).sum()
                        if distance < best {
                            best = distance
                            bestPoint = q
                            bestTriangle = Int(order[slot])
                        }
                    }
                } else if top + 2 <= Self.stackCapacity {
                    let left = current + 1
                    let right = Int(node.start)
                    let dl = Self.boxDistanceSquared(p, nodes[left].low, nodes[left].high)
                    let dr = Self.boxDistanceSquared(p, nodes[right].low, nodes[right].high)
                    stack[top] = Int32(dl < dr ? right : left)
                    stack[top + 1] = Int32(dl < dr ? left : right)
                    top += 2
                }
            }
        }
        return bestTriangle < 0 ? nil : (bestPoint, bestTriangle, best)
    }

    static let stackCapacity = 256

    /// Along the line `origin + t·direction` (unit direction), the crossing with the smallest |t| ≤ `maximum`.
    public func nearestCrossing(from origin: SIMD3<Double>, direction: SIMD3<Double>, maximum: Double) -> (
        t: Double, triangle: Int
    )? {
        guard !nodes.isEmpty else { return nil }
        var bestAbs = maximum
        var bestT = 0.0
        var bestTriangle = -1
        func safeInverse(_ x: Double) -> Double { 1 / (abs(x) < 1e-300 ? 1e-300 : x) }
        let inverse = SIMD3(safeInverse(direction.x), safeInverse(direction.y), safeInverse(direction.z))
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: Self.stackCapacity) { stack in
            var top = 1
            stack[0] = 0
            while top > 0 {
                top -= 1
                let current = Int(stack[top])
                let node = nodes[current]
                // Slab test of the segment t ∈ [-bestAbs, bestAbs].
                let t1 = (node.low - origin) * inverse
                let t2 = (node.high - origin) * inverse
                let near = vmin(t1, t2).max()
                let far = vmax(t1, t2).min()
                if near > far || far < -bestAbs || near > bestAbs { continue }
                if node.count > 0 {
                    for slot in Int(node.start)..<Int(node.start + node.count) {
                        if let t = Self.intersect(origin, direction, a[slot], b[slot], c[slot]), abs(t) < bestAbs {
                            bestAbs = abs(t)
                            bestT = t
                            bestTriangle = Int(order[slot])
                        }
                    }
                } else if top + 2 <= Self.stackCapacity {
                    stack[top] = Int32(current + 1)
                    stack[top + 1] = node.start
                    top += 2
                }
            }
        }
        return bestTriangle < 0 ? nil : (bestT, bestTriangle)
    }

    /// Möller–Trumbore: the line parameter of the crossing with the triangle, if any (both directions).
    @inline(__always) static func intersect(
        _ origin: SIMD3<Double>, _ direction: SIMD3<Double>, _ a: SIMD3<Double>, _ b: SIMD3<Double>, _ c: SIMD3<Double>
    ) -> Double? {
        let e1 = b - a
        let e2 = c - a
        let p = cross(direction, e2)
        let determinant = dot(e1, p)
        if abs(determinant) < 1e-14 { return nil }
        let inverse = 1 / determinant
        let s = origin - a
        let u = dot(s, p) * inverse
        if u < -1e-12 || u > 1 + 1e-12 { return nil }
        let q = cross(s, e1)
        let v = dot(direction, q) * inverse
        if v < -1e-12 || u + v > 1 + 1e-12 { return nil }
        return dot(e2, q) * inverse
    }

    /// Closest point on triangle abc to p (Ericson, Real-Time Collision Detection §5.1.5).
    @inline(__always) static func closestPointOnTriangle(
        _ p: SIMD3<Double>, _ a: SIMD3<Double>, _ b: SIMD3<Double>, _ c: SIMD3<Double>
    ) -> SIMD3<Double> {
        let ab = b - a
        let ac = c - a
        let ap = p - a
        let d1 = dot(ab, ap)
        let d2 = dot(ac, ap)
        if d1 <= 0 && d2 <= 0 { return a }
        let bp = p - b
        let d3 = dot(ab, bp)
        let d4 = dot(ac, bp)
        if d3 >= 0 && d4 <= d3 { return b }
        let vc = d1 * d4 - d3 * d2
        if vc <= 0 && d1 >= 0 && d3 <= 0 { return a + ab * (d1 / (d1 - d3)) }
        let cp = p - c
        let d5 = dot(ab, cp)
        let d6 = dot(ac, cp)
        if d6 >= 0 && d5 <= d6 { return c }
        let vb = d5 * d2 - d1 * d6
        if vb <= 0 && d2 >= 0 && d6 <= 0 { return a + ac * (d2 / (d2 - d6)) }
        let va = d3 * d6 - d5 * d4
        if va <= 0 && (d4 - d3) >= 0 && (d5 - d6) >= 0 {
            return b + (c - b) * ((d4 - d3) / ((d4 - d3) + (d5 - d6)))
        }
        let denominator = 1 / (va + vb + vc)
        return a + ab * (vb * denominator) + ac * (vc * denominator)
    }
}
