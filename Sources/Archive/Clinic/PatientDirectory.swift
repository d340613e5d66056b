import DICOMCodec
import DICOMCore
import Foundation

/// A patient as the clinic API shows them: who (from their images' Patient Module, or their registration here),
/// and how many studies and instances the archive holds of them.
public struct PatientSummary: Sendable, Equatable {
    public var key: PatientKey
    public var patientID: String
    public var issuer: String?
    /// DICOM PN, encoded form (`Family^Given`).
    public var name: String?
    /// `YYYY-MM-DD`.
    public var birthDate: String?
    public var sex: String?
    public var studyUIDs: [String]
    public var instances: Int
    /// `YYYY-MM-DD` of the first and last study.
    public var firstVisit: String?
    public var lastVisit: String?
    /// Registered through `POST /api/v1/patients` (as well as, or instead of, named by an image).
    public var registered: Bool
}

/// A stored capture of a patient as the timeline and the pairing see it: a photo (2D) or a surface (3D), its day,
/// and its tags (those set beside it over those its object carries).
public struct Capture: Sendable, Equatable {
    public var sopInstanceUID: String
    public var seriesInstanceUID: String
    public var studyInstanceUID: String
    public var sopClassUID: String
    /// `2d` for photos, `3d` for surfaces.
    public var dimension: String
    /// `YYYY-MM-DD` (Study Date, else Series Date, else Acquisition DateTime, else Content Date), and `HHMMSS` when
    /// known.
    public var date: String?
    public var time: String?
    public var tags: InstanceTags
    /// The version of the tags kept beside the instance (0: none yet, the object's own).
    public var tagsVersion: Int
}

/// The clinic's view of its patients over the catalogue and the clinic records: the patient list and search, a
/// patient's captures, timeline and before/after pairs.
public struct PatientDirectory: Sendable {
    public let catalog: Catalog
    /// The patient key of a study (the identity services' keyed hash of Patient ID and Issuer).
    public let keyOf: @Sendable (StudyRecord) -> PatientKey?

    public init(catalog: Catalog, keyOf: @escaping @Sendable (StudyRecord) -> PatientKey?) {
        self.catalog = catalog
        self.keyOf = keyOf
    }

    /// Every patient the images name, and those registered (`registrations`: key → registration), by key.
    public func patients(registrations: [String: PatientRegistration]) -> [PatientKey: PatientSummary] {
        var found: [PatientKey: PatientSummary] = [:]
        for study in catalog.studies.values {
            guard let key = keyOf(study), let id = study.attributes.string(.patientID) else { continue }
            let date = study.attributes.string(.studyDate).flatMap { try? ClinicTerms.date($0, field: "") }
            let count = study.seriesUIDs.reduce(0) { $0 + (catalog.series[$1]?.instanceUIDs.count ?? 0) }
            if var summary = found[key] {
                summary.studyUIDs.append(study.studyInstanceUID)
                summary.instances += count
                if let date {
                    summary.firstVisit = min(summary.firstVisit ?? date, date)
                    summary.lastVisit = max(summary.lastVisit ?? date, date)
                }
                found[key] = summary
            } else {
                found[key] = PatientSummary(
                    key: key, patientID: id.trimmingCharacters(in: .whitespaces),
                    issuer: study.attributes.string(Tag(0x0010, 0x0021)),
                    name: study.attributes.string(.patientName),
                    birthDate: study.attributes.string(.patientBirthDate).flatMap {
                        try? ClinicTerms.date($0, field: "")
                    },
                    sex: study.attributes.string(.patientSex), studyUIDs: [study.studyInstanceUID], instances: count,
                    firstVisit: date, lastVisit: date, registered: false)
            }
        }
        for (hex, registration) in registrations {
            guard let key = PatientKey(hex: hex) else { continue }
            if var summary = found[key] {
                summary.registered = true
                summary.name = summary.name ?? registration.name
                summary.birthDate = summary.birthDate ?? registration.birthDate
                summary.sex = summary.sex ?? registration.sex
                found[key] = summary
            } else {
                found[key] = PatientSummary(
                    key: key, patientID: registration.patientID, issuer: registration.issuer, name: registration.name,
                    birthDate: registration.birthDate, sex: registration.sex, studyUIDs: [], instances: 0,
                    firstVisit: nil, lastVisit: nil, registered: true)
            }
        }
        for key in found.keys { found[key]?.studyUIDs.sort() }
        return found
    }

