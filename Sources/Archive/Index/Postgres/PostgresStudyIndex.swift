import DICOMCore
import Foundation
import Logging
import PostgresNIO

/// The index on a PostgreSQL server: the same tables as SQLite's plus a `tenant` column, the same sealed attributes
/// and blind indexes (through `AttributeSealer`: nothing identifying is in the clear in PostgreSQL either), and the
/// same catalogue in memory for searching.
///
/// The duplicate and patient-identity rules are decided in the database, inside the commit's transaction and under
/// advisory locks on the study and the SOP Instance UID, so they hold when several processes write at once.
public final class PostgresStudyIndex: StudyIndex, @unchecked Sendable {
    public let database: PostgresDatabase
    public let tenant: String
    let sealer: AttributeSealer
    private let lock = NSLock()
    private var current = Catalog()
    public private(set) var quarantinedRows: [String] = []
    /// Changes of the feed already applied (by sequence, with when they were first seen), above `watermark`.
    private var seen: [Int64: Date] = [:]
    private var watermark: Int64 = 0
    private var following: Task<Void, Never>?
    /// When this process last changed an instance: a feed read started before it must not undo it.
    private var localChanges: [String: Date] = [:]
    private var anchorCache: AuditAnchor?
    private var anchorToWrite: AuditAnchor?
    private var anchorWriterRunning = false

    private var client: PostgresClient { database.client }
    private var logger: Logger { database.logger }

    /// Opens `tenant`'s index in `database` and loads its catalogue.
    public static func open(database: PostgresDatabase, tenant: String, keys: KeyHierarchy)
        async
        throws(ArchiveError) -> PostgresStudyIndex
    {
        let index = PostgresStudyIndex(database: database, tenant: tenant, keys: keys)
        // Changes of the last window are applied again after the load (a store committing during it is not missed).
        let start = try await index.feedStart()
        index.lock.withLock { index.watermark = start }
        try await index.load()
        index.follow()
        let anchor = try await index.readAnchor()
        index.lock.withLock { index.anchorCache = anchor }
        return index
    }

    private init(database: PostgresDatabase, tenant: String, keys: KeyHierarchy) {
        self.database = database
        self.tenant = tenant
        sealer = AttributeSealer(keys: keys)
    }

    private func run<T: Sendable>(seconds: Double? = nil, _ body: @escaping @Sendable () async throws -> T)
        async throws(ArchiveError) -> T
    {
        try await database.call(seconds: seconds, body)
    }

    /// Reads every row of the tenant into the catalogue; a row that cannot be decoded is left out and noted.
    private func load() async throws(ArchiveError) {
        // Reading a large clinic's every row takes a while: the deadline is for a server that does not answer.
        let (catalog, quarantined) = try await run(seconds: 600) { [self] () async throws -> (Catalog, [String]) in
            var catalog = Catalog()
            var quarantined: [String] = []
            var studies: [String: Dataset] = [:]
            var bad: Set<String> = []
            let studyRows = try await client.query(
                "SELECT study_uid, attributes FROM studies WHERE tenant = \(tenant)", logger: logger)
            for try await (uid, sealed) in studyRows.decode((String, Data).self) {
                if let attributes = try? sealer.open(sealed, uid: uid) {
                    studies[uid] = attributes
                } else {
                    bad.insert(uid)
                    quarantined.append(uid)
                }
            }
            var series: [String: Dataset] = [:]
            let seriesRows = try await client.query(
                "SELECT series_uid, attributes FROM series WHERE tenant = \(tenant)", logger: logger)
            for try await (uid, sealed) in seriesRows.decode((String, Data).self) {
                if let attributes = try? sealer.open(sealed, uid: uid) {
                    series[uid] = attributes
                } else {
                    bad.insert(uid)
                    quarantined.append(uid)
                }
            }
            let rows = try await client.query(
                """
                SELECT sop_uid, sop_class, series_uid, study_uid, transfer_syntax, blob_id, size, sha256, stored,
                attributes FROM instances WHERE tenant = \(tenant) ORDER BY seq
                """, logger: logger)
            for try await row in rows.decode(
                (String, String, String, String, String, String, Int64, String, Double, Data).self)
            {
                let (uid, sopClass, seriesUID, studyUID, syntax, blobID, size, sha256, stored, sealed) = row
                guard !bad.contains(studyUID), !bad.contains(seriesUID),
                    let attributes = try? sealer.open(sealed, uid: uid)
                else {
                    quarantined.append(uid)
                    continue
                }
                let record = InstanceRecord(
                    sopInstanceUID: uid, sopClassUID: sopClass, seriesInstanceUID: seriesUID,
                    studyInstanceUID: studyUID, transferSyntaxUID: syntax,
                    blob: BlobReference(id: blobID, size: Int(size), sha256: sha256), attributes: attributes,
                    stored: Date(timeIntervalSince1970: stored))
                catalog.insert(
                    study: studies[studyUID] ?? Dataset(), series: series[seriesUID] ?? Dataset(), instance: record)
            }
            return (catalog, quarantined)
        }
        lock.withLock {
            current = catalog
            quarantinedRows = quarantined
        }
    }

