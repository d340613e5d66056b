/// A DICOM value representation (PS3.5 §6.2).
public enum VR: String, Sendable, CaseIterable {
    case AE, AS, AT, CS, DA, DS, DT, FD, FL, IS, LO, LT, OB, OD, OF, OL, OV, OW, PN, SH, SL, SQ, SS, ST, SV, TM, UC,
        UI, UL, UN, UR, US, UT, UV

    /// VRs whose Explicit VR encoding uses a 4-byte length after two reserved bytes.
    public var hasLongLength: Bool {
        switch self {
        case .OB, .OD, .OF, .OL, .OV, .OW, .SQ, .UC, .UN, .UR, .UT, .SV, .UV: true
        default: false
        }
    }

    /// Character string VRs (padded with a space, multi-valued with a backslash unless single-valued).
    public var isString: Bool {
        switch self {
        case .AE, .AS, .CS, .DA, .DS, .DT, .IS, .LO, .LT, .PN, .SH, .ST, .TM, .UC, .UI, .UR, .UT: true
        default: false
        }
    }

    /// String VRs that hold exactly one value, in which a backslash is an ordinary character.
    public var isSingleValuedText: Bool { self == .LT || self == .ST || self == .UT || self == .UR }

    /// Binary "other" VRs and UN, whose values travel as InlineBinary or BulkDataURI in DICOM JSON.
    public var isBinary: Bool {
        switch self {
        case .OB, .OD, .OF, .OL, .OV, .OW, .UN: true
        default: false
        }
    }

    /// Size of one binary numeric value, for fixed-width VRs.
    public var fixedWidth: Int? {
        switch self {
        case .US, .SS: 2
        case .UL, .SL, .FL: 4
        case .FD, .SV, .UV: 8
        case .AT: 4
        default: nil
        }
    }

    /// Maximum length of one value in bytes for length-limited string VRs (PS3.5 Table 6.2-1).
    public var maximumValueLength: Int? {
        switch self {
        case .AE: 16
        case .AS: 4
        case .CS: 16
        case .DA: 8
        case .DS: 16
        case .DT: 26
        case .IS: 12
        case .LO: 64
        case .LT: 10240
        case .SH: 16
        case .ST: 1024
        case .TM: 14
        case .UI: 64
        default: nil
        }
    }
}
