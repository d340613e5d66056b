import Foundation
import GRDB

/// The audit chain's anchor kept in the index (one row), so that removing or cutting the audit folder is detected:
/// the anchor is sealed by the audit log's key, the index only keeps it.
extension SQLiteStudyIndex: AuditAnchorStore {
    static let createAuditAnchorTable = """
        CREATE TABLE IF NOT EXISTS audit_anchor (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            sequence INTEGER NOT NULL,
            mac TEXT NOT NULL,
            seal TEXT NOT NULL)
        """

    public func saveAuditAnchor(_ anchor: AuditAnchor) throws(ArchiveError) {
        do {
            try pool.write { db in
                try db.execute(sql: Self.createAuditAnchorTable)
                try db.execute(
                    sql: """
                        INSERT INTO audit_anchor (id, sequence, mac, seal) VALUES (1, ?, ?, ?)
                        ON CONFLICT(id) DO UPDATE SET sequence = excluded.sequence, mac = excluded.mac,
                            seal = excluded.seal
                        """,
                    arguments: [anchor.sequence, anchor.mac, anchor.seal])
            }
        } catch {
            throw ArchiveError(.io, "the audit anchor cannot be saved in the index")
        }
    }

    public func auditAnchor() throws(ArchiveError) -> AuditAnchor? {
        do {
            return try pool.read { db in try Self.readAuditAnchor(db) }
        } catch {
            throw ArchiveError(.io, "the audit anchor cannot be read from the index")
        }
    }

    /// The anchor of the index at `path`, opened read-only (for `facet audit verify`, beside a running server).
    /// Nil when there is no index or no anchor yet.
    public static func auditAnchor(indexAt path: URL) throws(ArchiveError) -> AuditAnchor? {
        guard FileManager.default.fileExists(atPath: path.path) else { return nil }
        do {
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(10)
            let queue = try DatabaseQueue(path: path.path, configuration: configuration)
            return try queue.read { db in try readAuditAnchor(db) }
        } catch {
            throw ArchiveError(.io, "the index cannot be opened to read the audit anchor")
        }
    }

    private static func readAuditAnchor(_ db: Database) throws -> AuditAnchor? {
        guard try db.tableExists("audit_anchor"),
            let row = try Row.fetchOne(db, sql: "SELECT sequence, mac, seal FROM audit_anchor WHERE id = 1")
        else { return nil }
        // Decoded with errors, not subscripts: a damaged row must not trap.
        return AuditAnchor(
            sequence: try row.decode(Int.self, forColumn: "sequence"),
            mac: try row.decode(String.self, forColumn: "mac"),
            seal: try row.decode(String.self, forColumn: "seal"))
    }
}
