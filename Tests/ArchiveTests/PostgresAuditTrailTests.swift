import Foundation
import Testing

@testable import Archive

/// The audit chain a server setup keeps in PostgreSQL: one chain that every replica appends to, in the same line
/// format as the file log, verified whole by `PostgresAuditTrail.check` (what `facet audit verify --index` runs).
@Suite(.enabled(if: IndexKind.available.contains(.postgres), "needs the test PostgreSQL server (make test starts it)"))
struct PostgresAuditTrailTests {
    /// A fresh clinic on the shared test server, with its own key.
    func clinic() throws -> (tenant: String, keys: KeyHierarchy) {
        let folder = try temporaryFolder()
        let tenant = "audit-\(UUID().uuidString.prefix(8).lowercased())"
        let keys = try KeyHierarchy.open(keyDirectory: folder.appendingPathComponent("keys"), tenant: tenant).keys
        return (tenant, keys)
    }

    func event(_ number: Int, actor: String = "dr-a") -> AuditEvent {
        AuditEvent(
            actor: actor, address: "127.0.0.1", action: "qido", studyUID: "1.2.3.\(number)", outcome: "success",
            request: "request-\(number)")
    }

    @Test func threeReplicasAppendingAtOnceMakeOneVerifiableChain() async throws {
        let (tenant, keys) = try clinic()
        let first = try await IndexKind.database()
        let second = try await IndexKind.secondDatabase()
        var trails: [PostgresAuditTrail] = []
        for database in [first, second, first] {
            trails.append(try await PostgresAuditTrail.open(database: database, tenant: tenant, keys: keys))
        }
        let replicas = trails
        await withThrowingTaskGroup(of: Void.self) { group in
            for (replica, trail) in replicas.enumerated() {
                for number in 0..<40 {
                    group.addTask {
                        try await trail.record(
                            event(number, actor: "replica-\(replica)"),
                            durability: number.isMultiple(of: 2) ? .immediate : .batched)
                    }
                }
            }
        }
        let report = try await PostgresAuditTrail.check(database: first, tenant: tenant, keys: keys)
        guard case .intact(let entries, _) = report.verdict else {
            Issue.record("not intact: \(report.verdict)")
            return
        }
        #expect(entries == 120, "every acknowledged event is in the one chain")
        // Each line is the file log's line: it passes the file log's own check too.
        let folder = try temporaryFolder()
        var text = ""
        var after = 0
        while true {
            let page = try await replicas[0].lines(after: after, limit: 50)
            if page.isEmpty { break }
            for (sequence, line) in page {
                text += line + "\n"
                after = sequence
            }
        }
        try Data(text.utf8).write(to: folder.appendingPathComponent("audit.log"))
        let last = try #require(AuditLog.completeLines(folder: folder).last)
        #expect(last.hasPrefix("{\"seq\":120,"))
        #expect(!text.contains("P-"), "no Patient ID: the events name UIDs and keyed hashes only")
    }

    @Test func aChangedRemovedOrCutEntryIsFoundAndAForgedHeadRefusesToOpen() async throws {
        let (tenant, keys) = try clinic()
        let database = try await IndexKind.database()
        let trail = try await PostgresAuditTrail.open(database: database, tenant: tenant, keys: keys)
        for number in 1...5 { try await trail.record(event(number), durability: .immediate) }
        func verdict() async throws -> AuditLog.Verdict {
            try await PostgresAuditTrail.check(database: database, tenant: tenant, keys: keys).verdict
        }
        #expect(try await verdict() == .intact(entries: 5, lastMAC: try #require(try await trail.head()).mac))

        // Changed: an entry's actor rewritten.
        try await database.execute(
            unsafeSQL: """
                UPDATE audit_entries SET line = replace(line, '"actor":"dr-a"', '"actor":"dr-b"')
                WHERE tenant = '\(tenant)' AND seq = 3
                """)
        guard case .broken(let changed, _) = try await verdict() else { throw ArchiveError(.audit, "not found") }
        #expect(changed == 3)
        try await database.execute(
            unsafeSQL: """
                UPDATE audit_entries SET line = replace(line, '"actor":"dr-b"', '"actor":"dr-a"')
                WHERE tenant = '\(tenant)' AND seq = 3
                """)
        #expect(try await verdict() == .intact(entries: 5, lastMAC: try #require(try await trail.head()).mac))

        // Cut: the last entry deleted (the head still names it).
        try await database.execute(unsafeSQL: "DELETE FROM audit_entries WHERE tenant = '\(tenant)' AND seq = 5")
        guard case .broken(let cut, let reason) = try await verdict() else { throw ArchiveError(.audit, "not found") }
        #expect(cut == 5 && reason.contains("tail cut"))
        await #expect(throws: ArchiveError.self) {
            _ = try await PostgresAuditTrail.open(database: database, tenant: tenant, keys: keys)
        }

        // A head moved back to match the cut fails its seal: without the key no head can be made.
        try await database.execute(
            unsafeSQL: "UPDATE audit_heads SET seq = 4 WHERE tenant = '\(tenant)'")
        guard case .broken = try await verdict() else { throw ArchiveError(.audit, "not found") }
        await #expect(throws: ArchiveError.self) {
            _ = try await PostgresAuditTrail.open(database: database, tenant: tenant, keys: keys)
        }
    }

    @Test func aDataFoldersLogIsCarriedOverLineForLineAndTheChainGoesOn() async throws {
        let (tenant, keys) = try clinic()
        let folder = try temporaryFolder().appendingPathComponent("audit")
        let log = try AuditLog(folder: folder, keys: keys)
        for number in 1...7 { try log.append(event(number)) }
        let original = AuditLog.completeLines(folder: folder)
        let database = try await IndexKind.database()
        let trail = try await PostgresAuditTrail.open(
            database: database, tenant: tenant, keys: keys, importing: folder)
        try await trail.record(event(8), durability: .immediate)
        let stored = try await trail.lines(after: 0, limit: 100).map(\.1)
        #expect(Array(stored.prefix(7)) == original, "the file's lines, byte for byte")
        #expect(stored.count == 8)
        let report = try await PostgresAuditTrail.check(database: database, tenant: tenant, keys: keys)
        guard case .intact(let entries, _) = report.verdict else {
            Issue.record("not intact: \(report.verdict)")
            return
        }
        #expect(entries == 8)
        // Opening again (another replica, a restart) imports nothing twice.
        _ = try await PostgresAuditTrail.open(database: database, tenant: tenant, keys: keys, importing: folder)
        #expect(try await trail.lines(after: 0, limit: 100).count == 8)
    }
}
