/// What the edges of a mesh say about it: open or closed, manifold, consistently wound, how many pieces.
public struct Topology: Sendable {
    /// Edges used by exactly one triangle.
    public var boundaryEdges: Int
    /// Edges used by more than two triangles.
    public var nonManifoldEdges: Int
    /// Interior edges whose two triangles run the same way (one of them is flipped).
    public var inconsistentEdges: Int
    public var boundaryLoops: Int
    public var components: Int
    /// Triangles with a repeated vertex or zero area.
    public var degenerateFaces: Int
    /// Triangles over the same three vertices as an earlier one.
    public var duplicateFaces: Int
    /// Per triangle: true when it must be flipped to agree with its neighbours (nil if no consistent winding
    /// exists, e.g. a Möbius strip or non-manifold edges).
    public var flips: [Bool]?

    /// Closed and two-manifold: every edge is shared by exactly two triangles.
    public var isWatertight: Bool { boundaryEdges == 0 && nonManifoldEdges == 0 }
    public var isConsistentlyOriented: Bool { inconsistentEdges == 0 && nonManifoldEdges == 0 }
    public var flippedFaces: Int { flips?.reduce(0) { $0 + ($1 ? 1 : 0) } ?? 0 }
}

extension Mesh {
    public func topology() -> Topology {
        let n = triangleCount
        // A repeated vertex takes a triangle out of the topology; a zero-area triangle with three distinct
        // vertices still joins its edges (a sliver is part of the surface) but is counted as degenerate.
        var degenerate = [Bool](repeating: false, count: n)
        var degenerateCount = 0
        for t in 0..<n {
            let tri = triangles[t]
            if tri.x == tri.y || tri.y == tri.z || tri.x == tri.z {
                degenerate[t] = true
                degenerateCount += 1
            } else if length(areaVector(t)) == 0 {
                degenerateCount += 1
            }
        }
        // Duplicate faces: same vertex set.
        var faceKeys = [SIMD3<UInt32>]()
        faceKeys.reserveCapacity(n)
        for t in 0..<n where !degenerate[t] {
            let tri = triangles[t]
            let a = min(tri.x, tri.y, tri.z)
            let c = max(tri.x, tri.y, tri.z)
            let b = tri.x ^ tri.y ^ tri.z ^ a ^ c
            faceKeys.append(SIMD3(a, b, c))
        }
        faceKeys.sort { ($0.x, $0.y, $0.z) < ($1.x, $1.y, $1.z) }
        var duplicates = 0
        for index in faceKeys.indices.dropFirst() where faceKeys[index] == faceKeys[index - 1] { duplicates += 1 }

        // Half-edges: undirected key, triangle, and whether it runs low→high.
        struct HalfEdge {
            var key: UInt64
            var triangle: Int32
            var forward: Bool
        }
        var halfEdges = [HalfEdge]()
        halfEdges.reserveCapacity(3 * n)
        for t in 0..<n where !degenerate[t] {
            let tri = triangles[t]
            for (u, v) in [(tri.x, tri.y), (tri.y, tri.z), (tri.z, tri.x)] {
                let key = UInt64(min(u, v)) << 32 | UInt64(max(u, v))
                halfEdges.append(HalfEdge(key: key, triangle: Int32(t), forward: u < v))
            }
        }
        halfEdges.sort { $0.key < $1.key }

        var boundary = 0
        var nonManifold = 0
        var inconsistent = 0
        var neighbours = [(Int32, Int32, Bool)]()  // triangle pair and whether they agree
        neighbours.reserveCapacity(3 * n / 2)
        var boundaryParent = UnionFind(count: vertexCount)
        var boundaryVertices = Set<UInt32>()
        var start = 0
        while start < halfEdges.count {
            var end = start + 1
            while end < halfEdges.count && halfEdges[end].key == halfEdges[start].key { end += 1 }
            switch end - start {
            case 1:
                boundary += 1
                let u = UInt32(halfEdges[start].key >> 32)
                let v = UInt32(halfEdges[start].key & 0xFFFF_FFFF)
                boundaryParent.union(Int(u), Int(v))
                boundaryVertices.insert(u)
            case 2:
                let agree = halfEdges[start].forward != halfEdges[start + 1].forward
                if !agree { inconsistent += 1 }
                neighbours.append((halfEdges[start].triangle, halfEdges[start + 1].triangle, agree))
            default:
                nonManifold += 1
            }
            start = end
        }
        var loopRoots = Set<Int>()
        for v in boundaryVertices { loopRoots.insert(boundaryParent.find(Int(v))) }

        // Connected components over shared vertices.
        var parts = UnionFind(count: vertexCount)
        var used = [Bool](repeating: false, count: vertexCount)
        for t in 0..<n {
            let tri = triangles[t]
            parts.union(Int(tri.x), Int(tri.y))
            parts.union(Int(tri.y), Int(tri.z))
            used[Int(tri.x)] = true
            used[Int(tri.y)] = true
            used[Int(tri.z)] = true
        }
        var componentRoots = Set<Int>()
        for v in 0..<vertexCount where used[v] { componentRoots.insert(parts.find(v)) }

        return Topology(
            boundaryEdges: boundary, nonManifoldEdges: nonManifold, inconsistentEdges: inconsistent,
            boundaryLoops: loopRoots.count, components: componentRoots.count, degenerateFaces: degenerateCount,
            duplicateFaces: duplicates,
            flips: nonManifold == 0 ? orient(neighbours: neighbours, degenerate: degenerate) : nil)
    }

