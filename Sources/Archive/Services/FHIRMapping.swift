import DICOMCore
import Foundation

/// FHIR R4 resources made from the archive's catalogue (issue 11 §4), as JSON objects: Patient, ImagingStudy,
/// Endpoint, DiagnosticReport (a finished comparison, with its volume change as a contained Observation), the
/// searchset Bundle and OperationOutcome. The mapping follows the R4 ImagingStudy notes and mappings: the study is
/// identified by `urn:dicom:uid` / `urn:oid:<Study Instance UID>`, `modality` lists acquisition modalities only
/// (DICOM CID 29), series and instances carry their UIDs, numbers and SOP classes. A patient's id is its keyed hash
/// (opaque, the same in every answer), never its Patient ID; a study's id is its Study Instance UID.
public enum FHIRMapping {
    public static let dcm = "http://dicom.nema.org/resources/ontology/DCM"
    public static let ucum = "http://unitsofmeasure.org"
    /// The one Endpoint: the DICOMweb service.
    public static let endpointID = "dicomweb"

    /// Acquisition modalities of DICOM CID 29 (the only ones `ImagingStudy.modality` may list). SR, DOC, M3D
    /// and the like are not acquisitions: they appear on their series only.
    public static let acquisitionModalities: Set<String> = [
        "AR", "BDUS", "BMD", "CR", "CT", "DX", "ECG", "EPS", "ES", "GM", "HD", "IO", "IVOCT", "IVUS", "KER", "LEN",
        "LS", "MG", "MR", "NM", "OAM", "OCT", "OP", "OPM", "OPT", "OPV", "OSS", "PT", "PX", "RF", "RG", "SM", "SRF",
        "US", "VA", "XA", "XC",
    ]

    // MARK: Patient

    public static func patient(id: String, attributes: Dataset) -> [String: Any] {
        var resource: [String: Any] = ["resourceType": "Patient", "id": id]
        if let value = attributes.string(.patientID), !value.isEmpty {
            var identifier: [String: Any] = ["value": value]
            if let issuer = attributes.string(Tag(0x0010, 0x0021)), !issuer.isEmpty {
                identifier["assigner"] = ["display": issuer]
            }
            resource["identifier"] = [identifier]
        }
        if let name = attributes.string(.patientName), let human = humanName(name) { resource["name"] = [human] }
        if let birth = attributes.string(.patientBirthDate).flatMap(date) { resource["birthDate"] = birth }
        switch attributes.string(.patientSex)?.uppercased() {
        case "M": resource["gender"] = "male"
        case "F": resource["gender"] = "female"
        case "O": resource["gender"] = "other"
        default: resource["gender"] = "unknown"
        }
        return resource
    }

