import Foundation
import PostgresNIO

/// The job queue in PostgreSQL: a job is claimed with `FOR UPDATE SKIP LOCKED`, so that any number of processes
/// take each job exactly once, and none waits for another's claim.
public struct PostgresJobQueue: JobQueue {
    let database: PostgresDatabase
    public let tenant: String
    let sealer: AttributeSealer

    public init(index: PostgresStudyIndex) {
        database = index.database
        tenant = index.tenant
        sealer = index.sealer
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (PostgresClient) async throws -> T)
        async
        throws(ArchiveError) -> T
    {
        let client = database.client
        return try await database.call { try await body(client) }
    }

    public func enqueue(kind: String, payload: Data, subject: String?) async throws(ArchiveError) -> String {
        let id = UUID().uuidString.lowercased()
        let sealed = try JobSealing.seal(payload, sealer, "job:\(id)")
        let (tenant, logger, now) = (self.tenant, database.logger, Date().timeIntervalSince1970)
        try await run { client in
            try await client.query(
                """
                INSERT INTO jobs (tenant, id, kind, payload, status, attempts, progress, created, subject)
                VALUES (\(tenant), \(id), \(kind), \(sealed), 'queued', 0, 0, \(now), \(subject))
                """, logger: logger)
        }
        return id
    }

    public func claim(kind: String, worker: String, lease: TimeInterval) async throws(ArchiveError) -> Job? {
        let (tenant, logger, now) = (self.tenant, database.logger, Date().timeIntervalSince1970)
        let until = now + lease
        let maximum = maximumInterruptions(kind)
        let row = try await run { client -> (String, Data, Int32, Double)? in
            // Jobs interrupted too often (their process died every time) fail rather than loop.
            try await client.query(
                """
                UPDATE jobs SET status = 'failed', lease_until = NULL,
                failure = 'the job was interrupted ' || attempts || ' times'
                WHERE tenant = \(tenant) AND kind = \(kind) AND status = 'running' AND lease_until < \(now)
                AND attempts >= \(maximum)
                """, logger: logger)
            for try await row in try await client.query(
                """
                UPDATE jobs SET status = 'running', worker = \(worker), lease_until = \(until), attempts = attempts + 1
                WHERE tenant = \(tenant) AND id = (
                    SELECT id FROM jobs WHERE tenant = \(tenant) AND kind = \(kind)
                    AND ((status = 'queued' AND (lease_until IS NULL OR lease_until < \(now)))
                        OR (status = 'running' AND lease_until < \(now)))
                    ORDER BY created, id LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING id, payload, attempts, created
                """, logger: logger
            ).decode((String, Data, Int32, Double).self) {
                return row
            }
            return nil
        }
        guard let (id, sealed, attempts, created) = row else { return nil }
        return Job(
            id: id, tenant: tenant, kind: kind, payload: try JobSealing.open(sealed, sealer, "job:\(id)"),
            status: .running, attempts: Int(attempts), progress: 0, result: nil, failure: nil,
            created: Date(timeIntervalSince1970: created))
    }

    public func heartbeat(_ id: String, worker: String, progress: Double, lease: TimeInterval)
        async
        throws(ArchiveError) -> Bool
    {
        let (tenant, logger, until) = (self.tenant, database.logger, Date().timeIntervalSince1970 + lease)
        let clamped = min(1, max(0, progress))
        return try await run { client in
            var held = false
            for try await _ in try await client.query(
                """
                UPDATE jobs SET lease_until = \(until), progress = \(clamped)
                WHERE tenant = \(tenant) AND id = \(id) AND worker = \(worker) AND status = 'running' RETURNING id
                """, logger: logger
            ).decode(String.self) {
                held = true
            }
            return held
        }
    }

    public func finish(_ id: String, worker: String, result: Data) async throws(ArchiveError) {
        let sealed = try JobSealing.seal(result, sealer, "job-result:\(id)")
        let (tenant, logger) = (self.tenant, database.logger)
        try await run { client in
            try await client.query(
                """
                UPDATE jobs SET status = 'done', result = \(sealed), progress = 1, lease_until = NULL
                WHERE tenant = \(tenant) AND id = \(id) AND worker = \(worker) AND status = 'running'
                """, logger: logger)
        }
    }

