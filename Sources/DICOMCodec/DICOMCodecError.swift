/// Errors raised while reading, writing or converting DICOM. Messages never contain PHI.
public struct DICOMCodecError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Stable machine-readable code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let initialization = Code(name: "dcmtk-initialization")
        public static let notDICOM = Code(name: "not-dicom")
        public static let malformedDICOM = Code(name: "malformed-dicom")
        public static let io = Code(name: "io")
        public static let unsupported = Code(name: "unsupported")
        public static let limitExceeded = Code(name: "limit-exceeded")
        /// A frame number the object does not have (the server answers 404).
        public static let noSuchFrame = Code(name: "no-such-frame")
        public static let invalidImage = Code(name: "invalid-image")
        public static let invalidMesh = Code(name: "invalid-mesh")
        public static let invalidMetadata = Code(name: "invalid-metadata")
        public static let missingFile = Code(name: "missing-file")
        public static let unsafePath = Code(name: "unsafe-path")
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
