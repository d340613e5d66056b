import Crypto
import Foundation

extension KeyHierarchy {
    /// Facet's token signing key, kept in `keyDirectory/token-signing.key` wrapped under the master key; generated on
    /// first use. Two processes creating it at once agree on one key (the file is linked into place only if absent).
    public func tokenSigningKey(keyDirectory: URL) throws(ArchiveError) -> TokenSigningKey {
        let purpose = "token-signing v1"
        let file = keyDirectory.appendingPathComponent("token-signing.key")
        if !FileManager.default.fileExists(atPath: file.path) {
            let fresh = TokenSigningKey()
            let wrapped = try Self.wrap(SymmetricKey(data: fresh.rawRepresentation), with: masterKey, purpose: purpose)
            let temporary = keyDirectory.appendingPathComponent(".token-signing-\(UUID().uuidString).tmp")
            try writePrivateFile(temporary, wrapped)
            // link(2) fails when the name exists: whoever links first wins, the other reads the winner's key.
            let linked = link(temporary.path, file.path)
            let linkError = errno
            unlink(temporary.path)
            guard linked == 0 || linkError == EEXIST else {
                throw ArchiveError(.io, "the token signing key cannot be written")
            }
            syncDirectory(keyDirectory)
        }
        let key = try Self.unwrap(try readPrivateFile(file, expectedLength: nil), with: masterKey, purpose: purpose)
        return try TokenSigningKey(rawRepresentation: key.withUnsafeBytes { Data($0) })
    }

    /// The token signing key to offer a shared store (PostgreSQL) when it has none yet, wrapped under the master key:
    /// the data folder's, when it has one (tokens issued before the move stay valid), else a new one.
    func offeredTokenSigningKey(keyDirectory: URL) throws(ArchiveError) -> Data {
        let file = keyDirectory.appendingPathComponent("token-signing.key")
        if FileManager.default.fileExists(atPath: file.path) {
            return try readPrivateFile(file, expectedLength: nil)
        }
        return try Self.wrap(
            SymmetricKey(data: TokenSigningKey().rawRepresentation), with: masterKey, purpose: "token-signing v1")
    }

    /// A token signing key wrapped under the master key (as `offeredTokenSigningKey` makes it).
    func tokenSigningKey(wrapped: Data) throws(ArchiveError) -> TokenSigningKey {
        let key = try Self.unwrap(wrapped, with: masterKey, purpose: "token-signing v1")
        return try TokenSigningKey(rawRepresentation: key.withUnsafeBytes { Data($0) })
    }
}
