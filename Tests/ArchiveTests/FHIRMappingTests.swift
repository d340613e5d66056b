import DICOMCore
import Foundation
import Testing

@testable import Archive

/// The FHIR mapping's pure parts: date searches with every prefix and precision, names, dates and the exact reading
/// of a result's numbers.
@Suite struct FHIRMappingTests {
    @Test(arguments: [
        ("2026-03-01", "2026", true), ("2026-03-01", "2025", false), ("2026-03-01", "2026-03", true),
        ("2026-03-01", "2026-02", false), ("2026-03-01", "eq2026-03-01", true), ("2026-03-01", "ne2026-03", false),
        ("2026-03-01", "ge2026-03-01", true), ("2026-03-01", "gt2026-03-01", false), ("2026-03-01", "gt2026-02", true),
        ("2026-03-01", "le2026-03", true), ("2026-03-01", "lt2026-03", false), ("2026-03-01", "lt2026-04", true),
        ("2026-03-01", "ge2026-03-01T10:00:00Z", true), ("2026-03-01", "sa2026-02-28", true),
        ("2026-03-01", "eb2026-03-01", false),
    ])
    func dateSearches(_ day: String, _ search: String, _ expected: Bool) {
        #expect(FHIRMapping.dateMatches(day, search) == expected, "\(search)")
    }

    @Test(arguments: ["yesterday", "ge26-03-01", "2026-3-01", "xx2026", "", "ge"])
    func malformedDateSearchesAreNotSearches(_ search: String) {
        #expect(FHIRMapping.dateMatches("2026-03-01", search) == nil)
    }

    @Test func namesDatesAndGenderMapFromDICOM() {
        var attributes = Dataset()
        attributes.set(.patientName, .PN, "Müller^Zoë^Anna^Dr.^PhD=ミュラー")
        attributes.set(.patientID, .LO, "P-9")
        attributes.set(.patientBirthDate, .DA, "19850214")
        attributes.set(.patientSex, .CS, "F")
        let patient = FHIRMapping.patient(id: String(repeating: "a", count: 64), attributes: attributes)
        let name = (patient["name"] as? [[String: Any]])?.first
        #expect(name?["family"] as? String == "Müller")
        #expect(name?["given"] as? [String] == ["Zoë", "Anna"])
        #expect(name?["prefix"] as? [String] == ["Dr."])
        #expect(name?["text"] as? String == "Dr. Zoë Anna Müller PhD")
        #expect(patient["birthDate"] as? String == "1985-02-14")
        #expect(patient["gender"] as? String == "female")
        #expect(FHIRMapping.date("20261301") == nil && FHIRMapping.date("2026010") == nil)
    }

    @Test func aStudyWithoutATimeZoneStartsOnItsDateOnly() {
        var attributes = Dataset()
        attributes.set(.studyDate, .DA, "20260301")
        attributes.set(.studyTime, .TM, "101500")
        #expect(FHIRMapping.started(attributes) == "2026-03-01")
        attributes.set(Tag(0x0008, 0x0201), .SH, "+0100")
        #expect(FHIRMapping.started(attributes) == "2026-03-01T10:15:00+01:00")
    }

    @Test func resultNumbersAreReadToTheLastDigit() {
        let text =
            "{\"volume_change_ml\":0.9136053940445185,\"enclosed_volume_change_ml\":null,\"max_displacement_mm\":-2.5e-3}"
        let numbers = FHIRMapping.numbers(in: text, keys: ["volume_change_ml", "max_displacement_mm", "absent"])
        #expect(numbers["volume_change_ml"] == 0.9136053940445185)
        #expect(numbers["max_displacement_mm"] == -0.0025)
        #expect(numbers["absent"] == nil)
    }
}