    /// Flood fill over faces: choose, per triangle, whether to flip it so that every shared edge is traversed in
    /// opposite directions. Nil when impossible (non-orientable).
    private func orient(neighbours: [(Int32, Int32, Bool)], degenerate: [Bool]) -> [Bool]? {
        let n = triangleCount
        var adjacencyStart = [Int](repeating: 0, count: n + 1)
        for (a, b, _) in neighbours {
            adjacencyStart[Int(a) + 1] += 1
            adjacencyStart[Int(b) + 1] += 1
        }
        for t in 0..<n { adjacencyStart[t + 1] += adjacencyStart[t] }
        var fill = adjacencyStart
        var adjacency = [(Int32, Bool)](repeating: (0, true), count: adjacencyStart[n])
        for (a, b, agree) in neighbours {
            adjacency[fill[Int(a)]] = (b, agree)
            fill[Int(a)] += 1
            adjacency[fill[Int(b)]] = (a, agree)
            fill[Int(b)] += 1
        }
        var flips = [Bool](repeating: false, count: n)
        var seen = [Bool](repeating: false, count: n)
        var stack = [Int]()
        for seed in 0..<n where !seen[seed] && !degenerate[seed] {
            seen[seed] = true
            stack.append(seed)
            while let t = stack.popLast() {
                for k in adjacencyStart[t]..<adjacencyStart[t + 1] {
                    let (other, agree) = adjacency[k]
                    let wanted = agree ? flips[t] : !flips[t]
                    if seen[Int(other)] {
                        if flips[Int(other)] != wanted { return nil }
                    } else {
                        seen[Int(other)] = true
                        flips[Int(other)] = wanted
                        stack.append(Int(other))
                    }
                }
            }
        }
        return flips
    }
}

/// Disjoint sets with path halving and union by size.
struct UnionFind {
    private var parent: [Int32]
    private var size: [Int32]

    init(count: Int) {
        parent = (0..<count).map { Int32($0) }
        size = Array(repeating: 1, count: count)
    }

    mutating func find(_ x: Int) -> Int {
        var x = x
        while Int(parent[x]) != x {
            parent[x] = parent[Int(parent[x])]
            x = Int(parent[x])
        }
        return x
    }

    mutating func union(_ a: Int, _ b: Int) {
        var ra = find(a)
        var rb = find(b)
        if ra == rb { return }
        if size[ra] < size[rb] { swap(&ra, &rb) }
        parent[rb] = Int32(ra)
        size[ra] += size[rb]
    }
}