    // MARK: StudyIndex

    public func catalog() -> Catalog { lock.withLock { current } }

    public func instance(_ sopInstanceUID: String) -> InstanceRecord? {
        lock.withLock { current.instances[sopInstanceUID] }
    }

    public func commit(_ entry: IndexEntry, allowNewVersion: Bool) async throws(ArchiveError) -> CommitResult {
        do throws(ArchiveError) {
            do throws(ArchiveError) {
                return try await commitOnce(entry, allowNewVersion: allowNewVersion)
            } catch {
                // Another writer inserted the same key between our check and our insert: decide again, now seeing it.
                guard error.code == .conflictRetry else { throw error }
                return try await commitOnce(entry, allowNewVersion: allowNewVersion)
            }
        } catch {
            if error.code == .unavailable { reconcileLater([entry.instance.sopInstanceUID]) }
            throw error
        }
    }

    private func commitOnce(_ entry: IndexEntry, allowNewVersion: Bool) async throws(ArchiveError) -> CommitResult {
        let record = entry.instance
        let tenant = self.tenant
        let (study, series, sop) = (record.studyInstanceUID, record.seriesInstanceUID, record.sopInstanceUID)
        let sealed: (study: Data, series: Data, attributes: Data, metadata: Data)
        do {
            let patient = sealer.patient(of: entry.study)
            sealed = (
                try sealer.seal(entry.study, uid: study, patient: patient),
                try sealer.seal(entry.series, uid: series, patient: patient),
                try sealer.seal(record.attributes, uid: sop, patient: patient),
                try sealer.seal(Data(entry.metadataJSON.utf8), uid: sop, patient: patient)
            )
        } catch {
            throw ArchiveError(.key, "index value cannot be sealed")
        }
        let patientIndex = sealer.blindIndex("PatientID", entry.study.string(.patientID))
        let accessionIndex = sealer.blindIndex("AccessionNumber", entry.study.string(.accessionNumber))
        let outcome = try await run { [self] () async throws -> (CommitResult, InstanceRecord?, Dataset?, Dataset?) in
            do {
                return try await client.withTransaction(logger: logger) { db in
                    // The study first, then the instance: every writer takes them in this order.
                    try await db.query(
                        "SELECT pg_advisory_xact_lock(hashtextextended(\("study/\(tenant)/\(study)"), 0))",
                        logger: logger)
                    try await db.query(
                        "SELECT pg_advisory_xact_lock(hashtextextended(\("sop/\(tenant)/\(sop)"), 0))",
                        logger: logger)
                    var result = CommitResult.committed
                    var existing: InstanceRecord?
                    for try await (sha256, seriesUID, studyUID, blobID, size) in try await db.query(
                        """
                        SELECT sha256, series_uid, study_uid, blob_id, size FROM instances
                        WHERE tenant = \(tenant) AND sop_uid = \(sop)
                        """, logger: logger
                    ).decode((String, String, String, String, Int64).self) {
                        if sha256 == record.blob.sha256 { return (.identical, nil, nil, nil) }
                        guard allowNewVersion, seriesUID == series, studyUID == study else {
                            return (.conflict, nil, nil, nil)
                        }
                        result = .newVersion
                        var old = record
                        old.blob = BlobReference(id: blobID, size: Int(size), sha256: sha256)
                        existing = old
                    }
                    // A study or series row whose instances were all deleted is replaced, as if new (as in SQLite):
                    // a mis-filed study sent again under its UID with the right patient is taken.
                    var storedSeries: Dataset?
                    for try await (studyUID, sealedSeries, live) in try await db.query(
                        """
                        SELECT study_uid, attributes, EXISTS(SELECT 1 FROM instances
                        WHERE tenant = \(tenant) AND series_uid = \(series)) FROM series
                        WHERE tenant = \(tenant) AND series_uid = \(series)
                        """, logger: logger
                    ).decode((String, Data, Bool).self) where live {
                        // A series belongs to one study.
                        if studyUID != study { return (.conflict, nil, nil, nil) }
                        storedSeries = try sealer.open(sealedSeries, uid: series)
                    }
                    var storedStudy: Dataset?
                    for try await (sealedStudy, live) in try await db.query(
                        """
                        SELECT attributes, EXISTS(SELECT 1 FROM instances WHERE tenant = \(tenant) AND study_uid = \(study))
                        FROM studies WHERE tenant = \(tenant) AND study_uid = \(study)
                        """, logger: logger
                    ).decode((Data, Bool).self) where live {
                        let attributes = try sealer.open(sealedStudy, uid: study)
                        switch PatientIdentity.compare(stored: attributes, incoming: entry.study) {
                        case .same, .sameAfterNormalisation: break
                        case .differentID, .differentName: return (.identityConflict, nil, nil, nil)
                        }
                        storedStudy = attributes
                    }
                    if storedStudy == nil {
                        try await db.query(
                            """
                            INSERT INTO studies (tenant, study_uid, attributes, patient_id_index, accession_index)
                            VALUES (\(tenant), \(study), \(sealed.study), \(patientIndex), \(accessionIndex))
                            ON CONFLICT (tenant, study_uid) DO UPDATE SET attributes = excluded.attributes,
                            patient_id_index = excluded.patient_id_index, accession_index = excluded.accession_index
                            """, logger: logger)
                    }
                    if storedSeries == nil {
                        try await db.query(
                            """
                            INSERT INTO series (tenant, series_uid, study_uid, modality, attributes)
                            VALUES (\(tenant), \(series), \(study), \(entry.series.string(.modality)), \(sealed.series))
                            ON CONFLICT (tenant, series_uid) DO UPDATE SET study_uid = excluded.study_uid,
                            modality = excluded.modality, attributes = excluded.attributes
                            """, logger: logger)
                    }
                    if let existing {
                        try await db.query(
                            """
                            INSERT INTO superseded (tenant, blob_id, sop_uid, sha256, replaced)
                            VALUES (\(tenant), \(existing.blob.id), \(sop), \(existing.blob.sha256),
                            \(Date().timeIntervalSince1970))
                            """, logger: logger)
                        try await db.query(
                            "DELETE FROM instances WHERE tenant = \(tenant) AND sop_uid = \(sop)", logger: logger)
                    }
                    try await db.query(
                        """
                        INSERT INTO instances (tenant, sop_uid, sop_class, series_uid, study_uid, transfer_syntax,
                        blob_id, size, sha256, stored, attributes, metadata) VALUES (\(tenant), \(sop),
                        \(record.sopClassUID), \(series), \(study), \(record.transferSyntaxUID), \(record.blob.id),
                        \(Int64(record.blob.size)), \(record.blob.sha256), \(record.stored.timeIntervalSince1970),
                        \(sealed.attributes), \(sealed.metadata))
                        """, logger: logger)
                    try await db.query(
                        "DELETE FROM pending_blobs WHERE tenant = \(tenant) AND blob_id = \(record.blob.id)",
                        logger: logger)
                    try await self.recordChange(sop, in: db)
                    return (result, existing, storedStudy, storedSeries)
                }
            } catch  where PostgresDatabase.isUniqueViolation(error) {
                throw ArchiveError(.conflictRetry, "another writer stored this key at the same time")
            }
        }
        let (result, _, storedStudy, storedSeries) = outcome
        if result == .identical && instance(sop)?.blob.sha256 != record.blob.sha256 {
            // Stored by another process, or by a commit of ours whose answer came after its deadline: the
            // catalogue learns it now.
            try await refresh(sop)
        }
        guard result == .committed || result == .newVersion else { return result }
        lock.withLock {
            localChanges[sop] = Date()
            current.insert(
                study: storedStudy ?? entry.study, series: storedSeries ?? entry.series, instance: record)
        }
        return result
    }

