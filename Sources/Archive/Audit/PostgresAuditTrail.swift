import Crypto
import Foundation
import PostgresNIO

/// Where a clinic's audit events go: the file chain of one data folder (`AuditLog`) or the chain every replica of a
/// server setup shares in PostgreSQL (`PostgresAuditTrail`). Both write the same lines, chained by the same MAC.
public protocol AuditTrail: Sendable {
    /// Appends one event; on return it is as durable as `durability` asks (`.immediate`: on stable storage).
    func record(_ event: AuditEvent, durability: AuditLog.Durability) async throws(ArchiveError)
    /// Waits until every event recorded so far is on stable storage (shutdown).
    func flush() async
    /// The chain's complete lines, in order (the audit API reads them).
    func lines() async throws(ArchiveError) -> [String]
    /// The complete lines after `cursor` (0: from the start), at most about `limit`, and the cursor after them: a
    /// byte offset in the log file, a sequence number in PostgreSQL (what the syslog forwarder keeps).
    func tail(after cursor: Int, limit: Int) async throws(ArchiveError) -> (lines: [String], cursor: Int)
}

extension AuditLog: AuditTrail {
    public func record(_ event: AuditEvent, durability: Durability) async throws(ArchiveError) {
        // A batched event is a write without fsync: done here. An immediate one fsyncs, on the storage pool.
        if durability == .batched { return try append(event, durability: .batched) }
        try await BlockingPool.storage.runTyped { [self] () throws(ArchiveError) in
            try append(event, durability: .immediate)
        }
    }
}

/// One audit chain per clinic, shared by every process on the database: each entry is a row of `audit_entries`
/// holding exactly the line `AuditLog` would write (sequence, event, previous MAC, HMAC-SHA256 under the clinic's
/// audit key), and `audit_heads` holds the chain's last sequence and MAC, sealed by the same key. An append locks
/// the head row, so that entries of all replicas form one chain in one order; appends waiting at the same time are
/// written in one transaction (group commit). Every event is committed before `record` returns, whatever its
/// durability: a replica killed a moment later loses nothing it answered for.
///
/// Changing, removing or reordering a row breaks the chain; cutting the tail leaves the head ahead of the entries;
/// a forged head fails its seal. `check` (`facet audit verify --index`) reads the whole chain; opening checks only
/// the head and the entry it names, so that starting a replica does not read years of events.
public final class PostgresAuditTrail: AuditTrail, @unchecked Sendable {
    let database: PostgresDatabase
    public let tenant: String
    /// The chain key's bytes (SymmetricKey is not Sendable).
    private let keyBytes: Data
    private let lock = NSLock()
    private var waiting: [(AuditEvent, CheckedContinuation<Result<Void, ArchiveError>, Never>)] = []
    private var writing = false

    /// The most events one transaction appends.
    static let batchLimit = 256

    private init(database: PostgresDatabase, tenant: String, keys: KeyHierarchy) {
        self.database = database
        self.tenant = tenant
        keyBytes = keys.tenantDerivedKey("facet-audit-chain").withUnsafeBytes { Data($0) }
    }

    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    /// Opens a clinic's chain. A clinic without one yet starts it — from the lines of `importing` (the data
    /// folder's `audit` log of an archive moving to the server setup, checked against the anchor the index holds
    /// and copied line for line, so the chain goes on), or from the first entry. `.audit` when the head fails its
    /// seal or does not match the entry it names.
    public static func open(
        database: PostgresDatabase, tenant: String, keys: KeyHierarchy, importing folder: URL? = nil
    ) async throws(ArchiveError) -> PostgresAuditTrail {
        let trail = PostgresAuditTrail(database: database, tenant: tenant, keys: keys)
        if try await trail.head() == nil {
            var lines: [String] = []
            if let folder, FileManager.default.fileExists(atPath: folder.appendingPathComponent("audit.log").path) {
                let anchor = try await PostgresStudyIndex.auditAnchor(in: database, tenant: tenant)
                let report = AuditLog.check(folder: folder, keys: keys, anchor: anchor)
                if case .broken(let entry, let reason) = report.verdict {
                    throw ArchiveError(
                        .audit,
                        "the data folder's audit log cannot be carried over: broken at entry \(entry): \(reason)")
                }
                lines = AuditLog.completeLines(folder: folder)
            }
            try await trail.start(with: lines)
        }
        guard let head = try await trail.head() else {
            throw ArchiveError(.audit, "the audit chain's head cannot be read")
        }
        guard head.seal == AuditLog.anchorSeal(trail.key, sequence: head.sequence, mac: head.mac) else {
            throw ArchiveError(.audit, "the audit chain's head does not match its MAC")
        }
        if head.sequence > 0 {
            let line = try await trail.lines(after: head.sequence - 1, limit: 1).first
            guard let line, line.0 == head.sequence, line.1.hasSuffix(",\"mac\":\"\(head.mac)\"}") else {
                throw ArchiveError(.audit, "the audit chain does not hold the entry its head names (cut or changed)")
            }
        }
        return trail
    }

