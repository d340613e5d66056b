import Foundation
import GRDB

/// The job queue in the embedded index: claims are one write transaction each (SQLite has one writer), so a job is
/// taken once. Blocking calls run on the storage pool.
public struct SQLiteJobQueue: JobQueue {
    let index: SQLiteStudyIndex
    public let tenant: String

    public init(index: SQLiteStudyIndex, tenant: String) {
        self.index = index
        self.tenant = tenant
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ArchiveError) -> T
    {
        let pool = index.pool
        return try await BlockingPool.storage.runTyped { () throws(ArchiveError) in
            do {
                return try pool.write(body)
            } catch let error as ArchiveError {
                throw error
            } catch {
                throw ArchiveError(.io, "the job queue cannot be written")
            }
        }
    }

    public func enqueue(kind: String, payload: Data, subject: String?) async throws(ArchiveError) -> String {
        let id = UUID().uuidString.lowercased()
        let sealed = try JobSealing.seal(payload, index.sealer, "job:\(id)")
        let tenant = self.tenant
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO jobs (tenant, id, kind, payload, status, attempts, progress, created, subject)
                    VALUES (?, ?, ?, ?, 'queued', 0, 0, ?, ?)
                    """, arguments: [tenant, id, kind, sealed, Date().timeIntervalSince1970, subject])
        }
        return id
    }

    public func claim(kind: String, worker: String, lease: TimeInterval) async throws(ArchiveError) -> Job? {
        let tenant = self.tenant
        let claimed = try await write { db -> (id: String, payload: Data, attempts: Int, created: Double)? in
            let now = Date().timeIntervalSince1970
            try db.execute(
                sql: """
                    UPDATE jobs SET status = 'failed', lease_until = NULL,
                    failure = 'the job was interrupted ' || attempts || ' times'
                    WHERE tenant = ? AND kind = ? AND status = 'running' AND lease_until < ? AND attempts >= ?
                    """, arguments: [tenant, kind, now, maximumInterruptions(kind)])
            let row = try Row.fetchOne(
                db,
                sql: """
                    UPDATE jobs SET status = 'running', worker = ?, lease_until = ?, attempts = attempts + 1
                    WHERE tenant = ? AND id = (
                        SELECT id FROM jobs WHERE tenant = ? AND kind = ?
                        AND ((status = 'queued' AND (lease_until IS NULL OR lease_until < ?))
                            OR (status = 'running' AND lease_until < ?))
                        ORDER BY created, id LIMIT 1)
                    RETURNING id, payload, attempts, created
                    """, arguments: [worker, now + lease, tenant, tenant, kind, now, now])
            return row.map { (id: $0["id"], payload: $0["payload"], attempts: $0["attempts"], created: $0["created"]) }
        }
        guard let claimed else { return nil }
        let id = claimed.id
        return Job(
            id: id, tenant: tenant, kind: kind,
            payload: try JobSealing.open(claimed.payload, index.sealer, "job:\(id)"),
            status: .running, attempts: claimed.attempts, progress: 0, result: nil, failure: nil,
            created: Date(timeIntervalSince1970: claimed.created))
    }

    public func heartbeat(_ id: String, worker: String, progress: Double, lease: TimeInterval)
        async
        throws(ArchiveError) -> Bool
    {
        let tenant = self.tenant
        return try await write { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET lease_until = ?, progress = ?
                    WHERE tenant = ? AND id = ? AND worker = ? AND status = 'running'
                    """,
                arguments: [Date().timeIntervalSince1970 + lease, min(1, max(0, progress)), tenant, id, worker])
            return db.changesCount > 0
        }
    }

    public func finish(_ id: String, worker: String, result: Data) async throws(ArchiveError) {
        let sealed = try JobSealing.seal(result, index.sealer, "job-result:\(id)")
        let tenant = self.tenant
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET status = 'done', result = ?, progress = 1, lease_until = NULL
                    WHERE tenant = ? AND id = ? AND worker = ? AND status = 'running'
                    """, arguments: [sealed, tenant, id, worker])
        }
    }

    public func fail(_ id: String, worker: String, reason: String) async throws(ArchiveError) {
        let tenant = self.tenant
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET status = 'failed', failure = ?, lease_until = NULL
                    WHERE tenant = ? AND id = ? AND worker = ? AND status = 'running'
                    """, arguments: [reason, tenant, id, worker])
        }
    }

    public func retry(_ id: String, worker: String, at: Date, reason: String) async throws(ArchiveError) {
        let tenant = self.tenant
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET status = 'queued', worker = NULL, lease_until = ?, failure = ?
                    WHERE tenant = ? AND id = ? AND worker = ? AND status = 'running'
                    """, arguments: [at.timeIntervalSince1970, reason, tenant, id, worker])
        }
    }

    public func cancel(_ id: String) async throws(ArchiveError) -> Bool {
        let tenant = self.tenant
        return try await write { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET status = 'cancelled', lease_until = NULL
                    WHERE tenant = ? AND id = ? AND status IN ('queued', 'running')
                    """, arguments: [tenant, id])
            return db.changesCount > 0
        }
    }

    public func job(_ id: String) async throws(ArchiveError) -> Job? {
        let tenant = self.tenant
        let found = try await write { db -> Job? in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT kind, payload, status, attempts, progress, result, failure, created FROM jobs
                        WHERE tenant = ? AND id = ?
                        """, arguments: [tenant, id])
            else { return nil }
            // Still sealed here: opened below.
            return Job(
                id: id, tenant: tenant, kind: row["kind"], payload: row["payload"],
                status: Job.Status(rawValue: row["status"]) ?? .failed, attempts: row["attempts"],
                progress: row["progress"], result: row["result"], failure: row["failure"],
                created: Date(timeIntervalSince1970: row["created"]))
        }
        guard var job = found else { return nil }
        job.payload = try JobSealing.open(job.payload, index.sealer, "job:\(id)")
        if let sealed = job.result { job.result = try JobSealing.open(sealed, index.sealer, "job-result:\(id)") }
        return job
    }

    public func jobIDs(kind: String, subject: String?, limit: Int) async throws(ArchiveError) -> [String] {
        let tenant = self.tenant
        return try await write { db in
            if let subject {
                return try String.fetchAll(
                    db,
                    sql: """
                        SELECT id FROM jobs WHERE tenant = ? AND kind = ? AND (subject = ? OR subject IS NULL)
                        ORDER BY created DESC, id LIMIT ?
                        """, arguments: [tenant, kind, subject, limit])
            }
            return try String.fetchAll(
                db,
                sql: "SELECT id FROM jobs WHERE tenant = ? AND kind = ? ORDER BY created DESC, id LIMIT ?",
                arguments: [tenant, kind, limit])
        }
    }
}
