import Foundation

extension DICOMJSON {
    /// Deepest sequence nesting accepted: the number of nested sequence levels, the top-level dataset being level 0.
    /// The same number as the DICOM reader's limit (CDCMTK_MAXIMUM_NESTING; DICOMCodec refuses to start if they
    /// differ), so every object that is read and indexed can be decoded from the index again.
    public static let maximumDepth = 32

    /// Reads one DICOM JSON object (a dataset).
    /// JSON `true`/`false`, told apart from the numbers 1 and 0 (which Foundation on Linux also calls `Bool`).
    static func isBoolean(_ value: Any) -> Bool {
        String(describing: type(of: value)).contains("Boolean") || type(of: value) == Bool.self
    }

    public static func decode(_ data: Data) throws(DICOMCoreError) -> Dataset {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw DICOMCoreError(.invalidJSON, "not valid JSON")
        }
        guard let dictionary = object as? [String: Any] else {
            throw DICOMCoreError(.invalidJSON, "a DICOM JSON dataset must be an object")
        }
        return try decodeDataset(dictionary, depth: 0)
    }

    /// Reads a DICOM JSON array of datasets.
    public static func decodeArray(_ data: Data) throws(DICOMCoreError) -> [Dataset] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw DICOMCoreError(.invalidJSON, "not valid JSON")
        }
        guard let array = object as? [Any] else { throw DICOMCoreError(.invalidJSON, "expected a JSON array") }
        var datasets: [Dataset] = []
        for entry in array {
            guard let dictionary = entry as? [String: Any] else {
                throw DICOMCoreError(.invalidJSON, "array entries must be objects")
            }
            datasets.append(try decodeDataset(dictionary, depth: 0))
        }
        return datasets
    }

    private static func decodeDataset(_ dictionary: [String: Any], depth: Int) throws(DICOMCoreError) -> Dataset {
        guard depth <= maximumDepth else { throw DICOMCoreError(.invalidJSON, "sequences nested too deeply") }
        var dataset = Dataset()
        for (key, raw) in dictionary {
            guard let tag = Tag(hex: key) else { throw DICOMCoreError(.invalidJSON, "\"\(key)\" is not a tag") }
            guard let attribute = raw as? [String: Any] else {
                throw DICOMCoreError(.invalidJSON, "attribute \(key) is not an object")
            }
            guard let vrText = attribute["vr"] as? String, let vr = VR(rawValue: vrText) else {
                throw DICOMCoreError(.invalidJSON, "attribute \(key) has no valid vr")
            }
            dataset.set(DataElement(tag, vr, try decodeValue(attribute, tag: tag, vr: vr, depth: depth)))
        }
        return dataset
    }

    private static func decodeValue(_ attribute: [String: Any], tag: Tag, vr: VR, depth: Int) throws(DICOMCoreError)
        -> Value
    {
        if let inline = attribute["InlineBinary"] {
            guard let text = inline as? String, let data = Data(base64Encoded: text) else {
                throw DICOMCoreError(.invalidJSON, "attribute \(tag.hex) has invalid InlineBinary")
            }
            return .bytes(data)
        }
        if let uri = attribute["BulkDataURI"] {
            guard let text = uri as? String else {
                throw DICOMCoreError(.invalidJSON, "attribute \(tag.hex) has invalid BulkDataURI")
            }
            return .bulkURI(text)
        }
        guard let rawValues = attribute["Value"] else { return emptyValue(vr) }
        guard let values = rawValues as? [Any] else {
            throw DICOMCoreError(.invalidJSON, "attribute \(tag.hex) Value is not an array")
        }
        func bad() -> DICOMCoreError {
            DICOMCoreError(.invalidJSON, "attribute \(tag.hex) has a value of the wrong type for \(vr.rawValue)")
        }
        switch vr {
        case .SQ:
            var items: [Dataset] = []
            for value in values {
                guard let item = value as? [String: Any] else { throw bad() }
                items.append(try decodeDataset(item, depth: depth + 1))
            }
            return .sequence(items)
        case .PN:
            var names: [PersonName] = []
            for value in values {
                if value is NSNull {
                    names.append(PersonName())
                    continue
                }
                guard let object = value as? [String: Any] else { throw bad() }
                names.append(
                    PersonName(
                        alphabetic: object["Alphabetic"] as? String ?? "",
                        ideographic: object["Ideographic"] as? String ?? "",
                        phonetic: object["Phonetic"] as? String ?? ""))
            }
            return .personNames(names)
        case .AT:
            var tags: [Tag] = []
            for value in values {
                guard let text = value as? String, let parsed = Tag(hex: text) else { throw bad() }
                tags.append(parsed)
            }
            return .tags(tags)
        case .IS, .DS:
            var strings: [String] = []
            for value in values {
                if value is NSNull {
                    strings.append("")
                } else if let number = value as? NSNumber, !Self.isBoolean(value) {
                    strings.append(vr == .IS ? String(number.int64Value) : shortest(number.doubleValue))
                } else if let text = value as? String {
                    strings.append(text)
                } else {
                    throw bad()
                }
            }
            return .strings(strings)
        case .US, .UL, .UV:
            var numbers: [UInt64] = []
            for value in values {
                guard let number = value as? NSNumber, number.doubleValue >= 0 else { throw bad() }
                numbers.append(number.uint64Value)
            }
            return .unsigned(numbers)
        case .SS, .SL, .SV:
            var numbers: [Int64] = []
            for value in values {
                guard let number = value as? NSNumber else { throw bad() }
                numbers.append(number.int64Value)
            }
            return .signed(numbers)
        case .FL, .FD:
            var numbers: [Double] = []
            for value in values {
                if value is NSNull {
                    numbers.append(.nan)
                    continue
                }
                guard let number = value as? NSNumber else { throw bad() }
                numbers.append(number.doubleValue)
            }
            return .doubles(numbers)
        case .OB, .OD, .OF, .OL, .OV, .OW, .UN:
            throw DICOMCoreError(
                .invalidJSON, "attribute \(tag.hex) of VR \(vr.rawValue) must use InlineBinary or BulkDataURI")
        default:
            var strings: [String] = []
            for value in values {
                if value is NSNull {
                    strings.append("")
                } else if let text = value as? String {
                    strings.append(text)
                } else {
                    throw bad()
                }
            }
            return .strings(strings)
        }
    }

    private static func emptyValue(_ vr: VR) -> Value {
        switch vr {
        case .SQ: .sequence([])
        case .PN: .personNames([])
        case .US, .UL, .UV: .unsigned([])
        case .SS, .SL, .SV: .signed([])
        case .FL, .FD: .doubles([])
        case .AT: .tags([])
        case .OB, .OD, .OF, .OL, .OV, .OW, .UN: .bytes(Data())
        default: .strings([])
        }
    }

    private static func shortest(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
