import DICOMCore
import Foundation
import GRDB

/// A soft-deleted instance as the trash sees it: its deletion, the row's number (a UID deleted, stored again and
/// deleted again has two), its patient and its study's attributes (for the retention rule).
public struct TrashedInstance: Sendable {
    public var seq: Int64
    public var instance: DeletedInstance
    /// The patient's keyed hash, nil when the study names no Patient ID (or its row cannot be read).
    public var patient: String?
    /// The study's attributes as the index keeps them (Study Date, Patient's Birth Date), nil when unreadable.
    public var study: Dataset?
    /// When the instance was first stored (nil for rows deleted before the trash kept it).
    public var stored: Date?
}

/// What a purge of trashed instances took out of the index.
public struct TrashPurge: Sendable, Hashable {
    /// Soft-deleted instances, their earlier versions and their uploaded originals.
    public var instances = 0
    public var superseded = 0
    public var originals = 0
    /// Study and series rows left with no instance, live or deleted.
    public var studies = 0
    public var series = 0
    /// Every blob the purged rows referenced, recorded as pending in the same transaction (for
    /// `EncryptedBlobStore.delete` next; a purge interrupted before that leaves them to the next start's sweep).
    public var blobIDs: [String] = []
}

extension SQLiteStudyIndex {
    /// Every soft-deleted instance, oldest deletion first.
    public func trash() async throws(ArchiveError) -> [TrashedInstance] {
        try await BlockingPool.storage.runTyped { () throws(ArchiveError) in try self.trashBlocking() }
    }

    /// Puts a soft-deleted instance back (row `seq` of the trash): its instance row and its originals return in
    /// one transaction, and the catalogue shows it again. `.notFound` when the row is gone (purged, or restored
    /// already); `.conflict` when an instance with its SOP Instance UID is stored again, or its study or series now
    /// holds another patient's record.
    public func restoreDeleted(seq: Int64) async throws(ArchiveError) -> InstanceRecord {
        try await BlockingPool.storage.runTyped { () throws(ArchiveError) in try self.restoreBlocking(seq: seq) }
    }

    /// Deletes, in one transaction, the rows of the trashed instances `seqs`: the deleted instance, its earlier
    /// versions superseded before the deletion and its uploaded originals; study and series rows then left
    /// without any instance go too. Their blobs are recorded as pending in the same transaction, for the caller to
    /// delete. The catalogue does not change (trashed instances are not in it).
    public func purgeDeleted(seqs: [Int64]) async throws(ArchiveError) -> TrashPurge {
        try await BlockingPool.storage.runTyped { () throws(ArchiveError) in try self.purgeDeletedBlocking(seqs) }
    }

