import Foundation
import GRDB
import PostgresNIO

/// Copies an embedded archive (a data folder: SQLite index, blobs in files) into the server setup (an index on
/// PostgreSQL, blobs on an S3-compatible store), clinic by clinic. The tenant key moves into the database wrapped by
/// the same master key, so rows and blobs sealed under it are copied byte for byte. A server setup has no patient
/// keys (they live in a data folder's key directory): a patient's sealed rows are opened and sealed again under the
/// clinic's key, and a patient's blob (format 3) gets a format-2 header whose data key is wrapped by the clinic's
/// key, its chunks unchanged (no plaintext is written anywhere). Disposal by cryptographic erase is then no longer
/// available for the migrated archive. Clinic records (every version) move with the rows; queued jobs do not. Every
/// instance is read back through the new setup (chunk tags, SHA-256 and size against the index). Resumable: rows
/// and blobs already copied are skipped. The source is locked while it is copied.
public struct ArchiveMigration: Sendable {
    public struct Progress: Sendable {
        public var tenant: String
        public var done: Int
        public var total: Int
        public var bytes: Int
    }

    public struct Report: Sendable {
        /// Per clinic: instances in the source, instances verified in the target.
        public var instances: [String: (source: Int, verified: Int)] = [:]
        public var blobsCopied = 0
        public var blobsSkipped = 0
        public var bytes = 0
    }

    public let source: URL
    public let database: PostgresDatabase
    /// The object store of a clinic's blobs in the target.
    public let objects: @Sendable (String) throws(ArchiveError) -> any ObjectStore
    public let environment: [String: String]

    public init(
        source: URL, database: PostgresDatabase,
        objects: @escaping @Sendable (String) throws(ArchiveError) -> any ObjectStore,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.source = source
        self.database = database
        self.objects = objects
        self.environment = environment
    }

    /// The clinics of the source: `default` (the folder itself) and every `tenants/NAME`.
    public func tenants() -> [(name: String, folder: URL)] {
        var out: [(String, URL)] = [("default", source)]
        let folder = source.appendingPathComponent("tenants")
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
        where Account.isValidTenant(name) {
            out.append((name, folder.appendingPathComponent(name)))
        }
        return out.filter { FileManager.default.fileExists(atPath: $0.1.appendingPathComponent("index.sqlite").path) }
    }

    public func run(progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws(ArchiveError) -> Report {
        let lock = open(source.appendingPathComponent("lock").path, O_RDWR | O_CREAT, 0o600)
        guard lock >= 0, flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            if lock >= 0 { close(lock) }
            throw ArchiveError(.io, "the source data folder is in use: stop its facet serve first")
        }
        defer { close(lock) }
        var report = Report()
        for (tenant, folder) in tenants() {
            try await migrate(tenant: tenant, folder: folder, report: &report, progress: progress)
        }
        return report
    }

