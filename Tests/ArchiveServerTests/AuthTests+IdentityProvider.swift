import Archive
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import _CryptoExtras

@testable import ArchiveServer

/// Tokens of the clinic's own identity provider, through HTTP and through the settings.
extension AuthTests {
    static let providerIssuer = "https://idp.clinic.example/realms/facet"

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// An RS256 token of the provider for `audience`, as Keycloak would sign it.
    static func providerToken(_ key: _RSA.Signing.PrivateKey, audience: String) throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        let header = #"{"alg":"RS256","kid":"k1","typ":"JWT"}"#
        let claims =
            #"{"iss":"\#(providerIssuer)","aud":["account","\#(audience)"],"sub":"dr.oidc","role":["offline_access","physician"],"#
            + #""iat":\#(now),"exp":\#(now + 300),"jti":"\#(UUID().uuidString)"}"#
        let input = base64URL(Data(header.utf8)) + "." + base64URL(Data(claims.utf8))
        let signature = try key.signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5)
        return input + "." + base64URL(signature.rawRepresentation)
    }

    @Test func anIdentityProviderTokenReachesQIDOAndAWrongAudienceIsRefused() async throws {
        var archive = try await TestArchive()
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let primitives = try key.publicKey.getKeyPrimitives()
        let keySet = archive.folder.appendingPathComponent("jwks.json")
        let jwk = [
            "kty": "RSA", "kid": "k1", "use": "sig", "n": Self.base64URL(primitives.modulus),
            "e": Self.base64URL(primitives.publicExponent),
        ]
        try JSONSerialization.data(withJSONObject: ["keys": [jwk]]).write(to: keySet)
        archive.identity.identityProvider = try OIDCTokenVerifier(
            settings: .init(issuer: Self.providerIssuer, audience: "facet-archive", keySet: .file(keySet.path)),
            store: archive.identity.store)
        let token = try Self.providerToken(key, audience: "facet-archive")
        let wrongAudience = try Self.providerToken(key, audience: "another-app")
        let own = archive.token
        try await archive.bareApp.test(.router) { client in
            try await client.execute(uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(token)])) {
                response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/auth/me", method: .get, headers: headers([Self.bearer(token)])) {
                response in
                let me = try #require(try json(response.body) as? [String: Any])
                #expect(me["username"] as? String == "dr.oidc" && me["role"] as? String == "physician")
                #expect(me["tenant"] as? String == "default")
            }
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(wrongAudience)])
            ) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            }
            // Facet's own tokens still work beside the provider's.
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(own)])
            ) { response in #expect(response.status == .ok) }
            // Logout revokes the provider token's jti.
            try await client.execute(uri: "/api/v1/auth/logout", method: .post, headers: headers([Self.bearer(token)]))
            {
                response in #expect(response.status == .noContent)
            }
            try await client.execute(uri: "/dicomweb/studies", method: .get, headers: headers([Self.bearer(token)])) {
                response in #expect(response.status == .unauthorized)
            }
        }
        await archive.service.audit.flush()
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        #expect(log.contains("\"actor\":\"default/dr.oidc\""))
        #expect(log.contains("token audience is not accepted"))
    }

    @Test func identityProviderSettingsComeTogetherFromTheEnvironment() async throws {
        let full = [
            "FACET_OIDC_ISSUER": Self.providerIssuer, "FACET_OIDC_AUDIENCE": "facet-archive",
            "FACET_OIDC_JWKS": "https://idp.clinic.example/realms/facet/protocol/openid-connect/certs",
            "FACET_OIDC_ROLE_CLAIM": "facet_role", "FACET_OIDC_TENANT_CLAIM": "clinic",
            "FACET_OIDC_TENANTS": "default, clinic-b",
        ]
        let settings = try await ServerSettings.load(configFile: nil, environment: full)
        let provider = try #require(try settings.identityProvider())
        #expect(provider.issuer == Self.providerIssuer && provider.audience == "facet-archive")
        #expect(provider.roleClaim == "facet_role" && provider.tenantClaim == "clinic")
        #expect(provider.tenants == ["default", "clinic-b"] && provider.maximumLifetime == 12 * 3600)
        #expect(provider.keySet == .url(try #require(URL(string: full["FACET_OIDC_JWKS"] ?? ""))))
        #expect(try await ServerSettings.load(configFile: nil, environment: [:]).identityProvider() == nil)
        var partial = full
        partial["FACET_OIDC_JWKS"] = nil
        var plainHTTP = full
        plainHTTP["FACET_OIDC_JWKS"] = "http://idp.clinic.example/certs"
        var facetsOwn = full
        facetsOwn["FACET_OIDC_ISSUER"] = "facet"
        var unlisted = full
        unlisted["FACET_OIDC_TENANTS"] = nil
        for environment in [partial, plainHTTP, facetsOwn, unlisted] {
            await #expect(throws: SettingsError.self) {
                try await ServerSettings.load(configFile: nil, environment: environment)
            }
        }
    }
}
