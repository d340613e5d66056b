import Foundation

/// The Native DICOM Model of PS3.19 A.1 (`application/dicom+xml`), for QIDO-RS, metadata and STOW-RS responses
/// asked for in XML.
public enum DICOMXML {
    public static func encode(_ dataset: Dataset, bulkDataURI: DICOMJSON.BulkDataURIProvider? = nil) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<NativeDicomModel xmlns=\"http://dicom.nema.org/PS3.19/models/NativeDICOM\">"
        write(dataset, path: [], bulkDataURI: bulkDataURI, into: &out)
        out += "</NativeDicomModel>\n"
        return out
    }

    private static func write(
        _ dataset: Dataset, path: [Tag], bulkDataURI: DICOMJSON.BulkDataURIProvider?, into out: inout String
    ) {
        for element in dataset.elements where !element.tag.isGroupLength {
            let keyword = TagDictionary.entry(for: element.tag)?.keyword
            out += "<DicomAttribute tag=\"\(element.tag.hex)\" vr=\"\(element.vr.rawValue)\""
            if let keyword { out += " keyword=\"\(keyword)\"" }
            out += ">"
            switch element.value {
            case .strings(let values):
                for (index, value) in values.enumerated() where !value.isEmpty {
                    out += "<Value number=\"\(index + 1)\">\(escape(value))</Value>"
                }
            case .personNames(let names):
                for (index, name) in names.enumerated() {
                    out += "<PersonName number=\"\(index + 1)\">"
                    for (group, text) in [
                        ("Alphabetic", name.alphabetic), ("Ideographic", name.ideographic),
                        ("Phonetic", name.phonetic),
                    ] where !text.isEmpty {
                        out += "<\(group)>"
                        let parts = text.split(separator: "^", omittingEmptySubsequences: false)
                        for (k, label) in ["FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix"]
                            .enumerated() where k < parts.count && !parts[k].isEmpty
                        {
                            out += "<\(label)>\(escape(String(parts[k])))</\(label)>"
                        }
                        out += "</\(group)>"
                    }
                    out += "</PersonName>"
                }
            case .unsigned(let values):
                for (index, value) in values.enumerated() { out += "<Value number=\"\(index + 1)\">\(value)</Value>" }
            case .signed(let values):
                for (index, value) in values.enumerated() { out += "<Value number=\"\(index + 1)\">\(value)</Value>" }
            case .doubles(let values):
                for (index, value) in values.enumerated() where value.isFinite {
                    out += "<Value number=\"\(index + 1)\">\(value)</Value>"
                }
            case .tags(let values):
                for (index, value) in values.enumerated() {
                    out += "<Value number=\"\(index + 1)\">\(value.hex)</Value>"
                }
            case .sequence(let items):
                for (index, item) in items.enumerated() {
                    out += "<Item number=\"\(index + 1)\">"
                    write(item, path: path + [element.tag], bulkDataURI: bulkDataURI, into: &out)
                    out += "</Item>"
                }
            case .bytes(let data):
                if data.count > 1024, let uri = bulkDataURI?(path + [element.tag]) {
                    out += "<BulkData uri=\"\(escape(uri))\"/>"
                } else if !data.isEmpty {
                    out += "<InlineBinary>\(data.base64EncodedString())</InlineBinary>"
                }
            case .fragments, .bulk:
                if let uri = bulkDataURI?(path + [element.tag]) { out += "<BulkData uri=\"\(escape(uri))\"/>" }
            case .bulkURI(let uri):
                out += "<BulkData uri=\"\(escape(uri))\"/>"
            }
            out += "</DicomAttribute>"
        }
    }

    /// Text for XML character data or a double-quoted attribute (control characters XML 1.0 forbids dropped).
    public static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default:
                // XML 1.0 forbids most control characters.
                if scalar.value < 0x20 && scalar != "\n" && scalar != "\r" && scalar != "\t" { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