    private func migrate(
        tenant: String, folder: URL, report: inout Report, progress: @escaping @Sendable (Progress) -> Void
    ) async throws(ArchiveError) {
        // The clinic's key goes into the database (refused if the database holds another one).
        let (keys, _) = try await database.keys(
            keyDirectory: source.appendingPathComponent("keys"), tenant: tenant, environment: environment)
        let queue: DatabaseQueue
        do {
            var configuration = Configuration()
            configuration.readonly = true
            queue = try DatabaseQueue(
                path: folder.appendingPathComponent("index.sqlite").path, configuration: configuration)
        } catch {
            throw ArchiveError(.io, "the source index cannot be opened")
        }
        try await refuseServedTarget(tenant)
        // The source's own keys, patient keys included, to open what is sealed under a patient's key.
        let (sourceKeys, _) = try KeyHierarchy.open(
            keyDirectory: source.appendingPathComponent("keys"), tenant: tenant, environment: environment)
        let reseal = Resealer(from: AttributeSealer(keys: sourceKeys), to: AttributeSealer(keys: keys))
        try await copyRows(from: queue, tenant: tenant, reseal: reseal)
        // Blobs: every one the index refers to, raw (ciphertext), skipping those already there.
        let blobIDs: [(id: String, owner: String)]
        do {
            blobIDs = try await queue.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT blob_id, sop_uid FROM instances UNION SELECT blob_id, sop_uid FROM superseded
                        UNION SELECT blob_id, sop_uid FROM originals UNION SELECT blob_id, sop_uid FROM deleted_instances
                        UNION SELECT blob_id, sop_uid FROM deleted_originals
                        """
                ).map { (id: $0["blob_id"], owner: $0["sop_uid"]) }
            }
        } catch {
            throw ArchiveError(.io, "the source index cannot be read")
        }
        let from = try FileObjectStore(root: folder)
        let to = try objects(tenant)
        var done = 0
        for blob in blobIDs {
            if try await to.exists(blob.id) {
                report.blobsSkipped += 1
            } else {
                let file = to.scratchFolder.appendingPathComponent("\(blob.id).migrating")
                let bytes = try EncryptedBlobStore.clinicKeyed(
                    try await from.get(blob.id, range: 0..<Int.max), from: sourceKeys, to: keys)
                do {
                    try bytes.write(to: file)
                } catch {
                    throw ArchiveError(.io, "a blob cannot be staged for copying")
                }
                try await to.put(blob.id, file: file)
                report.blobsCopied += 1
                report.bytes += bytes.count
            }
            done += 1
            progress(Progress(tenant: tenant, done: done, total: blobIDs.count, bytes: report.bytes))
        }
        // Read back through the target: the index's rows opened and every instance's blob verified.
        let target = try await PostgresStudyIndex.open(database: database, tenant: tenant, keys: keys)
        target.stopFollowing()
        let blobs = EncryptedBlobStore(objects: to, keys: keys)
        var verified = 0
        for record in target.catalog().instances.values {
            let (data, sha256) = try await blobs.getVerified(record.blob.id, owner: record.sopInstanceUID)
            guard data.count == record.blob.size, sha256 == record.blob.sha256 else {
                throw ArchiveError(.integrity, "a copied instance differs from the index (\(record.sopInstanceUID))")
            }
            verified += 1
        }
        let sourceCount: Int
        do {
            sourceCount = try await queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM instances") ?? 0
            }
        } catch {
            throw ArchiveError(.io, "the source index cannot be read")
        }
        guard verified == sourceCount else {
            throw ArchiveError(
                .integrity, "\(tenant): \(sourceCount) instances in the source, \(verified) in the target")
        }
        report.instances[tenant] = (sourceCount, verified)
        // The clinic's audit chain goes on in the database: the source's lines, checked against its anchor, copied
        // line for line (on the first complete run; the source folder keeps its own log either way).
        _ = try await PostgresAuditTrail.open(
            database: database, tenant: tenant, keys: keys, importing: folder.appendingPathComponent("audit"))
    }

    /// Once `facet serve` has written to the target (every store and deletion there adds to the change feed; a
    /// migration adds nothing), copying the source again would bring back what was deleted there: refused.
    private func refuseServedTarget(_ tenant: String) async throws(ArchiveError) {
        let logger = database.logger
        let served = try await database.call { [database] in
            var served = false
            for try await _ in try await database.client.query(
                "SELECT 1 FROM changes WHERE tenant = \(tenant) LIMIT 1", logger: logger
            ).decode(Int32.self) {
                served = true
            }
            return served
        }
        guard !served else {
            throw ArchiveError(
                .invalidInput,
                "clinic \(tenant) has been served from the target since (it has its own stores or deletions): "
                    + "migrating again would undo them")
        }
    }

    /// Copies the index rows as they are (sealed), each table in one transaction, skipping rows already copied.
    private func copyRows(from queue: DatabaseQueue, tenant: String, reseal: Resealer) async throws(ArchiveError) {
        struct Rows: Sendable {
            var studies: [(String, Data, String?, String?)] = []
            var series: [(String, String, String?, Data)] = []
            var instances: [(String, String, String, String, String, String, Int64, String, Double, Data, Data)] = []
            var originals: [(String, Int32, String, Int64, String, Data)] = []
            var superseded: [(String, String, String, Double)] = []
            var deleted: [(String, String, String, String, Int64, String, Double, Data, Data, Data)] = []
            var deletedOriginals: [(String, Int32, String, Int64, String, Data, Double)] = []
            var anchor: (Int64, String, String)?
            /// Clinic records of every version: kind, id, version, patient key, parent, body, actor, created,
            /// deleted, current.
            var records: [(String, String, Int64, String, String?, Data, String, Double, Bool, Bool)] = []
        }
        let rows: Rows
        do {
            rows = try await queue.read { db in
                var rows = Rows()
                rows.studies = try Row.fetchAll(
                    db, sql: "SELECT study_uid, attributes, patient_id_index, accession_index FROM studies"
                ).map { ($0[0], try reseal($0[1], $0[0]), $0[2], $0[3]) }
                rows.series = try Row.fetchAll(
                    db, sql: "SELECT series_uid, study_uid, modality, attributes FROM series"
                )
                .map { ($0[0], $0[1], $0[2], try reseal($0[3], $0[0])) }
                rows.instances = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT sop_uid, sop_class, series_uid, study_uid, transfer_syntax, blob_id, size, sha256, stored,
                        attributes, metadata FROM instances ORDER BY seq
                        """
                ).map {
                    (
                        $0[0], $0[1], $0[2], $0[3], $0[4], $0[5], $0[6], $0[7], $0[8], try reseal($0[9], $0[0]),
                        try reseal($0[10], $0[0])
                    )
                }
                rows.originals = try Row.fetchAll(
                    db, sql: "SELECT sop_uid, seq, blob_id, size, sha256, details FROM originals ORDER BY sop_uid, seq"
                ).map { ($0[0], $0[1], $0[2], $0[3], $0[4], try reseal($0[5], $0[0])) }
                rows.superseded = try Row.fetchAll(db, sql: "SELECT blob_id, sop_uid, sha256, replaced FROM superseded")
                    .map { ($0[0], $0[1], $0[2], $0[3]) }
                rows.deleted = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT sop_uid, series_uid, study_uid, blob_id, size, sha256, deleted, details, attributes,
                        metadata FROM deleted_instances ORDER BY seq
                        """
                ).map {
                    (
                        $0[0], $0[1], $0[2], $0[3], $0[4], $0[5], $0[6],
                        try reseal($0[7], "deleted:" + ($0[0] as String)),
                        try reseal($0[8], $0[0]), try reseal($0[9], $0[0])
                    )
                }
                rows.deletedOriginals = try Row.fetchAll(
                    db, sql: "SELECT sop_uid, seq, blob_id, size, sha256, details, deleted FROM deleted_originals"
                ).map { ($0[0], $0[1], $0[2], $0[3], $0[4], try reseal($0[5], $0[0]), $0[6]) }
                if try db.tableExists("clinic_records") {
                    rows.records = try Row.fetchAll(
                        db,
                        sql: """
                            SELECT kind, id, version, patient_key, parent, body, actor, created, deleted, current
                            FROM clinic_records WHERE tenant = ? ORDER BY kind, id, version
                            """, arguments: [tenant]
                    ).map { row in
                        let (kind, id, version, patient): (String, String, Int64, String) = (
                            row[0], row[1], row[2], row[3]
                        )
                        // Sealed for its row as `ClinicRecord.sealingContext` names it.
                        let context = "record:\(kind):\(id):\(version):\(patient)"
                        return (
                            kind, id, version, patient, row[4], try reseal(row[5], context), row[6], row[7], row[8],
                            row[9]
                        )
                    }
                }
                if try db.tableExists("audit_anchor") {
                    rows.anchor = try Row.fetchOne(db, sql: "SELECT sequence, mac, seal FROM audit_anchor WHERE id = 1")
                        .map { ($0[0], $0[1], $0[2]) }
                }
                return rows
            }
        } catch {
            throw ArchiveError(.io, "the source index cannot be read")
        }
        let logger = database.logger
        try await database.call(seconds: 3600) { [database] in
            try await database.client.withTransaction(logger: logger) { db in
                for (uid, attributes, patient, accession) in rows.studies {
                    try await db.query(
                        """
                        INSERT INTO studies (tenant, study_uid, attributes, patient_id_index, accession_index)
                        VALUES (\(tenant), \(uid), \(attributes), \(patient), \(accession)) ON CONFLICT DO NOTHING
                        """, logger: logger)
                }
                for (uid, study, modality, attributes) in rows.series {
                    try await db.query(
                        """
                        INSERT INTO series (tenant, series_uid, study_uid, modality, attributes)
                        VALUES (\(tenant), \(uid), \(study), \(modality), \(attributes)) ON CONFLICT DO NOTHING
                        """, logger: logger)
                }
                for row in rows.instances {
                    try await db.query(
                        """
                        INSERT INTO instances (tenant, sop_uid, sop_class, series_uid, study_uid, transfer_syntax,
                        blob_id, size, sha256, stored, attributes, metadata) VALUES (\(tenant), \(row.0), \(row.1),
                        \(row.2), \(row.3), \(row.4), \(row.5), \(row.6), \(row.7), \(row.8), \(row.9), \(row.10))
                        ON CONFLICT DO NOTHING
                        """, logger: logger)
                }
                for row in rows.originals {
                    try await db.query(
                        """
                        INSERT INTO originals (tenant, sop_uid, seq, blob_id, size, sha256, details)
                        VALUES (\(tenant), \(row.0), \(row.1), \(row.2), \(row.3), \(row.4), \(row.5))
                        ON CONFLICT DO NOTHING
                        """, logger: logger)
                }
                for row in rows.superseded {
                    try await db.query(
                        """
                        INSERT INTO superseded (tenant, blob_id, sop_uid, sha256, replaced)
                        VALUES (\(tenant), \(row.0), \(row.1), \(row.2), \(row.3)) ON CONFLICT DO NOTHING
                        """, logger: logger)
                }
                // A deletion is known by its instance and blob: each is copied once, and an instance the source
                // deleted since an earlier run leaves the target's live rows.
                for row in rows.deleted {
                    try await db.query(
                        """
                        INSERT INTO deleted_instances (tenant, sop_uid, series_uid, study_uid, blob_id, size, sha256,
                        deleted, details, attributes, metadata) SELECT \(tenant), \(row.0), \(row.1), \(row.2),
                        \(row.3), \(row.4), \(row.5), \(row.6), \(row.7), \(row.8), \(row.9)
                        WHERE NOT EXISTS (SELECT 1 FROM deleted_instances WHERE tenant = \(tenant)
                        AND sop_uid = \(row.0) AND blob_id = \(row.3))
                        """, logger: logger)
                    try await db.query(
                        """
                        DELETE FROM instances WHERE tenant = \(tenant) AND sop_uid = \(row.0) AND blob_id = \(row.3)
                        """, logger: logger)
                }
                for row in rows.deletedOriginals {
                    try await db.query(
                        """
                        INSERT INTO deleted_originals (tenant, sop_uid, seq, blob_id, size, sha256, details, deleted)
                        SELECT \(tenant), \(row.0), \(row.1), \(row.2), \(row.3), \(row.4), \(row.5), \(row.6)
                        WHERE NOT EXISTS (SELECT 1 FROM deleted_originals WHERE tenant = \(tenant)
                        AND sop_uid = \(row.0) AND blob_id = \(row.2))
                        """, logger: logger)
                    try await db.query(
                        "DELETE FROM originals WHERE tenant = \(tenant) AND sop_uid = \(row.0) AND blob_id = \(row.2)",
                        logger: logger)
                }
                for row in rows.records {
                    try await db.query(
                        """
                        INSERT INTO clinic_records (tenant, kind, id, version, patient_key, parent, body, actor,
                        created, deleted, current) VALUES (\(tenant), \(row.0), \(row.1), \(row.2), \(row.3),
                        \(row.4), \(row.5), \(row.6), \(row.7), \(row.8), \(row.9)) ON CONFLICT DO NOTHING
                        """, logger: logger)
                }
                if let (sequence, mac, seal) = rows.anchor {
                    // The anchor only moves forward: a newer one must never be replaced by the source's.
                    try await db.query(
                        """
                        INSERT INTO audit_anchor (tenant, sequence, mac, seal) VALUES (\(tenant), \(sequence), \(mac),
                        \(seal)) ON CONFLICT (tenant) DO UPDATE SET sequence = excluded.sequence, mac = excluded.mac,
                        seal = excluded.seal WHERE audit_anchor.sequence < excluded.sequence
                        """, logger: logger)
                }
            }
        }
    }
}

/// Opens a value sealed under a patient's key and seals it again under the clinic's (values already under the
/// clinic's key pass as they are).
struct Resealer: Sendable {
    let from: AttributeSealer
    let to: AttributeSealer

    func callAsFunction(_ sealed: Data, _ uid: String) throws -> Data {
        guard AttributeSealer.patientKeyID(of: sealed) != nil else { return sealed }
        return try to.seal(try from.openData(sealed, uid: uid), uid: uid)
    }
}
