import DICOMCodec
import DICOMCore
import Foundation
import Testing

/// The comparison's report objects (issue 11 §2): the Enhanced SR after TID 1500 and the change map as
/// Encapsulated OBJ, each passing `dciodvfy -new` with no error and carrying the figures and references given.
@Suite struct ComparisonReportTests {
    static let before = ComparisonSR.Capture(
        sopClassUID: UID.encapsulatedOBJStorage, sopInstanceUID: "1.2.826.0.1.3680043.9.1.1",
        seriesInstanceUID: "1.2.826.0.1.3680043.9.1.2", studyInstanceUID: "1.2.826.0.1.3680043.9.1.3")
    static let after = ComparisonSR.Capture(
        sopClassUID: UID.encapsulatedOBJStorage, sopInstanceUID: "1.2.826.0.1.3680043.9.2.1",
        seriesInstanceUID: "1.2.826.0.1.3680043.9.2.2", studyInstanceUID: "1.2.826.0.1.3680043.9.2.3")

    static var study: Dataset {
        var study = Dataset()
        study.set(.patientName, .PN, "Müller^Zoë")
        study.set(.patientID, .LO, "P-7")
        study.set(.patientBirthDate, .DA, "19850214")
        study.set(.patientSex, .CS, "F")
        study.set(.studyDate, .DA, "20260301")
        study.set(.studyTime, .TM, "101500")
        study.set(.studyInstanceUID, .UI, after.studyInstanceUID)
        return study
    }

    /// The NUM items of the report's measurement group: concept meaning → (value, units).
    static func numbers(_ dataset: Dataset) -> [String: (Double, String)] {
        var found: [String: (Double, String)] = [:]
        func walk(_ items: [Dataset]) {
            for item in items {
                if item.string(Tag(0x0040, 0xA040)) == "NUM",
                    case .sequence(let names)? = item[Tag(0x0040, 0xA043)]?.value,
                    case .sequence(let measured)? = item[Tag(0x0040, 0xA300)]?.value,
                    let value = measured.first?.string(Tag(0x0040, 0xA30A)).flatMap(Double.init),
                    case .sequence(let units)? = measured.first?[Tag(0x0040, 0x08EA)]?.value
                {
                    var meaning = names.first?.string(.codeMeaning) ?? ""
                    if case .sequence(let children)? = item[Tag(0x0040, 0xA730)]?.value,
                        let derivation = children.first(where: { $0.string(Tag(0x0040, 0xA040)) == "CODE" }),
                        case .sequence(let codes)? = derivation[Tag(0x0040, 0xA168)]?.value
                    {
                        meaning += " (\(codes.first?.string(.codeMeaning) ?? ""))"
                    }
                    found[meaning] = (value, units.first?.string(.codeValue) ?? "")
                }
                if case .sequence(let children)? = item[Tag(0x0040, 0xA730)]?.value { walk(children) }
            }
        }
        walk([dataset])
        return found
    }

    @Test func theSRPassesDciodvfyAndCarriesEveryFigureWithItsUnits() throws {
        let figures = ComparisonSR.Figures(
            volumeChangeML: 0.9136053940445185, positiveVolumeML: 0.95, negativeVolumeML: -0.0364, roiAreaMM2: 1885.2,
            areaChangeMM2: 12.5, meanDisplacementMM: 0.48, maxDisplacementMM: 2.97, p95DisplacementMM: 2.1,
            registrationRMSMM: 0.11)
        let dataset = ComparisonSR.make(
            study: Self.study, before: Self.before, after: Self.after, figures: figures, title: "cheek filler",
            seriesInstanceUID: "1.2.826.0.1.3680043.9.3.1", sopInstanceUID: "1.2.826.0.1.3680043.9.3.2",
            trackingUID: "1.2.826.0.1.3680043.9.3.3", deviceUID: "2.25.1", softwareVersion: "test")
        let instance = PreparedInstance(dataset: dataset, transferSyntaxUID: UID.explicitVRLittleEndian, notes: [])
        let read = try Fixtures.roundTrip(instance).file.dataset
        #expect(read.string(.modality) == "SR")
        #expect(read.string(.studyInstanceUID) == Self.after.studyInstanceUID)
        #expect(read.string(.patientID) == "P-7")
        let found = Self.numbers(read)
        #expect(found["Volume change"]?.1 == "ml")
        #expect(abs((found["Volume change"]?.0 ?? 0) - 0.9136053940445185) < 1e-9)
        #expect(found["Area"]?.1 == "mm2" && found["Area"]?.0 == 1885.2)
        #expect(found["Distance (Mean)"]?.0 == 0.48 && found["Distance (Mean)"]?.1 == "mm")
        #expect(found["Distance (Maximum)"]?.0 == 2.97)
        #expect(found["Registration RMS error"]?.0 == 0.11)
        #expect(found.count == 9)
    }

    @Test func aFigureThatIsNotANumberIsLeftOut() throws {
        var figures = ComparisonSR.Figures(
            volumeChangeML: 1, positiveVolumeML: 1, negativeVolumeML: 0, roiAreaMM2: 10, areaChangeMM2: 0,
            meanDisplacementMM: 0.1, maxDisplacementMM: 0.2, p95DisplacementMM: 0.15, registrationRMSMM: 0.1)
        figures.registrationRMSMM = .nan
        let dataset = ComparisonSR.make(
            study: Self.study, before: Self.before, after: Self.after, figures: figures, title: "t",
            seriesInstanceUID: "1.2.826.0.1.3680043.9.4.1", sopInstanceUID: "1.2.826.0.1.3680043.9.4.2",
            trackingUID: "1.2.826.0.1.3680043.9.4.3", deviceUID: "2.25.1", softwareVersion: "test")
        let read = try Fixtures.roundTrip(
            PreparedInstance(dataset: dataset, transferSyntaxUID: UID.explicitVRLittleEndian, notes: [])
        ).file.dataset
        #expect(Self.numbers(read).count == 8)
        #expect(Self.numbers(read)["Registration RMS error"] == nil)
    }

    @Test func theChangeMapIsAnEncapsulatedOBJOfTheAfterStudyNamingItsSources() throws {
        var metadata = ClinicalMetadata(study: Self.study)
        metadata.studyInstanceUID = Self.after.studyInstanceUID
        let context = InstanceContext(metadata: metadata, uids: try UIDGenerator())
        let obj = Data("v 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 0 1 0 0 0 1\nf 1 2 3\n".utf8)
        let sources = [Self.before, Self.after].map {
            MeshConverter.Source(
                sopClassUID: $0.sopClassUID, sopInstanceUID: $0.sopInstanceUID, seriesInstanceUID: $0.seriesInstanceUID,
                studyInstanceUID: $0.studyInstanceUID)
        }
        let map = try MeshConverter.derivedOBJ(
            obj, title: "Change map", context: context, seriesNumber: 902, frameOfReference: nil, sources: sources)
        let read = try Fixtures.roundTrip(map).file.dataset
        #expect(read.string(.sopClassUID) == UID.encapsulatedOBJStorage)
        #expect(read.string(.studyInstanceUID) == Self.after.studyInstanceUID)
        #expect(read.string(.modelGroupUID) != nil)
        guard case .sequence(let items)? = read[Tag(0x0042, 0x0013)]?.value else {
            Issue.record("no Source Instance Sequence")
            return
        }
        #expect(items.compactMap { $0.string(.referencedSOPInstanceUID) } == sources.map(\.sopInstanceUID))
    }
}