    /// Reads one instance (with its study and series) from the database into the catalogue.
    func refresh(_ sopInstanceUID: String) async throws(ArchiveError) {
        let started = Date()
        let found = try await run { [self] () async throws -> (Dataset, Dataset, InstanceRecord)? in
            let rows = try await client.query(
                """
                SELECT i.sop_class, i.series_uid, i.study_uid, i.transfer_syntax, i.blob_id, i.size, i.sha256, i.stored,
                i.attributes, se.attributes, st.attributes FROM instances i
                JOIN series se ON se.tenant = i.tenant AND se.series_uid = i.series_uid
                JOIN studies st ON st.tenant = i.tenant AND st.study_uid = i.study_uid
                WHERE i.tenant = \(tenant) AND i.sop_uid = \(sopInstanceUID)
                """, logger: logger)
            for try await row in rows.decode(
                (String, String, String, String, String, Int64, String, Double, Data, Data, Data).self)
            {
                let (sopClass, series, study, syntax, blobID, size, sha256, stored, attributes, seriesRow, studyRow) =
                    row
                let record = InstanceRecord(
                    sopInstanceUID: sopInstanceUID, sopClassUID: sopClass, seriesInstanceUID: series,
                    studyInstanceUID: study, transferSyntaxUID: syntax,
                    blob: BlobReference(id: blobID, size: Int(size), sha256: sha256),
                    attributes: try sealer.open(attributes, uid: sopInstanceUID),
                    stored: Date(timeIntervalSince1970: stored))
                return (try sealer.open(studyRow, uid: study), try sealer.open(seriesRow, uid: series), record)
            }
            return nil
        }
        lock.withLock {
            // This process changed the instance after the read began: what was read may be older than that.
            if let local = localChanges[sopInstanceUID], local >= started { return }
            // The database is the truth: an instance it no longer has leaves the catalogue; a version it replaced is
            // replaced here too.
            current.remove(sopInstanceUID)
            if let (study, series, record) = found { current.insert(study: study, series: series, instance: record) }
        }
    }

