/// DICOM unique identifiers: validation (PS3.5 §9.1) and generation under a configurable root.
public enum UID {
    public static let implicitVRLittleEndian = "1.2.840.10008.1.2"
    public static let explicitVRLittleEndian = "1.2.840.10008.1.2.1"
    public static let jpegBaseline = "1.2.840.10008.1.2.4.50"
    public static let jpegExtended = "1.2.840.10008.1.2.4.51"
    public static let jpegProgressive = "1.2.840.10008.1.2.4.55"
    public static let vlPhotographicImageStorage = "1.2.840.10008.5.1.4.1.1.77.1.4"
    public static let encapsulatedSTLStorage = "1.2.840.10008.5.1.4.1.1.104.3"
    public static let encapsulatedOBJStorage = "1.2.840.10008.5.1.4.1.1.104.4"
    public static let encapsulatedMTLStorage = "1.2.840.10008.5.1.4.1.1.104.5"

    /// The UUID-derived root of ISO/IEC 9834-8 (PS3.5 §B.2): needs no registration.
    public static let uuidRoot = "2.25"

    /// Checks the UID grammar: 1–64 characters, digits and dots, no empty component, no leading zero in a
    /// multi-digit component.
    public static func validate(_ uid: String) throws(DICOMCoreError) {
        guard !uid.isEmpty, uid.utf8.count <= 64 else {
            throw DICOMCoreError(.invalidUID, "a UID must be 1 to 64 characters long")
        }
        for component in uid.split(separator: ".", omittingEmptySubsequences: false) {
            guard !component.isEmpty else { throw DICOMCoreError(.invalidUID, "a UID component is empty") }
            guard component.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw DICOMCoreError(.invalidUID, "a UID may contain only digits and dots")
            }
            guard component.count == 1 || component.first != "0" else {
                throw DICOMCoreError(.invalidUID, "a UID component may not have a leading zero")
            }
        }
    }

    public static func isValid(_ uid: String) -> Bool {
        do {
            try validate(uid)
            return true
        } catch {
            return false
        }
    }
}

/// Makes new UIDs under one root. With the default root (`2.25`) each UID is the decimal form of a random
/// 128-bit UUID; under an organisation's own root the suffix is as many random decimal digits as fit in 64.
public struct UIDGenerator: Sendable {
    public let root: String
    private let suffixDigits: Int

    public init(root: String = UID.uuidRoot) throws(DICOMCoreError) {
        try UID.validate(root)
        let room = 64 - root.utf8.count - 1
        guard room >= 24 else {
            throw DICOMCoreError(.invalidUID, "UID root is too long: fewer than 24 digits left for unique suffixes")
        }
        self.root = root
        self.suffixDigits = min(room, 39)
    }

    public func make() -> String {
        var generator = SystemRandomNumberGenerator()
        var high = generator.next() as UInt64
        let low = generator.next() as UInt64
        if root == UID.uuidRoot {
            // RFC 4122 version 4, variant 1, as a decimal integer.
            high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
            let variantLow = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
            return root + "." + Self.decimal(high: high, low: variantLow)
        }
        var digits = Self.decimal(high: high, low: low)
        if digits.count > suffixDigits { digits = String(digits.prefix(suffixDigits)) }
        while digits.count > 1 && digits.first == "0" { digits.removeFirst() }
        return root + "." + digits
    }

    /// Decimal representation of a 128-bit unsigned integer.
    static func decimal(high: UInt64, low: UInt64) -> String {
        var words = (high, low)
        if words.0 == 0 && words.1 == 0 { return "0" }
        var digits: [UInt8] = []
        while words.0 != 0 || words.1 != 0 {
            let (q1, r1) = words.0.quotientAndRemainder(dividingBy: 10)
            let (q0, r0) = (10 as UInt64).dividingFullWidth((r1, words.1))
            words = (q1, q0)
            digits.append(UInt8(r0) + 0x30)
        }
        return String(decoding: digits.reversed(), as: UTF8.self)
    }
}
