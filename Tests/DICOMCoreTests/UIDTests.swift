import Testing

@testable import DICOMCore

@Suite struct UIDTests {
    @Test(arguments: ["1.2.840.10008.1.2.1", "2.25.0", "1.2.3", "0.1", "1." + String(repeating: "9", count: 62)])
    func acceptsWellFormedUIDs(_ uid: String) {
        #expect(UID.isValid(uid))
    }

    @Test(arguments: [
        "", "1.02.3", "1..2", ".1.2", "1.2.", "1.2.a", "1.2.3 ", "1,2", "1." + String(repeating: "9", count: 63),
    ])
    func refusesMalformedUIDs(_ uid: String) {
        #expect(throws: DICOMCoreError.self) { try UID.validate(uid) }
    }

    @Test func decimalOf128BitValuesIsExact() {
        #expect(UIDGenerator.decimal(high: 0, low: 0) == "0")
        #expect(UIDGenerator.decimal(high: 1, low: 0) == "18446744073709551616")
        #expect(UIDGenerator.decimal(high: .max, low: .max) == "340282366920938463463374607431768211455")
    }

    @Test func generatedUUIDRootUIDsAreValidAndUnique() throws {
        let generator = try UIDGenerator()
        let uids = (0..<2000).map { _ in generator.make() }
        #expect(Set(uids).count == uids.count)
        for uid in uids {
            #expect(UID.isValid(uid))
            #expect(uid.hasPrefix("2.25."))
        }
    }

    @Test func generatedUIDsStayUnderAnOrganisationRoot() throws {
        let root = "1.2.826.0.1.3680043.10.1234"
        let generator = try UIDGenerator(root: root)
        for _ in 0..<500 {
            let uid = generator.make()
            #expect(uid.hasPrefix(root + "."))
            #expect(uid.utf8.count <= 64)
            #expect(UID.isValid(uid))
        }
    }

    @Test func refusesARootThatLeavesNoRoomForUniqueness() {
        #expect(throws: DICOMCoreError.self) { try UIDGenerator(root: "1." + String(repeating: "2", count: 40)) }
        #expect(throws: DICOMCoreError.self) { try UIDGenerator(root: "1.2.03") }
    }
}