    /// A patient list filtered as `GET /api/v1/patients` asks: a name prefix (any component of the name, case and
    /// accents as written), an exact Patient ID, a birth date; sorted by name then ID.
    public static func search(
        _ patients: [PatientSummary], namePrefix: String?, patientID: String?, birthDate: String?
    ) -> [PatientSummary] {
        let prefix = namePrefix?.lowercased().trimmingCharacters(in: .whitespaces)
        return patients.filter { patient in
            if let patientID, patient.patientID != patientID.trimmingCharacters(in: .whitespaces) { return false }
            if let birthDate, patient.birthDate != birthDate { return false }
            if let prefix, !prefix.isEmpty {
                let name = (patient.name ?? "").lowercased()
                let parts = name.split(whereSeparator: { $0 == "^" || $0 == " " || $0 == "=" }).map(String.init)
                guard name.hasPrefix(prefix) || parts.contains(where: { $0.hasPrefix(prefix) }) else { return false }
            }
            return true
        }.sorted { ($0.name ?? "", $0.patientID) < ($1.name ?? "", $1.patientID) }
    }

    /// The captures of a patient's studies, oldest first, with the tags kept beside them (`tags`: SOP Instance UID
    /// → the current record). Textures of 3D captures, MTL files and reports are not captures.
    public func captures(of summary: PatientSummary, tags: [String: (InstanceTags, Int)]) -> [Capture] {
        var captures: [Capture] = []
        for studyUID in summary.studyUIDs {
            guard let study = catalog.studies[studyUID] else { continue }
            for seriesUID in study.seriesUIDs {
                guard let series = catalog.series[seriesUID],
                    series.attributes.string(.seriesDescription) != "3D capture textures"
                else { continue }
                for uid in series.instanceUIDs {
                    guard let record = catalog.instances[uid] else { continue }
                    let dimension: String
                    if record.sopClassUID == UID.encapsulatedOBJStorage
                        || record.sopClassUID == UID.encapsulatedSTLStorage
                    {
                        dimension = "3d"
                    } else if record.sopClassUID == UID.vlPhotographicImageStorage
                        || (record.attributes.int(.rows) != nil && series.attributes.string(.modality) != "SR")
                    {
                        dimension = "2d"
                    } else {
                        continue
                    }
                    // The visit's day: Study Date first (Content Date is when the object was made, which for a
                    // photo without EXIF dates is the upload's day).
                    let acquired = record.attributes.string(.acquisitionDateTime)
                    let date =
                        [
                            study.attributes.string(.studyDate), series.attributes.string(.seriesDate),
                            acquired.map { String($0.prefix(8)) }, record.attributes.string(.contentDate),
                        ]
                        .lazy.compactMap { $0.flatMap { try? ClinicTerms.date($0, field: "") } }.first
                    let time =
                        study.attributes.string(Tag(0x0008, 0x0030))
                        ?? acquired.flatMap { $0.count >= 14 ? String($0.dropFirst(8).prefix(6)) : nil }
                    let kept = tags[uid]
                    captures.append(
                        Capture(
                            sopInstanceUID: uid, seriesInstanceUID: seriesUID, studyInstanceUID: studyUID,
                            sopClassUID: record.sopClassUID, dimension: dimension, date: date,
                            time: time.map { String($0.prefix(6)) },
                            tags: Self.effectiveTags(kept?.0, record.attributes), tagsVersion: kept?.1 ?? 0))
                }
            }
        }
        return captures.sorted {
            ($0.date ?? "", $0.time ?? "", $0.sopInstanceUID) < ($1.date ?? "", $1.time ?? "", $1.sopInstanceUID)
        }
    }

