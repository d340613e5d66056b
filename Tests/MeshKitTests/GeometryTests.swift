import Foundation
import Testing

@testable import MeshKit

@Suite struct GeometryTests {
    @Test func flippedFacesAreReorientedBeforeTheVolumeIsTrusted() throws {
        let broken = try #require(try Generated.manifest()["broken"] as? [String: Any])
        let truth = try #require(broken["flipped.obj"] as? [String: Any])
        let info = MeshInfo(mesh: try Generated.read("broken/flipped.obj"), format: .obj)
        #expect(info.watertight)
        #expect(info.flippedFaces == truth["flipped_faces"] as? Int)
        let volume = try #require(info.volumeML)
        #expect(relativeError(volume * 1000, truth["volume_mm3"] as? Double ?? 0) < 1e-9)
    }

    @Test func nonManifoldMeshHasNoVolume() throws {
        let info = MeshInfo(mesh: try Generated.read("broken/non-manifold.obj"), format: .obj)
        #expect(info.nonManifoldEdges == 1)
        #expect(info.volumeML == nil)
        #expect(!info.watertight)
    }

    @Test func degenerateFacesAreCounted() throws {
        let info = MeshInfo(mesh: try Generated.read("broken/degenerate.obj"), format: .obj)
        #expect(info.degenerateFaces == 3)
        #expect(info.watertight)
    }

    @Test func openSurfaceHasOneBoundaryLoopAndNoVolume() throws {
        let pair = try Generated.pair("cheek-0.9ml")
        let info = MeshInfo(mesh: pair.before, format: .obj)
        #expect(info.boundaryLoops == 1)
        #expect(info.components == 1)
        #expect(info.volumeML == nil)
        #expect(!info.watertight)
    }

    @Test func componentsAreCountedSeparately() throws {
        let sphere = try Generated.read("closed/sphere-2.obj")
        var two = sphere
        let offset = UInt32(sphere.vertexCount)
        two.positions += sphere.positions.map { $0 + SIMD3(500, 0, 0) }
        two.triangles += sphere.triangles.map { $0 &+ SIMD3(repeating: offset) }
        let info = MeshInfo(mesh: two, format: .obj)
        #expect(info.components == 2)
        #expect(relativeError(info.volumeML ?? 0, 2 * (sphere.enclosedVolumeMM3() ?? 0) / 1000) < 1e-12)
    }

    @Test func bvhClosestPointAgreesWithBruteForce() throws {
        let mesh = try Generated.read("closed/torus-far.obj")
        let bvh = BVH(mesh)
        var generator = SystemRandomNumberGenerator()
        let centre = mesh.boundingBox.center
        for _ in 0..<200 {
            let p =
                centre
                + SIMD3(
                    Double.random(in: -80...80, using: &generator), Double.random(in: -80...80, using: &generator),
                    Double.random(in: -40...40, using: &generator))
            var best = Double.infinity
            for t in 0..<mesh.triangleCount {
                let (a, b, c) = mesh.corners(t)
                let q = BVH.closestPointOnTriangle(p, a, b, c)
                best = min(best, ((q - p) * (q - p)).sum())
            }
            let hit = try #require(bvh.closestPoint(to: p))
            #expect(abs(hit.distanceSquared - best) <= 1e-9 * max(1, best))
        }
    }

    @Test func kdTreeNearestAgreesWithBruteForce() {
        var generator = SystemRandomNumberGenerator()
        let points = (0..<3000).map { _ in
            SIMD3(
                Double.random(in: 0...100, using: &generator), Double.random(in: 0...50, using: &generator),
                Double.random(in: 0...10, using: &generator))
        }
        let tree = KDTree(points)
        for _ in 0..<300 {
            let p = SIMD3(
                Double.random(in: -10...110, using: &generator), Double.random(in: -10...60, using: &generator), 5.0)
            let brute = points.indices.min {
                ((points[$0] - p) * (points[$0] - p)).sum() < ((points[$1] - p) * (points[$1] - p)).sum()
            }
            let found = tree.nearest(to: p)
            #expect(found?.index == brute)
        }
    }

    @Test func crossingAlongANormalMeetsTheSphereWhereGeometryPutsIt() throws {
        let sphere = try Generated.read("closed/sphere-4.obj")
        let bvh = BVH(sphere)
        // From a point 10 mm inside along +x, the sphere (radius 50, inscribed polyhedron) is ~40 mm away.
        let hit = try #require(bvh.nearestCrossing(from: SIMD3(30, 0.1, 0.2), direction: SIMD3(1, 0, 0), maximum: 100))
        #expect(abs(hit.t - 20) < 0.2)
        let back = try #require(bvh.nearestCrossing(from: SIMD3(60, 0.1, 0.2), direction: SIMD3(1, 0, 0), maximum: 100))
        #expect(abs(back.t + 10) < 0.2)
    }
}