    /// After a write whose answer did not come in time (it may still commit), the catalogue is brought in line
    /// with the database once it answers again.
    private func reconcileLater(_ sopInstanceUIDs: [String]) {
        Task { [self] in
            for delay in [1.0, 5.0, 30.0, 120.0] {
                try? await Task.sleep(nanoseconds: UInt64(delay * 1_000_000_000))
                var done = true
                for uid in sopInstanceUIDs where (try? await refresh(uid)) == nil { done = false }
                if done { return }
            }
        }
    }

    public func metadataJSON(_ sopInstanceUID: String) async throws(ArchiveError) -> String? {
        let sealed = try await run { [self] () async throws -> Data? in
            var found: Data?
            for try await data in try await client.query(
                "SELECT metadata FROM instances WHERE tenant = \(tenant) AND sop_uid = \(sopInstanceUID)",
                logger: logger
            ).decode(Data.self) {
                found = data
            }
            return found
        }
        guard let sealed else { return nil }
        return String(decoding: try sealer.openData(sealed, uid: sopInstanceUID), as: UTF8.self)
    }

    public func studyUIDs(patientID: String) async throws(ArchiveError) -> [String] {
        guard let key = sealer.blindIndex("PatientID", patientID) else { return [] }
        return try await strings(
            "SELECT study_uid FROM studies WHERE tenant = \(tenant) AND patient_id_index = \(key)")
    }