    private func trashBlocking() throws(ArchiveError) -> [TrashedInstance] {
        do {
            return try pool.read { db in
                var studies: [String: (Dataset?, String?)] = [:]
                var out: [TrashedInstance] = []
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT d.seq, d.sop_uid, d.series_uid, d.study_uid, d.blob_id, d.size, d.sha256, d.deleted,
                        d.details, d.stored, s.attributes AS study_attributes
                        FROM deleted_instances d LEFT JOIN studies s ON s.study_uid = d.study_uid ORDER BY d.seq
                        """)
                for row in rows {
                    let uid: String = row["sop_uid"]
                    let studyUID: String = row["study_uid"]
                    if studies[studyUID] == nil {
                        let sealed: Data? = row["study_attributes"]
                        let attributes = sealed.flatMap { try? sealer.open($0, uid: studyUID) }
                        studies[studyUID] = (attributes, attributes.flatMap { sealer.patient(of: $0) })
                    }
                    let (study, patient) = studies[studyUID] ?? (nil, nil)
                    let stored: Double? = row["stored"]
                    out.append(
                        TrashedInstance(
                            seq: row["seq"],
                            instance: DeletedInstance(
                                sopInstanceUID: uid, seriesInstanceUID: row["series_uid"], studyInstanceUID: studyUID,
                                blob: BlobReference(id: row["blob_id"], size: row["size"], sha256: row["sha256"]),
                                deletion: try sealer.openDeletion(
                                    row["details"], uid: uid, date: Date(timeIntervalSince1970: row["deleted"]))),
                            patient: patient, study: study, stored: stored.map { Date(timeIntervalSince1970: $0) }))
                }
                return out
            }
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "index cannot be read")
        }
    }

    private func restoreBlocking(seq: Int64) throws(ArchiveError) -> InstanceRecord {
        // One writer at a time, as a commit: the UID check and the move are one step.
        lock.lock()
        defer { lock.unlock() }
        let sealer = self.sealer
        do {
            let (record, study, series) = try pool.write { db throws -> (InstanceRecord, Dataset, Dataset) in
                guard
                    let row = try Row.fetchOne(
                        db,
                        sql: """
                            SELECT sop_uid, series_uid, study_uid, blob_id, size, sha256, deleted, attributes,
                            metadata, sop_class, transfer_syntax, stored FROM deleted_instances WHERE seq = ?
                            """, arguments: [seq])
                else { throw ArchiveError(.notFound, "no such instance in the trash") }
                let uid: String = row["sop_uid"]
                let studyUID: String = row["study_uid"]
                let seriesUID: String = row["series_uid"]
                guard current.instances[uid] == nil,
                    try Bool.fetchOne(
                        db, sql: "SELECT EXISTS(SELECT 1 FROM instances WHERE sop_uid = ?)", arguments: [uid])
                        == false
                else {
                    throw ArchiveError(
                        .conflict, "an instance with this SOP Instance UID is stored again; nothing restored")
                }
                guard
                    let studyRow = try Data.fetchOne(
                        db, sql: "SELECT attributes FROM studies WHERE study_uid = ?", arguments: [studyUID]),
                    let seriesRow = try Row.fetchOne(
                        db, sql: "SELECT study_uid, attributes FROM series WHERE series_uid = ?", arguments: [seriesUID]
                    ),
                    seriesRow["study_uid"] as String == studyUID
                else { throw ArchiveError(.conflict, "the instance's study or series is gone; nothing restored") }
                let sealedAttributes: Data = row["attributes"]
                // A study (or series) all of whose instances were deleted may since have been stored again for
                // another patient: the instance does not join a record that is not its patient's.
                for parent in [studyRow, seriesRow["attributes"] as Data] {
                    if let own = AttributeSealer.patientKeyID(of: sealedAttributes),
                        let theirs = AttributeSealer.patientKeyID(of: parent), own != theirs
                    {
                        throw ArchiveError(
                            .conflict, "the instance's study now holds another patient's record; nothing restored")
                    }
                }
                let studyAttributes = try sealer.open(studyRow, uid: studyUID)
                let seriesAttributes = try sealer.open(seriesRow["attributes"], uid: seriesUID)
                var sopClass: String? = row["sop_class"]
                var transferSyntax: String? = row["transfer_syntax"]
                if sopClass == nil || transferSyntax == nil {
                    // Deleted before the trash kept these: the sealed metadata has both.
                    let metadata = try DICOMJSON.decode(sealer.openData(row["metadata"], uid: uid))
                    sopClass = sopClass ?? metadata.string(.sopClassUID)
                    transferSyntax = transferSyntax ?? metadata.string(.transferSyntaxUID)
                }
                guard let sopClass, let transferSyntax else {
                    throw ArchiveError(.integrity, "the trashed instance's row is incomplete; nothing restored")
                }
                let deleted: Double = row["deleted"]
                let stored: Double = row["stored"] ?? deleted
                let next = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) + 1 FROM instances") ?? 1
                try db.execute(
                    sql: """
                        INSERT INTO instances (sop_uid, sop_class, series_uid, study_uid, transfer_syntax, blob_id,
                        size, sha256, stored, seq, attributes, metadata)
                        SELECT sop_uid, ?, series_uid, study_uid, ?, blob_id, size, sha256, ?, ?, attributes, metadata
                        FROM deleted_instances WHERE seq = ?
                        """, arguments: [sopClass, transferSyntax, stored, next, seq])
                try db.execute(
                    sql: """
                        INSERT INTO originals (sop_uid, seq, blob_id, size, sha256, details)
                        SELECT sop_uid, seq, blob_id, size, sha256, details FROM deleted_originals
                        WHERE sop_uid = ? AND deleted = ?
                        """, arguments: [uid, deleted])
                try db.execute(
                    sql: "DELETE FROM deleted_originals WHERE sop_uid = ? AND deleted = ?", arguments: [uid, deleted])
                try db.execute(sql: "DELETE FROM deleted_instances WHERE seq = ?", arguments: [seq])
                let record = InstanceRecord(
                    sopInstanceUID: uid, sopClassUID: sopClass, seriesInstanceUID: seriesUID,
                    studyInstanceUID: studyUID, transferSyntaxUID: transferSyntax,
                    blob: BlobReference(id: row["blob_id"], size: row["size"], sha256: row["sha256"]),
                    attributes: try sealer.open(sealedAttributes, uid: uid),
                    stored: Date(timeIntervalSince1970: stored))
                return (record, studyAttributes, seriesAttributes)
            }
            current.insert(study: study, series: series, instance: record)
            return record
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "the instance could not be restored")
        }
    }

    private func purgeDeletedBlocking(_ seqs: [Int64]) throws(ArchiveError) -> TrashPurge {
        lock.lock()
        defer { lock.unlock() }
        var purge = TrashPurge()
        do {
            try pool.write { db in
                var parents: [(study: String, series: String)] = []
                let now = Date().timeIntervalSince1970
                for seq in Set(seqs).sorted() {
                    guard
                        let row = try Row.fetchOne(
                            db,
                            sql:
                                "SELECT sop_uid, study_uid, series_uid, blob_id, deleted FROM deleted_instances WHERE seq = ?",
                            arguments: [seq])
                    else { continue }
                    let uid: String = row["sop_uid"]
                    let deleted: Double = row["deleted"]
                    parents.append((row["study_uid"], row["series_uid"]))
                    var blobs: [String] = [row["blob_id"]]
                    let originals = try String.fetchAll(
                        db, sql: "SELECT blob_id FROM deleted_originals WHERE sop_uid = ? AND deleted = ?",
                        arguments: [uid, deleted])
                    // Earlier versions of the deleted instance: replaced before it was deleted (a version stored
                    // since belongs to the instance stored again, if any).
                    let superseded = try String.fetchAll(
                        db, sql: "SELECT blob_id FROM superseded WHERE sop_uid = ? AND replaced <= ?",
                        arguments: [uid, deleted])
                    blobs += originals + superseded
                    for id in blobs {
                        try db.execute(
                            sql: "INSERT OR IGNORE INTO pending_blobs (blob_id, owner, created) VALUES (?, ?, ?)",
                            arguments: [id, uid, now])
                    }
                    try db.execute(
                        sql: "DELETE FROM deleted_originals WHERE sop_uid = ? AND deleted = ?",
                        arguments: [uid, deleted])
                    try db.execute(
                        sql: "DELETE FROM superseded WHERE sop_uid = ? AND replaced <= ?", arguments: [uid, deleted])
                    try db.execute(sql: "DELETE FROM deleted_instances WHERE seq = ?", arguments: [seq])
                    purge.instances += 1
                    purge.originals += originals.count
                    purge.superseded += superseded.count
                    purge.blobIDs += blobs
                }
                for series in Set(parents.map(\.series)) {
                    try db.execute(
                        sql: """
                            DELETE FROM series WHERE series_uid = ?
                            AND NOT EXISTS (SELECT 1 FROM instances WHERE series_uid = ?)
                            AND NOT EXISTS (SELECT 1 FROM deleted_instances WHERE series_uid = ?)
                            """, arguments: [series, series, series])
                    purge.series += db.changesCount
                }
                for study in Set(parents.map(\.study)) {
                    try db.execute(
                        sql: """
                            DELETE FROM studies WHERE study_uid = ?
                            AND NOT EXISTS (SELECT 1 FROM instances WHERE study_uid = ?)
                            AND NOT EXISTS (SELECT 1 FROM deleted_instances WHERE study_uid = ?)
                            AND NOT EXISTS (SELECT 1 FROM series WHERE study_uid = ?)
                            """, arguments: [study, study, study, study])
                    purge.studies += db.changesCount
                }
            }
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "the trashed instances could not be purged")
        }
        return purge
    }
}
