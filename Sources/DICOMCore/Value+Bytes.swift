import Foundation

extension Value {
    /// Decodes a value from its Explicit VR Little Endian bytes. SQ values are not handled here.
    public static func decode(_ bytes: Data, vr: VR) throws(DICOMCoreError) -> Value {
        if vr.isString {
            var text = String(data: bytes, encoding: .utf8) ?? String(decoding: bytes, as: UTF8.self)
            while let last = text.unicodeScalars.last, last == "\0" || last == " " { text.unicodeScalars.removeLast() }
            if text.isEmpty { return vr == .PN ? .personNames([]) : .strings([]) }
            let parts: [String] =
                vr.isSingleValuedText
                ? [text] : text.split(separator: "\\", omittingEmptySubsequences: false).map(String.init)
            if vr == .PN { return .personNames(parts.map { PersonName(dicom: $0) }) }
            return .strings(parts.map { trim($0, vr: vr) })
        }
        if vr.isBinary { return .bytes(bytes) }
        guard let width = vr.fixedWidth else {
            throw DICOMCoreError(.invalidValue, "VR \(vr.rawValue) has no binary decoding")
        }
        guard bytes.count % width == 0 else {
            throw DICOMCoreError(
                .malformedData, "value length \(bytes.count) is not a multiple of \(width) for \(vr.rawValue)")
        }
        let raw = [UInt8](bytes)
        func word(_ offset: Int, _ size: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in 0..<size { value |= UInt64(raw[offset + index]) << (8 * index) }
            return value
        }
        let count = raw.count / width
        switch vr {
        case .US: return .unsigned((0..<count).map { word($0 * 2, 2) })
        case .UL: return .unsigned((0..<count).map { word($0 * 4, 4) })
        case .UV: return .unsigned((0..<count).map { word($0 * 8, 8) })
        case .SS: return .signed((0..<count).map { Int64(Int16(truncatingIfNeeded: word($0 * 2, 2))) })
        case .SL: return .signed((0..<count).map { Int64(Int32(truncatingIfNeeded: word($0 * 4, 4))) })
        case .SV: return .signed((0..<count).map { Int64(bitPattern: word($0 * 8, 8)) })
        case .FL: return .doubles((0..<count).map { Double(Float(bitPattern: UInt32(word($0 * 4, 4)))) })
        case .FD: return .doubles((0..<count).map { Double(bitPattern: word($0 * 8, 8)) })
        case .AT: return .tags((0..<count).map { Tag(UInt16(word($0 * 4, 2)), UInt16(word($0 * 4 + 2, 2))) })
        default: throw DICOMCoreError(.invalidValue, "VR \(vr.rawValue) has no binary decoding")
        }
    }

    private static func trim(_ value: String, vr: VR) -> String {
        switch vr {
        case .AE, .AS, .CS, .DA, .DS, .DT, .IS, .TM, .UI:
            return value.trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        default:
            var text = value
            while text.hasSuffix(" ") { text.removeLast() }
            return text
        }
    }

    /// Encodes the value as Explicit VR Little Endian bytes, padded to even length. Sequences, fragments and
    /// unloaded bulk values are encoded by the dataset writer, not here.
    public func encoded(vr: VR) throws(DICOMCoreError) -> Data {
        var out = Data()
        func append(_ value: UInt64, _ size: Int) {
            for index in 0..<size { out.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
        }
        switch self {
        case .strings(let values):
            guard vr.isString, vr != .PN else {
                throw DICOMCoreError(.invalidValue, "strings given for VR \(vr.rawValue)")
            }
            if vr.isSingleValuedText && values.count > 1 {
                throw DICOMCoreError(.invalidValue, "VR \(vr.rawValue) holds a single value")
            }
            out.append(contentsOf: Array(values.joined(separator: "\\").utf8))
            if out.count % 2 == 1 { out.append(vr == .UI ? 0 : 0x20) }
        case .personNames(let names):
            guard vr == .PN else { throw DICOMCoreError(.invalidValue, "person names given for VR \(vr.rawValue)") }
            out.append(contentsOf: Array(names.map(\.dicomString).joined(separator: "\\").utf8))
            if out.count % 2 == 1 { out.append(0x20) }
        case .unsigned(let values):
            let size: Int
            switch vr {
            case .US: size = 2
            case .UL: size = 4
            case .UV: size = 8
            default: throw DICOMCoreError(.invalidValue, "unsigned integers given for VR \(vr.rawValue)")
            }
            for value in values {
                guard size == 8 || value < (1 << (8 * UInt64(size))) else {
                    throw DICOMCoreError(.invalidValue, "value \(value) does not fit VR \(vr.rawValue)")
                }
                append(value, size)
            }
        case .signed(let values):
            let size: Int
            switch vr {
            case .SS: size = 2
            case .SL: size = 4
            case .SV: size = 8
            default: throw DICOMCoreError(.invalidValue, "signed integers given for VR \(vr.rawValue)")
            }
            for value in values { append(UInt64(bitPattern: value), size) }
        case .doubles(let values):
            switch vr {
            case .FL: for value in values { append(UInt64(Float(value).bitPattern), 4) }
            case .FD: for value in values { append(value.bitPattern, 8) }
            default: throw DICOMCoreError(.invalidValue, "floating point values given for VR \(vr.rawValue)")
            }
        case .tags(let tags):
            guard vr == .AT else { throw DICOMCoreError(.invalidValue, "tags given for VR \(vr.rawValue)") }
            for tag in tags {
                append(UInt64(tag.group), 2)
                append(UInt64(tag.element), 2)
            }
        case .bytes(let data):
            out = data
            if out.count % 2 == 1 { out.append(0) }
        case .sequence, .fragments, .bulk, .bulkURI:
            throw DICOMCoreError(.invalidValue, "value of this kind is not encoded as bytes")
        }
        return out
    }
}
