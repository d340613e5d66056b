import DICOMCore
import Foundation
import MeshKit

/// The DICOM SR measurement report of a comparison between two 3D captures (issue 11 §2): an Enhanced SR
/// (1.2.840.10008.5.1.4.1.1.88.22) built after TID 1500 "Measurement Report" — language, a device observer,
/// the procedure, one Imaging Measurements container with one Measurement Group (TID 1501: tracking identifier
/// and UID) holding the figures as NUM items with UCUM units (`ml`, `mm`, `mm2`). Standard concepts where DICOM
/// has them (Area 42798000 SCT, Distance 121206 DCM with the Mean and Maximum derivations of CID 7464); the
/// change figures no standard code names are in Facet's private scheme `99FACET`, declared in the Coding Scheme
/// Identification Sequence. The volume change is INFERRED FROM both captures (COMPOSITE items, concept 121112
/// "Source of Measurement", a documented extension of TID 1501); every referenced instance is listed in the
/// evidence sequences (the AFTER study's in Current Requested Procedure Evidence, the BEFORE study's in Pertinent
/// Other Evidence). Patient and study attributes are the AFTER study's, so the report joins that study.
public enum ComparisonSR {
    public static let sopClass = "1.2.840.10008.5.1.4.1.1.88.22"
    public static let privateScheme = "99FACET"

    /// A capture the report is about.
    public typealias Capture = MeshConverter.Source

    /// The figures, as `facet compare` measures them.
    public struct Figures: Sendable {
        public var volumeChangeML: Double
        public var positiveVolumeML: Double
        public var negativeVolumeML: Double
        public var roiAreaMM2: Double
        public var areaChangeMM2: Double
        public var meanDisplacementMM: Double
        public var maxDisplacementMM: Double
        public var p95DisplacementMM: Double
        public var registrationRMSMM: Double
        /// The volume change's 95 % interval, mL (nil: not estimated).
        public var volumeChangeCI95ML: ClosedRange<Double>?

        /// The figures of a `ChangeAnalysis` report.
        public init(_ report: ChangeReport) {
            self.init(
                volumeChangeML: report.volumeChangeML, positiveVolumeML: report.positiveVolumeML,
                negativeVolumeML: report.negativeVolumeML, roiAreaMM2: report.roiAreaMM2,
                areaChangeMM2: report.areaChangeMM2, meanDisplacementMM: report.meanDisplacementMM,
                maxDisplacementMM: report.maxDisplacementMM, p95DisplacementMM: report.p95DisplacementMM,
                registrationRMSMM: report.registrationRMSMM,
                volumeChangeCI95ML: report.volumeChangeCI95ML.lowerBound.isFinite
                    && report.volumeChangeCI95ML.upperBound.isFinite ? report.volumeChangeCI95ML : nil)
        }

        public init(
            volumeChangeML: Double, positiveVolumeML: Double, negativeVolumeML: Double, roiAreaMM2: Double,
            areaChangeMM2: Double, meanDisplacementMM: Double, maxDisplacementMM: Double, p95DisplacementMM: Double,
            registrationRMSMM: Double, volumeChangeCI95ML: ClosedRange<Double>? = nil
        ) {
            self.volumeChangeML = volumeChangeML
            self.positiveVolumeML = positiveVolumeML
            self.negativeVolumeML = negativeVolumeML
            self.roiAreaMM2 = roiAreaMM2
            self.areaChangeMM2 = areaChangeMM2
            self.meanDisplacementMM = meanDisplacementMM
            self.maxDisplacementMM = maxDisplacementMM
            self.p95DisplacementMM = p95DisplacementMM
            self.registrationRMSMM = registrationRMSMM
            self.volumeChangeCI95ML = volumeChangeCI95ML
        }
    }

    static let milliliter = CodedConcept("ml", "UCUM", "milliliter")
    static let millimeter = CodedConcept("mm", "UCUM", "millimeter")
    static let squareMillimeter = CodedConcept("mm2", "UCUM", "square millimeter")

