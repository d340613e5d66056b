import Crypto
import Foundation
import GRDB

/// `facet keys rotate` (issue 12 §4): new key-encryption keys, with nothing re-encrypted but the keys they wrap.
///
/// - **Master** (`--master`): a new master key wraps again every key file of the key directory (the tenants' keys,
///   their wrapping keys, the token signing key). The master key the archive was made with stays the root the
///   server-wide keys are derived from (the default tenant's index sealing and blind-index keys, the patient hash
///   key, the accounts' sealing), kept wrapped by the new master in `root.key`: the key material on disk that must
///   be guarded is the new master only.
/// - **Tenant** (`--tenant NAME`): a new wrapping key (`tenant-<t>.wrap.key`, under the master) re-wraps every
///   patient key of the clinic in its keyring; blobs and rows stay as they are (their data keys are under the
///   patient keys). The tenant key proper is retired from wrapping and kept only to unwrap what was stored before
///   patient keys existed, and as the root of the clinic's derived keys.
///
/// Every new file is staged in `keys/.rotation/` (and a new external master key beside its file, `.next`), then a
/// `COMMITTED` marker is written: that is the commit point. Applying renames the staged files into place; a start
/// that finds a committed stage finishes it, one that finds an uncommitted stage discards it, so an interruption
/// anywhere leaves either the old keys or the new ones. `rotation.json` records the key ids (16 hex digits of a
/// SHA-256 of the key) and since when each key is in use; the server's readiness details remind once a key is a
/// year old. Needs the server stopped (the CLI takes the data folder's lock).
public enum KeyRotation {
    static let rootFile = "root.key"
    static let rootPurpose = "root"
    static let recordFile = "rotation.json"
    static let stageFolder = ".rotation"
    static let committedMarker = "COMMITTED"
    static func wrapFile(_ tenant: String) -> String { "tenant-\(tenant).wrap.key" }
    static func wrapPurpose(_ tenant: String) -> String { "tenant-wrap:\(tenant)" }
    /// A year: the reminder's period.
    public static let reminderDays = 365

    /// When each key came into use, and its id.
    public struct Record: Codable, Sendable, Equatable {
        public struct Entry: Codable, Sendable, Equatable {
            public var id: String
            public var since: Date
        }
        public var master: Entry?
        public var tenants: [String: Entry] = [:]
    }

    /// A key's id: 16 hex digits of SHA-256 over a label and the key, so the id says nothing of the key.
    public static func keyID(_ key: SymmetricKey) -> String {
        var hasher = SHA256()
        hasher.update(data: Data("facet key id v1".utf8))
        key.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return Formatting.hex(Data(hasher.finalize()).prefix(8))
    }

    static func record(keyDirectory: URL) -> Record {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        guard let data = FileManager.default.contents(atPath: keyDirectory.appendingPathComponent(recordFile).path),
            let record = try? decoder.decode(Record.self, from: data)
        else { return Record() }
        return record
    }