    /// A DICOM person name (`Family^Given^Middle^Prefix^Suffix`, its alphabetic group) as a HumanName.
    static func humanName(_ value: String) -> [String: Any]? {
        let alphabetic = value.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let parts = alphabetic.split(separator: "^", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard parts.contains(where: { !$0.isEmpty }) else { return nil }
        func part(_ index: Int) -> String { index < parts.count ? parts[index] : "" }
        var name: [String: Any] = [:]
        if !part(0).isEmpty { name["family"] = part(0) }
        let given = [part(1), part(2)].filter { !$0.isEmpty }
        if !given.isEmpty { name["given"] = given }
        if !part(3).isEmpty { name["prefix"] = [part(3)] }
        if !part(4).isEmpty { name["suffix"] = [part(4)] }
        name["text"] = ([part(3)] + given + [part(0), part(4)]).filter { !$0.isEmpty }.joined(separator: " ")
        return name
    }

    /// `YYYYMMDD` as `YYYY-MM-DD` (nil unless it is a plausible date).
    public static func date(_ value: String) -> String? {
        let digits = value.trimmingCharacters(in: .whitespaces)
        guard digits.utf8.count == 8, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        let year = digits.prefix(4)
        let month = digits.dropFirst(4).prefix(2)
        let day = digits.suffix(2)
        guard let m = Int(month), let d = Int(day), (1...12).contains(m), (1...31).contains(d) else { return nil }
        return "\(year)-\(month)-\(day)"
    }

    /// When a study started: its date, with the time only when the study names its time zone offset (FHIR wants
    /// a zone with any time).
    static func started(_ attributes: Dataset) -> String? {
        guard let day = attributes.string(.studyDate).flatMap(date) else { return nil }
        guard let time = attributes.string(.studyTime)?.trimmingCharacters(in: .whitespaces),
            time.utf8.count >= 4, time.prefix(6).utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let offset = attributes.string(Tag(0x0008, 0x0201))?.trimmingCharacters(in: .whitespaces),
            offset.utf8.count == 5, offset.first == "+" || offset.first == "-",
            offset.dropFirst().utf8.allSatisfy({ (0x30...0x39).contains($0) })
        else { return day }
        let hh = time.prefix(2)
        let mm = time.dropFirst(2).prefix(2)
        let ss = time.utf8.count >= 6 ? String(time.dropFirst(4).prefix(2)) : "00"
        return "\(day)T\(hh):\(mm):\(ss)\(offset.prefix(3)):\(offset.suffix(2))"
    }

    // MARK: ImagingStudy

    public static func imagingStudy(
        _ study: StudyRecord, catalog: Catalog, patientID: String?, endpoint: Bool = true
    ) -> [String: Any] {
        let attributes = study.attributes
        var resource: [String: Any] = [
            "resourceType": "ImagingStudy", "id": study.studyInstanceUID, "status": "available",
        ]
        var identifiers: [[String: Any]] = [
            ["system": "urn:dicom:uid", "value": "urn:oid:\(study.studyInstanceUID)"]
        ]
        if let accession = attributes.string(.accessionNumber), !accession.isEmpty {
            identifiers.append([
                "type": [
                    "coding": [["system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"]]
                ],
                "value": accession,
            ])
        }
        resource["identifier"] = identifiers
        // `subject` is required: a study that names no patient is said so in words.
        resource["subject"] =
            patientID.map { ["reference": "Patient/\($0)"] } ?? ["display": "patient not identified in the study"]
        if let started = started(attributes) { resource["started"] = started }
        if let description = attributes.string(.studyDescription), !description.isEmpty {
            resource["description"] = description
        }
        if endpoint { resource["endpoint"] = [["reference": "Endpoint/\(endpointID)"]] }
        var modalities: [String] = []
        var series: [[String: Any]] = []
        var instances = 0
        for uid in study.seriesUIDs {
            guard let record = catalog.series[uid] else { continue }
            let members = record.instanceUIDs.compactMap { catalog.instances[$0] }
            guard !members.isEmpty else { continue }
            instances += members.count
            var item: [String: Any] = ["uid": uid, "numberOfInstances": members.count]
            let modality = record.attributes.string(.modality) ?? "OT"
            item["modality"] = ["system": dcm, "code": modality]
            if acquisitionModalities.contains(modality) && !modalities.contains(modality) {
                modalities.append(modality)
            }
            if let number = record.attributes.int(.seriesNumber) { item["number"] = number }
            if let description = record.attributes.string(.seriesDescription), !description.isEmpty {
                item["description"] = description
            }
            if let part = record.attributes.string(.bodyPartExamined), !part.isEmpty {
                item["bodySite"] = ["display": part]
            }
            if let side = record.attributes.string(.laterality), ["L", "R"].contains(side) {
                item["laterality"] = [
                    "system": "http://snomed.info/sct", "code": side == "L" ? "7771000" : "24028007",
                    "display": side == "L" ? "Left" : "Right",
                ]
            }
            item["instance"] = members.map { instance -> [String: Any] in
                var entry: [String: Any] = [
                    "uid": instance.sopInstanceUID,
                    "sopClass": ["system": "urn:ietf:rfc:3986", "code": "urn:oid:\(instance.sopClassUID)"],
                ]
                if let number = instance.attributes.int(.instanceNumber) { entry["number"] = number }
                if let title = instance.attributes.string(.documentTitle), !title.isEmpty { entry["title"] = title }
                return entry
            }
            series.append(item)
        }
        if !modalities.isEmpty { resource["modality"] = modalities.map { ["system": dcm, "code": $0] } }
        resource["numberOfSeries"] = series.count
        resource["numberOfInstances"] = instances
        if !series.isEmpty { resource["series"] = series }
        return resource
    }

    // MARK: Endpoint

    public static func endpoint(dicomweb: String) -> [String: Any] {
        [
            "resourceType": "Endpoint", "id": endpointID, "status": "active", "name": "Facet DICOMweb",
            "connectionType": [
                "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "dicom-wado-rs",
            ],
            "payloadType": [["text": "DICOM WADO-RS"]],
            "payloadMimeType": ["application/dicom"],
            "address": dicomweb,
        ]
    }

    // MARK: DiagnosticReport

    /// A finished comparison as a DiagnosticReport: the two studies, the volume change as a contained Observation
    /// (UCUM mL), the other figures in the conclusion.
    public static func diagnosticReport(
        id: String, patientID: String, studies: [String], issued: Date, title: String?, result: String,
        pdfURL: String? = nil
    ) -> [String: Any] {
        let figures = numbers(
            in: result,
            keys: [
                "volume_change_ml", "mean_displacement_mm", "max_displacement_mm", "p95_displacement_mm",
                "registration_rms_mm",
            ])
        let volume = figures["volume_change_ml"]
        var observation: [String: Any] = [
            "resourceType": "Observation", "id": "volume-change", "status": "final",
            "code": ["text": "Volume change in the region of interest"],
            "subject": ["reference": "Patient/\(patientID)"],
            "derivedFrom": studies.map { ["reference": "ImagingStudy/\($0)"] },
        ]
        let interval = bounds(in: result, key: "volume_change_ci95_ml")
        if let volume, volume.isFinite {
            observation["valueQuantity"] = ["value": volume, "unit": "mL", "system": ucum, "code": "mL"]
            // R4 has no uncertainty element: the 95 % interval goes in two components.
            if let interval {
                observation["component"] = [
                    ("lower", interval.lower), ("upper", interval.upper),
                ].map { name, value -> [String: Any] in
                    [
                        "code": ["text": "Volume change, 95 % interval, \(name) bound"],
                        "valueQuantity": ["value": value, "unit": "mL", "system": ucum, "code": "mL"],
                    ]
                }
            }
        } else {
            observation["dataAbsentReason"] = ["text": "not measured"]
        }
        func figure(_ key: String, _ unit: String) -> String? {
            guard let value = figures[key], value.isFinite else { return nil }
            return String(format: "%.2f %@", value, unit)
        }
        let conclusion = [
            figure("volume_change_ml", "mL").map { value in
                "volume change \(value)"
                    + (interval.map { String(format: " (95 %% interval %.2f to %.2f mL)", $0.lower, $0.upper) } ?? "")
            },
            figure("mean_displacement_mm", "mm").map { "mean displacement \($0)" },
            figure("max_displacement_mm", "mm").map { "maximum displacement \($0)" },
            figure("p95_displacement_mm", "mm").map { "95th percentile \($0)" },
            figure("registration_rms_mm", "mm").map { "registration RMS \($0)" },
        ].compactMap { $0 }.joined(separator: "; ")
        var report: [String: Any] = [
            "resourceType": "DiagnosticReport", "id": id, "status": "final",
            "code": ["text": title.map { "3D surface comparison: \($0)" } ?? "3D surface comparison"],
            "subject": ["reference": "Patient/\(patientID)"],
            "issued": Formatting.timestamp(issued),
            "imagingStudy": studies.map { ["reference": "ImagingStudy/\($0)"] },
            "contained": [observation],
            "result": [["reference": "#volume-change"]],
        ]
        if !conclusion.isEmpty { report["conclusion"] = conclusion }
        if let pdfURL {
            report["presentedForm"] = [
                ["contentType": "application/pdf", "url": pdfURL, "title": "Comparison report (PDF)"]
            ]
        }
        return report
    }

    /// Top-level numbers of a comparison's result JSON, read from its text exactly (Foundation's JSON parser on
    /// Linux rounds some doubles in the last digit; a measurement keeps every digit the worker wrote).
    static func numbers(in json: String, keys: [String]) -> [String: Double] {
        var found: [String: Double] = [:]
        for key in keys {
            guard let range = json.range(of: "\"\(key)\":") else { continue }
            let token = json[range.upperBound...].prefix { "+-.0123456789eE".contains($0) }
            if let value = Double(token) { found[key] = value }
        }
        return found
    }

    /// A two-number array of a comparison's result JSON (`"key":[low,high]`), read from its text exactly.
    static func bounds(in json: String, key: String) -> (lower: Double, upper: Double)? {
        guard let range = json.range(of: "\"\(key)\":[") else { return nil }
        let body = json[range.upperBound...].prefix { $0 != "]" }
        let parts = body.split(separator: ",").compactMap { Double($0) }
        guard parts.count == 2, parts[0].isFinite, parts[1].isFinite else { return nil }
        return (parts[0], parts[1])
    }

    // MARK: Bundle and OperationOutcome

    public static func searchset(
        _ resources: [[String: Any]], total: Int, base: String, selfURL: String, nextURL: String?
    ) -> [String: Any] {
        var links: [[String: Any]] = [["relation": "self", "url": selfURL]]
        if let nextURL { links.append(["relation": "next", "url": nextURL]) }
        return [
            "resourceType": "Bundle", "type": "searchset", "total": total, "link": links,
            "entry": resources.map { resource -> [String: Any] in
                [
                    "fullUrl":
                        "\(base)/\(resource["resourceType"] as? String ?? "")/\(resource["id"] as? String ?? "")",
                    "resource": resource, "search": ["mode": "match"],
                ]
            },
        ]
    }

    /// An OperationOutcome for an error answer; `code` is the FHIR issue type (invalid, not-found, forbidden,
    /// login, not-supported, transient, exception ...).
    public static func outcome(code: String, diagnostics: String) -> [String: Any] {
        [
            "resourceType": "OperationOutcome",
            "issue": [["severity": "error", "code": code, "diagnostics": diagnostics]],
        ]
    }

    /// A resource as JSON text (keys sorted, so that equal resources are equal text).
    public static func text(_ resource: [String: Any]) -> String {
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: resource, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: date search

    /// Whether a `YYYY-MM-DD` date satisfies an R4 date search value (`ge2026-01-01`, `lt2026-03`, `2026`, ...).
    /// Nil for a value that is not a date search.
    public static func dateMatches(_ day: String, _ search: String) -> Bool? {
        var value = Substring(search)
        var prefix = "eq"
        if let first = value.first, first.isLetter {
            prefix = String(value.prefix(2))
            value = value.dropFirst(2)
        }
        // A dateTime's date part decides (studies are dated by day here).
        let datePart = value.prefix(10)
        let pieces = datePart.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...3).contains(pieces.count), pieces[0].count == 4,
            pieces.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }),
            pieces.dropFirst().allSatisfy({ $0.count == 2 })
        else { return nil }
        let start =
            pieces.count == 1
            ? "\(pieces[0])-01-01" : pieces.count == 2 ? "\(pieces[0])-\(pieces[1])-01" : String(datePart)
        let end =
            pieces.count == 1
            ? "\(pieces[0])-12-31" : pieces.count == 2 ? "\(pieces[0])-\(pieces[1])-31" : String(datePart)
        switch prefix {
        case "eq": return day >= start && day <= end
        case "ne": return day < start || day > end
        case "ge": return day >= start
        case "le": return day <= end
        case "gt": return day > end
        case "lt": return day < start
        case "sa": return day > end
        case "eb": return day < start
        default: return nil
        }
    }
}
