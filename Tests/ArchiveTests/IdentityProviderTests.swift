import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import Archive

/// Tokens of a clinic's own identity provider (OIDC): RS256 and ES256 against its JWKS, every claim check, the key
/// set's refetch rule, revocation and disabled local accounts.
@Suite struct IdentityProviderTests {
    let fixture: IdentityFixture
    let provider: TestIdentityProvider
    let start = IdentityFixture.start

    init() async throws {
        fixture = try await IdentityFixture()
        provider = try TestIdentityProvider(folder: fixture.folder)
    }

    private func makeVerifier(_ change: (inout OIDCTokenVerifier.Settings) -> Void = { _ in }) throws
        -> OIDCTokenVerifier
    {
        var settings = provider.settings
        change(&settings)
        return try OIDCTokenVerifier(settings: settings, store: fixture.store, now: start)
    }

    private func claims(_ change: (inout [String: Any]) -> Void = { _ in }) -> [String: Any] {
        TestIdentityProvider.claims(at: start, change)
    }

    private func expectRefused(
        _ token: String, by verifier: OIDCTokenVerifier, at now: Date? = nil, _ reason: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await expectInvalidToken(reason, sourceLocation: sourceLocation) { () async throws(ArchiveError) in
            try await verifier.verify(token, now: now ?? start + 1)
        }
    }

    @Test func validRS256AndES256TokensBecomeTheirPrincipal() async throws {
        let verifier = try makeVerifier()
        #expect(verifier.keyCount == 2)
        let claims = claims()
        for token in [try provider.rs256(claims), try provider.es256(claims)] {
            let principal = try await verifier.verify(token, now: start + 1)
            #expect(principal.username == "dr.lee" && principal.role == .physician && principal.tenant == "default")
            #expect(principal.expires == start + 300)
            let jti = try #require(claims["jti"] as? String)
            #expect(principal.tokenID == OIDCTokenVerifier.tokenID(issuer: TestIdentityProvider.issuer, jti: jti))
        }
    }

    @Test func theRoleIsTheOneFacetRoleOfTheClaimAndTheTenantComesFromItsClaim() async throws {
        let verifier = try makeVerifier {
            $0.roleClaim = "groups"
            $0.tenantClaim = "clinic"
            $0.tenants = ["default", "clinic-b"]
        }
        let token = try provider.es256(
            claims {
                $0["groups"] = ["offline_access", "nurse", "uma_authorization"]
                $0["clinic"] = "clinic-b"
                $0["aud"] = ["account", TestIdentityProvider.audience]
            })
        let principal = try await verifier.verify(token, now: start + 1)
        #expect(principal.role == .nurse && principal.tenant == "clinic-b")
        // Two Facet roles: which one would depend on the provider's order. Refused.
        await expectRefused(
            try provider.es256(
                claims {
                    $0["groups"] = ["nurse", "physician"]
                    $0["clinic"] = "clinic-b"
                }), by: verifier, "token groups claim names more than one Facet role")
        // A clinic the operator did not list for this provider: refused, never created.
        await expectRefused(
            try provider.es256(
                claims {
                    $0["groups"] = ["nurse"]
                    $0["clinic"] = "clinic-c"
                }), by: verifier, "token clinic claim names a tenant not in oidc-tenants")
        // No longer-lived than Facet's own sessions (12 h here), whatever the provider says; a far-future expiry
        // is refused, not printed.
        await expectRefused(
            try provider.es256(
                claims {
                    $0["groups"] = ["nurse"]
                    $0["clinic"] = "clinic-b"
                    $0["exp"] = 9.3e18
                }), by: verifier, "token lives longer than session-max-hours")
        await expectRefused(
            try provider.es256(claims { $0["groups"] = ["nurse"] }), by: verifier, "token has no clinic claim")
        await expectRefused(
            try provider.es256(
                claims {
                    $0["groups"] = ["nurse"]
                    $0["clinic"] = "clinic b/../a"
                }), by: verifier, "token clinic claim is not a valid tenant name")
    }

