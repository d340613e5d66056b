import Foundation

/// A region of interest in the BEFORE surface's frame: a sphere, an axis-aligned box, or a set of vertices.
public enum Region: Sendable, Equatable {
    case sphere(center: SIMD3<Double>, radius: Double)
    case box(minimum: SIMD3<Double>, maximum: SIMD3<Double>)
    case vertices(Set<Int>)

    public func contains(_ p: SIMD3<Double>) -> Bool {
        switch self {
        case .sphere(let center, let radius):
            let d = p - center
            return dot(d, d) <= radius * radius
        case .box(let minimum, let maximum):
            return BoundingBox(minimum: minimum, maximum: maximum).contains(p)
        case .vertices:
            return false
        }
    }

    /// False only when `p` is certainly further than `margin` from the region (a vertex mask cannot say).
    public func mayContain(_ p: SIMD3<Double>, margin: Double) -> Bool {
        switch self {
        case .vertices: true
        default: expanded(by: margin).contains(p)
        }
    }

    /// The same region grown by `margin` mm (a vertex mask cannot grow and is returned as is).
    public func expanded(by margin: Double) -> Region {
        switch self {
        case .sphere(let center, let radius): .sphere(center: center, radius: radius + margin)
        case .box(let minimum, let maximum):
            .box(minimum: minimum - SIMD3(repeating: margin), maximum: maximum + SIMD3(repeating: margin))
        case .vertices: self
        }
    }

    /// Parses `sphere:X,Y,Z,R`, `box:X0,Y0,Z0,X1,Y1,Z1` or `mask:FILE` (FILE lists BEFORE's vertex indices,
    /// 0-based, separated by commas, spaces or newlines, or as a JSON array).
    public init(parsing text: String) throws(MeshError) {
        if text.lowercased().hasPrefix("mask:") {
            let path = String(text.dropFirst(5))
            guard let data = FileManager.default.contents(atPath: path), data.count <= 256 << 20 else {
                throw MeshError(.malformed, "vertex mask file cannot be read")
            }
            let separators = CharacterSet(charactersIn: "[], \t\r\n")
            var indices = Set<Int>()
            for token in String(decoding: data, as: UTF8.self).components(separatedBy: separators) where !token.isEmpty
            {
                guard let index = Int(token), index >= 0 else {
                    throw MeshError(.malformed, "vertex mask must hold non-negative integers")
                }
                indices.insert(index)
            }
            guard !indices.isEmpty else { throw MeshError(.malformed, "vertex mask is empty") }
            self = .vertices(indices)
            return
        }
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else {
            throw MeshError(.malformed, "region must be sphere:X,Y,Z,R, box:X0,Y0,Z0,X1,Y1,Z1 or mask:FILE")
        }
        let numbers = parts[1].split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard numbers.allSatisfy({ $0?.isFinite == true }) else {
            throw MeshError(.malformed, "region values must be numbers")
        }
        let values = numbers.compactMap { $0 }
        switch parts[0].lowercased() {
        case "sphere":
            guard values.count == 4, values[3] > 0 else {
                throw MeshError(.malformed, "sphere region needs X,Y,Z,R with R > 0")
            }
            self = .sphere(center: SIMD3(values[0], values[1], values[2]), radius: values[3])
        case "box":
            guard values.count == 6 else { throw MeshError(.malformed, "box region needs X0,Y0,Z0,X1,Y1,Z1") }
            let a = SIMD3(values[0], values[1], values[2])
            let b = SIMD3(values[3], values[4], values[5])
            self = .box(minimum: vmin(a, b), maximum: vmax(a, b))
        default:
            throw MeshError(.malformed, "region must be sphere:X,Y,Z,R, box:X0,Y0,Z0,X1,Y1,Z1 or mask:FILE")
        }
    }
}
