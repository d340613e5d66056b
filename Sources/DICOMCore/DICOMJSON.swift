import Foundation

/// The DICOM JSON Model of PS3.18 Annex F, in both directions.
///
/// Writing: tags as upper-case hexadecimal keys in ascending order, `vr` always present, empty values without
/// `Value`, PN as objects with `Alphabetic`/`Ideographic`/`Phonetic`, IS/DS as JSON numbers, AT as eight hex
/// digits, binary values as `InlineBinary` (base64) or `BulkDataURI`, sequences as nested objects.
public enum DICOMJSON {
    /// Names the BulkDataURI for a value that is not inlined, given the path of tags that leads to it
    /// (`[outer sequence tag, ..., element tag]`). Returning nil leaves the value out (only `vr` is written).
    public typealias BulkDataURIProvider = @Sendable ([Tag]) -> String?

    /// Options that decide which binary values are inlined.
    public struct Options: Sendable {
        /// Binary values longer than this many bytes go to BulkDataURI when a provider is given.
        public var inlineBinaryThreshold: Int
        public var bulkDataURI: BulkDataURIProvider?
        public var prettyPrinted: Bool

        public init(
            inlineBinaryThreshold: Int = 1024, bulkDataURI: BulkDataURIProvider? = nil, prettyPrinted: Bool = false
        ) {
            self.inlineBinaryThreshold = inlineBinaryThreshold
            self.bulkDataURI = bulkDataURI
            self.prettyPrinted = prettyPrinted
        }
    }

    // MARK: encoding

    public static func encode(_ dataset: Dataset, options: Options = Options()) -> String {
        var out = ""
        write(dataset, path: [], options: options, depth: 0, into: &out)
        return out
    }

    /// Encodes several datasets as a JSON array, as QIDO-RS and WADO-RS metadata answer.
    public static func encode(_ datasets: [Dataset], options: Options = Options()) -> String {
        var out = "["
        for (index, dataset) in datasets.enumerated() {
            if index > 0 { out += "," }
            if options.prettyPrinted { out += "\n" }
            write(dataset, path: [], options: options, depth: options.prettyPrinted ? 1 : 0, into: &out)
        }
        out += options.prettyPrinted ? "\n]" : "]"
        return out
    }

    private static func newline(_ options: Options, _ depth: Int, _ out: inout String) {
        guard options.prettyPrinted else { return }
        out += "\n" + String(repeating: "  ", count: depth)
    }

    private static func write(_ dataset: Dataset, path: [Tag], options: Options, depth: Int, into out: inout String) {
        out += "{"
        var first = true
        for element in dataset.elements where !element.tag.isGroupLength {
            if !first { out += "," }
            first = false
            newline(options, depth + 1, &out)
            out += "\""
            out += element.tag.hex
            out += "\":"
            if options.prettyPrinted { out += " " }
            write(element, path: path, options: options, depth: depth + 1, into: &out)
        }
        if !first { newline(options, depth, &out) }
        out += "}"
    }