    public func studyUIDs(accessionNumber: String) async throws(ArchiveError) -> [String] {
        guard let key = sealer.blindIndex("AccessionNumber", accessionNumber) else { return [] }
        return try await strings(
            "SELECT study_uid FROM studies WHERE tenant = \(tenant) AND accession_index = \(key)")
    }

    private func strings(_ query: PostgresQuery) async throws(ArchiveError) -> [String] {
        try await run { [self] in
            var out: [String] = []
            for try await value in try await client.query(query, logger: logger).decode(String.self) {
                out.append(value)
            }
            return out
        }
    }

    public func referencedBlobIDs() async throws(ArchiveError) -> Set<String> {
        Set(
            try await strings(
                """
                SELECT blob_id FROM instances WHERE tenant = \(tenant)
                UNION SELECT blob_id FROM superseded WHERE tenant = \(tenant)
                UNION SELECT blob_id FROM originals WHERE tenant = \(tenant)
                UNION SELECT blob_id FROM deleted_instances WHERE tenant = \(tenant)
                UNION SELECT blob_id FROM deleted_originals WHERE tenant = \(tenant)
                """))
    }

    public func addPendingBlob(_ id: String, owner: String) async throws(ArchiveError) {
        try await run { [self] in
            try await client.query(
                """
                INSERT INTO pending_blobs (tenant, blob_id, owner, created)
                VALUES (\(tenant), \(id), \(owner), \(Date().timeIntervalSince1970))
                """, logger: logger)
        }
    }

    public func removePendingBlob(_ id: String) async throws(ArchiveError) {
        try await run { [self] in
            try await client.query(
                "DELETE FROM pending_blobs WHERE tenant = \(tenant) AND blob_id = \(id)", logger: logger)
        }
    }

    public func pendingBlobIDs() async throws(ArchiveError) -> Set<String> {
        Set(try await strings("SELECT blob_id FROM pending_blobs WHERE tenant = \(tenant)"))
    }

    public func addOriginal(_ original: OriginalFile, to sopInstanceUID: String) async throws(ArchiveError) {
        let sealed: Data
        do {
            let study = lock.withLock {
                current.instances[sopInstanceUID].flatMap { current.studies[$0.studyInstanceUID] }
            }
            sealed = try sealer.sealOriginal(
                original, uid: sopInstanceUID, patient: study.flatMap { sealer.patient(of: $0.attributes) })
        } catch {
            throw ArchiveError(.key, "index value cannot be sealed")
        }
        try await run { [self] in
            try await client.withTransaction(logger: logger) { db in
                try await db.query(
                    "SELECT pg_advisory_xact_lock(hashtextextended(\("sop/\(tenant)/\(sopInstanceUID)"), 0))",
                    logger: logger)
                var live = false
                for try await _ in try await db.query(
                    "SELECT 1 FROM instances WHERE tenant = \(tenant) AND sop_uid = \(sopInstanceUID)", logger: logger
                ).decode(Int32.self) {
                    live = true
                }
                // Kept only beside a live instance (see SQLiteStudyIndex).
                guard live else {
                    throw ArchiveError(.notFound, "the instance was deleted while its originals were being kept")
                }
                var next: Int32 = 1
                for try await value in try await db.query(
                    """
                    SELECT COALESCE(MAX(seq), 0) + 1 FROM originals WHERE tenant = \(tenant) AND sop_uid = \(sopInstanceUID)
                    """, logger: logger
                ).decode(Int32.self) {
                    next = value
                }
                try await db.query(
                    """
                    INSERT INTO originals (tenant, sop_uid, seq, blob_id, size, sha256, details) VALUES (\(tenant),
                    \(sopInstanceUID), \(next), \(original.blob.id), \(Int64(original.blob.size)),
                    \(original.blob.sha256), \(sealed))
                    """, logger: logger)
                try await db.query(
                    "DELETE FROM pending_blobs WHERE tenant = \(tenant) AND blob_id = \(original.blob.id)",
                    logger: logger)
            }
        }
    }

