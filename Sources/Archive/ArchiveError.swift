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
        /// What was asked for is understood but cannot be produced in any representation the caller accepts (a
        /// conversion Facet does not make, an object too large to decode): HTTP 406.
        public static let notAcceptable = Code(name: "not-acceptable")
        /// The request itself is malformed or asks for more than one request may: HTTP 400.
        public static let invalidRequest = Code(name: "invalid-request")
        /// A file that is not of a kind the operation takes (not a JPEG or PNG where a photo is expected): 415.
        public static let unsupportedMediaType = Code(name: "unsupported-media-type")
        /// A file of the right kind that cannot be converted (a broken mesh, a missing MTL): 422.
        public static let unprocessable = Code(name: "unprocessable")
        /// More than one request may make or hold (decoded pixels of an upload): 413.
        public static let tooLarge = Code(name: "too-large")
        /// The blocking pool's queue is full: 503 with Retry-After.
        public static let busy = Code(name: "busy")
        /// A storage service (the object store, the database) does not answer: 503 with Retry-After.
        public static let unavailable = Code(name: "unavailable")
        /// Two writers raced on one key in the index; the operation is decided again (never reaches a client).
        public static let conflictRetry = Code(name: "conflict-retry")
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
