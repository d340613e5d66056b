import Foundation
import Testing

@testable import Archive

@Suite struct IdentityTOTPTests {
    /// RFC 4648 §10.
    @Test func base32EncodesTheRFC4648VectorsWithoutPadding() async {
        let vectors = [
            "": "", "f": "MY", "fo": "MZXQ", "foo": "MZXW6", "foob": "MZXW6YQ", "fooba": "MZXW6YTB",
            "foobar": "MZXW6YTBOI",
        ]
        for (plain, encoded) in vectors {
            #expect(Base32.encode(Data(plain.utf8)) == encoded)
            #expect(Base32.decode(encoded) == Data(plain.utf8))
        }
    }

    @Test func base32DecodesPaddedAndLowerCaseAndRefusesGarbage() async {
        #expect(Base32.decode("MZXW6YQ=") == Data("foob".utf8))
        #expect(Base32.decode("mzxw6ytboi======") == Data("foobar".utf8))
        // "MZ" has non-zero leftover bits: an encoder writes "f" as "MY".
        for bad in ["MZXW6YQ1", "M", "MZX", "MZXW6Y", "MZ=XW6YQ", "MZXW 6YQ", "MZ"] {
            #expect(Base32.decode(bad) == nil, "\(bad)")
        }
    }

    @Test func base32RoundTripsRandomBytes() async {
        for length in 0..<41 {
            let bytes = Data((0..<length).map { _ in UInt8.random(in: 0...255) })
            #expect(Base32.decode(Base32.encode(bytes)) == bytes)
        }
    }

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits).
    @Test func hotpCoreMatchesTheRFC6238SHA1Vectors() async {
        let totp = TOTP(secret: Data("12345678901234567890".utf8), digits: 8)
        let vectors: [(Double, String)] = [
            (59, "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"), (2_000_000_000, "69279037"), (20_000_000_000, "65353130"),
        ]
        for (time, code) in vectors {
            #expect(totp.code(at: Date(timeIntervalSince1970: time)) == code)
        }
        // The six-digit codes Facet uses are the same values' last six digits.
        #expect(TOTP(secret: Data("12345678901234567890".utf8)).code(at: Date(timeIntervalSince1970: 59)) == "287082")
    }

    @Test func codesOfTheNeighbouringStepsAreAcceptedAndNoFurther() async {
        let totp = TOTP(secret: TOTP.newSecret())
        let now = IdentityFixture.start + 10
        let step = totp.step(at: now)
        #expect(totp.match(totp.code(step: step), at: now, after: nil) == step)
        #expect(totp.match(totp.code(step: step - 1), at: now, after: nil) == step - 1)
        #expect(totp.match(totp.code(step: step + 1), at: now, after: nil) == step + 1)
        #expect(totp.match(totp.code(step: step - 2), at: now, after: nil) == nil)
        #expect(totp.match(totp.code(step: step + 2), at: now, after: nil) == nil)
    }

    @Test func aCodeAtOrBeforeTheLastUsedStepIsRefused() async {
        let totp = TOTP(secret: TOTP.newSecret())
        let now = IdentityFixture.start
        let step = totp.step(at: now)
        #expect(totp.match(totp.code(step: step), at: now, after: step) == nil)
        #expect(totp.match(totp.code(step: step - 1), at: now, after: step) == nil)
        #expect(totp.match(totp.code(step: step + 1), at: now, after: step) == step + 1)
    }

    @Test func malformedCodesAreRefused() async {
        let totp = TOTP(secret: TOTP.newSecret())
        let now = IdentityFixture.start
        let code = totp.code(at: now)
        for bad in ["", String(code.dropLast()), code + "0", " " + code.dropFirst(), "abcdef"] {
            #expect(totp.match(bad, at: now, after: nil) == nil, "\(bad)")
        }
    }

    @Test func provisioningURINamesFacetAndCarriesTheSecret() async throws {
        let secret = Data("12345678901234567890".utf8)
        let uri = TOTP(secret: secret).provisioningURI(account: "dr.smith@clinic")
        #expect(
            uri == "otpauth://totp/Facet:dr.smith%40clinic?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Facet")
        let components = try #require(URLComponents(string: uri))
        let value = try #require(components.queryItems?.first { $0.name == "secret" }?.value)
        #expect(Base32.decode(value) == secret)
    }
}