    /// The concepts of each figure: (name, derivation, units).
    static func items(_ figures: Figures) -> [(CodedConcept, CodedConcept?, CodedConcept, Double)] {
        let distance = CodedConcept("121206", "DCM", "Distance")
        return [
            (CodedConcept("VOLCHG", privateScheme, "Volume change"), nil, milliliter, figures.volumeChangeML),
            (
                CodedConcept("VOLCHGLOW95", privateScheme, "Volume change, 95 % interval, lower bound"), nil,
                milliliter, figures.volumeChangeCI95ML?.lowerBound ?? .nan
            ),
            (
                CodedConcept("VOLCHGHIGH95", privateScheme, "Volume change, 95 % interval, upper bound"), nil,
                milliliter, figures.volumeChangeCI95ML?.upperBound ?? .nan
            ),
            (CodedConcept("VOLINC", privateScheme, "Volume increase"), nil, milliliter, figures.positiveVolumeML),
            (CodedConcept("VOLDEC", privateScheme, "Volume decrease"), nil, milliliter, figures.negativeVolumeML),
            (CodedConcept("42798000", "SCT", "Area"), nil, squareMillimeter, figures.roiAreaMM2),
            (CodedConcept("AREACHG", privateScheme, "Area change"), nil, squareMillimeter, figures.areaChangeMM2),
            (distance, CodedConcept("373098007", "SCT", "Mean"), millimeter, figures.meanDisplacementMM),
            (distance, CodedConcept("56851009", "SCT", "Maximum"), millimeter, figures.maxDisplacementMM),
            (
                CodedConcept("P95DISP", privateScheme, "95th percentile of displacement magnitude"), nil, millimeter,
                figures.p95DisplacementMM
            ),
            (
                CodedConcept("REGRMS", privateScheme, "Registration RMS error"), nil, millimeter,
                figures.registrationRMSMM
            ),
        ]
    }