    public func originals(of sopInstanceUID: String) async throws(ArchiveError) -> [OriginalFile] {
        try await run { [self] in
            var out: [OriginalFile] = []
            for try await (blobID, size, sha256, details) in try await client.query(
                """
                SELECT blob_id, size, sha256, details FROM originals
                WHERE tenant = \(tenant) AND sop_uid = \(sopInstanceUID) ORDER BY seq
                """, logger: logger
            ).decode((String, Int64, String, Data).self) {
                out.append(
                    try sealer.openOriginal(
                        details, blob: BlobReference(id: blobID, size: Int(size), sha256: sha256), uid: sopInstanceUID)
                )
            }
            return out
        }
    }

    public func softDelete(_ sopInstanceUIDs: [String], why: Deletion) async throws(ArchiveError) -> [InstanceRecord] {
        var seen = Set<String>()
        let (records, catalog) = lock.withLock {
            (sopInstanceUIDs.compactMap { uid in seen.insert(uid).inserted ? current.instances[uid] : nil }, current)
        }
        guard !records.isEmpty else { return [] }
        let sealed: [Data]
        do {
            sealed = try records.map { record in
                try sealer.sealDeletion(
                    why, uid: record.sopInstanceUID,
                    patient: catalog.studies[record.studyInstanceUID].flatMap { sealer.patient(of: $0.attributes) })
            }
        } catch {
            throw ArchiveError(.key, "index value cannot be sealed")
        }
        let date = why.date.timeIntervalSince1970
        let tenant = self.tenant
        do throws(ArchiveError) {
            try await run { [self] in
                try await client.withTransaction(logger: logger) { db in
                    // The same locks as a commit, in the same order (studies, then instances): a commit or an
                    // original of these instances waits for the deletion, or the deletion for it.
                    for key in Set(records.map { "study/\(tenant)/\($0.studyInstanceUID)" }).sorted()
                        + Set(records.map { "sop/\(tenant)/\($0.sopInstanceUID)" }).sorted()
                    {
                        try await db.query("SELECT pg_advisory_xact_lock(hashtextextended(\(key), 0))", logger: logger)
                    }
                    for (record, details) in zip(records, sealed) {
                        let sop = record.sopInstanceUID
                        try await db.query(
                            """
                            INSERT INTO deleted_instances (tenant, sop_uid, series_uid, study_uid, blob_id, size, sha256,
                            deleted, details, attributes, metadata)
                            SELECT tenant, sop_uid, series_uid, study_uid, blob_id, size, sha256, \(date), \(details),
                            attributes, metadata FROM instances WHERE tenant = \(tenant) AND sop_uid = \(sop)
                            """, logger: logger)
                        try await db.query(
                            "DELETE FROM instances WHERE tenant = \(tenant) AND sop_uid = \(sop)", logger: logger)
                        try await db.query(
                            """
                            INSERT INTO deleted_originals (tenant, sop_uid, seq, blob_id, size, sha256, details, deleted)
                            SELECT tenant, sop_uid, seq, blob_id, size, sha256, details, \(date) FROM originals
                            WHERE tenant = \(tenant) AND sop_uid = \(sop)
                            """, logger: logger)
                        try await db.query(
                            "DELETE FROM originals WHERE tenant = \(tenant) AND sop_uid = \(sop)", logger: logger)
                        try await self.recordChange(sop, in: db)
                    }
                }
            }
        } catch {
            if error.code == .unavailable { reconcileLater(records.map(\.sopInstanceUID)) }
            throw error
        }
        lock.withLock {
            for record in records {
                localChanges[record.sopInstanceUID] = Date()
                current.remove(record.sopInstanceUID)
            }
        }
        return records
    }

