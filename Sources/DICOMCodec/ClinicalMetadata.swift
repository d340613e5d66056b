import DICOMCore
import Foundation

/// What a clinic knows about a capture: patient, study, series, region, view, laterality and timing.
/// Every field is validated before it reaches a dataset; error messages name the field, never its value.
public struct ClinicalMetadata: Sendable, Equatable {
    public var patientID: String?
    public var patientName: String?
    /// `YYYYMMDD`.
    public var patientBirthDate: String?
    /// `M`, `F` or `O`.
    public var patientSex: String?
    public var studyInstanceUID: String?
    /// `YYYYMMDD` / `HHMMSS`.
    public var studyDate: String?
    public var studyTime: String?
    public var studyDescription: String?
    public var accessionNumber: String?
    public var studyID: String?
    public var seriesDescription: String?
    public var bodyPartExamined: String?
    public var region: AnatomicRegion?
    public var view: PhotoView?
    /// Image Laterality: `R`, `L`, `B` or `U`.
    public var laterality: String?
    public var timing: Timing?
    public var manufacturer: String?
    public var manufacturerModelName: String?
    public var deviceSerialNumber: String?
    public var softwareVersions: String?

    public init() {}

    /// Reads the `--metadata` JSON document:
    /// `{"patient": {"id", "name", "birthDate", "sex"}, "study": {"instanceUID", "date", "time", "description",
    /// "accessionNumber", "id"}, "series": {"description", "bodyPart"}, "region", "view", "laterality", "timing",
    /// "equipment": {"manufacturer", "model", "serialNumber", "softwareVersions"}}`. Unknown keys are refused.
    public static func decode(json data: Data) throws(DICOMCodecError) -> ClinicalMetadata {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw DICOMCodecError(.invalidMetadata, "metadata is not valid JSON")
        }
        guard let root = parsed as? [String: Any] else {
            throw DICOMCodecError(.invalidMetadata, "metadata must be a JSON object")
        }
        var metadata = ClinicalMetadata()
        func text(_ dictionary: [String: Any], _ key: String, _ path: String) throws(DICOMCodecError) -> String? {
            guard let value = dictionary[key] else { return nil }
            if value is NSNull { return nil }
            guard let string = value as? String else {
                throw DICOMCodecError(.invalidMetadata, "metadata field \(path) must be a string")
            }
            return string
        }
        func section(_ key: String, allowed: Set<String>) throws(DICOMCodecError) -> [String: Any] {
            guard let value = root[key] else { return [:] }
            guard let dictionary = value as? [String: Any] else {
                throw DICOMCodecError(.invalidMetadata, "metadata field \(key) must be an object")
            }
            if let unknown = dictionary.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw DICOMCodecError(.invalidMetadata, "unknown metadata field \(key).\(Self.safeKey(unknown))")
            }
            return dictionary
        }
        let topLevel: Set = ["patient", "study", "series", "region", "view", "laterality", "timing", "equipment"]
        if let unknown = root.keys.sorted().first(where: { !topLevel.contains($0) }) {
            throw DICOMCodecError(.invalidMetadata, "unknown metadata field \(Self.safeKey(unknown))")
        }
        let patient = try section("patient", allowed: ["id", "name", "birthDate", "sex"])
        metadata.patientID = try text(patient, "id", "patient.id")
        metadata.patientName = try text(patient, "name", "patient.name")
        metadata.patientBirthDate = try text(patient, "birthDate", "patient.birthDate")
        metadata.patientSex = try text(patient, "sex", "patient.sex")
        let study = try section(
            "study", allowed: ["instanceUID", "date", "time", "description", "accessionNumber", "id"])
        metadata.studyInstanceUID = try text(study, "instanceUID", "study.instanceUID")
        metadata.studyDate = try text(study, "date", "study.date")
        metadata.studyTime = try text(study, "time", "study.time")
        metadata.studyDescription = try text(study, "description", "study.description")
        metadata.accessionNumber = try text(study, "accessionNumber", "study.accessionNumber")
        metadata.studyID = try text(study, "id", "study.id")
        let series = try section("series", allowed: ["description", "bodyPart"])
        metadata.seriesDescription = try text(series, "description", "series.description")
        metadata.bodyPartExamined = try text(series, "bodyPart", "series.bodyPart")
        let equipment = try section(
            "equipment", allowed: ["manufacturer", "model", "serialNumber", "softwareVersions"])
        metadata.manufacturer = try text(equipment, "manufacturer", "equipment.manufacturer")
        metadata.manufacturerModelName = try text(equipment, "model", "equipment.model")
        metadata.deviceSerialNumber = try text(equipment, "serialNumber", "equipment.serialNumber")
        metadata.softwareVersions = try text(equipment, "softwareVersions", "equipment.softwareVersions")
        if let region = try text(root, "region", "region") { try metadata.setRegion(region) }
        if let view = try text(root, "view", "view") { try metadata.setView(view) }
        if let timing = try text(root, "timing", "timing") { try metadata.setTiming(timing) }
        metadata.laterality = try text(root, "laterality", "laterality")
        try metadata.normalize()
        return metadata
    }

    public mutating func setRegion(_ name: String) throws(DICOMCodecError) {
        guard let region = AnatomicRegion(rawValue: name.lowercased()) else {
            let known = AnatomicRegion.allCases.map(\.rawValue).joined(separator: ", ")
            throw DICOMCodecError(.invalidMetadata, "unknown region; expected one of: \(known)")
        }
        self.region = region
    }

    public mutating func setView(_ name: String) throws(DICOMCodecError) {
        guard let view = PhotoView(name: name) else {
            let known = PhotoView.allCases.map(\.rawValue).joined(separator: ", ")
            throw DICOMCodecError(.invalidMetadata, "unknown view; expected one of: \(known)")
        }
        self.view = view
    }

    public mutating func setTiming(_ name: String) throws(DICOMCodecError) {
        guard let timing = Timing(rawValue: name.lowercased()) else {
            throw DICOMCodecError(.invalidMetadata, "unknown timing; expected before, after or follow-up")
        }
        self.timing = timing
    }

    /// Validates every field and brings dates, times and codes to their DICOM form.
    public mutating func normalize() throws(DICOMCodecError) {
        if let uid = studyInstanceUID {
            do {
                try UID.validate(uid)
            } catch {
                throw DICOMCodecError(.invalidMetadata, "invalid study UID: \(error.message)")
            }
        }
        patientID = try Self.text(patientID, field: "patient ID", maximum: 64)
        accessionNumber = try Self.text(accessionNumber, field: "accession number", maximum: 16)
        studyID = try Self.text(studyID, field: "study ID", maximum: 16)
        studyDescription = try Self.text(studyDescription, field: "study description", maximum: 64)
        seriesDescription = try Self.text(seriesDescription, field: "series description", maximum: 64)
        manufacturer = try Self.text(manufacturer, field: "manufacturer", maximum: 64)
        manufacturerModelName = try Self.text(manufacturerModelName, field: "equipment model", maximum: 64)
        deviceSerialNumber = try Self.text(deviceSerialNumber, field: "device serial number", maximum: 64)
        softwareVersions = try Self.text(softwareVersions, field: "software versions", maximum: 64)
        if let name = patientName {
            let groups = name.split(separator: "=", omittingEmptySubsequences: false)
            guard groups.count <= 3,
                groups.allSatisfy({
                    $0.count <= 64 && $0.split(separator: "^", omittingEmptySubsequences: false).count <= 5
                }),
                !Self.hasForbiddenCharacters(name)
            else {
                throw DICOMCodecError(
                    .invalidMetadata,
                    "invalid patient name: use Family^Given^Middle^Prefix^Suffix, at most 64 characters a group")
            }
        }
        if let date = patientBirthDate { patientBirthDate = try Self.date(date, field: "patient birth date") }
        if let date = studyDate { studyDate = try Self.date(date, field: "study date") }
        if let time = studyTime { studyTime = try Self.time(time, field: "study time") }
        if let sex = patientSex {
            let upper = sex.uppercased()
            guard ["M", "F", "O"].contains(upper) else {
                throw DICOMCodecError(.invalidMetadata, "patient sex must be M, F or O")
            }
            patientSex = upper
        }
        if let value = laterality {
            let upper = value.uppercased()
            guard ["R", "L", "B", "U"].contains(upper) else {
                throw DICOMCodecError(.invalidMetadata, "laterality must be R, L, B or U")
            }
            laterality = upper
        }
        if let part = bodyPartExamined {
            let upper = part.uppercased()
            guard upper.count <= 16,
                upper.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == " " || $0 == "_") })
            else {
                throw DICOMCodecError(
                    .invalidMetadata, "body part must be a DICOM code string (A-Z, 0-9, space, underscore; 16 at most)")
            }
            bodyPartExamined = upper
        }
    }

    static func safeKey(_ key: String) -> String {
        // A key is structure, not PHI, but it is still bounded and stripped of control characters.
        String(key.prefix(32).filter { $0.isASCII && !$0.isNewline && $0.asciiValue.map { $0 >= 0x20 } == true })
    }

    private static func hasForbiddenCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0 == "\\" || $0.value < 0x20 || $0.value == 0x7F }
    }

    private static func text(_ value: String?, field: String, maximum: Int) throws(DICOMCodecError) -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return nil }
        guard trimmed.count <= maximum, !hasForbiddenCharacters(trimmed) else {
            throw DICOMCodecError(
                .invalidMetadata, "invalid \(field): at most \(maximum) characters, no backslash or control characters")
        }
        return trimmed
    }

    /// Accepts `YYYYMMDD` and `YYYY-MM-DD`; checks that the day exists.
    static func date(_ text: String, field: String) throws(DICOMCodecError) -> String {
        let digits = text.replacingOccurrences(of: "-", with: "")
        guard digits.count == 8, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
            let year = Int(digits.prefix(4)), let month = Int(digits.dropFirst(4).prefix(2)),
            let day = Int(digits.suffix(2)),
            year >= 1800, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else {
            throw DICOMCodecError(.invalidMetadata, "invalid \(field): expected YYYY-MM-DD")
        }
        return digits
    }

    /// Accepts `HHMM[SS]` and `HH:MM[:SS]`.
    static func time(_ text: String, field: String) throws(DICOMCodecError) -> String {
        let digits = text.replacingOccurrences(of: ":", with: "")
        guard digits.count == 4 || digits.count == 6, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
            let hour = Int(digits.prefix(2)), let minute = Int(digits.dropFirst(2).prefix(2)),
            hour < 24, minute < 60, digits.count == 4 || (Int(digits.suffix(2)) ?? 60) < 60
        else {
            throw DICOMCodecError(.invalidMetadata, "invalid \(field): expected HH:MM[:SS]")
        }
        return digits
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