    /// The report as a dataset. `study` holds the AFTER study's patient and study attributes (as indexed).
    public static func make(
        study: Dataset, before: Capture, after: Capture, figures: Figures, title: String, seriesInstanceUID: String,
        sopInstanceUID: String, trackingUID: String, deviceUID: String, softwareVersion: String, now: Date = Date()
    ) -> Dataset {
        var dataset = Dataset()
        dataset.set(.specificCharacterSet, .CS, "ISO_IR 192")
        dataset.set(.sopClassUID, .UI, sopClass)
        dataset.set(.sopInstanceUID, .UI, sopInstanceUID)
        let (date, time) = (InstanceContext.format(now, "yyyyMMdd"), InstanceContext.format(now, "HHmmss"))
        dataset.set(.instanceCreationDate, .DA, date)
        dataset.set(.instanceCreationTime, .TM, time)
        // Patient and General Study: the AFTER study's own values (Type 2 present, empty when unknown).
        for (tag, vr) in [
            (Tag.patientName, VR.PN), (.patientID, .LO), (.patientBirthDate, .DA), (.patientSex, .CS),
            (.studyDate, .DA), (.studyTime, .TM), (.referringPhysicianName, .PN), (.studyID, .SH),
            (.accessionNumber, .SH),
        ] {
            dataset.set(tag, vr, strings: study.strings(tag) ?? [])
        }
        for (tag, vr) in [(Tag(0x0010, 0x0021), VR.LO), (.studyDescription, .LO)] {
            if let value = study.string(tag), !value.isEmpty { dataset.set(tag, vr, value) }
        }
        dataset.set(.studyInstanceUID, .UI, after.studyInstanceUID)
        // SR Document Series, General Equipment.
        dataset.set(.modality, .CS, "SR")
        dataset.set(.seriesInstanceUID, .UI, seriesInstanceUID)
        dataset.set(.seriesNumber, .IS, "901")
        dataset.set(.seriesDescription, .LO, "Facet comparison report")
        dataset.set(Tag(0x0008, 0x1111), sequence: [])  // Referenced Performed Procedure Step Sequence
        dataset.set(.manufacturer, .LO, Facet.manufacturer)
        dataset.set(.softwareVersions, .LO, "Facet \(softwareVersion)")
        // SR Document General.
        dataset.set(.instanceNumber, .IS, "1")
        dataset.set(Tag(0x0040, 0xA491), .CS, "COMPLETE")  // Completion Flag
        dataset.set(Tag(0x0040, 0xA493), .CS, "UNVERIFIED")  // Verification Flag
        dataset.set(.contentDate, .DA, date)
        dataset.set(.contentTime, .TM, time)
        dataset.set(Tag(0x0040, 0xA372), sequence: [])  // Performed Procedure Code Sequence
        func evidence(_ captures: [Capture]) -> [Dataset] {
            var studies: [String: [String: [Capture]]] = [:]
            for capture in captures {
                studies[capture.studyInstanceUID, default: [:]][capture.seriesInstanceUID, default: []].append(capture)
            }
            return studies.keys.sorted().map { studyUID in
                var item = Dataset()
                item.set(.studyInstanceUID, .UI, studyUID)
                item.set(
                    Tag(0x0008, 0x1115),  // Referenced Series Sequence
                    sequence: studies[studyUID]!.keys.sorted().map { seriesUID in
                        var series = Dataset()
                        series.set(.seriesInstanceUID, .UI, seriesUID)
                        series.set(
                            Tag(0x0008, 0x1199),  // Referenced SOP Sequence
                            sequence: studies[studyUID]![seriesUID]!.map(reference))
                        return series
                    })
                return item
            }
        }
        let current = [before, after].filter { $0.studyInstanceUID == after.studyInstanceUID }
        let other = [before, after].filter { $0.studyInstanceUID != after.studyInstanceUID }
        dataset.set(Tag(0x0040, 0xA375), sequence: evidence(current))  // Current Requested Procedure Evidence
        if !other.isEmpty { dataset.set(Tag(0x0040, 0xA385), sequence: evidence(other)) }  // Pertinent Other Evidence
        var scheme = Dataset()
        scheme.set(.codingSchemeDesignator, .SH, privateScheme)
        scheme.set(Tag(0x0008, 0x0115), .ST, "Facet comparison measurements")  // Coding Scheme Name
        scheme.set(Tag(0x0008, 0x0116), .ST, "Facet")  // Coding Scheme Responsible Organization
        dataset.set(Tag(0x0008, 0x0110), sequence: [scheme])  // Coding Scheme Identification Sequence
        // SR Document Content: the root container and its tree.
        dataset.set(Tag(0x0040, 0xA040), .CS, "CONTAINER")
        dataset.set(
            .conceptNameCodeSequence, sequence: [CodedConcept("126000", "DCM", "Imaging Measurement Report").item])
        dataset.set(Tag(0x0040, 0xA050), .CS, "SEPARATE")
        var template = Dataset()
        template.set(Tag(0x0008, 0x0105), .CS, "DCMR")  // Mapping Resource
        template.set(Tag(0x0040, 0xDB00), .CS, "1500")  // Template Identifier
        dataset.set(Tag(0x0040, 0xA504), sequence: [template])  // Content Template Sequence
        var group: [Dataset] = [
            text("HAS OBS CONTEXT", CodedConcept("112039", "DCM", "Tracking Identifier"), title),
            uidref("HAS OBS CONTEXT", CodedConcept("112040", "DCM", "Tracking Unique Identifier"), trackingUID),
        ]
        for (index, (concept, derivation, units, value)) in items(figures).enumerated() where value.isFinite {
            var children: [Dataset] = []
            if let derivation {
                children.append(code("HAS CONCEPT MOD", CodedConcept("121401", "DCM", "Derivation"), derivation))
            }
            if index == 0 {
                let source = CodedConcept("121112", "DCM", "Source of Measurement")
                children += [before, after].map { composite("INFERRED FROM", source, $0) }
            }
            group.append(num("CONTAINS", concept, value, units, children: children))
        }
        dataset.set(
            Tag(0x0040, 0xA730),  // Content Sequence
            sequence: [
                code(
                    "HAS CONCEPT MOD", CodedConcept("121049", "DCM", "Language of Content Item and Descendants"),
                    CodedConcept("en-US", "RFC5646", "English (United States)")),
                code(
                    "HAS OBS CONTEXT", CodedConcept("121005", "DCM", "Observer Type"),
                    CodedConcept("121007", "DCM", "Device")),
                uidref("HAS OBS CONTEXT", CodedConcept("121012", "DCM", "Device Observer UID"), deviceUID),
                text("HAS OBS CONTEXT", CodedConcept("121013", "DCM", "Device Observer Name"), "Facet"),
                code(
                    "HAS CONCEPT MOD", CodedConcept("121058", "DCM", "Procedure reported"),
                    CodedConcept("363679005", "SCT", "Imaging procedure")),
                container(
                    "CONTAINS", CodedConcept("126010", "DCM", "Imaging Measurements"),
                    children: [
                        container("CONTAINS", CodedConcept("125007", "DCM", "Measurement Group"), children: group)
                    ]),
            ])
        return dataset
    }