    public func deletions() async throws(ArchiveError) -> [DeletedInstance] {
        try await run { [self] in
            var out: [DeletedInstance] = []
            for try await row in try await client.query(
                """
                SELECT sop_uid, series_uid, study_uid, blob_id, size, sha256, deleted, details
                FROM deleted_instances WHERE tenant = \(tenant) ORDER BY seq
                """, logger: logger
            ).decode((String, String, String, String, Int64, String, Double, Data).self) {
                let (uid, series, study, blobID, size, sha256, deleted, details) = row
                out.append(
                    DeletedInstance(
                        sopInstanceUID: uid, seriesInstanceUID: series, studyInstanceUID: study,
                        blob: BlobReference(id: blobID, size: Int(size), sha256: sha256),
                        deletion: try sealer.openDeletion(
                            details, uid: uid, date: Date(timeIntervalSince1970: deleted))))
            }
            return out
        }
    }
}

/// The audit chain's anchor kept beside the tenant's rows. `AuditLog` calls these synchronously, holding its lock,
/// possibly while requests wait for that lock on cooperative threads: so nothing here waits for the database. The
/// anchor is read once when the index opens, and each new one is written by a background task (the newest wins;
/// one the database misses is written with the next).
extension PostgresStudyIndex: AuditAnchorStore {
    public func saveAuditAnchor(_ anchor: AuditAnchor) throws(ArchiveError) {
        let start: Bool = lock.withLock {
            anchorCache = anchor
            anchorToWrite = anchor
            defer { anchorWriterRunning = true }
            return !anchorWriterRunning
        }
        guard start else { return }
        Task { [self] in
            while let next = lock.withLock({ () -> AuditAnchor? in
                let next = anchorToWrite
                anchorToWrite = nil
                if next == nil { anchorWriterRunning = false }
                return next
            }) {
                try? await writeAnchor(next)
            }
        }
    }

    public func auditAnchor() throws(ArchiveError) -> AuditAnchor? { lock.withLock { anchorCache } }

    func writeAnchor(_ anchor: AuditAnchor) async throws(ArchiveError) {
        let tenant = self.tenant
        try await run { [self] in
            try await client.query(
                """
                INSERT INTO audit_anchor (tenant, sequence, mac, seal)
                VALUES (\(tenant), \(Int64(anchor.sequence)), \(anchor.mac), \(anchor.seal))
                ON CONFLICT (tenant) DO UPDATE SET sequence = excluded.sequence, mac = excluded.mac,
                seal = excluded.seal
                """, logger: logger)
        }
    }

    /// The anchor a clinic's audit log has in `database` (for `facet audit verify`), without loading its index.
    public static func auditAnchor(in database: PostgresDatabase, tenant: String) async throws(ArchiveError)
        -> AuditAnchor?
    {
        try await database.call {
            var found: AuditAnchor?
            for try await (sequence, mac, seal) in try await database.client.query(
                "SELECT sequence, mac, seal FROM audit_anchor WHERE tenant = \(tenant)", logger: database.logger
            ).decode((Int64, String, String).self) {
                found = AuditAnchor(sequence: Int(sequence), mac: mac, seal: seal)
            }
            return found
        }
    }

    /// The anchor as the database holds it (read at open).
    func readAnchor() async throws(ArchiveError) -> AuditAnchor? {
        try await Self.auditAnchor(in: database, tenant: tenant)
    }

    /// Waits until every anchor saved so far is written (tests; shutdown).
    public func anchorWritten() async {
        while lock.withLock({ anchorWriterRunning }) { try? await Task.sleep(nanoseconds: 10_000_000) }
    }
}

