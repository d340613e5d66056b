import Crypto
import Foundation
import GRDB
import _CryptoExtras

/// `facet keys backup` and `facet keys restore`: the key directory (master key, tenant keys, patient keyrings) in one
/// file apart from the data backups, sealed under a passphrase (scrypt N=2^15, r=8, p=1, then AES-256-GCM), and
/// dated: it expires (default 30 days) and is refused after that, so that a patient's key destroyed by a disposal
/// does not live on in an old key backup for longer than that. The file holds no PHI.
///
///     {"format": "facet-key-backup-1", "made": ..., "expires": ..., "salt": base64, "sealed": base64}
///
/// The header fields are the associated data of the seal, so an edited expiry fails to open.
public enum KeyBackup {
    public static let format = "facet-key-backup-1"
    static let scrypt = (rounds: 1 << 15, blockSize: 8, parallelism: 1)

    /// The passphrase rules: 12 or more characters.
    static func check(_ passphrase: String) throws(ArchiveError) {
        guard passphrase.count >= 12 else {
            throw ArchiveError(.invalidInput, "a key backup's passphrase has 12 characters or more")
        }
    }

    static func derive(_ passphrase: String, salt: Data) throws(ArchiveError) -> SymmetricKey {
        do {
            return try KDF.Scrypt.deriveKey(
                from: Data(passphrase.utf8), salt: salt, outputByteCount: 32, rounds: scrypt.rounds,
                blockSize: scrypt.blockSize, parallelism: scrypt.parallelism)
        } catch {
            throw ArchiveError(.key, "the passphrase could not be stretched")
        }
    }

    /// The associated data: the header fields exactly as the file spells them.
    static func header(made: String, expires: String, salt: String) -> Data {
        Data("\(format)\u{0}\(made)\u{0}\(expires)\u{0}\(salt)".utf8)
    }

    /// Seals every file of `keyDirectory` (SQLite keyrings as consistent snapshots) and, when the master key lives
    /// elsewhere, `masterKeyFile`. Returns the backup file's bytes.
    public static func make(
        keyDirectory: URL, masterKeyFile: URL?, passphrase: String, days: Int, now: Date = Date()
    ) throws(ArchiveError) -> Data {
        try check(passphrase)
        guard (1...366).contains(days) else { throw ArchiveError(.invalidInput, "a key backup lasts 1 to 366 days") }
        var files: [String: String] = [:]
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: keyDirectory.path)) ?? []).sorted()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("facet-keys-\(UUID().uuidString)")
        try createPrivateDirectory(scratch)
        defer { try? FileManager.default.removeItem(at: scratch) }
        // The master key where the server reads it: the external file wins over a stray copy in the folder.
        for name in names
        where !name.hasPrefix(".") && !name.hasSuffix("-journal") && !(name == "master.key" && masterKeyFile != nil) {
            let url = keyDirectory.appendingPathComponent(name)
            let bytes: Data?
            if name.hasSuffix(".sqlite") {
                let copy = scratch.appendingPathComponent(name)
                try ArchiveBackup.snapshot(url, to: copy)
                bytes = FileManager.default.contents(atPath: copy.path)
            } else {
                bytes = try readPrivateFile(url, expectedLength: nil)
            }
            guard let bytes else { throw ArchiveError(.io, "a key file cannot be read") }
            files[name] = bytes.base64EncodedString()
        }
        if let masterKeyFile {
            files["master.key"] = try readPrivateFile(masterKeyFile, expectedLength: 32).base64EncodedString()
        }
        guard files["master.key"] != nil else {
            throw ArchiveError(
                .key, "the master key is not in a file (FACET_MASTER_KEY): keep it in your own secret store")
        }
        let salt = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let (made, expires) = (
            Formatting.timestamp(now), Formatting.timestamp(now.addingTimeInterval(Double(days) * 86_400))
        )
        let key = try derive(passphrase, salt: Data(salt.utf8))
        guard let payload = try? JSONSerialization.data(withJSONObject: files, options: [.sortedKeys]),
            let sealed = try? AES.GCM.seal(
                payload, using: key, authenticating: header(made: made, expires: expires, salt: salt)
            )
            .combined
        else { throw ArchiveError(.key, "the key backup cannot be sealed") }
        let document: [String: Any] = [
            "format": format, "made": made, "expires": expires, "salt": salt, "sealed": sealed.base64EncodedString(),
            "files": files.count,
        ]
        guard let out = try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]) else {
            throw ArchiveError(.key, "the key backup cannot be written")
        }
        return out
    }

    /// Opens a key backup: the files it holds (name → bytes). Refused when expired, edited, or the passphrase is wrong.
    public static func open(_ data: Data, passphrase: String, now: Date = Date()) throws(ArchiveError)
        -> (files: [String: Data], expires: Date)
    {
        guard let document = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            document["format"] as? String == format, let madeText = document["made"] as? String,
            Formatting.instant(madeText) != nil, let expiresText = document["expires"] as? String,
            let expires = Formatting.instant(expiresText), let salt = document["salt"] as? String,
            let sealed = (document["sealed"] as? String).flatMap({ Data(base64Encoded: $0) })
        else { throw ArchiveError(.invalidInput, "not a Facet key backup") }
        guard now < expires else {
            throw ArchiveError(
                .key,
                "the key backup expired on \(expiresText): key backups expire so that disposed patients' keys do not outlive them"
            )
        }
        let key = try derive(passphrase, salt: Data(salt.utf8))
        guard let box = try? AES.GCM.SealedBox(combined: sealed),
            let payload = try? AES.GCM.open(
                box, using: key, authenticating: header(made: madeText, expires: expiresText, salt: salt)),
            let files = try? JSONSerialization.jsonObject(with: payload) as? [String: String]
        else { throw ArchiveError(.key, "the key backup does not open: wrong passphrase, or the file was changed") }
        var out: [String: Data] = [:]
        for (name, text) in files {
            guard let bytes = Data(base64Encoded: text), !name.contains("/"), !name.hasPrefix(".") else {
                throw ArchiveError(.invalidInput, "not a Facet key backup")
            }
            out[name] = bytes
        }
        return (out, expires)
    }

    /// Writes a backup's files into an empty (or new) key directory, mode 0600.
    public static func restore(_ files: [String: Data], into keyDirectory: URL) throws(ArchiveError) {
        try createPrivateDirectory(keyDirectory)
        // Dot-files count: a staged rotation left there would be applied over the restored keys.
        let present = (try? FileManager.default.contentsOfDirectory(atPath: keyDirectory.path)) ?? []
        guard present.isEmpty else {
            throw ArchiveError(.invalidRequest, "the key directory is not empty: nothing was restored over it")
        }
        for (name, bytes) in files.sorted(by: { $0.key < $1.key }) {
            try writePrivateFile(keyDirectory.appendingPathComponent(name), bytes)
        }
    }
}
