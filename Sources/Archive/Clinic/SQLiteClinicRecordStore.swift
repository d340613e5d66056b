import Foundation
import GRDB

/// Clinic records in the embedded index: a write is one transaction (SQLite has one writer), so the version check
/// and the insert cannot interleave with another writer's. Blocking calls run on the storage pool.
public struct SQLiteClinicRecordStore: ClinicRecordStore {
    let index: SQLiteStudyIndex
    public let tenant: String

    public init(index: SQLiteStudyIndex, tenant: String) {
        self.index = index
        self.tenant = tenant
    }

    private func access<T: Sendable>(write: Bool, _ body: @escaping @Sendable (Database) throws -> T)
        async throws(ArchiveError) -> T
    {
        let pool = index.pool
        return try await BlockingPool.storage.runTyped { () throws(ArchiveError) in
            do {
                return write ? try pool.write(body) : try pool.read(body)
            } catch let error as ArchiveError {
                throw error
            } catch {
                throw ArchiveError(.io, "the clinic records cannot be \(write ? "written" : "read")")
            }
        }
    }

    public func write(
        _ kind: ClinicRecordKind, id: String, patient: String, parent: String?, body: Data, actor: String,
        deleted: Bool, expectedVersion: Int
    ) async throws(ArchiveError) -> ClinicRecord {
        let record = ClinicRecord(
            kind: kind, id: id, version: expectedVersion + 1, patient: patient, parent: parent, body: body,
            actor: actor, date: Date(), deleted: deleted)
        let sealed = try Self.seal(record, index.sealer)
        let tenant = self.tenant
        try await access(write: true) { db in
            let current =
                try Int.fetchOne(
                    db, sql: "SELECT MAX(version) FROM clinic_records WHERE tenant = ? AND kind = ? AND id = ?",
                    arguments: [tenant, kind.rawValue, id]) ?? 0
            guard current == expectedVersion else {
                throw ArchiveError(
                    .conflict, "the record is at version \(current), not \(expectedVersion): read it again")
            }
            try db.execute(
                sql: "UPDATE clinic_records SET current = 0 WHERE tenant = ? AND kind = ? AND id = ? AND current = 1",
                arguments: [tenant, kind.rawValue, id])
            try db.execute(
                sql: """
                    INSERT INTO clinic_records
                    (tenant, kind, id, version, patient_key, parent, body, actor, created, deleted, current)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
                    """,
                arguments: [
                    tenant, kind.rawValue, id, record.version, patient, parent, sealed, actor,
                    record.date.timeIntervalSince1970, deleted,
                ])
        }
        return record
    }

    private static let columns = "kind, id, version, patient_key, parent, body, actor, created, deleted"

    private func fetch(_ sql: String, _ arguments: StatementArguments) async throws(ArchiveError) -> [ClinicRecord] {
        let rows = try await access(write: false) { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.columns) FROM clinic_records WHERE \(sql)", arguments: arguments)
                .map { row in
                    ClinicRecord(
                        kind: ClinicRecordKind(rawValue: row["kind"]) ?? .patient, id: row["id"],
                        version: row["version"], patient: row["patient_key"], parent: row["parent"],
                        body: row["body"], actor: row["actor"], date: Date(timeIntervalSince1970: row["created"]),
                        deleted: row["deleted"])
                }
        }
        var opened: [ClinicRecord] = []
        // A disposed patient's records (in a backup made before the disposal) are gone, not damaged.
        for row in rows where !index.sealer.isErased(row.body, uid: row.sealingContext) {
            opened.append(try Self.open(row, index.sealer))
        }
        return opened
    }

    public func current(_ kind: ClinicRecordKind, id: String) async throws(ArchiveError) -> ClinicRecord? {
        try await fetch(
            "tenant = ? AND kind = ? AND id = ? AND current = 1", [tenant, kind.rawValue, id]
        ).first
    }

    public func versions(_ kind: ClinicRecordKind, id: String) async throws(ArchiveError) -> [ClinicRecord] {
        try await fetch("tenant = ? AND kind = ? AND id = ? ORDER BY version", [tenant, kind.rawValue, id])
    }

    public func records(_ kind: ClinicRecordKind, patient: String?, parent: String?) async throws(ArchiveError)
        -> [ClinicRecord]
    {
        var sql = "tenant = ? AND kind = ? AND current = 1 AND deleted = 0"
        var arguments: StatementArguments = [tenant, kind.rawValue]
        if let patient {
            sql += " AND patient_key = ?"
            arguments += [patient]
        }
        if let parent {
            sql += " AND parent = ?"
            arguments += [parent]
        }
        return try await fetch(sql + " ORDER BY created, id", arguments)
    }
}
