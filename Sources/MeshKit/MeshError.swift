/// Errors raised while reading, checking or comparing meshes. Messages name lines, counts and properties, never
/// file names.
public struct MeshError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Stable machine-readable code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let malformed = Code(name: "malformed-mesh")
        public static let truncated = Code(name: "truncated-mesh")
        public static let indexOutOfRange = Code(name: "index-out-of-range")
        public static let nonFinite = Code(name: "non-finite-coordinate")
        public static let limitExceeded = Code(name: "limit-exceeded")
        public static let unsupported = Code(name: "unsupported")
        public static let empty = Code(name: "empty-mesh")
        public static let registrationFailed = Code(name: "registration-failed")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