    private static func write(_ element: DataElement, path: [Tag], options: Options, depth: Int, into out: inout String)
    {
        out += "{\"vr\":\""
        out += element.vr.rawValue
        out += "\""
        func values(_ items: [String]) {
            out += ",\"Value\":[" + items.joined(separator: ",") + "]"
        }
        switch element.value {
        case .strings(let strings):
            guard !strings.isEmpty else { break }
            out += ",\"Value\":["
            let numeric = element.vr == .IS || element.vr == .DS
            for (index, text) in strings.enumerated() {
                if index > 0 { out += "," }
                if numeric {
                    out += numberText(text, integer: element.vr == .IS)
                } else if text.isEmpty {
                    out += "null"
                } else {
                    appendQuoted(text, to: &out)
                }
            }
            out += "]"
        case .personNames(let names):
            guard !names.isEmpty else { break }
            out += ",\"Value\":["
            for (index, name) in names.enumerated() {
                if index > 0 { out += "," }
                out += personNameObject(name)
            }
            out += "]"
        case .unsigned(let numbers):
            guard !numbers.isEmpty else { break }
            values(numbers.map { String($0) })
        case .signed(let numbers):
            guard !numbers.isEmpty else { break }
            values(numbers.map { String($0) })
        case .doubles(let numbers):
            guard !numbers.isEmpty else { break }
            values(numbers.map { $0.isFinite ? jsonDouble($0) : "null" })
        case .tags(let tags):
            guard !tags.isEmpty else { break }
            values(tags.map { "\"\($0.hex)\"" })
        case .bytes(let data):
            guard !data.isEmpty else { break }
            if data.count > options.inlineBinaryThreshold, let uri = options.bulkDataURI?(path + [element.tag]) {
                out += ",\"BulkDataURI\":" + quote(uri)
            } else {
                out += ",\"InlineBinary\":\"" + data.base64EncodedString() + "\""
            }
        case .fragments, .bulk:
            if let uri = options.bulkDataURI?(path + [element.tag]) { out += ",\"BulkDataURI\":" + quote(uri) }
        case .bulkURI(let uri):
            out += ",\"BulkDataURI\":" + quote(uri)
        case .sequence(let items):
            guard !items.isEmpty else { break }
            out += ",\"Value\":["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                write(item, path: path + [element.tag], options: options, depth: depth + 1, into: &out)
            }
            out += "]"
        }
        out += "}"
    }

    private static func personNameObject(_ name: PersonName) -> String {
        var parts: [String] = []
        if !name.alphabetic.isEmpty { parts.append("\"Alphabetic\":" + quote(name.alphabetic)) }
        if !name.ideographic.isEmpty { parts.append("\"Ideographic\":" + quote(name.ideographic)) }
        if !name.phonetic.isEmpty { parts.append("\"Phonetic\":" + quote(name.phonetic)) }
        return parts.isEmpty ? "null" : "{" + parts.joined(separator: ",") + "}"
    }

    /// A DS/IS string as a JSON number: kept verbatim when it already is valid JSON number syntax.
    static func numberText(_ text: String, integer: Bool) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return "null" }
        if isJSONNumber(trimmed) { return trimmed }
        if integer, let value = Int64(trimmed.hasPrefix("+") ? String(trimmed.dropFirst()) : trimmed) {
            return String(value)
        }
        if let value = Double(trimmed), value.isFinite { return jsonDouble(value) }
        return "null"
    }

    private static func jsonDouble(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    static func isJSONNumber(_ text: String) -> Bool {
        // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
        var bytes = Array(text.utf8)[...]
        func digits() -> Int {
            var count = 0
            while let byte = bytes.first, byte >= 0x30 && byte <= 0x39 {
                bytes.removeFirst()
                count += 1
            }
            return count
        }
        if bytes.first == UInt8(ascii: "-") { bytes.removeFirst() }
        guard let lead = bytes.first else { return false }
        if lead == UInt8(ascii: "0") {
            bytes.removeFirst()
        } else if digits() == 0 {
            return false
        }
        if bytes.first == UInt8(ascii: ".") {
            bytes.removeFirst()
            if digits() == 0 { return false }
        }
        if bytes.first == UInt8(ascii: "e") || bytes.first == UInt8(ascii: "E") {
            bytes.removeFirst()
            if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") { bytes.removeFirst() }
            if digits() == 0 { return false }
        }
        return bytes.isEmpty
    }

    /// `text` as a JSON string literal (quotes, backslashes and control characters escaped).
    static func appendQuoted(_ text: String, to out: inout String) {
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += "\""
            out += text
            out += "\""
        } else {
            out += quote(text)
        }
    }

    public static func quote(_ text: String) -> String {
        // Most values need no escaping: copy them whole.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + text + "\""
        }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
