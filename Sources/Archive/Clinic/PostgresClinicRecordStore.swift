import Foundation
import PostgresNIO

/// Clinic records in PostgreSQL, shared by every replica: a write checks the current version and inserts the next
/// in one transaction; two replicas racing on one record both try the same (tenant, kind, id, version) key, and the
/// loser's unique violation is answered as `.conflict`.
public struct PostgresClinicRecordStore: ClinicRecordStore {
    let database: PostgresDatabase
    public let tenant: String
    let sealer: AttributeSealer

    public init(index: PostgresStudyIndex) {
        database = index.database
        tenant = index.tenant
        sealer = index.sealer
    }

    public func write(
        _ kind: ClinicRecordKind, id: String, patient: String, parent: String?, body: Data, actor: String,
        deleted: Bool, expectedVersion: Int
    ) async throws(ArchiveError) -> ClinicRecord {
        let record = ClinicRecord(
            kind: kind, id: id, version: expectedVersion + 1, patient: patient, parent: parent, body: body,
            actor: actor, date: Date(), deleted: deleted)
        let sealed = try Self.seal(record, sealer)
        let (tenant, client, logger) = (self.tenant, database.client, database.logger)
        let (kindName, version, expected) = (kind.rawValue, Int64(record.version), Int64(expectedVersion))
        let created = record.date.timeIntervalSince1970
        let current: Int64?
        do {
            current = try await database.call {
                do {
                    return try await client.withTransaction(logger: logger) { db -> Int64? in
                        var found: Int64 = 0
                        for try await max in try await db.query(
                            """
                            SELECT COALESCE(MAX(version), 0) FROM clinic_records
                            WHERE tenant = \(tenant) AND kind = \(kindName) AND id = \(id)
                            """, logger: logger
                        ).decode(Int64.self) {
                            found = max
                        }
                        guard found == expected else { return found }
                        try await db.query(
                            """
                            UPDATE clinic_records SET current = FALSE
                            WHERE tenant = \(tenant) AND kind = \(kindName) AND id = \(id) AND current
                            """, logger: logger)
                        try await db.query(
                            """
                            INSERT INTO clinic_records
                            (tenant, kind, id, version, patient_key, parent, body, actor, created, deleted, current)
                            VALUES (\(tenant), \(kindName), \(id), \(version), \(patient), \(parent), \(sealed),
                            \(actor), \(created), \(deleted), TRUE)
                            """, logger: logger)
                        return nil
                    }
                } catch  where PostgresDatabase.isUniqueViolation(error) {
                    return -1
                }
            }
        }
        if let current {
            throw ArchiveError(
                .conflict,
                current < 0
                    ? "the record was changed meanwhile: read it again"
                    : "the record is at version \(current), not \(expectedVersion): read it again")
        }
        return record
    }

    private func fetch(_ condition: PostgresQuery) async throws(ArchiveError) -> [ClinicRecord] {
        let (client, logger) = (database.client, database.logger)
        let rows = try await database.call { () -> [ClinicRecord] in
            var rows: [ClinicRecord] = []
            for try await (kind, id, version, patient, parent, body, actor, created, deleted) in try await client.query(
                condition, logger: logger
            ).decode((String, String, Int64, String, String?, Data, String, Double, Bool).self) {
                rows.append(
                    ClinicRecord(
                        kind: ClinicRecordKind(rawValue: kind) ?? .patient, id: id, version: Int(version),
                        patient: patient, parent: parent, body: body, actor: actor,
                        date: Date(timeIntervalSince1970: created), deleted: deleted))
            }
            return rows
        }
        var opened: [ClinicRecord] = []
        // A disposed patient's records (in a backup made before the disposal) are gone, not damaged.
        for row in rows where !sealer.isErased(row.body, uid: row.sealingContext) {
            opened.append(try Self.open(row, sealer))
        }
        return opened
    }

    public func current(_ kind: ClinicRecordKind, id: String) async throws(ArchiveError) -> ClinicRecord? {
        let (tenant, kindName) = (self.tenant, kind.rawValue)
        return try await fetch(
            """
            SELECT kind, id, version, patient_key, parent, body, actor, created, deleted FROM clinic_records
            WHERE tenant = \(tenant) AND kind = \(kindName) AND id = \(id) AND current
            """
        ).first
    }

    public func versions(_ kind: ClinicRecordKind, id: String) async throws(ArchiveError) -> [ClinicRecord] {
        let (tenant, kindName) = (self.tenant, kind.rawValue)
        return try await fetch(
            """
            SELECT kind, id, version, patient_key, parent, body, actor, created, deleted FROM clinic_records
            WHERE tenant = \(tenant) AND kind = \(kindName) AND id = \(id) ORDER BY version
            """)
    }

    public func records(_ kind: ClinicRecordKind, patient: String?, parent: String?) async throws(ArchiveError)
        -> [ClinicRecord]
    {
        let (tenant, kindName) = (self.tenant, kind.rawValue)
        // A NULL filter matches every row: one statement serves the three ways of listing.
        return try await fetch(
            """
            SELECT kind, id, version, patient_key, parent, body, actor, created, deleted FROM clinic_records
            WHERE tenant = \(tenant) AND kind = \(kindName) AND current AND NOT deleted
            AND (\(patient)::TEXT IS NULL OR patient_key = \(patient))
            AND (\(parent)::TEXT IS NULL OR parent = \(parent))
            ORDER BY created, id
            """)
    }
}
