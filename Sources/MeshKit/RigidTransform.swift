import Foundation

/// A proper rigid transform: rotation (orthonormal, determinant +1) then translation.
public struct RigidTransform: Sendable, Equatable {
    /// Rows of the rotation matrix.
    public var rotation: (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>)
    public var translation: SIMD3<Double>

    public static let identity = RigidTransform(
        rotation: (SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)), translation: .zero)

    public init(rotation: (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>), translation: SIMD3<Double>) {
        self.rotation = rotation
        self.translation = translation
    }

    /// Rotation of `angle` radians about `axis` (Rodrigues), then translation.
    public init(axis: SIMD3<Double>, angle: Double, translation: SIMD3<Double> = .zero) {
        let k = normalized(axis)
        let c = cos(angle)
        let s = sin(angle)
        let t = 1 - c
        rotation = (
            SIMD3(t * k.x * k.x + c, t * k.x * k.y - s * k.z, t * k.x * k.z + s * k.y),
            SIMD3(t * k.x * k.y + s * k.z, t * k.y * k.y + c, t * k.y * k.z - s * k.x),
            SIMD3(t * k.x * k.z - s * k.y, t * k.y * k.z + s * k.x, t * k.z * k.z + c)
        )
        self.translation = translation
    }

    @inline(__always) public func rotate(_ p: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(dot(rotation.0, p), dot(rotation.1, p), dot(rotation.2, p))
    }

    @inline(__always) public func apply(_ p: SIMD3<Double>) -> SIMD3<Double> { rotate(p) + translation }

    /// `self` after `other`: x ↦ self(other(x)).
    public func composed(after other: RigidTransform) -> RigidTransform {
        let columns = (other.rotation.0, other.rotation.1, other.rotation.2)
        // R = R_self * R_other
        let c0 = SIMD3(columns.0.x, columns.1.x, columns.2.x)
        let c1 = SIMD3(columns.0.y, columns.1.y, columns.2.y)
        let c2 = SIMD3(columns.0.z, columns.1.z, columns.2.z)
        let r0 = SIMD3(dot(rotation.0, c0), dot(rotation.0, c1), dot(rotation.0, c2))
        let r1 = SIMD3(dot(rotation.1, c0), dot(rotation.1, c1), dot(rotation.1, c2))
        let r2 = SIMD3(dot(rotation.2, c0), dot(rotation.2, c1), dot(rotation.2, c2))
        return RigidTransform(rotation: (r0, r1, r2), translation: rotate(other.translation) + translation)
    }

    public var inverse: RigidTransform {
        let r0 = SIMD3(rotation.0.x, rotation.1.x, rotation.2.x)
        let r1 = SIMD3(rotation.0.y, rotation.1.y, rotation.2.y)
        let r2 = SIMD3(rotation.0.z, rotation.1.z, rotation.2.z)
        let inverted = RigidTransform(rotation: (r0, r1, r2), translation: .zero)
        return RigidTransform(rotation: (r0, r1, r2), translation: -inverted.rotate(translation))
    }

    /// The 4×4 matrix, row-major.
    public var matrix: [[Double]] {
        [
            [rotation.0.x, rotation.0.y, rotation.0.z, translation.x],
            [rotation.1.x, rotation.1.y, rotation.1.z, translation.y],
            [rotation.2.x, rotation.2.y, rotation.2.z, translation.z],
            [0, 0, 0, 1],
        ]
    }

    /// Rotation angle in radians.
    public var angle: Double {
        let trace = rotation.0.x + rotation.1.y + rotation.2.z
        return acos(max(-1, min(1, (trace - 1) / 2)))
    }

    public static func == (lhs: RigidTransform, rhs: RigidTransform) -> Bool { lhs.matrix == rhs.matrix }
}
