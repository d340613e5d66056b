import Foundation
import Testing

@testable import Archive

func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("facet-archive-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct KeyTests {
    @Test func masterKeyIsCreatedOnceWithOwnerOnlyPermissions() async throws {
        let folder = try temporaryFolder()
        let (_, created) = try KeyHierarchy.open(keyDirectory: folder, environment: [:])
        #expect(created)
        var info = stat()
        #expect(stat(folder.appendingPathComponent("master.key").path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let (_, again) = try KeyHierarchy.open(keyDirectory: folder, environment: [:])
        #expect(!again)
    }

    @Test func aKeyFileOthersCanReadIsRefused() async throws {
        let folder = try temporaryFolder()
        _ = try KeyHierarchy.open(keyDirectory: folder, environment: [:])
        chmod(folder.appendingPathComponent("master.key").path, 0o644)
        let error = #expect(throws: ArchiveError.self) { try KeyHierarchy.open(keyDirectory: folder, environment: [:]) }
        #expect(error?.message.contains("chmod 600") == true)
    }

    @Test func theWrongMasterKeyCannotOpenTheTenantKey() async throws {
        let folder = try temporaryFolder()
        _ = try KeyHierarchy.open(keyDirectory: folder, environment: [:])
        let other = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        #expect(throws: ArchiveError.self) {
            try KeyHierarchy.open(keyDirectory: folder, environment: ["FACET_MASTER_KEY": other])
        }
    }
}

@Suite struct AuditLogTests {
    func filledLog() throws -> (URL, KeyHierarchy) {
        let folder = try temporaryFolder()
        let (keys, _) = try KeyHierarchy.open(keyDirectory: folder.appendingPathComponent("keys"), environment: [:])
        let log = try AuditLog(folder: folder.appendingPathComponent("audit"), keys: keys)
        for index in 1...5 {
            try log.append(
                AuditEvent(
                    actor: "anonymous", address: "127.0.0.1", action: index % 2 == 0 ? "qido" : "stow",
                    studyUID: "1.2.3.\(index)", instanceUIDs: ["1.2.3.\(index).1"], outcome: "success"))
        }
        return (folder.appendingPathComponent("audit"), keys)
    }

    func lines(_ folder: URL) throws -> [String] {
        try String(contentsOf: folder.appendingPathComponent("audit.log"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
    }

    func write(_ lines: [String], _ folder: URL) throws {
        try (lines.joined(separator: "\n") + "\n").write(
            to: folder.appendingPathComponent("audit.log"), atomically: true, encoding: .utf8)
    }

    @Test func anIntactLogVerifies() async throws {
        let (folder, keys) = try filledLog()
        #expect(AuditLog.verify(folder: folder, keys: keys) == .intact(entries: 5, lastMAC: AuditLog.verifyMAC(folder)))
        // Reopening continues the chain.
        let log = try AuditLog(folder: folder, keys: keys)
        try log.append(AuditEvent(actor: "anonymous", address: "::1", action: "wado", outcome: "success"))
        guard case .intact(let count, _) = AuditLog.verify(folder: folder, keys: keys) else {
            Issue.record("log should verify")
            return
        }
        #expect(count == 6)
    }

    @Test func aChangedRowIsFound() async throws {
        let (folder, keys) = try filledLog()
        var rows = try lines(folder)
        rows[2] = rows[2].replacingOccurrences(of: "\"success\"", with: "\"failure\"")
        try write(rows, folder)
        #expect(
            AuditLog.verify(folder: folder, keys: keys)
                == .broken(entry: 3, reason: "content does not match its MAC (changed)"))
    }

    @Test func aDeletedRowIsFound() async throws {
        let (folder, keys) = try filledLog()
        var rows = try lines(folder)
        rows.remove(at: 1)
        try write(rows, folder)
        guard case .broken(let entry, _) = AuditLog.verify(folder: folder, keys: keys) else {
            Issue.record("deletion not detected")
            return
        }
        #expect(entry == 2)
    }

    @Test func reorderedRowsAreFound() async throws {
        let (folder, keys) = try filledLog()
        var rows = try lines(folder)
        rows.swapAt(2, 3)
        try write(rows, folder)
        guard case .broken(let entry, _) = AuditLog.verify(folder: folder, keys: keys) else {
            Issue.record("reordering not detected")
            return
        }
        #expect(entry == 3)
    }

    @Test func aCutTailIsFound() async throws {
        let (folder, keys) = try filledLog()
        let rows = try lines(folder)
        try write(Array(rows.prefix(3)), folder)
        guard case .broken(let entry, let reason) = AuditLog.verify(folder: folder, keys: keys) else {
            Issue.record("cut not detected")
            return
        }
        #expect(entry == 4)
        #expect(reason.contains("tail cut"))
    }

    @Test func openingABrokenLogFails() async throws {
        let (folder, keys) = try filledLog()
        var rows = try lines(folder)
        rows[0] = rows[0].replacingOccurrences(of: "127.0.0.1", with: "10.0.0.9")
        try write(rows, folder)
        #expect(throws: ArchiveError.self) { try AuditLog(folder: folder, keys: keys) }
    }
}

extension AuditLog {
    /// The MAC of the last line, read back for comparisons.
    static func verifyMAC(_ folder: URL) -> String {
        let text = (try? String(contentsOf: folder.appendingPathComponent("audit.log"), encoding: .utf8)) ?? ""
        guard let last = text.split(separator: "\n").last, let range = last.range(of: "\"mac\":\"") else { return "" }
        return String(last[range.upperBound...].dropLast(2))
    }
}
