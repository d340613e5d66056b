extension Mesh {
    /// Enclosed volume in mm³ by signed tetrahedra about the centroid (Float64, so a mesh far from the origin
    /// does not cancel), only for a closed two-manifold whose winding is or can be made consistent; flipped
    /// faces are counted with their corrected orientation, and an inside-out mesh reports its volume positive.
    /// Nil for open, non-manifold or non-orientable meshes.
    public func enclosedVolumeMM3(topology: Topology? = nil) -> Double? {
        let topology = topology ?? self.topology()
        guard topology.isWatertight, let flips = topology.flips else { return nil }
        let origin = centroid
        var sum = 0.0
        for t in 0..<triangleCount {
            let (a, b, c) = corners(t)
            let v = dot(a - origin, cross(b - origin, c - origin))
            sum += flips[t] ? -v : v
        }
        return abs(sum) / 6
    }
}