    // MARK: content items

    static func item(_ relationship: String, _ type: String, _ concept: CodedConcept) -> Dataset {
        var item = Dataset()
        item.set(Tag(0x0040, 0xA010), .CS, relationship)  // Relationship Type
        item.set(Tag(0x0040, 0xA040), .CS, type)  // Value Type
        item.set(Tag(0x0040, 0xA043), sequence: [concept.item])  // Concept Name Code Sequence
        return item
    }

    static func container(_ relationship: String, _ concept: CodedConcept, children: [Dataset]) -> Dataset {
        var container = item(relationship, "CONTAINER", concept)
        container.set(Tag(0x0040, 0xA050), .CS, "SEPARATE")  // Continuity Of Content
        container.set(Tag(0x0040, 0xA730), sequence: children)
        return container
    }

    static func code(_ relationship: String, _ concept: CodedConcept, _ value: CodedConcept) -> Dataset {
        var code = item(relationship, "CODE", concept)
        code.set(Tag(0x0040, 0xA168), sequence: [value.item])  // Concept Code Sequence
        return code
    }

    static func text(_ relationship: String, _ concept: CodedConcept, _ value: String) -> Dataset {
        var text = item(relationship, "TEXT", concept)
        text.set(Tag(0x0040, 0xA160), .UT, value)  // Text Value
        return text
    }

    static func uidref(_ relationship: String, _ concept: CodedConcept, _ value: String) -> Dataset {
        var uidref = item(relationship, "UIDREF", concept)
        uidref.set(Tag(0x0040, 0xA124), .UI, value)  // UID
        return uidref
    }

    static func composite(_ relationship: String, _ concept: CodedConcept, _ capture: Capture) -> Dataset {
        var composite = item(relationship, "COMPOSITE", concept)
        composite.set(Tag(0x0008, 0x1199), sequence: [reference(capture)])  // Referenced SOP Sequence
        return composite
    }

    static func num(
        _ relationship: String, _ concept: CodedConcept, _ value: Double, _ units: CodedConcept, children: [Dataset]
    ) -> Dataset {
        var num = item(relationship, "NUM", concept)
        var measured = Dataset()
        measured.set(Tag(0x0040, 0x08EA), sequence: [units.item])  // Measurement Units Code Sequence
        measured.set(Tag(0x0040, 0xA30A), .DS, decimalString(value))  // Numeric Value
        measured.set(DataElement(Tag(0x0040, 0xA161), .FD, .doubles([value])))  // Floating Point Value: every digit
        num.set(Tag(0x0040, 0xA300), sequence: [measured])  // Measured Value Sequence
        if !children.isEmpty { num.set(Tag(0x0040, 0xA730), sequence: children) }
        return num
    }

    static func reference(_ capture: Capture) -> Dataset { capture.referenceItem }

    /// A DS value (at most 16 characters) as close to `value` as 16 characters allow.
    static func decimalString(_ value: Double) -> String {
        for digits in stride(from: 10, through: 1, by: -1) {
            let text = String(format: "%.\(digits)g", value)
            if text.utf8.count <= 16 { return text }
        }
        return "0"
    }
}
