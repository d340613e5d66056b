import DICOMCore
import Foundation
import GRDB

/// What a patient's purge took out of the index.
public struct PatientPurge: Sendable, Hashable, Codable {
    public var studies = 0
    public var series = 0
    /// Current, superseded and soft-deleted instances.
    public var instances = 0
    /// Every blob the purged rows referenced: each is recorded as pending in the same transaction, so that a
    /// disposal interrupted before the blobs are deleted leaves them to be quarantined at the next start.
    public var blobIDs: [String] = []
    /// Clinic records (every version) and background jobs of the patient.
    public var records = 0
    public var jobs = 0
    /// Purged sealed values written under the clinic's key before patient keys existed (their copies in older
    /// backups stay readable with that key).
    public var tenantSealedRows = 0
}

extension SQLiteStudyIndex {
    /// Deletes, in one transaction, every index row of one patient (by keyed hash): studies, series, instances
    /// (current, superseded, soft-deleted), originals, clinic records of every version and jobs about the patient;
    /// the blobs they referenced are recorded as pending (for `EncryptedBlobStore.delete` next). The catalogue in
    /// memory follows. Rows of the patient sealed under a key already destroyed cannot be told apart and stay.
    ///
    /// `keyID`, the patient's key about to be destroyed, is recorded (`destroyed_patient_keys`, an id that names no
    /// one), so that a key backup restored later loses that key again at the next start.
    public func purgePatient(_ patient: String, tenant: String, keyID: String?) async throws(ArchiveError)
        -> PatientPurge
    {
        try await BlockingPool.storage.runTyped { () throws(ArchiveError) in
            try self.purgeBlocking(patient, tenant: tenant, keyID: keyID)
        }
    }

    /// The ids of the patient keys disposals destroyed.
    public func destroyedKeyIDs(tenant: String) throws(ArchiveError) -> [String] {
        do {
            return try pool.read { db in
                try String.fetchAll(
                    db, sql: "SELECT key_id FROM destroyed_patient_keys WHERE tenant = ?", arguments: [tenant])
            }
        } catch {
            throw ArchiveError(.io, "index cannot be read")
        }
    }

    private func purgeBlocking(_ patient: String, tenant: String, keyID: String?) throws(ArchiveError)
        -> PatientPurge
    {
        // No commit runs meanwhile: an instance of the patient stored during the purge would outlive its key.
        lock.lock()
        defer { lock.unlock() }
        let sealer = self.sealer
        var purge = PatientPurge()
        var removed: [String] = []
        do {
            try pool.write { db in
                var studies: [String] = []
                for row in try Row.fetchAll(db, sql: "SELECT study_uid, attributes FROM studies") {
                    let uid: String = row["study_uid"]
                    let sealed: Data = row["attributes"]
                    guard let attributes = try? sealer.open(sealed, uid: uid), sealer.patient(of: attributes) == patient
                    else { continue }
                    studies.append(uid)
                    if AttributeSealer.patientKeyID(of: sealed) == nil { purge.tenantSealedRows += 1 }
                }
                let studyList = studies.map { "'\($0.replacingOccurrences(of: "'", with: "''"))'" }.joined(
                    separator: ",")
                let sops = Set(
                    try String.fetchAll(
                        db,
                        sql: """
                            SELECT sop_uid FROM instances WHERE study_uid IN (\(studyList))
                            UNION SELECT sop_uid FROM deleted_instances WHERE study_uid IN (\(studyList))
                            """))
                removed = try String.fetchAll(
                    db, sql: "SELECT sop_uid FROM instances WHERE study_uid IN (\(studyList))")
                let sopList = sops.map { "'\($0.replacingOccurrences(of: "'", with: "''"))'" }.joined(separator: ",")
                let blobs = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT blob_id, sop_uid FROM instances WHERE study_uid IN (\(studyList))
                        UNION SELECT blob_id, sop_uid FROM deleted_instances WHERE study_uid IN (\(studyList))
                        UNION SELECT blob_id, sop_uid FROM superseded WHERE sop_uid IN (\(sopList))
                        UNION SELECT blob_id, sop_uid FROM originals WHERE sop_uid IN (\(sopList))
                        UNION SELECT blob_id, sop_uid FROM deleted_originals WHERE sop_uid IN (\(sopList))
                        """)
                for row in blobs {
                    let id: String = row["blob_id"]
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO pending_blobs (blob_id, owner, created) VALUES (?, ?, ?)",
                        arguments: [id, row["sop_uid"] as String, Date().timeIntervalSince1970])
                    purge.blobIDs.append(id)
                }
                purge.tenantSealedRows +=
                    try Data.fetchAll(
                        db,
                        sql: """
                            SELECT attributes FROM instances WHERE study_uid IN (\(studyList))
                            UNION ALL SELECT attributes FROM deleted_instances WHERE study_uid IN (\(studyList))
                            """
                    ).filter { AttributeSealer.patientKeyID(of: $0) == nil }.count
                purge.instances =
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT (SELECT count(*) FROM instances WHERE study_uid IN (\(studyList)))
                            + (SELECT count(*) FROM deleted_instances WHERE study_uid IN (\(studyList)))
                            + (SELECT count(*) FROM superseded WHERE sop_uid IN (\(sopList)))
                            """) ?? 0
                purge.series =
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM series WHERE study_uid IN (\(studyList))") ?? 0
                purge.studies = studies.count
                for statement in [
                    "DELETE FROM originals WHERE sop_uid IN (\(sopList))",
                    "DELETE FROM deleted_originals WHERE sop_uid IN (\(sopList))",
                    "DELETE FROM superseded WHERE sop_uid IN (\(sopList))",
                    "DELETE FROM instances WHERE study_uid IN (\(studyList))",
                    "DELETE FROM deleted_instances WHERE study_uid IN (\(studyList))",
                    "DELETE FROM series WHERE study_uid IN (\(studyList))",
                    "DELETE FROM studies WHERE study_uid IN (\(studyList))",
                ] {
                    try db.execute(sql: statement)
                }
                purge.records =
                    try Int.fetchOne(
                        db, sql: "SELECT count(*) FROM clinic_records WHERE tenant = ? AND patient_key = ?",
                        arguments: [tenant, patient]) ?? 0
                try db.execute(
                    sql: "DELETE FROM clinic_records WHERE tenant = ? AND patient_key = ?",
                    arguments: [tenant, patient])
                purge.jobs =
                    try Int.fetchOne(
                        db, sql: "SELECT count(*) FROM jobs WHERE tenant = ? AND subject = ?",
                        arguments: [tenant, patient]) ?? 0
                try db.execute(sql: "DELETE FROM jobs WHERE tenant = ? AND subject = ?", arguments: [tenant, patient])
                if let keyID {
                    try db.execute(
                        sql:
                            "INSERT OR IGNORE INTO destroyed_patient_keys (tenant, key_id, destroyed) VALUES (?, ?, ?)",
                        arguments: [tenant, keyID, Date().timeIntervalSince1970])
                }
            }
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "the patient's index rows could not be purged")
        }
        for uid in removed { current.remove(uid) }
        return purge
    }
}
