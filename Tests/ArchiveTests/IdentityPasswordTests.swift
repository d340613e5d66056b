import Foundation
import Testing

@testable import Archive

@Suite struct IdentityPasswordTests {
    @Test func defaultHashVerifiesItsPasswordAndRefusesAnother() async throws {
        let hasher = PasswordHasher()
        let hash = try hasher.hash("correct horse battery")
        #expect(hasher.verify("correct horse battery", against: hash))
        #expect(!hasher.verify("correct horse batterY", against: hash))
        #expect(!hasher.verify("", against: hash))
    }

    @Test func hashRecordsScryptParametersOfAtLeastN32768AndASixteenByteSalt() async throws {
        let hash = try PasswordHasher().hash("correct horse battery")
        #expect(hash.hasPrefix("$scrypt$ln=15,r=8,p=1$"))
        let parsed = try #require(PasswordHasher.parse(hash))
        #expect(parsed.parameters == PasswordHasher.Parameters(logN: 15, r: 8, p: 1))
        #expect(parsed.salt.count == 16 && parsed.hash.count == 32)
    }

    @Test func twoHashesOfOnePasswordDiffer() async throws {
        let hasher = PasswordHasher(parameters: .init(logN: 10, r: 8, p: 1))
        let first = try hasher.hash("same password")
        let second = try hasher.hash("same password")
        #expect(first != second)
        #expect(PasswordHasher.parse(first)?.salt != PasswordHasher.parse(second)?.salt)
    }

    @Test func hashesMadeWithOtherParametersStillVerify() async throws {
        let old = try PasswordHasher(parameters: .init(logN: 11, r: 4, p: 2)).hash("legacy password")
        #expect(PasswordHasher().verify("legacy password", against: old))
        #expect(!PasswordHasher().verify("other password", against: old))
    }

    /// RFC 7914 §12, third vector: proves that the KDF underneath is scrypt.
    @Test func scryptMatchesRFC7914() async throws {
        let derived = try PasswordHasher.derive(
            "password", salt: Data("NaCl".utf8), parameters: .init(logN: 10, r: 8, p: 16), count: 64)
        #expect(
            Formatting.hex(derived)
                == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        )
    }

    @Test func malformedOrUnboundedStoredHashesNeverMatch() async throws {
        let hasher = PasswordHasher(parameters: .init(logN: 10, r: 8, p: 1))
        let good = try hasher.hash("pw pw pw pw pw")
        // The first character of the hash (the last one of unpadded base64 carries unused bits, so changing it may
        // decode to the same bytes).
        let start = try #require(good.lastIndex(of: "$")).utf16Offset(in: good) + 1
        var characters = Array(good)
        characters[start] = characters[start] == "A" ? "B" : "A"
        let tampered = String(characters)
        #expect(!hasher.verify("pw pw pw pw pw", against: tampered))
        for bad in [
            "", "$scrypt$",
            "$argon2id$v=19$m=1,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            good.replacingOccurrences(of: "ln=10", with: "ln=40"),
            good.replacingOccurrences(of: "r=8", with: "r=100000"),
            good.replacingOccurrences(of: "ln=10,", with: "ln=10,ln=10,"),
        ] {
            #expect(PasswordHasher.parse(bad) == nil, "\(bad)")
            #expect(!hasher.verify("pw pw pw pw pw", against: bad))
        }
        #expect(throws: ArchiveError.self) {
            try hasher.hash(String(repeating: "x", count: PasswordHasher.maximumPasswordBytes + 1))
        }
    }

    @Test func decoyIsWellFormedWithTheSameParametersAndMatchesNothing() async {
        let hasher = PasswordHasher()
        let decoy = PasswordHasher.parse(hasher.decoy)
        #expect(decoy?.parameters == hasher.parameters)
        #expect(!hasher.verify("", against: hasher.decoy))
    }

    @Test func constantTimeComparisonComparesEveryByte() async {
        #expect(ConstantTime.equal([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equal([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equal([9, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equal([1, 2], [1, 2, 3]))
    }
}
