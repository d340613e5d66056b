import Foundation
import Testing

@testable import Archive

func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("facet-archive-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct KeyTests {
    @Test func masterKeyIsCreatedOnceWithOwnerOnlyPermissions() throws {
        let folder = try temporaryFolder()
        let (_, created) = try KeyHierarchy.open(keyDirectory: folder, environment: [:])
        #expect(created)
        var info = stat()
        #expect(stat(folder.appendingPathComponent("master.key").path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let (_, again) = try KeyHierarchy.open(keyDirectory: folder, environment: [:])
        #expect(!again)
    }

    @Test func aKeyFileOthersCanReadIsRefused() throws {
        let folder = try temporaryFolder()
        _ = try KeyHierarchy.open(keyDirectory: folder, environment: [:])
        chmod(folder.appendingPathComponent("master.key").path, 0o644)
        let error = #expect(throws: ArchiveError.self) { try KeyHierarchy.open(keyDirectory: folder, environment: [:]) }
        #expect(error?.message.contains("chmod 600") == true)
    }

    @Test func theWrongMasterKeyCannotOpenTheTenantKey() throws {
        let folder = try temporaryFolder()
        _ = try KeyHierarchy.open(keyDirectory: folder, environment: [:])
        let other = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        #expect(throws: ArchiveError.self) {
            try KeyHierarchy.open(keyDirectory: folder, environment: ["FACET_MASTER_KEY": other])
        }
    }
}

@Suite struct BlobStoreTests {
    func store(chunk: Int = 4096) throws -> (EncryptedFileBlobStore, URL) {
        let folder = try temporaryFolder()
        let (keys, _) = try KeyHierarchy.open(keyDirectory: folder.appendingPathComponent("keys"), environment: [:])
        return (try EncryptedFileBlobStore(root: folder, keys: keys, chunkSize: chunk), folder)
    }

    func sample(_ count: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    @Test(arguments: [0, 1, 4095, 4096, 4097, 50_000])
    func whatIsStoredComesBackIdentical(_ size: Int) throws {
        let (store, _) = try store()
        let data = sample(size)
        let reference = try store.put(data, owner: "1.2.3")
        #expect(reference.size == size)
        #expect(try store.get(reference.id, owner: "1.2.3") == data)
    }

    @Test func rangesAreReadAcrossChunks() throws {
        let (store, _) = try store()
        let data = sample(20_000)
        let id = try store.put(data, owner: "1.2.3").id
        for range in [0..<1, 4000..<4200, 4096..<8192, 19_999..<20_000, 0..<20_000, 100..<100] {
            #expect(try store.read(id, owner: "1.2.3", range: range) == data.subdata(in: range))
        }
        #expect(throws: ArchiveError.self) { try store.read(id, owner: "1.2.3", range: 19_000..<20_001) }
    }

    @Test func streamingAFileStoresTheSameBytes() throws {
        let (store, folder) = try store()
        let data = sample(30_001)
        let input = folder.appendingPathComponent("input.bin")
        try data.write(to: input)
        let reference = try store.put(contentsOf: input, owner: "1.2.3")
        #expect(try store.get(reference.id, owner: "1.2.3") == data)
        #expect(reference.sha256.count == 64)
    }

    @Test func aFlippedByteIsDetectedAndNothingIsServed() throws {
        let (store, _) = try store()
        let data = sample(10_000)
        let id = try store.put(data, owner: "1.2.3").id
        let url = try store.path(id)
        var raw = try Data(contentsOf: url)
        for position in [EncryptedFileBlobStore.headerSize + 10, raw.count - 1, 20, 100] {
            let original = raw
            raw[position] ^= 0x01
            try raw.write(to: url)
            let error = #expect(throws: ArchiveError.self) { try store.get(id, owner: "1.2.3") }
            #expect(error?.code == .integrity)
            raw = original
        }
        try raw.prefix(raw.count - 5).write(to: url)
        #expect(throws: ArchiveError.self) { try store.get(id, owner: "1.2.3") }
    }

    @Test func nothingIdentifyingIsOnDiskInTheClear() throws {
        let (store, folder) = try store()
        var dicom = Data(count: 128) + Data("DICM".utf8)
        dicom += Data("Müller^Jürgen PATIENT-ID-0042".utf8) + Data([0xFF, 0xD8, 0xFF, 0xE0]) + sample(5000)
        _ = try store.put(dicom, owner: "1.2.3")
        let files =
            FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        for file in files where (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            let bytes = try Data(contentsOf: file)
            for needle in ["DICM", "Müller", "PATIENT-ID-0042"] {
                #expect(bytes.range(of: Data(needle.utf8)) == nil, "\(needle) in \(file.lastPathComponent)")
            }
            #expect(bytes.range(of: Data([0xFF, 0xD8, 0xFF])) == nil)
        }
    }

    @Test func leftoversOfInterruptedWritesAreCleanedAtStartUp() throws {
        let (store, folder) = try store()
        try Data("partial".utf8).write(to: folder.appendingPathComponent("tmp/deadbeef"))
        #expect(store.cleanUp() == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("tmp").path).isEmpty)
    }

    @Test func unknownIdsAreNotFound() throws {
        let (store, _) = try store()
        for id in ["", "../../etc/passwd", String(repeating: "a", count: 32), "ABCDEF"] {
            let error = #expect(throws: ArchiveError.self) { try store.get(id, owner: "1.2.3") }
            #expect(error?.code == .notFound)
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

    @Test func anIntactLogVerifies() throws {
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

    @Test func aChangedRowIsFound() throws {
        let (folder, keys) = try filledLog()
        var rows = try lines(folder)
        rows[2] = rows[2].replacingOccurrences(of: "\"success\"", with: "\"failure\"")
        try write(rows, folder)
        #expect(
            AuditLog.verify(folder: folder, keys: keys)
                == .broken(entry: 3, reason: "content does not match its MAC (changed)"))
    }

    @Test func aDeletedRowIsFound() throws {
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

    @Test func reorderedRowsAreFound() throws {
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

    @Test func aCutTailIsFound() throws {
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

    @Test func openingABrokenLogFails() throws {
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
