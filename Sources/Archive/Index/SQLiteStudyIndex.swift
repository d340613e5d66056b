import Crypto
import DICOMCore
import Foundation
import GRDB

/// The embedded index: SQLite through GRDB in WAL mode with `synchronous=FULL`.
///
/// At rest, only UIDs, SOP classes, transfer syntaxes, modality, blob ids, sizes and hashes are in the clear.
/// Every other attribute (names, birth dates, patient IDs, accession numbers, descriptions, dates) is in the
/// row's `attributes` column, AES-256-GCM sealed under a key derived from the master key, with the row's UID as
/// associated data (a sealed value moved to another row fails). PatientID and AccessionNumber also get keyed
/// blind indexes (HMAC-SHA256 under a second derived key) for exact lookups. The decrypted catalog is kept in
/// memory, which a clinic's volume allows, so searches never touch the disk.
public final class SQLiteStudyIndex: StudyIndex, @unchecked Sendable {
    let pool: DatabasePool
    let sealer: AttributeSealer
    let lock = NSLock()
    var current = Catalog()
    /// UIDs of rows left out of the catalogue at load because they could not be decoded (a bad seal or malformed
    /// attributes), and of instances left out with their study or series. Their blobs stay referenced.
    public private(set) var quarantinedRows: [String] = []

