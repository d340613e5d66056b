import Crypto
import Foundation
import _CryptoExtras

/// One signature key of an identity provider's key set (RFC 7517): RSA for RS256, or EC P-256 for ES256.
struct JSONWebKey: Sendable {
    /// The two JWS algorithms (RFC 7518 3.1) Facet accepts from an identity provider.
    enum Algorithm: String, Sendable, Hashable {
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        case rs256 = "RS256"
        /// ECDSA on P-256 with SHA-256, the signature as r ‖ s (64 bytes).
        case es256 = "ES256"
    }

    enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        /// x ‖ y (P256 keys are not Sendable; the key is rebuilt where it is used, as for Facet's own).
        case p256(TokenVerificationKey)
    }

    /// RSA moduli outside this range are not used: under 2048 bits is too weak, over 8192 only costs time.
    static let rsaBits = 2048...8192

    var id: String?
    var material: Material

    /// The only algorithm this key verifies: the key's type decides, never the token.
    var algorithm: Algorithm {
        switch material {
        case .rsa: .rs256
        case .p256: .es256
        }
    }

    func isValidSignature(_ signature: Data, for message: Data) -> Bool {
        switch material {
        case .rsa(let key):
            // RS256 is PKCS #1 v1.5 padding, which swift-crypto names "insecure" to steer new designs to PSS.
            guard signature.count == (key.keySizeInBits + 7) / 8 else { return false }
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: message, padding: .insecurePKCS1v1_5)
        case .p256(let key):
            return key.isValidSignature(signature, for: message)
        }
    }

    /// The key a JWK object describes, or nil when it is not one Facet verifies with: another `kty` or curve, a
    /// `use` other than `sig`, `key_ops` without `verify`, an `alg` other than the key type's, an RSA modulus out
    /// of `rsaBits`, a point not on the curve, malformed base64url.
    init?(_ fields: [String: Any]) {
        if let use = fields["use"], use as? String != "sig" { return nil }
        if let operations = fields["key_ops"] {
            guard let operations = operations as? [String], operations.contains("verify") else { return nil }
        }
        if let id = fields["kid"] {
            guard let id = id as? String else { return nil }
            self.id = id
        }
        switch fields["kty"] as? String {
        case "RSA":
            guard let n = Self.bytes(fields["n"]), let e = Self.bytes(fields["e"]),
                let key = try? _RSA.Signing.PublicKey(n: n, e: e), Self.rsaBits.contains(key.keySizeInBits)
            else { return nil }
            material = .rsa(key)
        case "EC":
            guard fields["crv"] as? String == "P-256", let x = Self.bytes(fields["x"]), let y = Self.bytes(fields["y"]),
                x.count == 32, y.count == 32, (try? P256.Signing.PublicKey(rawRepresentation: x + y)) != nil
            else { return nil }
            material = .p256(TokenVerificationKey(rawRepresentation: x + y))
        default:
            return nil
        }
        if let algorithm = fields["alg"], algorithm as? String != self.algorithm.rawValue { return nil }
    }

    private static func bytes(_ value: Any?) -> Data? {
        guard let text = value as? String, !text.isEmpty else { return nil }
        return JSONWebToken.decodeBase64URL(text)
    }
}
