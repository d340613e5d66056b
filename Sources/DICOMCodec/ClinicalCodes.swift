import DICOMCore

/// A coded concept (Code Value, Coding Scheme Designator, Code Meaning).
public struct CodedConcept: Sendable, Hashable {
    public var value: String
    public var scheme: String
    public var meaning: String

    public init(_ value: String, _ scheme: String, _ meaning: String) {
        self.value = value
        self.scheme = scheme
        self.meaning = meaning
    }

    /// A Code Sequence item.
    public var item: Dataset {
        var item = Dataset()
        item.set(.codeValue, .SH, value)
        item.set(.codingSchemeDesignator, .SH, scheme)
        item.set(.codeMeaning, .LO, meaning)
        return item
    }
}

/// Anatomic regions a clinic photographs or scans: SNOMED CT codes from DICOM CID 4 and the Body Part Examined
/// term of PS3.16 Annex L.
public enum AnatomicRegion: String, Sendable, CaseIterable {
    case face, head, neck, nose, ear, eye, lip, breast, chest, abdomen, back, buttock, thigh
    case upperArm = "upper-arm"
    case hand
    case wholeBody = "whole-body"

    /// Whether the structure comes in left and right (series Laterality is then required, Type 2C).
    public var isPaired: Bool {
        switch self {
        case .ear, .eye, .breast, .buttock, .thigh, .upperArm, .hand: true
        case .face, .head, .neck, .nose, .lip, .chest, .abdomen, .back, .wholeBody: false
        }
    }

    public var code: CodedConcept {
        switch self {
        case .face: CodedConcept("89545001", "SCT", "Face")
        case .head: CodedConcept("69536005", "SCT", "Head")
        case .neck: CodedConcept("45048000", "SCT", "Neck")
        case .nose: CodedConcept("45206002", "SCT", "Nose")
        case .ear: CodedConcept("117590005", "SCT", "Ear")
        case .eye: CodedConcept("81745001", "SCT", "Eye")
        case .lip: CodedConcept("48477009", "SCT", "Lip")
        case .breast: CodedConcept("76752008", "SCT", "Breast")
        case .chest: CodedConcept("51185008", "SCT", "Chest")
        case .abdomen: CodedConcept("818983003", "SCT", "Abdomen")
        case .back: CodedConcept("77568009", "SCT", "Back")
        case .buttock: CodedConcept("46862004", "SCT", "Buttock")
        case .thigh: CodedConcept("68367000", "SCT", "Thigh")
        case .upperArm: CodedConcept("40983000", "SCT", "Upper arm")
        case .hand: CodedConcept("85562004", "SCT", "Hand")
        case .wholeBody: CodedConcept("38266002", "SCT", "Entire body")
        }
    }

    /// Body Part Examined (0018,0015) defined term.
    public var bodyPartExamined: String {
        switch self {
        case .upperArm: "ARM"
        case .wholeBody: "WHOLEBODY"
        default: rawValue.uppercased()
        }
    }
}

/// The standard views of aesthetic photography. No DICOM context group names them yet, so they are coded in
/// Facet's local coding scheme (`99FACET`, a private scheme as PS3.16 §8 allows).
public enum PhotoView: String, Sendable, CaseIterable {
    case frontal
    case obliqueLeft = "oblique-left"
    case obliqueRight = "oblique-right"
    case lateralLeft = "lateral-left"
    case lateralRight = "lateral-right"
    case submental
    case birdsEye = "birds-eye"

    public var code: CodedConcept {
        switch self {
        case .frontal: CodedConcept("FRONTAL", "99FACET", "Frontal view")
        case .obliqueLeft: CodedConcept("OBLIQUE-L", "99FACET", "Left oblique view")
        case .obliqueRight: CodedConcept("OBLIQUE-R", "99FACET", "Right oblique view")
        case .lateralLeft: CodedConcept("LATERAL-L", "99FACET", "Left lateral view")
        case .lateralRight: CodedConcept("LATERAL-R", "99FACET", "Right lateral view")
        case .submental: CodedConcept("SUBMENTAL", "99FACET", "Submental view")
        case .birdsEye: CodedConcept("BIRDS-EYE", "99FACET", "Bird's-eye view")
        }
    }

    public static let conceptName = CodedConcept("VIEW", "99FACET", "Photographic view")

    /// Accepts the canonical names and common spellings (`oblique_left`, `bird's-eye`, `birdseye`).
    public init?(name: String) {
        let key = name.lowercased().replacingOccurrences(of: "_", with: "-").replacingOccurrences(of: "'", with: "")
        if let view = PhotoView(rawValue: key) {
            self = view
        } else if key == "birdseye" {
            self = .birdsEye
        } else {
            return nil
        }
    }
}

/// When a capture was taken relative to the treatment.
public enum Timing: String, Sendable, CaseIterable {
    case before
    case after
    case followUp = "follow-up"

    public var code: CodedConcept {
        switch self {
        case .before: CodedConcept("BEFORE", "99FACET", "Before treatment")
        case .after: CodedConcept("AFTER", "99FACET", "After treatment")
        case .followUp: CodedConcept("FOLLOW-UP", "99FACET", "Follow-up")
        }
    }

    public static let conceptName = CodedConcept("TIMING", "99FACET", "Capture timing")
}
