import Archive
import ArgumentParser
import Foundation

/// `facet audit`: the audit trail.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Check the audit trail.", subcommands: [AuditVerifyCommand.self])
}

/// `facet audit verify --data-dir DIR`: exit 0 on an intact log (noting repairs of torn lines), 1 naming the first
/// bad entry, a log behind the anchor kept in the index (removed or cut), or losses the chain records.
struct AuditVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract:
            "Verify the hash-chained audit log: changed, deleted, reordered or cut entries, a removed log and recorded losses are reported."
    )

    @Option(name: .customLong("data-dir"), help: "The archive's data folder.")
    var dataDirectory: String = "./facet-data"

    @Option(help: "The clinic whose log to verify (each tenant has its own, under DATA/tenants/NAME).")
    var tenant: String = "default"

    @Option(
        help:
            "The index database of a server setup, which keeps the chain every replica appends to (postgres://…; or FACET_INDEX)."
    )
    var index: String?

    func run() async throws {
        let indexURL = index ?? ProcessInfo.processInfo.environment["FACET_INDEX"].flatMap { $0.isEmpty ? nil : $0 }
        let keysFolder = URL(fileURLWithPath: dataDirectory).appendingPathComponent("keys")
        guard Account.isValidTenant(tenant) else { throw fail("not a tenant name: \(tenant)", code: 2) }
        let root =
            tenant == "default"
            ? URL(fileURLWithPath: dataDirectory)
            : URL(fileURLWithPath: dataDirectory).appendingPathComponent("tenants").appendingPathComponent(tenant)
        // Checked before the keys are opened: opening them would create a key for a mistyped tenant.
        guard
            indexURL != nil || FileManager.default.fileExists(atPath: root.appendingPathComponent("index.sqlite").path)
        else {
            throw fail("no archive of tenant \(tenant) under the data folder", code: 2)
        }
        guard FileManager.default.fileExists(atPath: keysFolder.path) else {
            throw fail("no archive keys under the data folder", code: 2)
        }
        let keys: KeyHierarchy
        let anchor: AuditAnchor?
        // Verifying never makes a key: a folder without its master key (and no FACET_MASTER_KEY) is refused here.
        guard
            ProcessInfo.processInfo.environment["FACET_MASTER_KEY"] != nil
                || FileManager.default.fileExists(atPath: keysFolder.appendingPathComponent("master.key").path)
        else {
            throw fail("no master key under the data folder (nor FACET_MASTER_KEY)", code: 2)
        }
        let report: AuditReport
        do throws(ArchiveError) {
            if let indexURL {
                // A server setup: the chain every replica appends to, kept in the database.
                let database = try await PostgresDatabase.open(try PostgresDatabase.Location.parse(indexURL))
                defer { database.close() }
                keys = try await database.keys(
                    keyDirectory: keysFolder, tenant: tenant, environment: ProcessInfo.processInfo.environment
                ).keys
                anchor = nil
                report = try await PostgresAuditTrail.check(database: database, tenant: tenant, keys: keys)
            } else {
                keys = try KeyHierarchy.open(keyDirectory: keysFolder, tenant: tenant).keys
                anchor = try SQLiteStudyIndex.auditAnchor(indexAt: root.appendingPathComponent("index.sqlite"))
                report = AuditLog.check(folder: root.appendingPathComponent("audit"), keys: keys, anchor: anchor)
            }
        } catch {
            throw fail(error.message, code: 2)
        }
        let entries: Int
        switch report.verdict {
        case .intact(let count, _):
            entries = count
        case .broken(let entry, let reason):
            throw fail("audit log broken at entry \(entry): \(reason)", code: 1)
        }
        var losses: [String] = []
        var notes: [String] = []
        for incident in report.incidents {
            switch incident {
            case .loss(let entry, let last, let anchored, let mac):
                let what = anchored > last ? "entries \(last + 1) to \(anchored)" : "the entries up to \(anchored)"
                losses.append("\(what) lost (anchored MAC \(mac.prefix(16))…), recorded at entry \(entry)")
            case .repair(let entry, let bytes):
                notes.append(
                    "an incomplete last line of \(bytes) bytes (a torn write) was cut, recorded at entry \(entry)")
            case .tornLine(let bytes):
                notes.append("the last line is incomplete (\(bytes) bytes, a torn write); the server cuts it at start")
            }
        }
        guard losses.isEmpty else {
            throw fail(
                "audit log chain intact, but it records lost entries: " + losses.joined(separator: "; "), code: 1)
        }
        print(
            "audit log intact: \(entries) entries"
                + (indexURL != nil
                    ? " (the chain in the index database)" : anchor == nil ? " (no anchor in the index)" : ""))
        for note in notes { print("note: \(note)") }
    }
}