    /// The tags kept beside an instance over those its object carries (Anatomic Region, view and timing codes).
    public static func effectiveTags(_ kept: InstanceTags?, _ attributes: Dataset) -> InstanceTags {
        var tags = kept ?? InstanceTags()
        if tags.region == nil, let code = attributes.items(.anatomicRegionSequence)?.first?.string(.codeValue) {
            tags.region = AnatomicRegion.allCases.first { $0.code.value == code }?.rawValue
        }
        for item in attributes.items(.acquisitionContextSequence) ?? [] {
            guard let name = item.items(.conceptNameCodeSequence)?.first?.string(.codeValue),
                let value = item.items(.conceptCodeSequence)?.first?.string(.codeValue)
            else { continue }
            if name == PhotoView.conceptName.value, tags.view == nil {
                tags.view = PhotoView.allCases.first { $0.code.value == value }?.rawValue
            }
            if name == DICOMCodec.Timing.conceptName.value, tags.timing == nil {
                tags.timing = DICOMCodec.Timing.allCases.first { $0.code.value == value }
                    .flatMap { InstanceTags.Timing(rawValue: $0.rawValue) }
            }
        }
        return tags
    }

    /// Whether a capture is of `region` (its region or its sub-region) and `view`, when they are asked for.
    public static func matches(_ capture: Capture, region: String?, view: String?) -> Bool {
        if let region, capture.tags.region != region && capture.tags.subregion != region { return false }
        if let view, capture.tags.view != view { return false }
        return true
    }

    /// A before/after pair: the two captures, the days between them and the treatments given in between.
    public struct Pair: Sendable, Equatable {
        public var before: Capture
        public var after: Capture
        public var days: Int?
        public var treatments: [(id: String, treatment: Treatment)]

        public static func == (a: Pair, b: Pair) -> Bool {
            a.before == b.before && a.after == b.after && a.days == b.days
                && a.treatments.map(\.id) == b.treatments.map(\.id)
        }
    }

    /// The suggested pair of one region and view: of the captures of one kind (photos with photos, surfaces with
    /// surfaces), the earliest tagged `before` (else the earliest) and the latest tagged `after` or `follow-up` (else
    /// the latest) on a later day. Photos are preferred when both kinds could pair.
    public static func suggest(
        _ captures: [Capture], region: String?, view: String?, treatments: [(id: String, treatment: Treatment)]
    ) -> Pair? {
        for dimension in ["2d", "3d"] {
            let candidates = captures.filter {
                $0.dimension == dimension && $0.date != nil && matches($0, region: region, view: view)
            }
            guard
                let before = candidates.first(where: { $0.tags.timing == .before }) ?? candidates.first,
                let after = candidates.last(where: {
                    ($0.tags.timing == .after || $0.tags.timing == .followUp) && $0.date! > before.date!
                }) ?? candidates.last(where: { $0.date! > before.date! })
            else { continue }
            return pair(before, after, treatments)
        }
        return nil
    }

    /// The pair of two given days: on each, the capture of the region and view tagged for that side (`before` on
    /// the first day, `after`/`follow-up` on the second) or else the first (last) of the day, of one kind.
    public static func pair(
        _ captures: [Capture], beforeDate: String, afterDate: String, region: String?, view: String?,
        treatments: [(id: String, treatment: Treatment)]
    ) -> Pair? {
        for dimension in ["2d", "3d"] {
            let matching = captures.filter { $0.dimension == dimension && matches($0, region: region, view: view) }
            let first = matching.filter { $0.date == beforeDate }
            let second = matching.filter { $0.date == afterDate }
            guard let before = first.first(where: { $0.tags.timing == .before }) ?? first.first,
                let after = second.last(where: { $0.tags.timing == .after || $0.tags.timing == .followUp })
                    ?? second.last, before.sopInstanceUID != after.sopInstanceUID
            else { continue }
            return pair(before, after, treatments)
        }
        return nil
    }

    static func pair(_ before: Capture, _ after: Capture, _ treatments: [(id: String, treatment: Treatment)]) -> Pair {
        let (start, end) = (before.date ?? "", after.date ?? "")
        let between = treatments.filter { $0.treatment.date >= start && $0.treatment.date <= end }
            .sorted { ($0.treatment.date, $0.id) < ($1.treatment.date, $1.id) }
        return Pair(
            before: before, after: after, days: ClinicTerms.days(from: start, to: end), treatments: between)
    }
}