    public func fail(_ id: String, worker: String, reason: String) async throws(ArchiveError) {
        let (tenant, logger) = (self.tenant, database.logger)
        try await run { client in
            try await client.query(
                """
                UPDATE jobs SET status = 'failed', failure = \(reason), lease_until = NULL
                WHERE tenant = \(tenant) AND id = \(id) AND worker = \(worker) AND status = 'running'
                """, logger: logger)
        }
    }

    public func retry(_ id: String, worker: String, at: Date, reason: String) async throws(ArchiveError) {
        let (tenant, logger, until) = (self.tenant, database.logger, at.timeIntervalSince1970)
        try await run { client in
            try await client.query(
                """
                UPDATE jobs SET status = 'queued', worker = NULL, lease_until = \(until), failure = \(reason)
                WHERE tenant = \(tenant) AND id = \(id) AND worker = \(worker) AND status = 'running'
                """, logger: logger)
        }
    }

    public func cancel(_ id: String) async throws(ArchiveError) -> Bool {
        let (tenant, logger) = (self.tenant, database.logger)
        return try await run { client in
            var cancelled = false
            for try await _ in try await client.query(
                """
                UPDATE jobs SET status = 'cancelled', lease_until = NULL
                WHERE tenant = \(tenant) AND id = \(id) AND status IN ('queued', 'running') RETURNING id
                """, logger: logger
            ).decode(String.self) {
                cancelled = true
            }
            return cancelled
        }
    }

    public func job(_ id: String) async throws(ArchiveError) -> Job? {
        let (tenant, logger) = (self.tenant, database.logger)
        let row = try await run { client -> (String, Data, String, Int32, Double, Data?, String?, Double)? in
            for try await row in try await client.query(
                """
                SELECT kind, payload, status, attempts, progress, result, failure, created FROM jobs
                WHERE tenant = \(tenant) AND id = \(id)
                """, logger: logger
            ).decode((String, Data, String, Int32, Double, Data?, String?, Double).self) {
                return row
            }
            return nil
        }
        guard let (kind, payload, status, attempts, progress, result, failure, created) = row else { return nil }
        return Job(
            id: id, tenant: tenant, kind: kind, payload: try JobSealing.open(payload, sealer, "job:\(id)"),
            status: Job.Status(rawValue: status) ?? .failed, attempts: Int(attempts), progress: progress,
            result: try result.map { sealedResult throws(ArchiveError) in
                try JobSealing.open(sealedResult, sealer, "job-result:\(id)")
            }, failure: failure, created: Date(timeIntervalSince1970: created))
    }

    public func jobIDs(kind: String, subject: String?, limit: Int) async throws(ArchiveError) -> [String] {
        let (tenant, logger) = (self.tenant, database.logger)
        return try await run { client in
            var ids: [String] = []
            // Without a subject the bind matches every row (`$3 IS NULL`).
            for try await id in try await client.query(
                """
                SELECT id FROM jobs WHERE tenant = \(tenant) AND kind = \(kind)
                AND (\(subject)::TEXT IS NULL OR subject = \(subject) OR subject IS NULL)
                ORDER BY created DESC, id LIMIT \(limit)
                """, logger: logger
            ).decode(String.self) {
                ids.append(id)
            }
            return ids
        }
    }
}

/// Payloads and results are sealed like index attributes, each under its job's own context.
enum JobSealing {
    static func seal(_ data: Data, _ sealer: AttributeSealer, _ context: String) throws(ArchiveError) -> Data {
        do {
            return try sealer.seal(data, uid: context)
        } catch {
            throw ArchiveError(.key, "a job cannot be sealed")
        }
    }

    static func open(_ sealed: Data, _ sealer: AttributeSealer, _ context: String) throws(ArchiveError) -> Data {
        try sealer.openData(sealed, uid: context)
    }
}
