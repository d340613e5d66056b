import Crypto
import Foundation
import GRDB

/// The per-patient level of the key hierarchy, for disposal by cryptographic erase (issue 12 §4; NIST SP 800-88
/// Rev. 1 "purge by cryptographic erase"): every patient gets a random 256-bit key, wrapped by the tenant key, that
/// wraps the data keys of the patient's blobs and seals the patient's index rows and clinic records. Destroying that
/// one key makes every copy of them unreadable, a data backup made before included.
///
/// The keys live in the key directory (`keys/patient-keys-<tenant>.sqlite`, mode 0600), never in the data folder,
/// so `facet backup` never carries them. The file is kept with SQLite's `secure_delete` and a rollback journal (no
/// WAL that would keep a destroyed key's page), and a destroyed key's row is overwritten with zeros in the file.
/// Keys are named by a random 128-bit id (32 hex digits) that sealed rows and blob headers carry.
public final class PatientKeyring: @unchecked Sendable {
    private let queue: DatabaseQueue
    private let tenant: String
    private let tenantKeyBytes: Data
    private let lock = NSLock()
    private var byPatient: [String: (id: String, key: Data)] = [:]
    private var byID: [String: Data] = [:]

    /// Opens (or creates) the keyring of `tenant` in `keyDirectory`.
    init(keyDirectory: URL, tenant: String, tenantKey: SymmetricKey) throws(ArchiveError) {
        self.tenant = tenant
        tenantKeyBytes = tenantKey.withUnsafeBytes { Data($0) }
        let file = keyDirectory.appendingPathComponent("patient-keys-\(tenant).sqlite")
        // Created owner-only before SQLite opens it; SQLite gives its journal the database file's mode.
        let fd = open(file.path, O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else { throw ArchiveError(.io, "the patient keyring cannot be opened") }
        close(fd)
        var info = stat()
        guard stat(file.path, &info) == 0, info.st_mode & 0o077 == 0 else {
            throw ArchiveError(.key, "the patient keyring is readable by others; chmod 600 it")
        }
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA secure_delete = ON")
                try db.execute(sql: "PRAGMA journal_mode = DELETE")
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            queue = try DatabaseQueue(path: file.path, configuration: configuration)
            try queue.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE IF NOT EXISTS patient_keys (
                            patient TEXT PRIMARY KEY NOT NULL, key_id TEXT NOT NULL UNIQUE, wrapped BLOB NOT NULL,
                            created REAL NOT NULL)
                        """)
            }
        } catch {
            throw ArchiveError(.io, "the patient keyring cannot be opened")
        }
    }

    private var tenantKey: SymmetricKey { SymmetricKey(data: tenantKeyBytes) }

    private func purpose(_ id: String, _ patient: String) -> String { "patient:\(tenant):\(id):\(patient)" }

    /// The key of a patient (its keyed hash), made and stored durably on first use.
    public func key(forPatient patient: String) throws(ArchiveError) -> (id: String, key: SymmetricKey) {
        if let held = lock.withLock({ byPatient[patient] }) { return (held.id, SymmetricKey(data: held.key)) }
        let fresh = SymmetricKey(size: .bits256)
        let freshID = Formatting.hex(Data((0..<16).map { _ in UInt8.random(in: 0...255) }))
        let wrapped = try KeyHierarchy.wrap(fresh, with: tenantKey, purpose: purpose(freshID, patient))
        let row: Row?
        do {
            // Another process (or thread) may have made the key first: its key is the one kept.
            row = try queue.write { db in
                try db.execute(
                    sql: "INSERT OR IGNORE INTO patient_keys (patient, key_id, wrapped, created) VALUES (?, ?, ?, ?)",
                    arguments: [patient, freshID, wrapped, Date().timeIntervalSince1970])
                return try Row.fetchOne(
                    db, sql: "SELECT key_id, wrapped FROM patient_keys WHERE patient = ?", arguments: [patient])
            }
        } catch {
            throw ArchiveError(.io, "the patient keyring cannot be written")
        }
        guard let row else { throw ArchiveError(.io, "the patient keyring cannot be written") }
        return try remember(patient: patient, id: row["key_id"], wrapped: row["wrapped"])
    }

    /// The key named `id`, or nil when there is none (never made here, or destroyed).
    public func key(id: String) -> SymmetricKey? {
        if let held = lock.withLock({ byID[id] }) { return SymmetricKey(data: held) }
        guard
            let row = try? queue.read({ db in
                try Row.fetchOne(db, sql: "SELECT patient, wrapped FROM patient_keys WHERE key_id = ?", arguments: [id])
            })
        else { return nil }
        return try? remember(patient: row["patient"], id: id, wrapped: row["wrapped"]).key
    }

    /// The id of a patient's key, nil when the patient has none.
    public func keyID(ofPatient patient: String) -> String? {
        if let held = lock.withLock({ byPatient[patient] }) { return held.id }
        return try? queue.read { db in
            try String.fetchOne(db, sql: "SELECT key_id FROM patient_keys WHERE patient = ?", arguments: [patient])
        }
    }

    private func remember(patient: String, id: String, wrapped: Data) throws(ArchiveError)
        -> (id: String, key: SymmetricKey)
    {
        let key = try KeyHierarchy.unwrap(wrapped, with: tenantKey, purpose: purpose(id, patient))
        let bytes = key.withUnsafeBytes { Data($0) }
        lock.withLock {
            byPatient[patient] = (id, bytes)
            byID[id] = bytes
        }
        return (id, key)
    }

    /// Destroys a patient's key: its row is deleted (its page overwritten by `secure_delete`) and the file is
    /// vacuumed, so no copy stays in the keyring. Returns the destroyed key's id, nil when the patient had none.
    public func destroy(patient: String) throws(ArchiveError) -> String? {
        let id: String?
        do {
            id = try queue.write { db in
                let id = try String.fetchOne(
                    db, sql: "SELECT key_id FROM patient_keys WHERE patient = ?", arguments: [patient])
                try db.execute(sql: "DELETE FROM patient_keys WHERE patient = ?", arguments: [patient])
                return id
            }
            try queue.vacuum()
        } catch {
            throw ArchiveError(.io, "the patient's key could not be destroyed")
        }
        lock.withLock {
            if let held = byPatient.removeValue(forKey: patient) { byID[held.id] = nil }
        }
        return id
    }

    /// Destroys the keys named in `ids` that the keyring holds (a key backup restored after a disposal brought them
    /// back). Returns how many.
    public func destroy(keyIDs ids: [String]) throws(ArchiveError) -> Int {
        var destroyed = 0
        for id in ids {
            guard
                let patient = try? queue.read({ db in
                    try String.fetchOne(db, sql: "SELECT patient FROM patient_keys WHERE key_id = ?", arguments: [id])
                })
            else { continue }
            if try destroy(patient: patient) != nil { destroyed += 1 }
        }
        return destroyed
    }

    /// Re-wraps every patient key under `newTenantKey` (tenant key rotation: the patient keys, and so every blob
    /// and row under them, stay as they are). Runs in one transaction.
    func rewrap(to newTenantKey: SymmetricKey) throws(ArchiveError) {
        do {
            try queue.write { db in
                for row in try Row.fetchAll(db, sql: "SELECT patient, key_id, wrapped FROM patient_keys") {
                    let (patient, id): (String, String) = (row["patient"], row["key_id"])
                    let key = try KeyHierarchy.unwrap(row["wrapped"], with: tenantKey, purpose: purpose(id, patient))
                    let wrapped = try KeyHierarchy.wrap(key, with: newTenantKey, purpose: purpose(id, patient))
                    try db.execute(
                        sql: "UPDATE patient_keys SET wrapped = ? WHERE patient = ?", arguments: [wrapped, patient])
                }
            }
            try queue.vacuum()
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "the patient keys could not be re-wrapped")
        }
    }

    /// How many patients have a key.
    public func count() -> Int {
        (try? queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM patient_keys") }) ?? 0
    }
}
