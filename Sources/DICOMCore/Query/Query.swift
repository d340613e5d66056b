import Foundation

/// One matching key of a QIDO-RS request: an attribute (a sequence path for nested ones) and the value to match.
/// An empty value (or a lone `*`) is universal matching: it only asks for the attribute to be returned.
public struct QueryKey: Sendable, Hashable {
    /// Tags from the top level down; the last one is the attribute matched.
    public var path: [Tag]
    public var vr: VR
    public var value: String

    public init(path: [Tag], vr: VR, value: String) {
        self.path = path
        self.vr = vr
        self.value = value
    }

    public var tag: Tag { path[0] }
    public var isUniversal: Bool { value.isEmpty || value == "*" }
    public var level: QueryLevel { QueryLevel.of(path[0]) }
}

/// A parsed QIDO-RS query (PS3.18 8.3.4): matching keys, `includefield`, `limit`/`offset` and `fuzzymatching`.
/// Parameters Facet does not know are ignored, as PS3.18 8.3 asks; malformed values of known ones are errors.
public struct Query: Sendable {
    public var keys: [QueryKey] = []
    /// Attributes named by `includefield` (paths), and whether `includefield=all` was given.
    public var includeFields: [[Tag]] = []
    public var includeAll = false
    public var limit: Int?
    public var offset = 0
    public var fuzzyMatching = false
    /// Parameter names that were not understood and were ignored.
    public var ignored: [String] = []

    public init() {}

    public static func parse(_ parameters: [(name: String, value: String)]) throws(DICOMCoreError) -> Query {
        var query = Query()
        for (name, value) in parameters {
            switch name.lowercased() {
            case "includefield":
                for field in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    if field.lowercased() == "all" {
                        query.includeAll = true
                    } else if let path = attributePath(field) {
                        query.includeFields.append(path)
                    } else {
                        query.ignored.append(field)
                    }
                }
            case "limit":
                guard let number = Int(value), number >= 0 else {
                    throw DICOMCoreError(.invalidValue, "limit must be a non-negative integer")
                }
                query.limit = number
            case "offset":
                guard let number = Int(value), number >= 0 else {
                    throw DICOMCoreError(.invalidValue, "offset must be a non-negative integer")
                }
                query.offset = number
            case "fuzzymatching":
                query.fuzzyMatching = value.lowercased() == "true"
            case "emptyvaluematching", "multiplevaluematching", "format", "charset", "accept":
                continue
            default:
                guard let path = attributePath(name) else {
                    query.ignored.append(name)
                    continue
                }
                let vr = TagDictionary.vr(for: path[path.count - 1])
                let key = QueryKey(path: path, vr: vr, value: value)
                try validate(key, name: name)
                query.keys.append(key)
            }
        }
        return query
    }

    /// `PatientName`, `00100010`, or a dotted path of either (`RequestAttributesSequence.00400009`).
    public static func attributePath(_ text: String) -> [Tag]? {
        var path: [Tag] = []
        for component in text.split(separator: ".", omittingEmptySubsequences: false) {
            if component.count == 8, let tag = Tag(hex: component) {
                path.append(tag)
            } else if let entry = TagDictionary.entry(forKeyword: String(component)) {
                path.append(entry.tag)
            } else {
                return nil
            }
        }
        guard !path.isEmpty else { return nil }
        // Every component but the last must be a sequence.
        for tag in path.dropLast() where TagDictionary.vr(for: tag) != .SQ && !tag.isPrivate { return nil }
        return path
    }

    static func validate(_ key: QueryKey, name: String) throws(DICOMCoreError) {
        guard !key.isUniversal else { return }
        switch key.vr {
        case .UI:
            for uid in key.value.split(separator: ",", omittingEmptySubsequences: false) {
                let trimmed = uid.trimmingCharacters(in: .whitespaces)
                guard UID.isValid(trimmed) else {
                    throw DICOMCoreError(.invalidUID, "\(name) is not a UID or a comma-separated list of UIDs")
                }
            }
        case .DA, .TM, .DT:
            guard Matching.range(key.value, vr: key.vr) != nil else {
                throw DICOMCoreError(.invalidValue, "\(name) is not a valid \(key.vr.rawValue) value or range")
            }
        case .IS, .DS, .US, .UL, .SS, .SL, .FL, .FD, .SV, .UV:
            guard Double(key.value.trimmingCharacters(in: .whitespaces)) != nil else {
                throw DICOMCoreError(.invalidValue, "\(name) must be a number")
            }
        default:
            break
        }
    }

    /// Whether `dataset` satisfies every key in `keys` (all of them, AND). Keys on attributes the dataset does
    /// not hold fail unless they are universal. StudyDate and StudyTime given together match as one date-time
    /// range (PS3.4 C.2.2.2.5.1).
    public static func matches(_ keys: [QueryKey], _ dataset: Dataset) -> Bool {
        let date = keys.first { $0.path == [.studyDate] && !$0.isUniversal }
        let time = keys.first { $0.path == [.studyTime] && !$0.isUniversal }
        if let date, let time {
            guard Matching.combinedDateTime(date: date.value, time: time.value, dataset) else { return false }
        }
        for key in keys where !key.isUniversal {
            if date != nil && time != nil && (key.path == [.studyDate] || key.path == [.studyTime]) { continue }
            guard Matching.matches(key, path: key.path[...], dataset) else { return false }
        }
        return true
    }
}
