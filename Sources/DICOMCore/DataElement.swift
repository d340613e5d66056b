import Foundation

/// The value of one data element, typed by its VR family.
public enum Value: Hashable, Sendable {
    /// String VRs other than PN; IS and DS keep their exact text.
    case strings([String])
    case personNames([PersonName])
    /// US, UL, UV.
    case unsigned([UInt64])
    /// SS, SL, SV.
    case signed([Int64])
    /// FL, FD (and OF/OD are kept as bytes).
    case doubles([Double])
    case tags([Tag])
    /// OB, OW, OD, OF, OL, OV, UN, little-endian bytes.
    case bytes(Data)
    case sequence([Dataset])
    /// Encapsulated pixel data: the fragments, without the basic offset table.
    case fragments([Data])
    /// A value that was deliberately not loaded (pixel data, encapsulated documents); its length in bytes,
    /// `UInt32.max` for undefined length.
    case bulk(length: UInt32)
    /// A value held elsewhere, named by a DICOM JSON BulkDataURI.
    case bulkURI(String)

    /// Number of values (VM) for multi-valued kinds.
    public var multiplicity: Int {
        switch self {
        case .strings(let values): values.count
        case .personNames(let values): values.count
        case .unsigned(let values): values.count
        case .signed(let values): values.count
        case .doubles(let values): values.count
        case .tags(let values): values.count
        case .sequence(let items): items.count
        case .bytes(let data): data.isEmpty ? 0 : 1
        case .fragments(let frames): frames.isEmpty ? 0 : 1
        case .bulk, .bulkURI: 1
        }
    }
}

/// One attribute of a dataset: its tag, VR and value.
public struct DataElement: Hashable, Sendable {
    public var tag: Tag
    public var vr: VR
    public var value: Value

    public init(_ tag: Tag, _ vr: VR, _ value: Value) {
        self.tag = tag
        self.vr = vr
        self.value = value
    }

    /// A string-VR element; PN strings become person names. An empty array is an empty (zero-length) value.
    public init(_ tag: Tag, _ vr: VR, strings: [String]) {
        self.tag = tag
        self.vr = vr
        if vr == .PN {
            self.value = .personNames(strings.map { PersonName(dicom: $0) })
        } else {
            self.value = .strings(strings)
        }
    }

    public var isEmpty: Bool { value.multiplicity == 0 }
}
