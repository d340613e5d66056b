import Crypto
import Foundation
import Testing

@testable import Archive

@Suite struct IdentityTokenTests {
    let fixture: IdentityFixture
    let start = IdentityFixture.start

    init() async throws {
        fixture = try await IdentityFixture()
        try await fixture.person("dr.a", .physician)
    }

    private func issue(role: Role = .physician) async throws -> IssuedToken {
        try await fixture.tokens.issue(tenant: "default", username: "dr.a", role: role, now: start)
    }

    private func claims(_ change: (inout TokenClaims) -> Void = { _ in }) -> TokenClaims {
        let now = Int64(start.timeIntervalSince1970)
        var claims = TokenClaims(
            iss: "facet", aud: "facet", sub: "dr.a", tenant: "default", role: "physician", iat: now, nbf: now,
            exp: now + 3600, jti: UUID().uuidString.lowercased())
        change(&claims)
        return claims
    }

    /// A token with a session, as `issue` would record it, but with the given claims.
    private func signed(_ claims: TokenClaims) async throws -> String {
        try await fixture.store.startSession(
            Session(
                tokenID: claims.jti, tenant: claims.tenant, username: claims.sub, issued: start,
                expires: Date(timeIntervalSince1970: Double(claims.exp)), lastUse: start))
        return try fixture.tokens.encode(claims)
    }

    private static func b64(_ data: Data) -> String { JSONWebToken.base64URL(data) }