    public init(path: URL, keys: KeyHierarchy) throws(ArchiveError) {
        sealer = AttributeSealer(keys: keys)
        do {
            var configuration = Configuration()
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            // `facet users` writes accounts into the same file while a server runs: wait for its lock, not fail.
            configuration.busyMode = .timeout(10)
            pool = try DatabasePool(path: path.path, configuration: configuration)
            try Self.migrator.migrate(pool)
            try load()
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "index database cannot be opened")
        }
    }

    /// The schema as GRDB migrations, applied in order and recorded in `grdb_migrations` (beside the accounts' own).
    /// A released migration is never edited; a change is a new one. Version 1 is written with `IF NOT EXISTS` so
    /// that archives made before migrations existed take it without change.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration(
            "archive v1: studies, series, instances, originals, deletions, pending blobs, audit anchor"
        ) { db in
            try db.execute(sql: SQLiteStudyIndex.createAuditAnchorTable)
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS studies (
                        study_uid TEXT PRIMARY KEY NOT NULL,
                        attributes BLOB NOT NULL,
                        patient_id_index TEXT,
                        accession_index TEXT);
                    CREATE INDEX IF NOT EXISTS studies_patient ON studies(patient_id_index);
                    CREATE INDEX IF NOT EXISTS studies_accession ON studies(accession_index);
                    CREATE TABLE IF NOT EXISTS series (
                        series_uid TEXT PRIMARY KEY NOT NULL,
                        study_uid TEXT NOT NULL REFERENCES studies(study_uid),
                        modality TEXT,
                        attributes BLOB NOT NULL);
                    CREATE TABLE IF NOT EXISTS instances (
                        sop_uid TEXT PRIMARY KEY NOT NULL,
                        sop_class TEXT NOT NULL,
                        series_uid TEXT NOT NULL REFERENCES series(series_uid),
                        study_uid TEXT NOT NULL REFERENCES studies(study_uid),
                        transfer_syntax TEXT NOT NULL,
                        blob_id TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        sha256 TEXT NOT NULL,
                        stored REAL NOT NULL,
                        seq INTEGER NOT NULL,
                        attributes BLOB NOT NULL,
                        metadata BLOB NOT NULL);
                    CREATE INDEX IF NOT EXISTS instances_study ON instances(study_uid);
                    CREATE INDEX IF NOT EXISTS instances_series ON instances(series_uid);
                    CREATE TABLE IF NOT EXISTS originals (
                        sop_uid TEXT NOT NULL,
                        seq INTEGER NOT NULL,
                        blob_id TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        sha256 TEXT NOT NULL,
                        details BLOB NOT NULL,
                        PRIMARY KEY (sop_uid, seq));
                    CREATE TABLE IF NOT EXISTS superseded (
                        blob_id TEXT PRIMARY KEY NOT NULL,
                        sop_uid TEXT NOT NULL,
                        sha256 TEXT NOT NULL,
                        replaced REAL NOT NULL);
                    CREATE TABLE IF NOT EXISTS deleted_instances (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        sop_uid TEXT NOT NULL,
                        series_uid TEXT NOT NULL,
                        study_uid TEXT NOT NULL,
                        blob_id TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        sha256 TEXT NOT NULL,
                        deleted REAL NOT NULL,
                        details BLOB NOT NULL,
                        attributes BLOB NOT NULL,
                        metadata BLOB NOT NULL);
                    CREATE TABLE IF NOT EXISTS deleted_originals (
                        sop_uid TEXT NOT NULL,
                        seq INTEGER NOT NULL,
                        blob_id TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        sha256 TEXT NOT NULL,
                        details BLOB NOT NULL,
                        deleted REAL NOT NULL);
                    CREATE TABLE IF NOT EXISTS pending_blobs (
                        blob_id TEXT PRIMARY KEY NOT NULL,
                        owner TEXT NOT NULL,
                        created REAL NOT NULL);
                    """)
        }
        migrator.registerMigration("jobs v1: background work taken by exactly one worker") { db in
            try db.execute(
                sql: """
                    CREATE TABLE jobs (
                        tenant TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL,
                        status TEXT NOT NULL, attempts INTEGER NOT NULL, progress REAL NOT NULL, result BLOB,
                        failure TEXT, worker TEXT, lease_until REAL, created REAL NOT NULL, PRIMARY KEY (tenant, id));
                    CREATE INDEX jobs_waiting ON jobs (tenant, kind, status, created);
                    """)
        }
        migrator.registerMigration("jobs v2: the subject a job is about (a patient's key)") { db in
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN subject TEXT;
                    CREATE INDEX jobs_by_subject ON jobs (tenant, kind, subject, created);
                    """)
        }
        migrator.registerMigration("clinic records v1: versioned, sealed records beside the images") { db in
            try db.execute(
                sql: """
                    CREATE TABLE clinic_records (
                        tenant TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
                        patient_key TEXT NOT NULL, parent TEXT, body BLOB NOT NULL, actor TEXT NOT NULL,
                        created REAL NOT NULL, deleted INTEGER NOT NULL, current INTEGER NOT NULL,
                        PRIMARY KEY (tenant, kind, id, version));
                    CREATE INDEX clinic_records_by_patient ON clinic_records (tenant, kind, patient_key, current);
                    CREATE INDEX clinic_records_by_parent ON clinic_records (tenant, kind, parent, current);
                    """)
        }
        migrator.registerMigration("disposal v1: the ids of destroyed patient keys") { db in
            try db.execute(
                sql: """
                    CREATE TABLE destroyed_patient_keys (
                        tenant TEXT NOT NULL, key_id TEXT NOT NULL, destroyed REAL NOT NULL,
                        PRIMARY KEY (tenant, key_id));
                    """)
        }
        migrator.registerMigration("trash v1: what a restore needs of a soft-deleted instance") { db in
            // Rows deleted before this migration have none of these: a restore reads them from the sealed metadata.
            try db.execute(
                sql: """
                    ALTER TABLE deleted_instances ADD COLUMN sop_class TEXT;
                    ALTER TABLE deleted_instances ADD COLUMN transfer_syntax TEXT;
                    ALTER TABLE deleted_instances ADD COLUMN stored REAL;
                    """)
        }
        return migrator
    }

    /// Reads every row into the catalogue. A row that cannot be decoded is left out and its UID noted (never
    /// fatal: one bad row must not keep the archive from starting); instances of a left-out study or series are
    /// left out with it.
    private func load() throws {
        var catalog = Catalog()
        var quarantined: [String] = []
        try pool.read { db in
            var studies: [String: Dataset] = [:]
            var badParents: Set<String> = []
            for row in try Row.fetchAll(db, sql: "SELECT study_uid, attributes FROM studies") {
                let uid: String = row["study_uid"]
                if let attributes = try? sealer.open(row["attributes"], uid: uid) {
                    studies[uid] = attributes
                } else {
                    badParents.insert(uid)
                    quarantined.append(uid)
                }
            }
            var series: [String: Dataset] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT series_uid, attributes FROM series") {
                let uid: String = row["series_uid"]
                if let attributes = try? sealer.open(row["attributes"], uid: uid) {
                    series[uid] = attributes
                } else {
                    badParents.insert(uid)
                    quarantined.append(uid)
                }
            }
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT sop_uid, sop_class, series_uid, study_uid, transfer_syntax, blob_id, size, sha256, stored,
                    attributes FROM instances ORDER BY seq
                    """)
            for row in rows {
                let uid: String = row["sop_uid"]
                let studyUID: String = row["study_uid"]
                let seriesUID: String = row["series_uid"]
                guard !badParents.contains(studyUID), !badParents.contains(seriesUID),
                    let attributes = try? sealer.open(row["attributes"], uid: uid)
                else {
                    quarantined.append(uid)
                    continue
                }
                let record = InstanceRecord(
                    sopInstanceUID: uid, sopClassUID: row["sop_class"], seriesInstanceUID: seriesUID,
                    studyInstanceUID: studyUID, transferSyntaxUID: row["transfer_syntax"],
                    blob: BlobReference(id: row["blob_id"], size: row["size"], sha256: row["sha256"]),
                    attributes: attributes, stored: Date(timeIntervalSince1970: row["stored"]))
                catalog.insert(
                    study: studies[studyUID] ?? Dataset(), series: series[seriesUID] ?? Dataset(), instance: record)
            }
        }
        current = catalog
        quarantinedRows = quarantined
    }

    // MARK: StudyIndex

    public func catalog() -> Catalog {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    public func instance(_ sopInstanceUID: String) -> InstanceRecord? {
        lock.lock()
        defer { lock.unlock() }
        return current.instances[sopInstanceUID]
    }

    func commitBlocking(_ entry: IndexEntry, allowNewVersion: Bool) throws(ArchiveError) -> CommitResult {
        // One writer at a time: the duplicate check and the insert are one step.
        lock.lock()
        defer { lock.unlock() }
        let record = entry.instance
        var result = CommitResult.committed
        if let existing = current.instances[record.sopInstanceUID] {
            if existing.blob.sha256 == record.blob.sha256 { return .identical }
            guard allowNewVersion, existing.seriesInstanceUID == record.seriesInstanceUID,
                existing.studyInstanceUID == record.studyInstanceUID
            else { return .conflict }
            result = .newVersion
        }
        if let series = current.series[record.seriesInstanceUID], series.studyInstanceUID != record.studyInstanceUID {
            // A series belongs to one study.
            return .conflict
        }
        // Checked again here, under the lock, against a study another store may have created meanwhile.
        if let study = current.studies[record.studyInstanceUID] {
            switch PatientIdentity.compare(stored: study.attributes, incoming: entry.study) {
            case .same, .sameAfterNormalisation: break
            case .differentID, .differentName: return .identityConflict
            }
        }
        let existing = current.instances[record.sopInstanceUID]
        let newStudy = current.studies[record.studyInstanceUID] == nil
        let newSeries = current.series[record.seriesInstanceUID] == nil
        do {
            let patient = sealer.patient(of: entry.study)
            let studyRow = newStudy ? try sealer.seal(entry.study, uid: record.studyInstanceUID, patient: patient) : nil
            let seriesRow =
                newSeries ? try sealer.seal(entry.series, uid: record.seriesInstanceUID, patient: patient) : nil
            let attributes = try sealer.seal(record.attributes, uid: record.sopInstanceUID, patient: patient)
            let metadata = try sealer.seal(
                Data(entry.metadataJSON.utf8), uid: record.sopInstanceUID, patient: patient)
            let patientIndex = sealer.blindIndex("PatientID", entry.study.string(.patientID))
            let accessionIndex = sealer.blindIndex("AccessionNumber", entry.study.string(.accessionNumber))
            try pool.write { db in
                // A disposal of the patient ran since the blob was written: its key is gone, and the blob with it.
                if let keyID = entry.patientKeyID,
                    try Bool.fetchOne(
                        db, sql: "SELECT EXISTS(SELECT 1 FROM destroyed_patient_keys WHERE key_id = ?)",
                        arguments: [keyID]) == true
                {
                    throw ArchiveError(
                        .conflict, "the patient's record was disposed of while the instance was stored; store it again")
                }
                // A study or series row is only ever replaced once none of its instances is live (all deleted):
                // one set aside at load (undecodable) still has instances and must not be overwritten.
                for (table, column, uid, isNew) in [
                    ("studies", "study_uid", record.studyInstanceUID, studyRow != nil),
                    ("series", "series_uid", record.seriesInstanceUID, seriesRow != nil),
                ] where isNew {
                    let live = try Bool.fetchOne(
                        db, sql: "SELECT EXISTS(SELECT 1 FROM instances WHERE \(column) = ?)", arguments: [uid])
                    if live == true {
                        throw ArchiveError(
                            .io,
                            "the \(table) row of this instance was set aside at start (undecodable); restore the index")
                    }
                }
                if let studyRow {
                    try db.execute(
                        sql: """
                            INSERT INTO studies (study_uid, attributes, patient_id_index, accession_index)
                            VALUES (?, ?, ?, ?) ON CONFLICT(study_uid) DO UPDATE SET attributes = excluded.attributes,
                            patient_id_index = excluded.patient_id_index, accession_index = excluded.accession_index
                            """,
                        arguments: [record.studyInstanceUID, studyRow, patientIndex, accessionIndex])
                }
                if let seriesRow {
                    try db.execute(
                        sql: """
                            INSERT INTO series (series_uid, study_uid, modality, attributes) VALUES (?, ?, ?, ?)
                            ON CONFLICT(series_uid) DO UPDATE SET study_uid = excluded.study_uid,
                            modality = excluded.modality, attributes = excluded.attributes
                            """,
                        arguments: [
                            record.seriesInstanceUID, record.studyInstanceUID, entry.series.string(.modality),
                            seriesRow,
                        ])
                }
                if let existing {
                    try db.execute(
                        sql: "INSERT INTO superseded (blob_id, sop_uid, sha256, replaced) VALUES (?, ?, ?, ?)",
                        arguments: [
                            existing.blob.id, existing.sopInstanceUID, existing.blob.sha256,
                            Date().timeIntervalSince1970,
                        ])
                    try db.execute(sql: "DELETE FROM instances WHERE sop_uid = ?", arguments: [existing.sopInstanceUID])
                }
                let seq = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) + 1 FROM instances") ?? 1
                try db.execute(
                    sql: """
                        INSERT INTO instances (sop_uid, sop_class, series_uid, study_uid, transfer_syntax, blob_id,
                        size, sha256, stored, seq, attributes, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        record.sopInstanceUID, record.sopClassUID, record.seriesInstanceUID, record.studyInstanceUID,
                        record.transferSyntaxUID, record.blob.id, record.blob.size, record.blob.sha256,
                        record.stored.timeIntervalSince1970, seq, attributes, metadata,
                    ])
                try db.execute(sql: "DELETE FROM pending_blobs WHERE blob_id = ?", arguments: [record.blob.id])
            }
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "index cannot be written")
        }
        current.insert(study: entry.study, series: entry.series, instance: record)
        return result
    }

    func metadataJSONBlocking(_ sopInstanceUID: String) throws(ArchiveError) -> String? {
        do {
            guard
                let sealed = try pool.read({ db in
                    try Data.fetchOne(
                        db, sql: "SELECT metadata FROM instances WHERE sop_uid = ?", arguments: [sopInstanceUID])
                })
            else { return nil }
            return String(decoding: try sealer.openData(sealed, uid: sopInstanceUID), as: UTF8.self)
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "index cannot be read")
        }
    }

    func studyUIDsBlocking(patientID: String) throws(ArchiveError) -> [String] {
        try lookup("patient_id_index", sealer.blindIndex("PatientID", patientID))
    }

    func studyUIDsBlocking(accessionNumber: String) throws(ArchiveError) -> [String] {
        try lookup("accession_index", sealer.blindIndex("AccessionNumber", accessionNumber))
    }

    private func lookup(_ column: String, _ key: String?) throws(ArchiveError) -> [String] {
        guard let key else { return [] }
        do {
            return try pool.read { db in
                try String.fetchAll(db, sql: "SELECT study_uid FROM studies WHERE \(column) = ?", arguments: [key])
            }
        } catch {
            throw ArchiveError(.io, "index cannot be read")
        }
    }

    /// Every blob id the rows reference (current and superseded instances, originals, deleted ones).
    static let referencedBlobsSQL = """
        SELECT blob_id FROM instances UNION SELECT blob_id FROM superseded
        UNION SELECT blob_id FROM originals UNION SELECT blob_id FROM deleted_instances
        UNION SELECT blob_id FROM deleted_originals
        """

    func referencedBlobIDsBlocking() throws(ArchiveError) -> Set<String> {
        do {
            return try pool.read { db in Set(try String.fetchAll(db, sql: Self.referencedBlobsSQL)) }
        } catch {
            throw ArchiveError(.io, "index cannot be read")
        }
    }

    func addPendingBlobBlocking(_ id: String, owner: String) throws(ArchiveError) {
        do {
            try pool.write { db in
                try db.execute(
                    sql: "INSERT INTO pending_blobs (blob_id, owner, created) VALUES (?, ?, ?)",
                    arguments: [id, owner, Date().timeIntervalSince1970])
            }
        } catch {
            throw ArchiveError(.io, "index cannot be written")
        }
    }

    func removePendingBlobBlocking(_ id: String) throws(ArchiveError) {
        do {
            try pool.write { db in
                try db.execute(sql: "DELETE FROM pending_blobs WHERE blob_id = ?", arguments: [id])
            }
        } catch {
            throw ArchiveError(.io, "index cannot be written")
        }
    }

    func pendingBlobIDsBlocking() throws(ArchiveError) -> Set<String> {
        do {
            return try pool.read { db in Set(try String.fetchAll(db, sql: "SELECT blob_id FROM pending_blobs")) }
        } catch {
            throw ArchiveError(.io, "index cannot be read")
        }
    }

    func addOriginalBlocking(_ original: OriginalFile, to sopInstanceUID: String) throws(ArchiveError) {
        do {
            let study = lock.withLock {
                current.instances[sopInstanceUID].flatMap { current.studies[$0.studyInstanceUID] }
            }
            let sealed = try sealer.sealOriginal(
                original, uid: sopInstanceUID, patient: study.flatMap { sealer.patient(of: $0.attributes) })
            try pool.write { db in
                // Kept only beside a live instance: one deleted meanwhile must not gain originals that a later
                // instance stored under its UID would show.
                guard
                    try Bool.fetchOne(
                        db, sql: "SELECT EXISTS(SELECT 1 FROM instances WHERE sop_uid = ?)",
                        arguments: [sopInstanceUID]) == true
                else { throw ArchiveError(.notFound, "the instance was deleted while its originals were being kept") }
                let seq =
                    try Int.fetchOne(
                        db, sql: "SELECT COALESCE(MAX(seq), 0) + 1 FROM originals WHERE sop_uid = ?",
                        arguments: [sopInstanceUID]) ?? 1
                try db.execute(
                    sql:
                        "INSERT INTO originals (sop_uid, seq, blob_id, size, sha256, details) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [
                        sopInstanceUID, seq, original.blob.id, original.blob.size, original.blob.sha256, sealed,
                    ])
                try db.execute(sql: "DELETE FROM pending_blobs WHERE blob_id = ?", arguments: [original.blob.id])
            }
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "index cannot be written")
        }
    }

    func originalsBlocking(of sopInstanceUID: String) throws(ArchiveError) -> [OriginalFile] {
        do {
            let rows = try pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT blob_id, size, sha256, details FROM originals WHERE sop_uid = ? ORDER BY seq",
                    arguments: [sopInstanceUID])
            }
            return try rows.map { row in
                try sealer.openOriginal(
                    row["details"], blob: BlobReference(id: row["blob_id"], size: row["size"], sha256: row["sha256"]),
                    uid: sopInstanceUID)
            }
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "index cannot be read")
        }
    }

    func softDeleteBlocking(_ sopInstanceUIDs: [String], why: Deletion) throws(ArchiveError) -> [InstanceRecord] {
        lock.lock()
        defer { lock.unlock() }
        var seen = Set<String>()
        let records = sopInstanceUIDs.compactMap { uid in seen.insert(uid).inserted ? current.instances[uid] : nil }
        guard !records.isEmpty else { return [] }
        do {
            let sealed = try records.map { record in
                try sealer.sealDeletion(
                    why, uid: record.sopInstanceUID,
                    patient: current.studies[record.studyInstanceUID].flatMap { sealer.patient(of: $0.attributes) })
            }
            try pool.write { db in
                for (record, details) in zip(records, sealed) {
                    // The instance row moves as it is: its attributes and metadata stay sealed under its UID.
                    try db.execute(
                        sql: """
                            INSERT INTO deleted_instances (sop_uid, series_uid, study_uid, blob_id, size, sha256,
                            deleted, details, attributes, metadata, sop_class, transfer_syntax, stored)
                            SELECT sop_uid, series_uid, study_uid, blob_id, size, sha256, ?, ?, attributes, metadata,
                            sop_class, transfer_syntax, stored FROM instances WHERE sop_uid = ?
                            """,
                        arguments: [why.date.timeIntervalSince1970, details, record.sopInstanceUID])
                    try db.execute(sql: "DELETE FROM instances WHERE sop_uid = ?", arguments: [record.sopInstanceUID])
                    // Its uploaded originals go with it: an instance stored later under the same UID must not
                    // show them.
                    try db.execute(
                        sql: """
                            INSERT INTO deleted_originals (sop_uid, seq, blob_id, size, sha256, details, deleted)
                            SELECT sop_uid, seq, blob_id, size, sha256, details, ? FROM originals WHERE sop_uid = ?
                            """,
                        arguments: [why.date.timeIntervalSince1970, record.sopInstanceUID])
                    try db.execute(sql: "DELETE FROM originals WHERE sop_uid = ?", arguments: [record.sopInstanceUID])
                }
            }
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "index cannot be written")
        }
        for record in records { current.remove(record.sopInstanceUID) }
        return records
    }

    func deletionsBlocking() throws(ArchiveError) -> [DeletedInstance] {
        do {
            let rows = try pool.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT sop_uid, series_uid, study_uid, blob_id, size, sha256, deleted, details
                        FROM deleted_instances ORDER BY seq
                        """)
            }
            return try rows.map { row in
                let uid: String = row["sop_uid"]
                return DeletedInstance(
                    sopInstanceUID: uid, seriesInstanceUID: row["series_uid"], studyInstanceUID: row["study_uid"],
                    blob: BlobReference(id: row["blob_id"], size: row["size"], sha256: row["sha256"]),
                    deletion: try sealer.openDeletion(
                        row["details"], uid: uid, date: Date(timeIntervalSince1970: row["deleted"])))
            }
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "index cannot be read")
        }
    }
}

/// The protocol's calls: the blocking ones above, run on the storage pool (no cooperative thread waits on SQLite).
extension SQLiteStudyIndex {
    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws(ArchiveError) -> T)
        async
        throws(ArchiveError) -> T
    {
        try await BlockingPool.storage.runTyped(body)
    }

    public func commit(_ entry: IndexEntry, allowNewVersion: Bool) async throws(ArchiveError) -> CommitResult {
        try await blocking { () throws(ArchiveError) in try self.commitBlocking(entry, allowNewVersion: allowNewVersion)
        }
    }
    public func metadataJSON(_ sopInstanceUID: String) async throws(ArchiveError) -> String? {
        try await blocking { () throws(ArchiveError) in try self.metadataJSONBlocking(sopInstanceUID) }
    }
    public func studyUIDs(patientID: String) async throws(ArchiveError) -> [String] {
        try await blocking { () throws(ArchiveError) in try self.studyUIDsBlocking(patientID: patientID) }
    }
    public func studyUIDs(accessionNumber: String) async throws(ArchiveError) -> [String] {
        try await blocking { () throws(ArchiveError) in try self.studyUIDsBlocking(accessionNumber: accessionNumber) }
    }
    public func referencedBlobIDs() async throws(ArchiveError) -> Set<String> {
        try await blocking { () throws(ArchiveError) in try self.referencedBlobIDsBlocking() }
    }
    public func addPendingBlob(_ id: String, owner: String) async throws(ArchiveError) {
        try await blocking { () throws(ArchiveError) in try self.addPendingBlobBlocking(id, owner: owner) }
    }
    public func removePendingBlob(_ id: String) async throws(ArchiveError) {
        try await blocking { () throws(ArchiveError) in try self.removePendingBlobBlocking(id) }
    }
    public func pendingBlobIDs() async throws(ArchiveError) -> Set<String> {
        try await blocking { () throws(ArchiveError) in try self.pendingBlobIDsBlocking() }
    }
    public func addOriginal(_ original: OriginalFile, to sopInstanceUID: String) async throws(ArchiveError) {
        try await blocking { () throws(ArchiveError) in try self.addOriginalBlocking(original, to: sopInstanceUID) }
    }
    public func originals(of sopInstanceUID: String) async throws(ArchiveError) -> [OriginalFile] {
        try await blocking { () throws(ArchiveError) in try self.originalsBlocking(of: sopInstanceUID) }
    }
    public func softDelete(_ sopInstanceUIDs: [String], why: Deletion) async throws(ArchiveError) -> [InstanceRecord] {
        try await blocking { () throws(ArchiveError) in try self.softDeleteBlocking(sopInstanceUIDs, why: why) }
    }
    public func deletions() async throws(ArchiveError) -> [DeletedInstance] {
        try await blocking { () throws(ArchiveError) in try self.deletionsBlocking() }
    }
}
