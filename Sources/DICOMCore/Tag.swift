/// A DICOM attribute tag (group, element), ordered as the standard orders datasets.
public struct Tag: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var group: UInt16
    public var element: UInt16

    public init(_ group: UInt16, _ element: UInt16) {
        self.group = group
        self.element = element
    }

    /// `0x00100010` style.
    public init(_ combined: UInt32) {
        self.init(UInt16(combined >> 16), UInt16(combined & 0xFFFF))
    }

    /// Parses eight hexadecimal digits, as DICOM JSON and QIDO use them (`00100010`).
    public init?(hex: some StringProtocol) {
        guard hex.count == 8, let value = UInt32(hex, radix: 16) else { return nil }
        self.init(value)
    }

    public var combined: UInt32 { UInt32(group) << 16 | UInt32(element) }
    /// Upper-case eight-digit hexadecimal, the DICOM JSON key form.
    public var hex: String {
        let value = combined
        return String(unsafeUninitializedCapacity: 8) { buffer in
            for index in 0..<8 {
                let nibble = Int((value >> UInt32(28 - 4 * index)) & 0xF)
                buffer[index] = nibble < 10 ? UInt8(48 + nibble) : UInt8(55 + nibble)
            }
            return 8
        }
    }
    public var isPrivate: Bool { group % 2 == 1 }
    public var isPrivateCreator: Bool { isPrivate && element >= 0x10 && element <= 0xFF }
    public var isGroupLength: Bool { element == 0 }

    public var description: String { "(\(hex.prefix(4)),\(hex.suffix(4)))" }

    public static func < (lhs: Tag, rhs: Tag) -> Bool { lhs.combined < rhs.combined }
}

extension Tag {
    public static let transferSyntaxUID = Tag(0x0002, 0x0010)
    public static let mediaStorageSOPClassUID = Tag(0x0002, 0x0002)
    public static let mediaStorageSOPInstanceUID = Tag(0x0002, 0x0003)
    public static let specificCharacterSet = Tag(0x0008, 0x0005)
    public static let imageType = Tag(0x0008, 0x0008)
    public static let instanceCreationDate = Tag(0x0008, 0x0012)
    public static let instanceCreationTime = Tag(0x0008, 0x0013)
    public static let sopClassUID = Tag(0x0008, 0x0016)
    public static let sopInstanceUID = Tag(0x0008, 0x0018)
    public static let studyDate = Tag(0x0008, 0x0020)
    public static let seriesDate = Tag(0x0008, 0x0021)
    public static let acquisitionDate = Tag(0x0008, 0x0022)
    public static let contentDate = Tag(0x0008, 0x0023)
    public static let acquisitionDateTime = Tag(0x0008, 0x002A)
    public static let studyTime = Tag(0x0008, 0x0030)
    public static let seriesTime = Tag(0x0008, 0x0031)
    public static let acquisitionTime = Tag(0x0008, 0x0032)
    public static let contentTime = Tag(0x0008, 0x0033)
    public static let accessionNumber = Tag(0x0008, 0x0050)
    public static let modality = Tag(0x0008, 0x0060)
    public static let conversionType = Tag(0x0008, 0x0064)
    public static let manufacturer = Tag(0x0008, 0x0070)
    public static let referringPhysicianName = Tag(0x0008, 0x0090)
    public static let codeValue = Tag(0x0008, 0x0100)
    public static let codingSchemeDesignator = Tag(0x0008, 0x0102)
    public static let codeMeaning = Tag(0x0008, 0x0104)
    public static let referencedSOPClassUID = Tag(0x0008, 0x1150)
    public static let referencedSOPInstanceUID = Tag(0x0008, 0x1155)
    public static let studyDescription = Tag(0x0008, 0x1030)
    public static let seriesDescription = Tag(0x0008, 0x103E)
    public static let manufacturerModelName = Tag(0x0008, 0x1090)
    public static let referencedInstanceSequence = Tag(0x0008, 0x114A)
    public static let derivationDescription = Tag(0x0008, 0x2111)
    public static let anatomicRegionSequence = Tag(0x0008, 0x2218)
    public static let patientName = Tag(0x0010, 0x0010)
    public static let patientID = Tag(0x0010, 0x0020)
    public static let patientBirthDate = Tag(0x0010, 0x0030)
    public static let patientSex = Tag(0x0010, 0x0040)
    public static let bodyPartExamined = Tag(0x0018, 0x0015)
    public static let deviceSerialNumber = Tag(0x0018, 0x1000)
    public static let softwareVersions = Tag(0x0018, 0x1020)
    public static let studyInstanceUID = Tag(0x0020, 0x000D)
    public static let seriesInstanceUID = Tag(0x0020, 0x000E)
    public static let studyID = Tag(0x0020, 0x0010)
    public static let seriesNumber = Tag(0x0020, 0x0011)
    public static let instanceNumber = Tag(0x0020, 0x0013)
    public static let patientOrientation = Tag(0x0020, 0x0020)
    public static let frameOfReferenceUID = Tag(0x0020, 0x0052)
    public static let laterality = Tag(0x0020, 0x0060)
    public static let imageLaterality = Tag(0x0020, 0x0062)
    public static let positionReferenceIndicator = Tag(0x0020, 0x1040)
    public static let samplesPerPixel = Tag(0x0028, 0x0002)
    public static let photometricInterpretation = Tag(0x0028, 0x0004)
    public static let planarConfiguration = Tag(0x0028, 0x0006)
    public static let numberOfFrames = Tag(0x0028, 0x0008)
    public static let rows = Tag(0x0028, 0x0010)
    public static let columns = Tag(0x0028, 0x0011)
    public static let bitsAllocated = Tag(0x0028, 0x0100)
    public static let bitsStored = Tag(0x0028, 0x0101)
    public static let highBit = Tag(0x0028, 0x0102)
    public static let pixelRepresentation = Tag(0x0028, 0x0103)
    public static let lossyImageCompression = Tag(0x0028, 0x2110)
    public static let lossyImageCompressionRatio = Tag(0x0028, 0x2112)
    public static let lossyImageCompressionMethod = Tag(0x0028, 0x2114)
    public static let iccProfile = Tag(0x0028, 0x2000)
    public static let measurementUnitsCodeSequence = Tag(0x0040, 0x08EA)
    public static let acquisitionContextSequence = Tag(0x0040, 0x0555)
    public static let valueType = Tag(0x0040, 0xA040)
    public static let conceptNameCodeSequence = Tag(0x0040, 0xA043)
    public static let conceptCodeSequence = Tag(0x0040, 0xA168)
    public static let documentTitle = Tag(0x0042, 0x0010)
    public static let encapsulatedDocument = Tag(0x0042, 0x0011)
    public static let mimeTypeOfEncapsulatedDocument = Tag(0x0042, 0x0012)
    public static let encapsulatedDocumentLength = Tag(0x0042, 0x0015)
    public static let modelGroupUID = Tag(0x0068, 0x7004)
    public static let referencedFileID = Tag(0x0004, 0x1500)
    public static let pixelData = Tag(0x7FE0, 0x0010)
    public static let item = Tag(0xFFFE, 0xE000)
    public static let itemDelimitation = Tag(0xFFFE, 0xE00D)
    public static let sequenceDelimitation = Tag(0xFFFE, 0xE0DD)
}
