import Testing

@testable import DICOMCore

@Suite struct QueryTests {
    func dataset(_ elements: DataElement...) -> Dataset { Dataset(elements) }

    func matches(_ parameters: [(String, String)], _ dataset: Dataset) throws -> Bool {
        let query = try Query.parse(parameters.map { (name: $0.0, value: $0.1) })
        return Query.matches(query.keys, dataset)
    }

    @Test func wildcardsAreLiteralElsewhereAndCaseSensitiveExceptPN() throws {
        let data = dataset(
            DataElement(.patientName, .PN, .personNames([PersonName(dicom: "Doe^Jane^^^")])),
            DataElement(.studyDescription, .LO, strings: ["Rhinoplasty (before)"]))
        #expect(try matches([("PatientName", "DOE^JANE")], data))
        #expect(try matches([("PatientName", "d*e")], data))
        #expect(try matches([("PatientName", "Doe^J?ne")], data))
        #expect(try !matches([("PatientName", "Doe")], data))
        #expect(try matches([("StudyDescription", "Rhino*")], data))
        #expect(try !matches([("StudyDescription", "rhino*")], data))
        #expect(try matches([("StudyDescription", "*(before)")], data))
        #expect(try matches([("StudyDescription", "*")], data))
        #expect(try matches([("AccessionNumber", "")], data))  // universal, even when absent
        #expect(try !matches([("AccessionNumber", "A1")], data))
    }

    @Test func dateAndTimeRanges() throws {
        let data = dataset(
            DataElement(.studyDate, .DA, strings: ["20260105"]), DataElement(.studyTime, .TM, strings: ["2330"]),
            DataElement(.acquisitionDateTime, .DT, strings: ["20260105233000.5-0500"]))
        #expect(try matches([("StudyDate", "20260105")], data))
        #expect(try matches([("StudyDate", "20260101-20260105")], data))
        #expect(try matches([("StudyDate", "-20260105")], data))
        #expect(try !matches([("StudyDate", "20260106-")], data))
        #expect(try matches([("StudyTime", "23")], data))  // a partial time is a range of its own
        #expect(try matches([("StudyTime", "2300-0100")], data))  // across midnight
        #expect(try !matches([("StudyTime", "0100-2300")], data))
        #expect(try matches([("AcquisitionDateTime", "20260105-20260106")], data))
        #expect(try !matches([("AcquisitionDateTime", "2026010600-")], data))
        // Combined: 2026-01-05 23:30 is inside "from 2026-01-05 23:00 to 2026-01-06 01:00".
        #expect(try matches([("StudyDate", "20260105-20260106"), ("StudyTime", "2300-0100")], data))
        #expect(try !matches([("StudyDate", "20260104-20260105"), ("StudyTime", "0000-2300")], data))
    }

    @Test func uidListsNumbersAndSequencePaths() throws {
        let item = dataset(DataElement(Tag(0x0040, 0x0009), .SH, strings: ["SPS-7"]))
        let data = dataset(
            DataElement(.studyInstanceUID, .UI, strings: ["1.2.3"]), DataElement(.seriesNumber, .IS, strings: ["4"]),
            DataElement(Tag(0x0040, 0x0275), .SQ, .sequence([item])))
        #expect(try matches([("StudyInstanceUID", "1.2.9,1.2.3")], data))
        #expect(try !matches([("StudyInstanceUID", "1.2.9")], data))
        #expect(try matches([("SeriesNumber", "4")], data))
        #expect(try matches([("00400275.00400009", "SPS-7")], data))
        #expect(try matches([("RequestAttributesSequence.ScheduledProcedureStepID", "SPS-*")], data))
        #expect(try !matches([("00400275.00400009", "SPS-8")], data))
    }

    @Test func malformedValuesAreErrorsAndUnknownParametersAreIgnored() throws {
        for bad in [("StudyDate", "2026-01-05"), ("StudyInstanceUID", "1.2.a"), ("limit", "-1"), ("StudyTime", "25x")] {
            #expect(throws: DICOMCoreError.self) { try Query.parse([(name: bad.0, value: bad.1)]) }
        }
        let query = try Query.parse([
            (name: "NoSuchKeyword", value: "1"), (name: "includefield", value: "00081030,all,Nonsense"),
            (name: "fuzzymatching", value: "true"), (name: "limit", value: "5"), (name: "offset", value: "10"),
        ])
        #expect(query.keys.isEmpty && query.includeAll && query.fuzzyMatching)
        #expect(query.limit == 5 && query.offset == 10 && query.includeFields == [[.studyDescription]])
        #expect(query.ignored == ["NoSuchKeyword", "Nonsense"])
    }

    @Test func levelsFollowTheStudyRootModel() {
        #expect(QueryLevel.of(.patientName) == .study)
        #expect(QueryLevel.of(.accessionNumber) == .study)
        #expect(QueryLevel.of(.modality) == .series)
        #expect(QueryLevel.of(.bodyPartExamined) == .series)
        #expect(QueryLevel.of(.sopClassUID) == .instance)
        #expect(QueryLevel.of(.modelGroupUID) == .instance)
    }
}
