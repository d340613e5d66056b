import Foundation
import Testing

@testable import MeshKit

/// The report's software renderer on a known shape: a sphere seen from any side is a filled disc in the middle of
/// the picture, its colours are the vertices', its rim is darker than its centre (shading by the angle to the
/// viewer), and the corners stay background.
@Suite struct RendererTests {
    @Test(arguments: SurfaceRenderer.View.allCases)
    func aSphereIsADiscFromEverySide(_ view: SurfaceRenderer.View) throws {
        let sphere = try Generated.read("closed/sphere-4.obj")
        let red = [SIMD3<UInt8>](repeating: SIMD3(255, 0, 0), count: sphere.vertexCount)
        let image = SurfaceRenderer.render(sphere, colors: red, view: view, width: 101, height: 101)
        func pixel(_ x: Int, _ y: Int) -> SIMD4<UInt8> {
            let i = (y * image.width + x) * 4
            return SIMD4(image.rgba[i], image.rgba[i + 1], image.rgba[i + 2], image.rgba[i + 3])
        }
        #expect(image.rgba.count == 101 * 101 * 4)
        let centre = pixel(50, 50)
        #expect(centre.x > 240 && centre.y < 20 && centre.z < 20, "the centre faces the viewer: full red")
        for corner in [pixel(0, 0), pixel(100, 0), pixel(0, 100), pixel(100, 100)] {
            #expect(corner == SIMD4(255, 255, 255, 255), "corners are background")
        }
        // Near the rim the surface turns away: darker than the centre.
        let rim = pixel(50, 7)
        #expect(rim.x < centre.x && rim.x > 0)
        // A disc: the covered share of the square is close to π/4 of the fitted extent (margins 5 %).
        var covered = 0
        for y in 0..<101 { for x in 0..<101 where pixel(x, y) != SIMD4(255, 255, 255, 255) { covered += 1 } }
        let expected = Double.pi / 4 * pow(101 * 0.9, 2)
        #expect(abs(Double(covered) - expected) / expected < 0.06, "\(covered) vs \(expected)")
    }

    @Test func coordinatesTooLargeToFitDrawNothingAndDoNotTrap() {
        let mesh = Mesh(
            positions: [SIMD3(-1e308, 0, 0), SIMD3(1e308, 0, 0), SIMD3(0, 1e308, 0)], triangles: [SIMD3(0, 1, 2)])
        let image = SurfaceRenderer.render(mesh, colors: nil, view: .front, width: 16, height: 16)
        #expect(image.rgba.count == 16 * 16 * 4)
    }

    @Test func anEmptyMeshIsABlankPicture() {
        let image = SurfaceRenderer.render(Mesh(), colors: nil, view: .front, width: 8, height: 4)
        #expect(image.rgba == [UInt8](repeating: 255, count: 8 * 4 * 4))
    }
}
