import Foundation
import Testing

@testable import Archive

/// A crash, a full disk or a removed folder must neither stop the archive from starting nor pass as an intact log:
/// torn lines are repaired and recorded, failed writes leave nothing behind, and the anchor kept in the index
/// exposes a removed or cut log, which the next start records as a loss.
@Suite struct AuditRecoveryTests {
    struct Fixture {
        let root: URL
        let keys: KeyHierarchy
        let index: SQLiteStudyIndex
        var audit: URL { root.appendingPathComponent("audit") }
        var log: URL { audit.appendingPathComponent("audit.log") }

        init() throws {
            root = try temporaryFolder()
            keys = try KeyHierarchy.open(keyDirectory: root.appendingPathComponent("keys"), environment: [:]).keys
            index = try SQLiteStudyIndex(path: root.appendingPathComponent("index.sqlite"), keys: keys)
        }

        func open(anchored: Bool = true) throws -> AuditLog {
            try AuditLog(folder: audit, keys: keys, anchor: anchored ? index : nil)
        }

        func check() throws -> AuditReport {
            AuditLog.check(folder: audit, keys: keys, anchor: try index.auditAnchor())
        }

        func fill(_ count: Int) throws {
            let log = try open()
            for number in 1...count {
                try log.append(AuditEvent(actor: "anonymous", address: "::1", action: "stow", outcome: "\(number)"))
            }
        }

        func text() throws -> String { try String(contentsOf: log, encoding: .utf8) }
    }

    @Test func aTornLastLineIsCutAtOpenAndTheRepairIsRecorded() async throws {
        let archive = try Fixture()
        try archive.fill(5)
        let torn = Data(#"{"seq":6,"time":"2026-01-0"#.utf8)
        let handle = try FileHandle(forWritingTo: archive.log)
        try handle.seekToEnd()
        try handle.write(contentsOf: torn)
        try handle.close()
        #expect(try archive.check().incidents == [.tornLine(bytes: torn.count)])

        _ = try archive.open()
        let report = try archive.check()
        guard case .intact(let entries, _) = report.verdict else {
            Issue.record("a repaired log should verify: \(report.verdict)")
            return
        }
        #expect(entries == 6)
        #expect(report.incidents == [.repair(entry: 6, bytesRemoved: torn.count)])
        let lines = try archive.text().split(separator: "\n")
        #expect(lines.count == 6)
        #expect(lines.last?.contains("\"action\":\"audit repair\"") == true)
        #expect(try archive.text().hasSuffix("\n"))
    }

    @Test func aFailedWriteLeavesNoPartialLineAndTheChainGoesOn() async throws {
        let archive = try Fixture()
        try archive.fill(3)
        let before = try archive.text()
        let log = try archive.open()
        // The disk takes half the line, then fails.
        log.writeLine = { descriptor, line in
            _ = line.prefix(line.count / 2).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            return false
        }
        #expect(throws: ArchiveError.self) {
            try log.append(AuditEvent(actor: "anonymous", address: "::1", action: "stow", outcome: "lost"))
        }
        #expect(try archive.text() == before)
        log.writeLine = { writeAll($0, $1) }
        try log.append(AuditEvent(actor: "anonymous", address: "::1", action: "stow", outcome: "kept"))
        #expect(try archive.check() == AuditReport(verdict: .intact(entries: 4, lastMAC: log.headMAC), incidents: []))
    }

    @Test func aRemovedAuditFolderIsBrokenAndTheNextStartRecordsTheLoss() async throws {
        let archive = try Fixture()
        try archive.fill(5)
        let anchored = try #require(try archive.index.auditAnchor())
        #expect(anchored.sequence == 5)
        try FileManager.default.removeItem(at: archive.audit)

        guard case .broken(_, let reason) = try archive.check().verdict else {
            Issue.record("a removed log must not verify as intact")
            return
        }
        #expect(reason.contains("removed or cut"))

        let log = try archive.open()
        try log.append(AuditEvent(actor: "anonymous", address: "::1", action: "qido", outcome: "success"))
        let report = try archive.check()
        guard case .intact(let entries, _) = report.verdict else {
            Issue.record("the new segment should verify: \(report.verdict)")
            return
        }
        #expect(entries == 7)
        #expect(
            report.incidents == [.loss(entry: 6, lastSequence: 0, anchoredSequence: 5, anchoredMAC: anchored.mac)])
        #expect(try archive.text().split(separator: "\n").first?.contains("\"action\":\"security alert\"") == true)
    }

    @Test func aCutTailIsRecordedAsALossAtOpenInsteadOfStoppingTheServer() async throws {
        let archive = try Fixture()
        try archive.fill(5)
        let lines = try archive.text().split(separator: "\n")
        try (lines.prefix(3).joined(separator: "\n") + "\n").write(to: archive.log, atomically: true, encoding: .utf8)
        #expect(AuditLog.verify(folder: archive.audit, keys: archive.keys).isBroken)

        _ = try archive.open()
        let report = try archive.check()
        guard case .intact(let entries, _) = report.verdict, case .loss(6, 3, 5, _) = report.incidents.first else {
            Issue.record("the cut should be recorded as a loss: \(report)")
            return
        }
        #expect(entries == 6)
    }

    @Test func aForgedAnchorInTheIndexIsRefused() async throws {
        let archive = try Fixture()
        try archive.fill(2)
        try archive.index.saveAuditAnchor(AuditAnchor(sequence: 9, mac: String(repeating: "a", count: 64), seal: "x"))
        #expect(try archive.check().verdict.isBroken)
        #expect(throws: ArchiveError.self) { try archive.open() }
    }

    @Test func theIndexAnchorCanBeReadWithoutOpeningTheIndexForWriting() async throws {
        let archive = try Fixture()
        try archive.fill(2)
        let anchor = try SQLiteStudyIndex.auditAnchor(indexAt: archive.root.appendingPathComponent("index.sqlite"))
        #expect(anchor == (try archive.index.auditAnchor()))
        #expect(anchor?.sequence == 2)
        #expect(try SQLiteStudyIndex.auditAnchor(indexAt: archive.root.appendingPathComponent("none.sqlite")) == nil)
    }
}

extension AuditLog {
    /// The MAC of the last entry, as the head names it.
    var headMAC: String {
        let text = (try? String(contentsOf: headURL, encoding: .utf8)) ?? ""
        return text.split(separator: " ").dropFirst().first.map(String.init) ?? ""
    }
}

extension AuditLog.Verdict {
    var isBroken: Bool {
        if case .broken = self { return true }
        return false
    }
}
