import Archive
import ArgumentParser
import Foundation

/// `facet audit`: the audit trail.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Check the audit trail.", subcommands: [AuditVerifyCommand.self])
}

/// `facet audit verify --data-dir DIR`: exit 0 on an intact log, 1 naming the first bad entry.
struct AuditVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify the hash-chained audit log: changed, deleted, reordered or cut entries are reported.")

    @Option(name: .customLong("data-dir"), help: "The archive's data folder.")
    var dataDirectory: String = "./facet-data"

    func run() throws {
        let root = URL(fileURLWithPath: dataDirectory)
        let keysFolder = root.appendingPathComponent("keys")
        guard FileManager.default.fileExists(atPath: keysFolder.path) else {
            throw fail("no archive keys under the data folder", code: 2)
        }
        let keys: KeyHierarchy
        do {
            keys = try KeyHierarchy.open(keyDirectory: keysFolder).keys
        } catch {
            throw fail(error.message, code: 2)
        }
        switch AuditLog.verify(folder: root.appendingPathComponent("audit"), keys: keys) {
        case .intact(let entries, _):
            print("audit log intact: \(entries) entries")
        case .broken(let entry, let reason):
            throw fail("audit log broken at entry \(entry): \(reason)", code: 1)
        }
    }
}
