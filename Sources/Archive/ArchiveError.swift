/// Errors of the archive: storage, keys, integrity, audit. Messages never contain PHI.
public struct ArchiveError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Stable machine-readable code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let notFound = Code(name: "not-found")
        public static let io = Code(name: "io")
        public static let key = Code(name: "key")
        public static let integrity = Code(name: "integrity")
        public static let invalidRange = Code(name: "invalid-range")
        public static let audit = Code(name: "audit")
        /// The index does not know blobs that are on disk: it is missing, replaced or older than them.
        public static let indexMismatch = Code(name: "index-mismatch")
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
