import Foundation

extension Dataset {
    /// Encodes the dataset (no File Meta Information) as Explicit VR Little Endian. Sequences and items use
    /// undefined length with delimiters; encapsulated Pixel Data is an OB item sequence with an empty Basic
    /// Offset Table. Group length elements are dropped (PS3.5 §7.2 makes them optional).
    public func encodedExplicitVRLittleEndian() throws(DICOMCoreError) -> Data {
        var out = Data()
        try Self.encode(self, into: &out)
        return out
    }

    private static func encode(_ dataset: Dataset, into out: inout Data) throws(DICOMCoreError) {
        for element in dataset.elements where !element.tag.isGroupLength {
            try encode(element, into: &out)
        }
    }

    private static func header(_ tag: Tag, _ vr: VR, length: UInt32, into out: inout Data) throws(DICOMCoreError) {
        appendLE(UInt64(tag.group), 2, &out)
        appendLE(UInt64(tag.element), 2, &out)
        out.append(contentsOf: Array(vr.rawValue.utf8))
        if vr.hasLongLength {
            out.append(contentsOf: [0, 0])
            appendLE(UInt64(length), 4, &out)
        } else {
            guard length <= 0xFFFF else {
                throw DICOMCoreError(.invalidValue, "value of \(tag) is too long for VR \(vr.rawValue)")
            }
            appendLE(UInt64(length), 2, &out)
        }
    }

    private static func item(_ tag: Tag, length: UInt32, into out: inout Data) {
        appendLE(UInt64(tag.group), 2, &out)
        appendLE(UInt64(tag.element), 2, &out)
        appendLE(UInt64(length), 4, &out)
    }

    private static func encode(_ element: DataElement, into out: inout Data) throws(DICOMCoreError) {
        switch element.value {
        case .sequence(let items):
            try header(element.tag, .SQ, length: 0xFFFF_FFFF, into: &out)
            for itemDataset in items {
                item(.item, length: 0xFFFF_FFFF, into: &out)
                try encode(itemDataset, into: &out)
                item(.itemDelimitation, length: 0, into: &out)
            }
            item(.sequenceDelimitation, length: 0, into: &out)
        case .fragments(let fragments):
            try header(element.tag, .OB, length: 0xFFFF_FFFF, into: &out)
            item(.item, length: 0, into: &out)
            for fragment in fragments {
                let padded = fragment.count % 2 == 1
                guard fragment.count < 0xFFFF_FFF0 else {
                    throw DICOMCoreError(.invalidValue, "pixel data fragment is too large")
                }
                item(.item, length: UInt32(fragment.count + (padded ? 1 : 0)), into: &out)
                out.append(fragment)
                if padded { out.append(0) }
            }
            item(.sequenceDelimitation, length: 0, into: &out)
        default:
            let bytes = try element.value.encoded(vr: element.vr)
            guard bytes.count < 0xFFFF_FFFE else {
                throw DICOMCoreError(.invalidValue, "value of \(element.tag) is too large")
            }
            try header(element.tag, element.vr, length: UInt32(bytes.count), into: &out)
            out.append(bytes)
        }
    }

    private static func appendLE(_ value: UInt64, _ size: Int, _ out: inout Data) {
        for index in 0..<size { out.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
}
