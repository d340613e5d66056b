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
            low = vmin(low, points[Int(indices[slot])])
            high = vmax(high, points[Int(indices[slot])])
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
        // Ranges to visit with the squared distance from `p` to their side of the splitting plane; a fixed stack on
        // the call frame (the tree is balanced, so its depth is log2 n).
        withUnsafeTemporaryAllocation(of: (Int32, Int32, Double).self, capacity: 256) { stack in
            var top = 1
            stack[0] = (0, Int32(points.count), 0)
            while top > 0 {
                top -= 1
                let (start32, end32, bound) = stack[top]
                if bound >= best { continue }
                var start = Int(start32)
                var end = Int(end32)
                // Descend towards `p`, leaving the far sides on the stack.
                while start < end {
                    let middle = (start + end) / 2
                    let q = points[middle]
                    let d = q - p
                    let distance = (d * d).sum()
                    if distance < best {
                        best = distance
                        bestSlot = middle
                    }
                    if end - start == 1 { break }
                    let axis = Int(axes[middle])
                    let delta = p[axis] - q[axis]
                    let planeDistance = delta * delta
                    if delta < 0 {
                        if planeDistance < best && top < 256 {
                            stack[top] = (Int32(middle + 1), Int32(end), planeDistance)
                            top += 1
                        }
                        end = middle
                    } else {
                        if planeDistance < best && top < 256 {
                            stack[top] = (Int32(start), Int32(middle), planeDistance)
                            top += 1
                        }
                        start = middle + 1
                    }
                }
            }
        }
        return bestSlot < 0 ? nil : (Int(indices[bestSlot]), best)
    }
}
