/// A balanced k-d tree over points (implicit: the median of each range is its node), for nearest-neighbour
/// queries.
public struct KDTree: Sendable {
    private var points: [SIMD3<Double>]
    private var indices: [Int32]
    private var axes: [UInt8]

    public init(_ source: [SIMD3<Double>]) {
        points = source
        indices = (0..<source.count).map { Int32($0) }
        axes = Array(repeating: 0, count: source.count)
        build(0, source.count)
        points = indices.map { source[Int($0)] }
    }

    public var count: Int { points.count }

    private mutating func build(_ start: Int, _ end: Int) {
        guard end - start > 1 else { return }
        var low = SIMD3<Double>(repeating: .infinity)
        var high = SIMD3<Double>(repeating: -.infinity)
        for slot in start..<end {
            low = pointwiseMin(low, points[Int(indices[slot])])
            high = pointwiseMax(high, points[Int(indices[slot])])
        }
        let extent = high - low
        let axis = extent.x >= extent.y && extent.x >= extent.z ? 0 : (extent.y >= extent.z ? 1 : 2)
        let middle = (start + end) / 2
        let source = points
        quickSelect(&indices, start, end, middle) { source[Int($0)][axis] }
        axes[middle] = UInt8(axis)
        build(start, middle)
        build(middle + 1, end)
    }

    /// Index (into the original array) of the nearest point and its squared distance.
    public func nearest(to p: SIMD3<Double>, within maximum: Double = .infinity) -> (
        index: Int, distanceSquared: Double
    )? {
        var best = maximum * maximum
        var bestSlot = -1
        var stack: [(Int, Int)] = [(0, points.count)]
        stack.reserveCapacity(64)
        while let (start, end) = stack.popLast() {
            guard start < end else { continue }
            let middle = (start + end) / 2
            let q = points[middle]
            let d = q - p
            let distance = (d * d).sum()
            if distance < best {
                best = distance
                bestSlot = middle
            }
            guard end - start > 1 else { continue }
            let axis = Int(axes[middle])
            let delta = p[axis] - q[axis]
            let (nearRange, farRange) =
                delta < 0 ? ((start, middle), (middle + 1, end)) : ((middle + 1, end), (start, middle))
            if delta * delta < best { stack.append(farRange) }
            stack.append(nearRange)
        }
        return bestSlot < 0 ? nil : (Int(indices[bestSlot]), best)
    }
}