    private static func payload(_ claims: TokenClaims) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(claims)
    }

    private func expectRefused(
        _ token: String, at now: Date? = nil, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await expectInvalidToken(reason, sourceLocation: sourceLocation) { () async throws(ArchiveError) in
            try await fixture.tokens.verify(token, now: now ?? start + 1)
        }
    }

    @Test func anIssuedTokenVerifiesToItsPrincipalWithAllClaims() async throws {
        let issued = try await issue()
        let principal = try await fixture.tokens.verify(issued.accessToken, now: start + 1)
        #expect(principal.username == "dr.a" && principal.role == .physician && principal.tenant == "default")
        #expect(principal.tokenID == issued.tokenID && principal.expires == start + 12 * 3600)
        #expect(issued.expiresIn == 12 * 3600 && issued.tokenType == "Bearer")
        let parts = issued.accessToken.split(separator: ".")
        let header = try #require(JSONWebToken.decodeBase64URL(parts[0]))
        #expect(String(decoding: header, as: UTF8.self).contains(#""alg":"ES256""#))
        let claims = try JSONDecoder().decode(TokenClaims.self, from: #require(JSONWebToken.decodeBase64URL(parts[1])))
        #expect(claims.iss == "facet" && claims.aud == "facet" && claims.sub == "dr.a" && claims.role == "physician")
        #expect(claims.nbf == claims.iat && claims.exp == claims.iat + 12 * 3600 && claims.jti == issued.tokenID)
    }

    @Test func algNoneIsRefused() async throws {
        let claims = claims()
        _ = try await signed(claims)
        for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"None"}"#, #"{"typ":"JWT"}"#] {
            let token = Self.b64(Data(header.utf8)) + "." + Self.b64(try Self.payload(claims)) + "."
            await expectRefused(token, "token algorithm is not ES256")
        }
    }

    /// The classic confusion: HS256 with the server's public key as the HMAC secret.
    @Test func hs256SignedWithThePublicKeyIsRefused() async throws {
        let claims = claims()
        _ = try await signed(claims)
        let publicKey = try P256.Signing.PublicKey(rawRepresentation: fixture.signingKey.publicKey.rawRepresentation)
        let secrets = [
            publicKey.rawRepresentation, publicKey.x963Representation, publicKey.derRepresentation,
            Data(publicKey.pemRepresentation.utf8),
        ]
        for secret in secrets {
            let input = Self.b64(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + Self.b64(try Self.payload(claims))
            let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: secret))
            await expectRefused(input + "." + Self.b64(Data(mac)), "token algorithm is not ES256")
        }
    }

    /// Correctly signed by Facet's key, but the header names another algorithm.
    @Test func everyAlgorithmButES256IsRefusedEvenWithAValidSignature() async throws {
        let claims = claims()
        _ = try await signed(claims)
        for alg in ["HS256", "HS512", "RS256", "ES384", "ES512", "EdDSA", "PS256", "es256", "ES256 "] {
            let input =
                Self.b64(Data(#"{"alg":"\#(alg)","typ":"JWT"}"#.utf8)) + "." + Self.b64(try Self.payload(claims))
            let signature = try fixture.signingKey.sign(Data(input.utf8))
            await expectRefused(input + "." + Self.b64(signature), "token algorithm is not ES256")
        }
        // The same construction with ES256 is accepted: the refusals above are the algorithm's.
        let input = Self.b64(Data(#"{"alg":"ES256","typ":"JWT"}"#.utf8)) + "." + Self.b64(try Self.payload(claims))
        let signature = try fixture.signingKey.sign(Data(input.utf8))
        await #expect(try fixture.tokens.verify(input + "." + Self.b64(signature), now: start + 1).username == "dr.a")
    }

    @Test func aBadSignatureIsRefused() async throws {
        let token = try await issue().accessToken
        let parts = token.split(separator: ".").map(String.init)
        var signature = try #require(JSONWebToken.decodeBase64URL(parts[2]))
        signature[signature.startIndex + 10] ^= 0x01
        await expectRefused(parts[0] + "." + parts[1] + "." + Self.b64(signature), "token signature does not verify")
        await expectRefused(parts[0] + "." + parts[1] + ".", "token signature does not verify")
        // Signed by another key (another Facet installation).
        let foreign = TokenService(signingKey: TokenSigningKey(), store: fixture.store)
        await expectRefused(try foreign.encode(claims()), "token signature does not verify")
    }

    @Test func aDisabledAccountOrAChangedRoleStopsItsTokensEvenWhenTheirSessionsWereNotRevoked() async throws {
        let token = try await issue().accessToken
        await #expect(try fixture.tokens.verify(token, now: start + 1).role == .physician)
        // Changed in the store directly: as if revoking the sessions had failed after the change.
        try await fixture.store.updateAccount(tenant: "default", username: "dr.a") { $0.role = .nurse }
        await expectRefused(token, at: start + 2, "the account's role changed since the token was issued")
        try await fixture.store.updateAccount(tenant: "default", username: "dr.a") {
            $0.role = .physician
            $0.status = .disabled
        }
        await expectRefused(token, at: start + 3, "the account is disabled or gone")
        try await fixture.store.updateAccount(tenant: "default", username: "dr.a") { $0.status = .active }
        await #expect(try fixture.tokens.verify(token, now: start + 4).username == "dr.a")
    }

    @Test func aTamperedPayloadIsRefused() async throws {
        let token = try await issue(role: .frontDesk).accessToken
        let parts = token.split(separator: ".").map(String.init)
        var claims = try JSONDecoder().decode(TokenClaims.self, from: #require(JSONWebToken.decodeBase64URL(parts[1])))
        claims.role = "system-admin"
        await expectRefused(
            parts[0] + "." + Self.b64(try Self.payload(claims)) + "." + parts[2], "token signature does not verify")
        claims.role = "front-desk"
        claims.tenant = "clinic-b"
        await expectRefused(
            parts[0] + "." + Self.b64(try Self.payload(claims)) + "." + parts[2], "token signature does not verify")
    }

    @Test func wrongIssuerOrAudienceIsRefused() async throws {
        await expectRefused(try signed(claims { $0.iss = "https://idp.example" }), "token issuer is not accepted")
        await expectRefused(try signed(claims { $0.aud = "orthanc" }), "token audience is not accepted")
    }

    @Test func anExpiredTokenIsRefusedEvenWhenUsedAllAlong() async throws {
        let token = try await issue().accessToken
        // Used every 10 minutes for 12 hours: the idle timeout never strikes, the absolute one does.
        var now = start
        while now < start + 12 * 3600 - 600 {
            now += 600
            _ = try await fixture.tokens.verify(token, now: now)
        }
        await expectRefused(token, at: start + 12 * 3600, "token expired")
    }

    @Test func aTokenNotValidYetIsRefused() async throws {
        let token = try await signed(claims { $0.nbf += 600 })
        await expectRefused(token, at: start + 599, "token not valid yet")
        await #expect(try fixture.tokens.verify(token, now: start + 600).username == "dr.a")
    }

    @Test func aRevokedTokenIsRefusedAndOthersStillWork() async throws {
        let first = try await issue()
        let second = try await issue()
        try await fixture.tokens.revoke(first.accessToken, now: start + 5)
        await expectRefused(first.accessToken, at: start + 6, "token revoked")
        await #expect(try fixture.tokens.verify(second.accessToken, now: start + 6).tokenID == second.tokenID)
        await #expect(try fixture.store.isRevoked(first.tokenID))
    }

    /// One service remembers a token whose signature checked out; its claims, session and revocation are still
    /// checked on every use.
    @Test func aRememberedTokenIsStillCheckedForExpiryAndRevocation() async throws {
        let tokens = fixture.tokens
        let issued = try await tokens.issue(tenant: "default", username: "dr.a", role: .physician, now: start)
        await #expect(try tokens.verify(issued.accessToken, now: start + 1).role == .physician)
        await #expect(try tokens.verify(issued.accessToken, now: start + 2).role == .physician)
        await #expect(throws: ArchiveError(.invalidToken, "token expired")) {
            try await tokens.verify(issued.accessToken, now: start + 12 * 3600)
        }
        try await tokens.revoke(issued.accessToken, now: start + 3)
        await #expect(throws: ArchiveError(.invalidToken, "token revoked")) {
            try await tokens.verify(issued.accessToken, now: start + 4)
        }
    }

    @Test func anIdleSessionIsRefusedAndEachUseExtendsIt() async throws {
        let token = try await issue().accessToken
        _ = try await fixture.tokens.verify(token, now: start + 14 * 60)
        _ = try await fixture.tokens.verify(token, now: start + 28 * 60)
        await expectRefused(token, at: start + 43 * 60 + 1, "session idle for longer than the idle timeout")
        // Once idle, the session is over even if the clock were to go back.
        await expectRefused(token, at: start + 29 * 60, "token revoked")
    }

    @Test func idleTimeoutIsConfigurable() async throws {
        var fixture = self.fixture
        fixture.tokenSettings.idleTimeout = 60
        let token = try await fixture.tokens.issue(tenant: "default", username: "dr.a", role: .nurse, now: start)
            .accessToken
        await #expect(throws: ArchiveError.self) { try await fixture.tokens.verify(token, now: start + 61) }
    }

    @Test func aTokenWithoutASessionIsRefused() async throws {
        await expectRefused(try fixture.tokens.encode(claims()), "no session for this token")
    }

    @Test func malformedTokensAreRefused() async throws {
        let token = try await issue().accessToken
        for bad in [
            "", "a.b", "a.b.c.d", token + ".", token.replacingOccurrences(of: ".", with: ". "),
            String(repeating: "A", count: 5000), "=.=.=",
        ] {
            await #expect(throws: ArchiveError.self) { try await fixture.tokens.verify(bad, now: start + 1) }
        }
        await expectRefused(try signed(claims { $0.role = "superuser" }), "unknown role")
    }

    @Test func theSigningKeyIsMadeOnceAndKeptWrappedUnderTheMasterKey() async throws {
        let keyFolder = fixture.folder.appendingPathComponent("keys")
        let again = try fixture.keys.tokenSigningKey(keyDirectory: keyFolder)
        #expect(again.rawRepresentation == fixture.signingKey.rawRepresentation)
        let file = keyFolder.appendingPathComponent("token-signing.key")
        let stored = try Data(contentsOf: file)
        #expect(stored.range(of: fixture.signingKey.rawRepresentation) == nil)
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // Another master key cannot open it.
        let otherMaster = try KeyHierarchy.open(
            keyDirectory: try temporaryFolder(), environment: [:]
        ).keys
        let copy = try temporaryFolder()
        try stored.write(to: copy.appendingPathComponent("token-signing.key"))
        chmod(copy.appendingPathComponent("token-signing.key").path, 0o600)
        #expect(
            throws: ArchiveError(
                .key, "a wrapped key does not open with its wrapping key (wrong master key, or tampered)")
        ) {
            try otherMaster.tokenSigningKey(keyDirectory: copy)
        }
    }
}
