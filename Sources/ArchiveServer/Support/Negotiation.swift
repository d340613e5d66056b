import Foundation

/// One entry of an Accept header: a media range, its parameters and its q-value.
struct AcceptEntry: Sendable {
    var media: MediaType
    var quality: Double
}

enum Negotiation {
    /// Parses Accept header values (several headers or comma lists), highest q first, order kept among equals.
    /// A missing header accepts anything.
    static func entries(_ values: [String]) -> [AcceptEntry] {
        var result: [(Int, AcceptEntry)] = []
        var position = 0
        for value in values {
            for item in splitOutsideQuotes(value) {
                let text = item.trimmingCharacters(in: .whitespaces)
                guard !text.isEmpty, let media = MediaType(text) else { continue }
                let quality = media.parameters["q"].flatMap(Double.init) ?? 1
                guard quality > 0 else { continue }
                var parameters = media.parameters
                parameters["q"] = nil
                var clean = media
                clean.parameters = parameters
                result.append((position, AcceptEntry(media: clean, quality: quality)))
                position += 1
            }
        }
        if result.isEmpty { return [AcceptEntry(media: MediaType("*/*")!, quality: 1)] }
        return result.sorted { $0.1.quality != $1.1.quality ? $0.1.quality > $1.1.quality : $0.0 < $1.0 }.map(\.1)
    }

    static func splitOutsideQuotes(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        for character in text {
            if character == "\"" { quoted.toggle() }
            if character == "," && !quoted {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }

    /// How QIDO-RS results and metadata are sent: a DICOM JSON array, or multipart/related with one XML part each.
    enum DatasetFormat { case json, xml }

    /// The first acceptable dataset format in the client's order of preference; nil when neither is acceptable.
    static func datasetFormat(_ entries: [AcceptEntry]) -> DatasetFormat? {
        for entry in entries {
            let media = entry.media
            if media.type == "multipart" {
                guard media.subtype == "related" || media.subtype == "*" else { continue }
                let type = media.parameters["type"]?.lowercased()
                if type == nil || type == "application/dicom+xml" { return .xml }
            } else if covers(media, "application", "dicom+json") || covers(media, "application", "json") {
                return .json
            }
        }
        return nil
    }

    /// Whether a media range covers `type/subtype`.
    static func covers(_ range: MediaType, _ type: String, _ subtype: String) -> Bool {
        (range.type == "*" || range.type == type) && (range.subtype == "*" || range.subtype == subtype)
    }
}