/// The change feed: every commit and deletion adds a row in its own transaction; every process polls the feed and
/// reads the instances it names into its catalogue, so a study stored through one replica is searched and
/// retrieved through any other. Sequence numbers are handed out before commit, so a lower one can appear after a
/// higher one: changes are re-read for `window` seconds before the watermark passes them.
extension PostgresStudyIndex {
    /// How long a sequence number stays open to late commits, and how often the feed is read.
    static let window = 60.0
    static let interval = 0.25

    /// Records that `sop` changed, in the caller's transaction, and marks the change as already applied here.
    func recordChange(_ sop: String, in db: PostgresConnection) async throws {
        let now = Date().timeIntervalSince1970
        for try await seq in try await db.query(
            "INSERT INTO changes (tenant, sop_uid, changed) VALUES (\(tenant), \(sop), \(now)) RETURNING seq",
            logger: logger
        ).decode(Int64.self) {
            lock.withLock { seen[seq] = Date() }
        }
    }

    /// The watermark to start from: every change older than the window is in the rows a load reads.
    func feedStart() async throws(ArchiveError) -> Int64 {
        let horizon = Date().timeIntervalSince1970 - Self.window
        return try await run { [self] in
            var start: Int64 = 0
            for try await value in try await client.query(
                "SELECT COALESCE(MAX(seq), 0) FROM changes WHERE tenant = \(tenant) AND changed < \(horizon)",
                logger: logger
            ).decode(Int64.self) {
                start = value
            }
            return start
        }
    }

    /// Starts reading the feed in the background, for as long as the index lives.
    func follow() {
        let task = Task { [weak self] in
            var polls = 0
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(Self.interval * 1_000_000_000))
                guard let self else { return }
                try? await self.catchUp()
                polls += 1
                // About every ten minutes: the feed keeps a day (any process restarting reads the rows themselves).
                if polls % 2400 == 0 { try? await self.pruneFeed() }
            }
        }
        lock.withLock { following = task }
    }

    func pruneFeed() async throws(ArchiveError) {
        let horizon = Date().timeIntervalSince1970 - 86_400
        try await run { [self] in
            try await client.query(
                "DELETE FROM changes WHERE tenant = \(tenant) AND changed < \(horizon)", logger: logger)
        }
    }

    /// Stops following the feed (the catalogue no longer learns other processes' changes).
    public func stopFollowing() { lock.withLock { following?.cancel() } }

    /// Applies the changes of the feed not applied yet. Returns how many instances were read.
    @discardableResult
    public func catchUp() async throws(ArchiveError) -> Int {
        // Every change above the watermark, page by page: a backlog larger than a page is read to its end.
        var from = lock.withLock { watermark }
        var rows: [(Int64, String)] = []
        while true {
            let cursor = from
            let page = try await run { [self] in
                var page: [(Int64, String)] = []
                for try await row in try await client.query(
                    """
                    SELECT seq, sop_uid FROM changes WHERE tenant = \(tenant) AND seq > \(cursor) ORDER BY seq LIMIT 10000
                    """, logger: logger
                ).decode((Int64, String).self) {
                    page.append(row)
                }
                return page
            }
            rows += page
            guard page.count == 10000, let last = page.last?.0 else { break }
            from = last
        }
        let fresh = lock.withLock { rows.filter { seen[$0.0] == nil } }
        var read = 0
        for sop in Set(fresh.map(\.1)) {
            do {
                try await refresh(sop)
            } catch  where error.code == .integrity {
                // A row that cannot be decoded is set aside (as at load), not retried forever.
                lock.withLock {
                    current.remove(sop)
                    quarantinedRows.append(sop)
                }
            }
            read += 1
        }
        let now = Date()
        lock.withLock {
            for (seq, _) in fresh { seen[seq] = now }
            // Past the window, a sequence number is final: the watermark moves over it.
            let settled = seen.filter { now.timeIntervalSince($0.value) > Self.window }.keys
            if let highest = settled.max() {
                watermark = max(watermark, highest)
                seen = seen.filter { $0.key > watermark }
            }
        }
        return read
    }
}
