import Foundation
import Testing

@testable import DICOMCore

@Suite struct ValueEncodingTests {
    @Test func explicitLittleEndianElementHasTheStandardLayout() throws {
        var dataset = Dataset()
        dataset.set(.patientID, .LO, "P1")
        let bytes = try dataset.encodedExplicitVRLittleEndian()
        #expect([UInt8](bytes) == [0x10, 0x00, 0x20, 0x00, 0x4C, 0x4F, 0x02, 0x00, 0x50, 0x31])
    }

    @Test func oddLengthValuesArePaddedByVR() throws {
        #expect([UInt8](try Value.strings(["1.2.3"]).encoded(vr: .UI)) == Array("1.2.3".utf8) + [0])
        #expect([UInt8](try Value.strings(["ABC"]).encoded(vr: .CS)) == Array("ABC".utf8) + [0x20])
        #expect([UInt8](try Value.bytes(Data([1, 2, 3])).encoded(vr: .OB)) == [1, 2, 3, 0])
    }

    @Test func longVRsUseFourByteLengths() throws {
        var dataset = Dataset()
        dataset.set(DataElement(.encapsulatedDocument, .OB, .bytes(Data([9, 9]))))
        let bytes = [UInt8](try dataset.encodedExplicitVRLittleEndian())
        #expect(bytes == [0x42, 0x00, 0x11, 0x00, 0x4F, 0x42, 0, 0, 2, 0, 0, 0, 9, 9])
    }

    @Test(arguments: [
        (VR.US, Value.unsigned([0, 1, 65535])),
        (VR.UL, Value.unsigned([4_000_000_000])),
        (VR.UV, Value.unsigned([UInt64.max])),
        (VR.SS, Value.signed([-32768, 5])),
        (VR.SL, Value.signed([-2_000_000_000])),
        (VR.SV, Value.signed([Int64.min])),
        (VR.FD, Value.doubles([3.141592653589793, -0.0])),
        (VR.FL, Value.doubles([0.5, -2.25])),
        (VR.AT, Value.tags([.patientName, .pixelData])),
        (VR.CS, Value.strings(["ORIGINAL", "PRIMARY"])),
        (VR.LT, Value.strings(["a\\b keeps its backslash"])),
        (VR.PN, Value.personNames([PersonName(dicom: "Müller^Jürgen=ミュラー^ユルゲン=myura^yurugen")])),
        (VR.OB, Value.bytes(Data([0, 255, 7, 8]))),
    ])
    func valuesSurviveAnEncodeDecodeRoundTrip(_ vr: VR, _ value: Value) throws {
        let decoded = try Value.decode(try value.encoded(vr: vr), vr: vr)
        #expect(decoded == value)
    }

    @Test func refusesAValueThatDoesNotFitItsVR() {
        #expect(throws: DICOMCoreError.self) { try Value.unsigned([70000]).encoded(vr: .US) }
        #expect(throws: DICOMCoreError.self) { try Value.strings(["x"]).encoded(vr: .US) }
        #expect(throws: DICOMCoreError.self) { try Value.decode(Data([1, 2, 3]), vr: .UL) }
    }

    @Test func personNameKeepsItsThreeGroups() {
        let name = PersonName(dicom: "Yamada^Tarou=山田^太郎=やまだ^たろう")
        #expect(name.alphabetic == "Yamada^Tarou")
        #expect(name.ideographic == "山田^太郎")
        #expect(name.phonetic == "やまだ^たろう")
        #expect(name.familyName == "Yamada")
        #expect(PersonName(dicom: "Smith^John^^^").dicomString == "Smith^John")
    }

    @Test func dictionaryKnowsStandardTagsByTagAndKeyword() {
        #expect(TagDictionary.entry(for: .patientName)?.keyword == "PatientName")
        #expect(TagDictionary.entry(forKeyword: "ModelGroupUID")?.tag == .modelGroupUID)
        #expect(TagDictionary.vr(for: .encapsulatedDocumentLength) == .UL)
        #expect(TagDictionary.vr(for: Tag(0x0009, 0x1001)) == .UN)
        #expect(TagDictionary.count > 4000)
    }
}