    // MARK: appending

    public func record(_ event: AuditEvent, durability: AuditLog.Durability) async throws(ArchiveError) {
        let result = await withCheckedContinuation { continuation in
            let start = lock.withLock { () -> Bool in
                waiting.append((event, continuation))
                defer { writing = true }
                return !writing
            }
            if start { Task { await self.drain() } }
        }
        try result.get()
    }

    public func flush() async {
        while lock.withLock({ writing }) { try? await Task.sleep(nanoseconds: 5_000_000) }
    }

    /// Writes what waits, a batch per transaction, until nothing does.
    private func drain() async {
        while true {
            let batch = lock.withLock { () -> [(AuditEvent, CheckedContinuation<Result<Void, ArchiveError>, Never>)] in
                let batch = Array(waiting.prefix(Self.batchLimit))
                waiting.removeFirst(batch.count)
                if batch.isEmpty { writing = false }
                return batch
            }
            if batch.isEmpty { return }
            let outcome: Result<Void, ArchiveError>
            do {
                try await append(batch.map(\.0))
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            for (_, continuation) in batch { continuation.resume(returning: outcome) }
        }
    }

    /// Appends events after the head, in one transaction that holds the head row.
    private func append(_ events: [AuditEvent]) async throws(ArchiveError) {
        let (tenant, keyBytes) = (self.tenant, self.keyBytes)
        let (client, logger) = (database.client, database.logger)
        try await database.call {
            try await client.withTransaction(logger: logger) { db in
                var head: (Int64, String)?
                for try await row in try await db.query(
                    "SELECT seq, mac FROM audit_heads WHERE tenant = \(tenant) FOR UPDATE", logger: logger
                ).decode((Int64, String).self) {
                    head = row
                }
                guard var (sequence, previous) = head else {
                    throw ArchiveError(.audit, "the audit chain has no head")
                }
                let key = SymmetricKey(data: keyBytes)
                var sequences: [Int64] = []
                var lines: [String] = []
                for event in events {
                    sequence += 1
                    let body = AuditLog.body(sequence: Int(sequence), event: event, previous: previous)
                    let mac = AuditLog.mac(key, previous: previous, body: body)
                    sequences.append(sequence)
                    lines.append(AuditLog.line(body: body, mac: mac))
                    previous = mac
                }
                let seal = AuditLog.anchorSeal(key, sequence: Int(sequence), mac: previous)
                try await db.query(
                    """
                    INSERT INTO audit_entries (tenant, seq, line)
                    SELECT \(tenant), unnest(\(sequences)::bigint[]), unnest(\(lines)::text[])
                    """, logger: logger)
                try await db.query(
                    """
                    UPDATE audit_heads SET seq = \(sequence), mac = \(previous), seal = \(seal) WHERE tenant = \(tenant)
                    """, logger: logger)
            }
        }
    }

    /// Creates the head (and the imported entries) if no process did meanwhile.
    private func start(with lines: [String]) async throws(ArchiveError) {
        var entries: [(Int64, String)] = []
        var last = (0, AuditLog.genesis)
        for line in lines {
            // The file was checked whole: each line's sequence and MAC are as it states them.
            guard
                case .success(let checked) = AuditLog.checkLine(line, expected: last.0 + 1, previous: last.1, key: key)
            else { throw ArchiveError(.audit, "the data folder's audit log changed while it was carried over") }
            entries.append((Int64(checked.sequence), line))
            last = (checked.sequence, checked.mac)
        }
        let seal = AuditLog.anchorSeal(key, sequence: last.0, mac: last.1)
        let (tenant, client, logger) = (self.tenant, database.client, database.logger)
        let (sequence, mac, rows) = (Int64(last.0), last.1, entries)
        try await database.call(seconds: database.deadline * 4) {
            try await client.withTransaction(logger: logger) { db in
                try await db.query(
                    "SELECT pg_advisory_xact_lock(hashtextextended(\("audit/\(tenant)"), 0))", logger: logger)
                for try await _ in try await db.query(
                    "SELECT 1 FROM audit_heads WHERE tenant = \(tenant)", logger: logger
                ).decode(Int32.self) {
                    return  // Another process started it.
                }
                var offset = 0
                while offset < rows.count {
                    let slice = rows[offset..<min(rows.count, offset + 5_000)]
                    try await db.query(
                        """
                        INSERT INTO audit_entries (tenant, seq, line)
                        SELECT \(tenant), unnest(\(slice.map(\.0))::bigint[]), unnest(\(slice.map(\.1))::text[])
                        """, logger: logger)
                    offset += slice.count
                }
                try await db.query(
                    """
                    INSERT INTO audit_heads (tenant, seq, mac, seal) VALUES (\(tenant), \(sequence), \(mac), \(seal))
                    """, logger: logger)
            }
        }
    }

    // MARK: reading

    struct Head {
        var sequence: Int
        var mac: String
        var seal: String
    }

    func head() async throws(ArchiveError) -> Head? {
        let (tenant, client, logger) = (self.tenant, database.client, database.logger)
        let row = try await database.call { () -> (Int64, String, String)? in
            for try await row in try await client.query(
                "SELECT seq, mac, seal FROM audit_heads WHERE tenant = \(tenant)", logger: logger
            ).decode((Int64, String, String).self) {
                return row
            }
            return nil
        }
        return row.map { Head(sequence: Int($0.0), mac: $0.1, seal: $0.2) }
    }

    /// Up to `limit` entries after sequence `after`, in order.
    func lines(after: Int, limit: Int) async throws(ArchiveError) -> [(Int, String)] {
        let (tenant, client, logger) = (self.tenant, database.client, database.logger)
        let (after64, limit64) = (Int64(after), Int64(limit))
        return try await database.call {
            var rows: [(Int, String)] = []
            for try await (sequence, line) in try await client.query(
                """
                SELECT seq, line FROM audit_entries WHERE tenant = \(tenant) AND seq > \(after64)
                ORDER BY seq LIMIT \(limit64)
                """, logger: logger
            ).decode((Int64, String).self) {
                rows.append((Int(sequence), line))
            }
            return rows
        }
    }

    /// Checks a clinic's whole chain in the database (`facet audit verify --index`): every entry's link and MAC, in
    /// order, and the head's seal and place. Read page by page. `.notFound` when the clinic has no chain.
    public static func check(database: PostgresDatabase, tenant: String, keys: KeyHierarchy)
        async throws(ArchiveError) -> AuditReport
    {
        let trail = PostgresAuditTrail(database: database, tenant: tenant, keys: keys)
        guard let head = try await trail.head() else {
            throw ArchiveError(.notFound, "no audit chain of tenant \(tenant) in the database")
        }
        var incidents: [AuditIncident] = []
        var last = (0, AuditLog.genesis)
        var macAtHead: String? = head.sequence == 0 ? AuditLog.genesis : nil
        func broken(_ entry: Int, _ reason: String) -> AuditReport {
            AuditReport(verdict: .broken(entry: entry, reason: reason), incidents: incidents)
        }
        guard head.seal == AuditLog.anchorSeal(trail.key, sequence: head.sequence, mac: head.mac) else {
            return broken(head.sequence, "the head does not match its MAC")
        }
        while true {
            let page = try await trail.lines(after: last.0, limit: 5_000)
            if page.isEmpty { break }
            for (stored, line) in page {
                switch AuditLog.checkLine(line, expected: last.0 + 1, previous: last.1, key: trail.key) {
                case .failure(let failure):
                    return broken(failure.entry, failure.reason)
                case .success(let checked):
                    guard checked.sequence == stored else {
                        return broken(stored, "the row's sequence differs from its entry's")
                    }
                    if let incident = AuditLog.incident(checked.body, entry: checked.sequence) {
                        incidents.append(incident)
                    }
                    if checked.sequence == head.sequence { macAtHead = checked.mac }
                    last = (checked.sequence, checked.mac)
                }
            }
        }
        if head.sequence > last.0 {
            return broken(last.0 + 1, "entries \(last.0 + 1) to \(head.sequence) are missing (tail cut)")
        }
        if last.0 > head.sequence {
            return broken(head.sequence + 1, "entries after the head (not appended by Facet)")
        }
        guard macAtHead == head.mac else { return broken(head.sequence, "entry differs from the one the head names") }
        return AuditReport(verdict: .intact(entries: last.0, lastMAC: last.1), incidents: incidents)
    }
}
