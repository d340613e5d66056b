/// Errors raised by the DICOM data model: invalid UIDs, malformed DICOM JSON, values that cannot be encoded.
public struct DICOMCoreError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Stable machine-readable code; new codes may be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let invalidUID = Code(name: "invalid-uid")
        public static let invalidJSON = Code(name: "invalid-json")
        public static let invalidValue = Code(name: "invalid-value")
        public static let malformedData = Code(name: "malformed-data")
        public var description: String { name }
    }

    public var code: Code
    /// Safe to show: never contains PHI.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
