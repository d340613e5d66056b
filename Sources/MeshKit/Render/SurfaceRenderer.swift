import Foundation

/// A small software renderer for reports: a surface with a colour per vertex, seen orthographically from one side,
/// rasterised with a z-buffer, colours interpolated across each triangle and shaded by the angle to the viewer
/// (headlight Lambert, so no side is dark). Deterministic, no GPU, no dependencies.
public enum SurfaceRenderer {
    /// Where the viewer stands, in the capture's frame (y up, the subject facing +z, their left toward −x as in
    /// `testdata/generate_meshes.py`).
    public enum View: String, Sendable, CaseIterable {
        case front, left, right

        /// The view direction's basis: screen right, screen up, toward the viewer.
        var basis: (right: SIMD3<Double>, up: SIMD3<Double>, toward: SIMD3<Double>) {
            switch self {
            case .front: (SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1))
            case .left: (SIMD3(0, 0, 1), SIMD3(0, 1, 0), SIMD3(-1, 0, 0))
            case .right: (SIMD3(0, 0, -1), SIMD3(0, 1, 0), SIMD3(1, 0, 0))
            }
        }
    }

    /// An RGBA image, rows top to bottom, 4 bytes per pixel; the background is white.
    public struct Image: Sendable {
        public var width: Int
        public var height: Int
        public var rgba: [UInt8]
    }

    /// Renders `mesh` with `colors` (one per vertex; grey when nil) from `view`, fitted into `width`×`height` with a
    /// margin.
    public static func render(
        _ mesh: Mesh, colors: [SIMD3<UInt8>]?, view: View, width: Int, height: Int
    ) -> Image {
        let width = max(1, min(width, 8192))
        let height = max(1, min(height, 8192))
        var rgba = [UInt8](repeating: 255, count: width * height * 4)
        guard !mesh.positions.isEmpty, !mesh.triangles.isEmpty else {
            return Image(width: width, height: height, rgba: rgba)
        }
        let (right, up, toward) = view.basis
        // Screen coordinates: x right, y up, depth toward the viewer.
        let projected = mesh.positions.map { p in SIMD3(dot(p, right), dot(p, up), dot(p, toward)) }
        var low = SIMD2(Double.infinity, Double.infinity)
        var high = -low
        for p in projected where p.x.isFinite && p.y.isFinite {
            low = SIMD2(min(low.x, p.x), min(low.y, p.y))
            high = SIMD2(max(high.x, p.x), max(high.y, p.y))
        }
        let margin = 0.05
        let spanX = max(high.x - low.x, 1e-9)
        let spanY = max(high.y - low.y, 1e-9)
        let scale = min(Double(width) * (1 - 2 * margin) / spanX, Double(height) * (1 - 2 * margin) / spanY)
        let offsetX = (Double(width) - spanX * scale) / 2
        let offsetY = (Double(height) - spanY * scale) / 2
        let pixels = projected.map { p in
            SIMD3((p.x - low.x) * scale + offsetX, Double(height) - ((p.y - low.y) * scale + offsetY), p.z)
        }
        var depth = [Double](repeating: -Double.infinity, count: width * height)
        let grey = SIMD3<UInt8>(200, 200, 200)
        for triangle in mesh.triangles {
            let (i0, i1, i2) = (Int(triangle.x), Int(triangle.y), Int(triangle.z))
            guard i0 < pixels.count, i1 < pixels.count, i2 < pixels.count else { continue }
            let (a, b, c) = (pixels[i0], pixels[i1], pixels[i2])
            // Coordinates so large that the fit overflowed: nothing to draw (and no Int conversion of infinity).
            guard [a, b, c].allSatisfy({ $0.x.isFinite && $0.y.isFinite && $0.z.isFinite }) else { continue }
            // Shading: the face normal's angle to the viewer (both sides lit alike).
            let normal = cross(mesh.positions[i1] - mesh.positions[i0], mesh.positions[i2] - mesh.positions[i0])
            let length = (normal * normal).sum().squareRoot()
            guard length > 0, length.isFinite else { continue }
            let light = 0.35 + 0.65 * abs(dot(normal / length, toward))
            let area = (b.x - a.x) * (c.y - a.y) - (c.x - a.x) * (b.y - a.y)
            guard abs(area) > 1e-12 else { continue }
            let minX = max(0, Int(min(a.x, b.x, c.x).rounded(.down)))
            let maxX = min(width - 1, Int(max(a.x, b.x, c.x).rounded(.up)))
            let minY = max(0, Int(min(a.y, b.y, c.y).rounded(.down)))
            let maxY = min(height - 1, Int(max(a.y, b.y, c.y).rounded(.up)))
            guard minX <= maxX, minY <= maxY else { continue }
            let ca = colors.map { i0 < $0.count ? SIMD3<Double>($0[i0]) : SIMD3<Double>(grey) } ?? SIMD3<Double>(grey)
            let cb = colors.map { i1 < $0.count ? SIMD3<Double>($0[i1]) : SIMD3<Double>(grey) } ?? SIMD3<Double>(grey)
            let cc = colors.map { i2 < $0.count ? SIMD3<Double>($0[i2]) : SIMD3<Double>(grey) } ?? SIMD3<Double>(grey)
            for y in minY...maxY {
                let py = Double(y) + 0.5
                for x in minX...maxX {
                    let px = Double(x) + 0.5
                    let w0 = ((b.x - px) * (c.y - py) - (c.x - px) * (b.y - py)) / area
                    let w1 = ((c.x - px) * (a.y - py) - (a.x - px) * (c.y - py)) / area
                    let w2 = 1 - w0 - w1
                    guard w0 >= 0, w1 >= 0, w2 >= 0 else { continue }
                    let z = w0 * a.z + w1 * b.z + w2 * c.z
                    let index = y * width + x
                    guard z > depth[index] else { continue }
                    depth[index] = z
                    let color = (ca * w0 + cb * w1 + cc * w2) * light
                    rgba[index * 4] = UInt8(max(0, min(255, color.x.rounded())))
                    rgba[index * 4 + 1] = UInt8(max(0, min(255, color.y.rounded())))
                    rgba[index * 4 + 2] = UInt8(max(0, min(255, color.z.rounded())))
                    rgba[index * 4 + 3] = 255
                }
            }
        }
        return Image(width: width, height: height, rgba: rgba)
    }

    @inline(__always) static func dot(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double { (a * b).sum() }
}