    static func encode(_ record: Record) throws(ArchiveError) -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(record) else { throw ArchiveError(.io, "rotation.json cannot be written") }
        return data
    }

    /// Since when a key file has been in use: its recorded date, else the file's modification time.
    static func since(_ entry: Record.Entry?, file: URL) -> Date? {
        if let entry { return entry.since }
        let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
        return attributes?[.modificationDate] as? Date
    }

    /// The reminders of a data folder's keys (`DATA/keys`; the default clinic and every one under `DATA/tenants`).
    public static func reminders(
        dataDirectory: URL, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String] {
        let clinics =
            (try? FileManager.default.contentsOfDirectory(
                atPath: dataDirectory.appendingPathComponent("tenants").path)) ?? []
        return reminders(
            keyDirectory: dataDirectory.appendingPathComponent("keys"),
            tenants: ["default"] + clinics.filter { Account.isValidTenant($0) && $0 != "default" },
            environment: environment)
    }

    /// The reminders of keys in use for a year or more (empty when none is due), for `/health/ready`.
    public static func reminders(
        keyDirectory: URL, tenants: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
        now: Date = Date()
    ) -> [String] {
        let record = record(keyDirectory: keyDirectory)
        let limit = now.addingTimeInterval(-Double(reminderDays) * 86_400)
        var out: [String] = []
        if environment["FACET_MASTER_KEY"] == nil {
            let file =
                MasterKeyLocation.file(environment: environment) ?? keyDirectory.appendingPathComponent("master.key")
            if let since = since(record.master, file: file), since < limit {
                out.append(
                    "master key in use since \(Formatting.timestamp(since)): rotate it (facet keys rotate --master)")
            }
        }
        for tenant in tenants.sorted() {
            let file = keyDirectory.appendingPathComponent(
                FileManager.default.fileExists(atPath: keyDirectory.appendingPathComponent(wrapFile(tenant)).path)
                    ? wrapFile(tenant) : "tenant-\(tenant).key")
            if let since = since(record.tenants[tenant], file: file), since < limit {
                out.append(
                    "tenant \(tenant)'s key in use since \(Formatting.timestamp(since)): rotate it "
                        + "(facet keys rotate --tenant \(tenant))")
            }
        }
        return out
    }

    // MARK: rotating

    /// What a rotation did: the old and new key ids.
    public struct Outcome: Sendable {
        public var what: String
        public var oldID: String
        public var newID: String
        public var rewrapped: Int
    }

    /// Replaces the master key. Returns the ids and how many key files were wrapped again.
    public static func rotateMaster(
        keyDirectory: URL, environment: [String: String] = ProcessInfo.processInfo.environment, now: Date = Date()
    ) throws(ArchiveError) -> Outcome {
        try rotateMaster(keyDirectory: keyDirectory, environment: environment, now: now, applying: true)
    }

    /// `applying: false` stops at the commit point (for tests of an interrupted rotation).
    static func rotateMaster(keyDirectory: URL, environment: [String: String], now: Date, applying: Bool)
        throws(ArchiveError) -> Outcome
    {
        guard environment["FACET_MASTER_KEY"] == nil else {
            throw ArchiveError(
                .invalidRequest,
                "the master key comes from FACET_MASTER_KEY: rotate it in the secret store that holds it")
        }
        let (old, _) = try KeyHierarchy.masterKey(keyDirectory: keyDirectory, environment: environment)
        let root = try KeyHierarchy.rootKey(keyDirectory: keyDirectory, master: old) ?? old
        let fresh = SymmetricKey(size: .bits256)
        var staged: [String: Data] = [
            rootFile: try KeyHierarchy.wrap(root, with: fresh, purpose: rootPurpose)
        ]
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: keyDirectory.path)) ?? []).sorted()
        var rewrapped = 0
        for name in names {
            let purpose: String
            if name == "token-signing.key" {
                purpose = "token-signing v1"
            } else if name.hasPrefix("tenant-") && name.hasSuffix(".wrap.key") {
                purpose = wrapPurpose(String(name.dropFirst(7).dropLast(9)))
            } else if name.hasPrefix("tenant-") && name.hasSuffix(".key") {
                purpose = "tenant:\(name.dropFirst(7).dropLast(4))"
            } else {
                continue
            }
            let url = keyDirectory.appendingPathComponent(name)
            let key = try KeyHierarchy.unwrap(
                try readPrivateFile(url, expectedLength: nil), with: old, purpose: purpose)
            staged[name] = try KeyHierarchy.wrap(key, with: fresh, purpose: purpose)
            rewrapped += 1
        }
        var record = record(keyDirectory: keyDirectory)
        record.master = Record.Entry(id: keyID(fresh), since: now)
        staged[recordFile] = try encode(record)
        let external = MasterKeyLocation.file(environment: environment)
        let newMaster = fresh.withUnsafeBytes { Data($0) }
        if external == nil { staged["master.key"] = newMaster }
        try commit(staged, keyDirectory: keyDirectory, external: external.map { ($0, newMaster) }, applying: applying)
        return Outcome(what: "master", oldID: keyID(old), newID: keyID(fresh), rewrapped: rewrapped)
    }

    /// Replaces a tenant's wrapping key and re-wraps every patient key of the tenant under it.
    public static func rotateTenant(
        keyDirectory: URL, tenant: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        now: Date = Date()
    ) throws(ArchiveError) -> Outcome {
        try KeyHierarchy.checkTenant(tenant)
        let tenantFile = keyDirectory.appendingPathComponent("tenant-\(tenant).key")
        guard FileManager.default.fileExists(atPath: tenantFile.path) else {
            throw ArchiveError(.notFound, "no key of tenant \(tenant) in the key directory")
        }
        let (master, _) = try KeyHierarchy.masterKey(keyDirectory: keyDirectory, environment: environment)
        let tenantKey = try KeyHierarchy.unwrap(
            try readPrivateFile(tenantFile, expectedLength: nil), with: master, purpose: "tenant:\(tenant)")
        let old = try KeyHierarchy.wrappingKey(keyDirectory: keyDirectory, tenant: tenant, master: master) ?? tenantKey
        let fresh = SymmetricKey(size: .bits256)
        var staged: [String: Data] = [
            wrapFile(tenant): try KeyHierarchy.wrap(fresh, with: master, purpose: wrapPurpose(tenant))
        ]
        // The keyring, copied and re-wrapped in the copy: the live file changes only at the rename.
        let ringName = "patient-keys-\(tenant).sqlite"
        let ring = keyDirectory.appendingPathComponent(ringName)
        var rewrapped = 0
        let scratch = keyDirectory.appendingPathComponent(".rotation-scratch-\(UUID().uuidString)")
        try createPrivateDirectory(scratch)
        defer { try? FileManager.default.removeItem(at: scratch) }
        if FileManager.default.fileExists(atPath: ring.path) {
            let copy = scratch.appendingPathComponent(ringName)
            try ArchiveBackup.snapshot(ring, to: copy)
            do {
                let queue = try DatabaseQueue(path: copy.path)
                try queue.write { db in
                    for row in try Row.fetchAll(db, sql: "SELECT patient, key_id, wrapped FROM patient_keys") {
                        let (patient, id): (String, String) = (row["patient"], row["key_id"])
                        let purpose = "patient:\(tenant):\(id):\(patient)"
                        let key = try KeyHierarchy.unwrap(row["wrapped"], with: old, purpose: purpose)
                        try db.execute(
                            sql: "UPDATE patient_keys SET wrapped = ? WHERE patient = ?",
                            arguments: [try KeyHierarchy.wrap(key, with: fresh, purpose: purpose), patient])
                        rewrapped += 1
                    }
                }
                try queue.vacuum()
                try queue.close()
            } catch let error as ArchiveError {
                throw error
            } catch {
                throw ArchiveError(.io, "the patient keys could not be re-wrapped")
            }
            guard let bytes = FileManager.default.contents(atPath: copy.path) else {
                throw ArchiveError(.io, "the patient keys could not be re-wrapped")
            }
            staged[ringName] = bytes
        }
        var record = record(keyDirectory: keyDirectory)
        record.tenants[tenant] = Record.Entry(id: keyID(fresh), since: now)
        staged[recordFile] = try encode(record)
        try commit(staged, keyDirectory: keyDirectory, external: nil)
        return Outcome(what: "tenant \(tenant)", oldID: keyID(old), newID: keyID(fresh), rewrapped: rewrapped)
    }

    // MARK: the commit

    /// Stages the files, marks the stage committed, then applies it.
    static func commit(_ files: [String: Data], keyDirectory: URL, external: (URL, Data)?, applying: Bool = true)
        throws(ArchiveError)
    {
        try recover(keyDirectory: keyDirectory, environment: [:])
        let stage = keyDirectory.appendingPathComponent(stageFolder)
        try createPrivateDirectory(stage)
        syncDirectory(keyDirectory)
        for (name, data) in files { try writePrivateFile(stage.appendingPathComponent(name), data) }
        var manifest: [String: Any] = ["files": files.keys.sorted()]
        if let (url, data) = external {
            try writePrivateFile(url.appendingPathExtension("next"), data)
            manifest["external"] = url.path
        }
        syncDirectory(stage)
        guard let marker = try? JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]) else {
            throw ArchiveError(.io, "the rotation cannot be committed")
        }
        // The commit point.
        try writePrivateFile(stage.appendingPathComponent(committedMarker), marker)
        if applying { try apply(stage: stage, keyDirectory: keyDirectory) }
    }

    /// Finishes a committed stage, or discards an uncommitted one.
    static func recover(keyDirectory: URL, environment: [String: String]) throws(ArchiveError) {
        let stage = keyDirectory.appendingPathComponent(stageFolder)
        guard FileManager.default.fileExists(atPath: stage.path) else { return }
        if FileManager.default.fileExists(atPath: stage.appendingPathComponent(committedMarker).path) {
            try apply(stage: stage, keyDirectory: keyDirectory)
        } else {
            try? FileManager.default.removeItem(at: stage)
            if let external = MasterKeyLocation.file(environment: environment) {
                unlink(external.appendingPathExtension("next").path)
            }
            syncDirectory(keyDirectory)
        }
    }

    private static func apply(stage: URL, keyDirectory: URL) throws(ArchiveError) {
        guard let data = FileManager.default.contents(atPath: stage.appendingPathComponent(committedMarker).path),
            let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let files = manifest["files"] as? [String]
        else { throw ArchiveError(.key, "a committed key rotation cannot be read: restore the keys from a key backup") }
        for name in files {
            let from = stage.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: from.path) else { continue }  // moved already
            let to = keyDirectory.appendingPathComponent(name)
            // A keyring's journal belongs to the file being replaced.
            unlink(to.path + "-journal")
            guard rename(from.path, to.path) == 0 else {
                throw ArchiveError(.io, "a rotated key cannot be put in place")
            }
        }
        if let path = manifest["external"] as? String {
            let url = URL(fileURLWithPath: path)
            let next = url.appendingPathExtension("next")
            if FileManager.default.fileExists(atPath: next.path) {
                guard rename(next.path, url.path) == 0 else {
                    throw ArchiveError(.io, "the new master key cannot be put in place")
                }
                syncDirectory(url.deletingLastPathComponent())
            }
        }
        syncDirectory(keyDirectory)
        try? FileManager.default.removeItem(at: stage)
        syncDirectory(keyDirectory)
    }
}