    @Test func theUsernameIsPreferredUsernameElseSubAndIsNeverFolded() async throws {
        let verifier = try makeVerifier()
        let bySub = try await verifier.verify(
            try provider.rs256(claims { $0["preferred_username"] = nil }), now: start + 1)
        #expect(bySub.username == "2b1f5a1e-7c1d-4c55-9a2e-2f0e8d1c4b11")
        await expectRefused(
            try provider.rs256(claims { $0["preferred_username"] = "Dr.Lee" }), by: verifier,
            "token preferred_username is not a valid Facet username (a-z, 0-9, '.', '_', '-', '@'; at most 64)")
        await expectRefused(
            try provider.rs256(
                claims {
                    $0["preferred_username"] = nil
                    $0["sub"] = "AAD|Xyz"
                }), by: verifier,
            "token sub is not a valid Facet username (a-z, 0-9, '.', '_', '-', '@'; at most 64)")
        await expectRefused(
            try provider.rs256(
                claims {
                    $0["preferred_username"] = nil
                    $0["sub"] = nil
                }), by: verifier, "token has neither preferred_username nor sub")
    }

    @Test func algNoneAndEveryAlgorithmButRS256AndES256AreRefused() async throws {
        let verifier = try makeVerifier()
        let payload = JSONWebToken.base64URL(try JSONSerialization.data(withJSONObject: claims()))
        for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"none","kid":"rsa-1"}"#, #"{"kid":"rsa-1"}"#] {
            let token = JSONWebToken.base64URL(Data(header.utf8)) + "." + payload + "."
            await expectRefused(token, by: verifier, "token algorithm is not RS256 or ES256")
        }
        // Correctly signed by the provider's RSA key, but the header names another algorithm.
        for alg in ["PS256", "RS384", "RS512", "ES384", "EdDSA", "HS256", "rs256", "RS256 "] {
            let token = try TestIdentityProvider.token(header: ["alg": alg, "kid": "rsa-1"], claims: claims()) {
                try provider.rsa.signature(for: $0, padding: .insecurePKCS1v1_5).rawRepresentation
            }
            await expectRefused(token, by: verifier, "token algorithm is not RS256 or ES256")
        }
    }

    /// The classic confusion: HS256 with the provider's public key (in any of its encodings) as the HMAC secret.
    @Test func hs256SignedWithThePublicKeyIsRefused() async throws {
        let verifier = try makeVerifier()
        let primitives = try provider.rsa.publicKey.getKeyPrimitives()
        let secrets = [
            primitives.modulus, provider.rsa.publicKey.derRepresentation, provider.rsa.publicKey.pkcs1DERRepresentation,
            Data(provider.rsa.publicKey.pemRepresentation.utf8), provider.ec.publicKey.rawRepresentation,
            try JSONSerialization.data(withJSONObject: TestIdentityProvider.jwk(provider.rsa.publicKey, kid: "rsa-1")),
        ]
        for secret in secrets {
            let token = try TestIdentityProvider.token(header: ["alg": "HS256", "kid": "rsa-1"], claims: claims()) {
                Data(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: secret)))
            }
            await expectRefused(token, by: verifier, "token algorithm is not RS256 or ES256")
        }
    }

    @Test func anAlgorithmIsRefusedOnAKeyOfTheOtherType() async throws {
        let verifier = try makeVerifier()
        // An RS256 header naming the EC key, signed with RSA; and an ES256 header naming the RSA key.
        await expectRefused(
            try provider.rs256(claims(), kid: "ec-1"), by: verifier, "token algorithm does not match its key")
        await expectRefused(
            try provider.es256(claims(), kid: "rsa-1"), by: verifier, "token algorithm does not match its key")
    }

    @Test func aKeyIDMayBeLeftOutOnlyWhenTheSetHasOneKey() async throws {
        await expectRefused(
            try provider.rs256(claims(), kid: nil), by: try makeVerifier(),
            "token names no key id and the key set has more than one key")
        try provider.publish([TestIdentityProvider.jwk(provider.rsa.publicKey, kid: nil)])
        let single = try makeVerifier()
        await #expect(try single.verify(try provider.rs256(claims(), kid: nil), now: start + 1).username == "dr.lee")
        await expectRefused(
            try provider.es256(claims(), kid: nil), by: single, "token algorithm does not match its key")
    }

    @Test func wrongIssuerOrAudienceIsRefused() async throws {
        let verifier = try makeVerifier()
        await expectRefused(
            try provider.rs256(claims { $0["iss"] = "https://idp.clinic.example/realms/other" }), by: verifier,
            "token issuer is not accepted")
        await expectRefused(
            try provider.rs256(claims { $0["iss"] = nil }), by: verifier, "token issuer is not accepted")
        await expectRefused(
            try provider.rs256(claims { $0["aud"] = "orthanc" }), by: verifier, "token audience is not accepted")
        await expectRefused(
            try provider.rs256(claims { $0["aud"] = ["orthanc", "account"] }), by: verifier,
            "token audience is not accepted")
        await expectRefused(
            try provider.rs256(claims { $0["aud"] = nil }), by: verifier, "token audience is not accepted")
    }

    @Test func expiryAndNotBeforeAreCheckedWithAMinuteOfSkew() async throws {
        let verifier = try makeVerifier()
        let token = try provider.rs256(claims())
        await #expect(try verifier.verify(token, now: start + 300 + 59).username == "dr.lee")
        await expectRefused(token, by: verifier, at: start + 300 + 60, "token expired")
        let early = try provider.rs256(
            claims {
                $0["nbf"] = Int(start.timeIntervalSince1970) + 600
                $0["exp"] = Int(start.timeIntervalSince1970) + 900
            })
        await expectRefused(early, by: verifier, at: start + 539, "token not valid yet")
        await #expect(try verifier.verify(early, now: start + 540).username == "dr.lee")
        await expectRefused(try provider.rs256(claims { $0["exp"] = nil }), by: verifier, "token has no expiry (exp)")
        await expectRefused(
            try provider.rs256(claims { $0["iat"] = Int(start.timeIntervalSince1970) + 3600 }), by: verifier,
            "token issued in the future")
        await expectRefused(
            try provider.rs256(claims { $0["exp"] = "tomorrow" }), by: verifier, "malformed token claims")
    }

    @Test func aTamperedPayloadOrSignatureIsRefused() async throws {
        let verifier = try makeVerifier()
        for token in [try provider.rs256(claims { $0["role"] = "front-desk" }), try provider.es256(claims())] {
            let parts = token.split(separator: ".").map(String.init)
            let forged = JSONWebToken.base64URL(
                try JSONSerialization.data(withJSONObject: claims { $0["role"] = "system-admin" }))
            await expectRefused(
                parts[0] + "." + forged + "." + parts[2], by: verifier, "token signature does not verify")
            var signature = try #require(JSONWebToken.decodeBase64URL(parts[2]))
            signature[signature.startIndex + 7] ^= 0x01
            await expectRefused(
                parts[0] + "." + parts[1] + "." + JSONWebToken.base64URL(signature), by: verifier,
                "token signature does not verify")
        }
        // Signed by a key the provider does not publish, under a published kid.
        let stranger = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        await expectRefused(
            try provider.rs256(claims(), key: stranger), by: verifier, "token signature does not verify")
        await expectRefused(
            try provider.es256(claims(), key: P256.Signing.PrivateKey()), by: verifier,
            "token signature does not verify")
    }

    @Test func anUnknownOrMissingRoleIsRefused() async throws {
        let verifier = try makeVerifier()
        await expectRefused(
            try provider.rs256(claims { $0["role"] = "superuser" }), by: verifier,
            "token role claim names no Facet role")
        await expectRefused(
            try provider.rs256(claims { $0["role"] = ["admin", "Physician"] }), by: verifier,
            "token role claim names no Facet role")
        await expectRefused(try provider.rs256(claims { $0["role"] = nil }), by: verifier, "token has no role claim")
    }

    @Test func criticalHeadersOversizedAndMalformedTokensAreRefused() async throws {
        let verifier = try makeVerifier()
        let critical = try TestIdentityProvider.token(
            header: ["alg": "RS256", "kid": "rsa-1", "crit": ["exp"]], claims: claims()
        ) { try provider.rsa.signature(for: $0, padding: .insecurePKCS1v1_5).rawRepresentation }
        await expectRefused(critical, by: verifier, "token has critical header parameters")
        let padded = try provider.rs256(claims { $0["padding"] = String(repeating: "x", count: 6200) })
        await expectRefused(padded, by: verifier, "token too long")
        for bad in ["", "a.b", "a.b.c.d", "=.=.="] {
            await #expect(throws: ArchiveError.self) { try await verifier.verify(bad, now: start + 1) }
        }
        // A large but allowed token (a provider's group list) is fine.
        let groups = (0..<200).map { "group-\($0)" }
        await #expect(
            try verifier.verify(try provider.rs256(claims { $0["groups"] = groups }), now: start + 1).role == .physician
        )
    }

    @Test func anUnknownKeyIDRefetchesTheKeySetAtMostOncePerMinute() async throws {
        let verifier = try makeVerifier()
        #expect(verifier.keySetFetches == 1)
        let unknown = try provider.rs256(claims(), kid: "rsa-2")
        // Within a minute of the load: no fetch.
        await expectRefused(
            unknown, by: verifier, at: start + 30, "token key id is not in the identity provider's key set")
        #expect(verifier.keySetFetches == 1)
        // A minute later: one fetch, which does not find it either.
        await expectRefused(
            unknown, by: verifier, at: start + 61, "token key id is not in the identity provider's key set")
        #expect(verifier.keySetFetches == 2)
        // Another unknown kid within the next minute does not fetch again.
        await expectRefused(
            try provider.rs256(claims(), kid: "rsa-3"), by: verifier, at: start + 100,
            "token key id is not in the identity provider's key set")
        #expect(verifier.keySetFetches == 2)
        // Known kids never fetch.
        _ = try await verifier.verify(try provider.es256(claims()), now: start + 110)
        #expect(verifier.keySetFetches == 2)
        await expectRefused(
            unknown, by: verifier, at: start + 121, "token key id is not in the identity provider's key set")
        #expect(verifier.keySetFetches == 3)
    }

    @Test func concurrentUnknownKeyIDsFetchOnce() async throws {
        let verifier = try makeVerifier()
        let tokens = try (0..<16).map { try provider.rs256(claims(), kid: "unknown-\($0)") }
        let now = start + 61
        await withTaskGroup(of: Void.self) { group in
            for token in tokens { group.addTask { _ = try? await verifier.verify(token, now: now) } }
        }
        #expect(verifier.keySetFetches == 2)
    }

    @Test func aRotatedKeyIsAcceptedAfterTheRefetchAndTheOldOneIsNot() async throws {
        let verifier = try makeVerifier()
        let old = try provider.rs256(claims())
        let next = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        try provider.publish([TestIdentityProvider.jwk(next.publicKey, kid: "rsa-2")])
        let rotated = try provider.rs256(claims(), kid: "rsa-2", key: next)
        // Verified (and remembered) before the rotation.
        await #expect(try verifier.verify(old, now: start + 1).username == "dr.lee")
        // The new kid fetches the set at once (a minute after the load) and is accepted.
        await #expect(try verifier.verify(rotated, now: start + 61).username == "dr.lee")
        #expect(verifier.keySetFetches == 2 && verifier.keyCount == 1)
        await expectRefused(old, by: verifier, at: start + 62, "token key id is not in the identity provider's key set")
    }

    @Test func aKeyTheProviderWithdrewStopsVerifyingOnceTheSetIsFifteenMinutesOld() async throws {
        let verifier = try makeVerifier()
        let hour = start.timeIntervalSince1970 + 3600
        let old = try provider.rs256(claims { $0["exp"] = hour })
        await #expect(try verifier.verify(old, now: start + 1).username == "dr.lee")
        // The provider withdraws the key (compromised): no token names an unknown kid to trigger a fetch.
        let next = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        try provider.publish([TestIdentityProvider.jwk(next.publicKey, kid: "rsa-2")])
        await #expect(try verifier.verify(old, now: start + 120).username == "dr.lee")
        #expect(verifier.keySetFetches == 1)
        // Once the set is 15 minutes old the next token fetches it again, and the withdrawn key is gone.
        await expectRefused(
            old, by: verifier, at: start + OIDCTokenVerifier.maximumKeySetAge + 1,
            "token key id is not in the identity provider's key set")
        #expect(verifier.keySetFetches == 2)
    }

    @Test func aFailedRefetchKeepsTheKeysThereWere() async throws {
        let outcomes = OutcomeLog()
        let verifier = try OIDCTokenVerifier(settings: provider.settings, store: fixture.store, now: start) {
            outcomes.append($0)
        }
        try Data("<html>maintenance</html>".utf8).write(to: provider.keySetFile)
        await expectRefused(
            try provider.rs256(claims(), kid: "rsa-2"), by: verifier, at: start + 61,
            "token key id is not in the identity provider's key set")
        #expect(verifier.keySetFetches == 2)
        await #expect(try verifier.verify(try provider.rs256(claims()), now: start + 62).username == "dr.lee")
        #expect(outcomes.failures == 1)
    }

    @Test func aRememberedTokenIsStillCheckedForTimeRevocationAndAccountOnEveryUse() async throws {
        let verifier = try makeVerifier()
        let token = try provider.es256(claims())
        await #expect(try verifier.verify(token, now: start + 1).username == "dr.lee")
        await #expect(try verifier.verify(token, now: start + 2).username == "dr.lee")
        await expectRefused(token, by: verifier, at: start + 360, "token expired")
        try await fixture.person("dr.lee", .physician)
        try await fixture.administration.setStatus(tenant: "default", username: "dr.lee", .disabled)
        await expectRefused(token, by: verifier, at: start + 3, "the local account of this username is disabled")
        try await fixture.administration.setStatus(tenant: "default", username: "dr.lee", .active)
        try await verifier.revoke(token, now: start + 4)
        await expectRefused(token, by: verifier, at: start + 5, "token revoked")
        // A remembered token's bytes changed by one are a different token, checked in full.
        let parts = token.split(separator: ".").map(String.init)
        let forged = JSONWebToken.base64URL(
            try JSONSerialization.data(withJSONObject: claims { $0["role"] = "system-admin" }))
        await expectRefused(parts[0] + "." + forged + "." + parts[2], by: verifier, "token signature does not verify")
    }

    @Test func base64URLIsDecodedStrictly() async {
        #expect(JSONWebToken.decodeBase64URL("AA") == Data([0]))
        #expect(JSONWebToken.decodeBase64URL("_-8") == Data([0xFF, 0xEF]))
        #expect(JSONWebToken.decodeBase64URL("") == Data())
        // Leftover bits set, padding, the standard alphabet, whitespace, a lone last character.
        for bad in ["AB", "AA==", "+/8", "A A", "AAAAA"] { #expect(JSONWebToken.decodeBase64URL(bad) == nil, "\(bad)") }
    }

    @Test func aRevokedJTIIsRefusedAndATokenWithoutOneCannotBeRevoked() async throws {
        let verifier = try makeVerifier()
        let first = try provider.rs256(claims())
        let second = try provider.es256(claims())
        try await verifier.revoke(first, now: start + 5)
        await expectRefused(first, by: verifier, at: start + 6, "token revoked")
        await #expect(try verifier.verify(second, now: start + 6).username == "dr.lee")
        let withoutJTI = try provider.rs256(claims { $0["jti"] = nil })
        do {
            try await verifier.revoke(withoutJTI, now: start + 5)
            Issue.record("a token without jti was revoked")
        } catch {
            #expect(error.code == .invalidInput)
        }
    }

    @Test func aDisabledLocalAccountOfTheSameTenantAndUsernameIsRefused() async throws {
        let verifier = try makeVerifier()
        let token = try provider.rs256(claims())
        try await fixture.person("dr.lee", .physician)
        await #expect(try verifier.verify(token, now: start + 1).username == "dr.lee")
        try await fixture.administration.setStatus(tenant: "default", username: "dr.lee", .disabled)
        await expectRefused(token, by: verifier, "the local account of this username is disabled")
        // The same username disabled in another tenant does not matter.
        try await fixture.person("dr.lee", .physician, tenant: "clinic-b")
        try await fixture.administration.setStatus(tenant: "clinic-b", username: "dr.lee", .disabled)
        let other = try makeVerifier {
            $0.tenantClaim = "tenant"
            $0.tenants = ["clinic-b"]
        }
        await expectRefused(
            try provider.rs256(claims { $0["tenant"] = "clinic-b" }), by: other,
            "the local account of this username is disabled")
        try await fixture.administration.setStatus(tenant: "default", username: "dr.lee", .active)
        await #expect(try verifier.verify(token, now: start + 1).tenant == "default")
    }

    @Test func theKeySetKeepsOnlyRS256AndES256SignatureKeys() async throws {
        let weak = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        var encryption = TestIdentityProvider.jwk(provider.rsa.publicKey, kid: "enc")
        encryption["use"] = "enc"
        var ps256 = TestIdentityProvider.jwk(provider.rsa.publicKey, kid: "ps")
        ps256["alg"] = "PS256"
        var p384 = TestIdentityProvider.jwk(provider.ec.publicKey, kid: "p384")
        p384["crv"] = "P-384"
        var offCurve = TestIdentityProvider.jwk(provider.ec.publicKey, kid: "off")
        offCurve["y"] = JSONWebToken.base64URL(Data(repeating: 7, count: 32))
        let document: [[String: Any]] = [
            encryption, ps256, p384, offCurve, TestIdentityProvider.jwk(weak.publicKey, kid: "weak"),
            ["kty": "oct", "k": "c2VjcmV0", "kid": "hmac"], ["kty": "OKP", "crv": "Ed25519", "x": "AAAA"],
            TestIdentityProvider.jwk(provider.ec.publicKey, kid: "ec-1"),
        ]
        let set = try JSONWebKeySet(json: try JSONSerialization.data(withJSONObject: ["keys": document]))
        #expect(set.keys.map(\.id) == ["ec-1"])
        #expect(throws: ArchiveError.self) {
            try JSONWebKeySet(json: try JSONSerialization.data(withJSONObject: ["keys": Array(document.dropLast())]))
        }
        for bad in ["", "[]", #"{"keys":{}}"#, #"{"keys":[1,"a",null]}"#] {
            #expect(throws: ArchiveError.self) { try JSONWebKeySet(json: Data(bad.utf8)) }
        }
        #expect(throws: ArchiveError.self) {
            try JSONWebKeySet(json: Data(repeating: 0x20, count: JSONWebKeySet.maximumBytes + 1))
        }
    }

    @Test func theKeySetLocationIsAFileAnHTTPSURLOrALoopbackHTTPURL() async throws {
        #expect(try JSONWebKeySetSource("/etc/facet/jwks.json") == .file("/etc/facet/jwks.json"))
        for accepted in [
            "https://idp.clinic.example/realms/facet/protocol/openid-connect/certs", "http://127.0.0.1:8080/jwks.json",
            "http://localhost/jwks", "http://[::1]:9000/jwks",
        ] {
            #expect(throws: Never.self) { try JSONWebKeySetSource(accepted) }
        }
        for refused in ["http://idp.clinic.example/jwks", "http://10.0.0.5/jwks", "ftp://idp/jwks", "https://", ""] {
            #expect(throws: ArchiveError.self, "\(refused)") { try JSONWebKeySetSource(refused) }
        }
        // Loading fails with one clear reason.
        let missing = OIDCTokenVerifier.Settings(
            issuer: TestIdentityProvider.issuer, audience: "a", keySet: .file(fixture.folder.path + "/none.json"))
        #expect(throws: ArchiveError.self) { try OIDCTokenVerifier(settings: missing, store: fixture.store) }
        let unreachable = OIDCTokenVerifier.Settings(
            issuer: TestIdentityProvider.issuer, audience: "a",
            keySet: try JSONWebKeySetSource("http://127.0.0.1:9/jwks"))
        do {
            _ = try OIDCTokenVerifier(settings: unreachable, store: fixture.store)
            Issue.record("loaded a key set from a closed port")
        } catch {
            #expect(error.message.hasPrefix("the key set at http://127.0.0.1:9/jwks: "))
        }
    }

    @Test func theIdentityServicesPickTheVerifierByIssuer() async throws {
        var identity = IdentityServices(store: fixture.store, keys: fixture.keys, signingKey: fixture.signingKey)
        try await fixture.person("dr.own", .nurse)
        let own = try await identity.tokens.issue(tenant: "default", username: "dr.own", role: .nurse, now: start)
        let external = try provider.es256(TestIdentityProvider.claims(at: Date()))
        // Without an identity provider, only Facet's own tokens are checked (and the provider's is refused).
        await #expect(try identity.verify(own.accessToken, now: start + 1).username == "dr.own")
        await #expect(throws: ArchiveError.self) { try await identity.verify(external) }
        identity.identityProvider = try makeVerifier()
        await #expect(try identity.verify(own.accessToken, now: start + 1).username == "dr.own")
        await #expect(try identity.verify(external).username == "dr.lee")
        let foreign = try provider.es256(TestIdentityProvider.claims(at: Date()) { $0["iss"] = "https://evil.example" })
        await #expect(throws: ArchiveError(.invalidToken, "token issuer is not accepted")) {
            try await identity.verify(foreign)
        }
        await #expect(throws: ArchiveError(.invalidToken, "malformed token")) {
            try await identity.verify("not.a.token")
        }
        try await identity.revoke(external)
        await #expect(throws: ArchiveError(.invalidToken, "token revoked")) { try await identity.verify(external) }
    }
}

/// What the verifier reported of its refetches.
final class OutcomeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var outcomes: [Result<Int, ArchiveError>] = []

    func append(_ outcome: Result<Int, ArchiveError>) { lock.withLock { outcomes.append(outcome) } }

    var failures: Int {
        lock.withLock { outcomes.filter { if case .failure = $0 { true } else { false } }.count }
    }
}
