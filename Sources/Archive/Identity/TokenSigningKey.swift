import Crypto
import Foundation

/// Facet's own ES256 (ECDSA P-256 with SHA-256) key for the tokens it issues.
public struct TokenSigningKey: Sendable {
    // Raw scalar (P256 keys are not Sendable); the key is rebuilt where it is used.
    let rawRepresentation: Data

    public init() {
        rawRepresentation = P256.Signing.PrivateKey().rawRepresentation
    }

    init(rawRepresentation: Data) throws(ArchiveError) {
        guard (try? P256.Signing.PrivateKey(rawRepresentation: rawRepresentation)) != nil else {
            throw ArchiveError(.key, "the token signing key is malformed")
        }
        self.rawRepresentation = rawRepresentation
    }

    public var publicKey: TokenVerificationKey {
        // The raw scalar was checked when the key was made.
        let key = (try? P256.Signing.PrivateKey(rawRepresentation: rawRepresentation))?.publicKey
        return TokenVerificationKey(rawRepresentation: key?.rawRepresentation ?? Data())
    }

    /// The JWS signature (r ‖ s, 64 bytes) of `message`.
    func sign(_ message: Data) throws(ArchiveError) -> Data {
        do {
            let key = try P256.Signing.PrivateKey(rawRepresentation: rawRepresentation)
            return try key.signature(for: message).rawRepresentation
        } catch {
            throw ArchiveError(.key, "a token cannot be signed")
        }
    }
}

/// The public half of a `TokenSigningKey` (what a JWKS would publish).
public struct TokenVerificationKey: Sendable, Hashable {
    public let rawRepresentation: Data

    /// Key id for the JWS header: the first 16 bytes of SHA-256 of the public key, base64url.
    public var keyID: String {
        JSONWebToken.base64URL(Data(SHA256.hash(data: rawRepresentation)).prefix(16))
    }

    func isValidSignature(_ signature: Data, for message: Data) -> Bool {
        guard signature.count == 64,
            let key = try? P256.Signing.PublicKey(rawRepresentation: rawRepresentation),
            let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
        else { return false }
        return key.isValidSignature(parsed, for: message)
    }
}
