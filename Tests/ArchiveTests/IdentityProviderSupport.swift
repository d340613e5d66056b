import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import Archive

/// A clinic's identity provider in a test: an RSA-2048 key (kid `rsa-1`) and a P-256 key (kid `ec-1`), their JWKS in
/// a file, and tokens signed here as the provider would sign them.
struct TestIdentityProvider {
    static let issuer = "https://idp.clinic.example/realms/facet"
    static let audience = "facet-archive"

    let rsa: _RSA.Signing.PrivateKey
    let ec: P256.Signing.PrivateKey
    let keySetFile: URL

    init(folder: URL) throws {
        rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        ec = P256.Signing.PrivateKey()
        keySetFile = folder.appendingPathComponent("jwks.json")
        try publish([Self.jwk(rsa.publicKey, kid: "rsa-1"), Self.jwk(ec.publicKey, kid: "ec-1")])
    }

    var settings: OIDCTokenVerifier.Settings {
        OIDCTokenVerifier.Settings(issuer: Self.issuer, audience: Self.audience, keySet: .file(keySetFile.path))
    }

    /// Replaces the published key set.
    func publish(_ keys: [[String: Any]]) throws {
        try JSONSerialization.data(withJSONObject: ["keys": keys]).write(to: keySetFile, options: .atomic)
    }

    static func jwk(_ key: _RSA.Signing.PublicKey, kid: String?) -> [String: Any] {
        // swift-crypto can give the primitives of any key it made.
        let primitives = try? key.getKeyPrimitives()
        var fields: [String: Any] = [
            "kty": "RSA", "use": "sig", "alg": "RS256", "n": JSONWebToken.base64URL(primitives?.modulus ?? Data()),
            "e": JSONWebToken.base64URL(primitives?.publicExponent ?? Data()),
        ]
        fields["kid"] = kid
        return fields
    }

    static func jwk(_ key: P256.Signing.PublicKey, kid: String?) -> [String: Any] {
        var fields: [String: Any] = [
            "kty": "EC", "crv": "P-256", "use": "sig", "x": JSONWebToken.base64URL(key.rawRepresentation.prefix(32)),
            "y": JSONWebToken.base64URL(key.rawRepresentation.suffix(32)),
        ]
        fields["kid"] = kid
        return fields
    }

    /// Claims of a physician's token valid from `now` for five minutes; `change` edits them (nil removes a claim).
    static func claims(at now: Date, _ change: (inout [String: Any]) -> Void = { _ in }) -> [String: Any] {
        let seconds = Int(now.timeIntervalSince1970)
        var claims: [String: Any] = [
            "iss": issuer, "aud": audience, "sub": "2b1f5a1e-7c1d-4c55-9a2e-2f0e8d1c4b11",
            "preferred_username": "dr.lee", "role": "physician", "iat": seconds, "nbf": seconds, "exp": seconds + 300,
            "jti": UUID().uuidString,
        ]
        change(&claims)
        return claims
    }

    /// A compact JWS of `claims` with the given header, signed by `signer` over its exact signing input.
    static func token(header: [String: Any], claims: [String: Any], signer: (Data) throws -> Data) throws -> String {
        let options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        let header = try JSONSerialization.data(withJSONObject: header, options: options)
        let payload = try JSONSerialization.data(withJSONObject: claims, options: options)
        let input = JSONWebToken.base64URL(header) + "." + JSONWebToken.base64URL(payload)
        return input + "." + JSONWebToken.base64URL(try signer(Data(input.utf8)))
    }

    func rs256(_ claims: [String: Any], kid: String? = "rsa-1", key: _RSA.Signing.PrivateKey? = nil) throws -> String {
        var header: [String: Any] = ["alg": "RS256", "typ": "JWT"]
        header["kid"] = kid
        let key = key ?? rsa
        return try Self.token(header: header, claims: claims) {
            try key.signature(for: $0, padding: .insecurePKCS1v1_5).rawRepresentation
        }
    }

    func es256(_ claims: [String: Any], kid: String? = "ec-1", key: P256.Signing.PrivateKey? = nil) throws -> String {
        var header: [String: Any] = ["alg": "ES256", "typ": "JWT"]
        header["kid"] = kid
        let key = key ?? ec
        return try Self.token(header: header, claims: claims) { try key.signature(for: $0).rawRepresentation }
    }
}
