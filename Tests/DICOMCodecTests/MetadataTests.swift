import DICOMCore
import Foundation
import Testing

@testable import DICOMCodec

@Suite struct MetadataTests {
    func clinical() throws -> ClinicalMetadata {
        let json = """
            {"patient": {"id": "P-77", "name": "Müller^Jürgen", "birthDate": "1980-02-29", "sex": "m"},
             "study": {"instanceUID": "1.2.826.0.1.3680043.10.99.1", "date": "2026-11-02", "time": "10:30",
                       "description": "Rhinoplasty", "accessionNumber": "ACC-1"},
             "series": {"description": "Pre-op photos"},
             "region": "nose", "view": "oblique_left", "laterality": "b", "timing": "before"}
            """
        return try ClinicalMetadata.decode(json: Data(json.utf8))
    }

    @Test func clinicalMetadataRoundTripsThroughDICOM() throws {
        let context = try Fixtures.context(try clinical())
        let instance = try PhotoConverter.convert(
            try Fixtures.data("photos/gray.jpg"), context: context, placement: Fixtures.placement)
        let dataset = try Fixtures.roundTrip(instance).file.dataset
        #expect(dataset.string(.specificCharacterSet) == "ISO_IR 192")
        #expect(dataset.personName(.patientName)?.alphabetic == "Müller^Jürgen")
        #expect(dataset.string(.patientID) == "P-77")
        #expect(dataset.string(.patientBirthDate) == "19800229")
        #expect(dataset.string(.patientSex) == "M")
        #expect(dataset.string(.studyInstanceUID) == "1.2.826.0.1.3680043.10.99.1")
        #expect(dataset.string(.studyDate) == "20261102")
        #expect(dataset.string(.studyTime) == "1030")
        #expect(dataset.string(.accessionNumber) == "ACC-1")
        #expect(dataset.string(.studyDescription) == "Rhinoplasty")
        #expect(dataset.string(.seriesDescription) == "Pre-op photos")
        #expect(dataset.string(.bodyPartExamined) == "NOSE")
        #expect(dataset.string(.imageLaterality) == "B")
        let region = try #require(dataset.items(.anatomicRegionSequence)?.first)
        #expect(region.string(.codeValue) == "45206002")
        #expect(region.string(.codingSchemeDesignator) == "SCT")
        let contextItems = try #require(dataset.items(.acquisitionContextSequence))
        let codes = contextItems.compactMap { $0.items(.conceptCodeSequence)?.first?.string(.codeValue) }
        #expect(codes == ["OBLIQUE-L", "BEFORE"])
        #expect(contextItems.allSatisfy { $0.string(.valueType) == "CODE" })
    }

    @Test func faceIsCodedAsSNOMED89545001() throws {
        var metadata = ClinicalMetadata()
        try metadata.setRegion("face")
        #expect(metadata.region?.code == CodedConcept("89545001", "SCT", "Face"))
        #expect(metadata.region?.bodyPartExamined == "FACE")
    }

    @Test(arguments: [
        (#"{"view": "sideways"}"#, "unknown view"),
        (#"{"region": "elbow-ish"}"#, "unknown region"),
        (#"{"timing": "later"}"#, "unknown timing"),
        (#"{"study": {"instanceUID": "1.02"}}"#, "invalid study UID"),
        (#"{"patient": {"birthDate": "1981-02-29"}}"#, "birth date"),
        (#"{"patient": {"sex": "X"}}"#, "sex"),
        (#"{"patient": {"id": "a\\b"}}"#, "patient ID"),
        (#"{"pateint": {}}"#, "unknown metadata field pateint"),
        (#"{"patient": {"nmae": "x"}}"#, "unknown metadata field patient.nmae"),
        (#"{"patient": {"id": 5}}"#, "must be a string"),
        ("[1]", "must be a JSON object"),
    ])
    func invalidMetadataIsRefusedByField(_ json: String, _ reason: String) {
        let error = #expect(throws: DICOMCodecError.self) { try ClinicalMetadata.decode(json: Data(json.utf8)) }
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
    }

    @Test func errorMessagesNeverEchoTheValue() {
        let json = #"{"patient": {"name": "Secret^Name\\Other", "birthDate": "Secret"}}"#
        let error = #expect(throws: DICOMCodecError.self) { try ClinicalMetadata.decode(json: Data(json.utf8)) }
        #expect(error?.message.contains("Secret") == false)
    }

    @Test func viewNamesAcceptCommonSpellings() throws {
        #expect(PhotoView(name: "Birds-Eye") == .birdsEye)
        #expect(PhotoView(name: "bird's-eye") == .birdsEye)
        #expect(PhotoView(name: "LATERAL_RIGHT") == .lateralRight)
        #expect(PhotoView(name: "top") == nil)
    }
}
