/// The summary `facet mesh info` prints: a stable, machine-readable contract.
public struct MeshInfo: Sendable {
    public var format: MeshFormat
    public var vertices: Int
    public var triangles: Int
    public var areaMM2: Double
    /// Nil unless the mesh is closed (see `Mesh.enclosedVolumeMM3`).
    public var volumeML: Double?
    public var watertight: Bool
    public var components: Int
    public var boundaryLoops: Int
    public var degenerateFaces: Int
    public var duplicateFaces: Int
    public var nonManifoldEdges: Int
    public var flippedFaces: Int
    public var boundingBox: BoundingBox

    public init(mesh: Mesh, format: MeshFormat) {
        let topology = mesh.topology()
        self.format = format
        vertices = mesh.vertexCount
        triangles = mesh.triangleCount
        areaMM2 = mesh.areaMM2
        volumeML = mesh.enclosedVolumeMM3(topology: topology).map { $0 / 1000 }
        watertight = topology.isWatertight
        components = topology.components
        boundaryLoops = topology.boundaryLoops
        degenerateFaces = topology.degenerateFaces
        duplicateFaces = topology.duplicateFaces
        nonManifoldEdges = topology.nonManifoldEdges
        flippedFaces =
            topology.isConsistentlyOriented ? 0 : min(topology.flippedFaces, triangles - topology.flippedFaces)
        boundingBox = mesh.boundingBox
    }
}
