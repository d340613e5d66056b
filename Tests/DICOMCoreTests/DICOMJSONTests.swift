import Foundation
import Testing

@testable import DICOMCore

@Suite struct DICOMJSONTests {
    func sample() -> Dataset {
        var dataset = Dataset()
        dataset.set(.patientName, .PN, "Müller^Jürgen")
        dataset.set(.patientID, .LO, "P001")
        dataset.set(.studyDescription, .LO, strings: [])
        dataset.set(.seriesNumber, .IS, "7")
        dataset.set(.lossyImageCompressionRatio, .DS, "12.50")
        dataset.set(Tag(0x0018, 0x0050), .DS, "+1.5")
        dataset.set(.rows, .US, unsigned: 480)
        dataset.set(DataElement(Tag(0x0020, 0x5000), .AT, .tags([.patientID])))
        dataset.set(DataElement(.iccProfile, .OB, .bytes(Data([1, 2, 3]))))
        var item = Dataset()
        item.set(.codeValue, .SH, "89545001")
        item.set(.codingSchemeDesignator, .SH, "SCT")
        dataset.set(.anatomicRegionSequence, sequence: [item])
        dataset.set(.acquisitionContextSequence, sequence: [])
        return dataset
    }

    func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func keysAreUpperCaseHexInAscendingOrder() {
        var flat = sample()
        flat.remove(.anatomicRegionSequence)
        let text = DICOMJSON.encode(flat)
        let keys = text.matches(of: /"([0-9A-F]{8})":\{"vr"/).map { String($0.1) }
        #expect(keys == keys.sorted())
        #expect(keys.first == "00081030")
        #expect(keys.contains("0040A555") == false)
        #expect(keys.contains("00400555"))
    }

    @Test func everyAttributeHasAVRAndEmptyOnesHaveNoValue() throws {
        let json = try parse(DICOMJSON.encode(sample()))
        for (_, attribute) in json { #expect((attribute as? [String: Any])?["vr"] is String) }
        let empty = try #require(json["00081030"] as? [String: Any])
        #expect(empty["Value"] == nil)
        let emptySequence = try #require(json["00400555"] as? [String: Any])
        #expect(emptySequence["Value"] == nil)
    }

    @Test func numbersPersonNamesTagsAndBinaryFollowAnnexF() throws {
        let text = DICOMJSON.encode(sample())
        #expect(text.contains(#""00200011":{"vr":"IS","Value":[7]}"#))
        #expect(text.contains(#""00282112":{"vr":"DS","Value":[12.50]}"#))
        #expect(text.contains(#""00180050":{"vr":"DS","Value":[1.5]}"#))
        #expect(text.contains(#""00100010":{"vr":"PN","Value":[{"Alphabetic":"Müller^Jürgen"}]}"#))
        #expect(text.contains(#""00205000":{"vr":"AT","Value":["00100020"]}"#))
        #expect(text.contains(#""00282000":{"vr":"OB","InlineBinary":"AQID"}"#))
        let json = try parse(text)
        let sequence = try #require(json["00082218"] as? [String: Any])
        let items = try #require(sequence["Value"] as? [[String: Any]])
        #expect((items.first?["00080100"] as? [String: Any])?["Value"] as? [String] == ["89545001"])
    }

    @Test func largeBinaryGoesToBulkDataURIWhenAProviderIsGiven() {
        var dataset = Dataset()
        dataset.set(DataElement(.encapsulatedDocument, .OB, .bytes(Data(count: 4096))))
        dataset.set(DataElement(.pixelData, .OB, .bulk(length: 100)))
        let options = DICOMJSON.Options(
            inlineBinaryThreshold: 1024,
            bulkDataURI: { path in "https://x/bulk/" + path.map(\.hex).joined(separator: ".") })
        let text = DICOMJSON.encode(dataset, options: options)
        #expect(text.contains(#""00420011":{"vr":"OB","BulkDataURI":"https://x/bulk/00420011"}"#))
        #expect(text.contains(#""7FE00010":{"vr":"OB","BulkDataURI":"https://x/bulk/7FE00010"}"#))
    }

    @Test func decodingWhatWasEncodedGivesTheSameDataset() throws {
        let original = sample()
        let decoded = try DICOMJSON.decode(Data(DICOMJSON.encode(original).utf8))
        #expect(decoded.personName(.patientName)?.alphabetic == "Müller^Jürgen")
        #expect(decoded.strings(.lossyImageCompressionRatio) == ["12.5"])
        #expect(decoded.int(.rows) == 480)
        #expect(decoded.data(.iccProfile) == Data([1, 2, 3]))
        #expect(decoded.items(.anatomicRegionSequence)?.first?.string(.codeValue) == "89545001")
        #expect(decoded[.studyDescription]?.isEmpty == true)
        #expect(decoded.tags == original.tags)
    }

    @Test func refusesMalformedDICOMJSON() {
        let cases = [
            #"[]"#, #"{"0010":{"vr":"PN"}}"#, #"{"00100010":{"Value":["x"]}}"#,
            #"{"00280010":{"vr":"US","Value":["x"]}}"#,
            #"{"7FE00010":{"vr":"OB","Value":[1]}}"#, "not json",
        ]
        for text in cases {
            #expect(throws: DICOMCoreError.self) { try DICOMJSON.decode(Data(text.utf8)) }
        }
    }

    /// A dataset whose sequences nest `levels` deep.
    func nested(levels: Int) -> Data {
        var text = #"{"00400555":{"vr":"SQ","Value":[{}]}}"#
        for _ in 1..<levels { text = #"{"00400555":{"vr":"SQ","Value":["# + text + "]}}" }
        return Data(text.utf8)
    }

    @Test func refusesSequencesNestedBeyondTheLimit() {
        #expect(throws: DICOMCoreError.self) { try DICOMJSON.decode(nested(levels: DICOMJSON.maximumDepth + 1)) }
    }

    @Test func readsSequencesNestedExactlyToTheLimit() throws {
        var dataset = try DICOMJSON.decode(nested(levels: DICOMJSON.maximumDepth))
        var levels = 0
        while let item = dataset.items(Tag(0x0040, 0x0555))?.first {
            levels += 1
            dataset = item
        }
        #expect(levels == DICOMJSON.maximumDepth)
    }

    /// The DICOM reader (DCMTK shim) shares this limit; a STOW of 20 levels must be indexable and readable again.
    @Test func theNestingLimitIsThirtyTwoLevels() {
        #expect(DICOMJSON.maximumDepth == 32)
    }

    @Test func jsonNumberSyntaxIsRecognised() {
        #expect(DICOMJSON.isJSONNumber("12.50"))
        #expect(DICOMJSON.isJSONNumber("-1e-3"))
        #expect(!DICOMJSON.isJSONNumber("+1"))
        #expect(!DICOMJSON.isJSONNumber(".5"))
        #expect(!DICOMJSON.isJSONNumber("01"))
        #expect(DICOMJSON.numberText(" 007 ", integer: true) == "7")
    }
}
