import DICOMCore
import Foundation
import GRDB
import Testing

@testable import Archive

/// Start-up never deletes on weak evidence: unknown blobs refuse the start, interrupted stores are quarantined,
/// undecodable rows are left out and reported.
@Suite struct StartUpTests {
    let indexFiles = ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"]

    /// A data folder with `count` stored instances (the archive closed again).
    func filledFolder(_ count: Int) async throws -> (URL, [InstanceRecord]) {
        let folder = try temporaryFolder()
        var records: [InstanceRecord] = []
        let (service, _) = try await openArchive(folder)
        for _ in 0..<count {
            if let (record, _) = await expectStored(service, try Sample.instance()) { records.append(record) }
        }
        return (folder, records)
    }

    @Test func aMissingIndexRefusesTheStartAndKeepsEveryBlob() async throws {
        let (folder, _) = try await filledFolder(2)
        let before = blobFiles(folder)
        #expect(before.count == 2)
        for name in indexFiles { try? FileManager.default.removeItem(at: folder.appendingPathComponent(name)) }
        for _ in 0..<2 {
            let error = await #expect(throws: ArchiveError.self) { try await openArchive(folder) }
            #expect(error?.code == .indexMismatch)
            #expect(error?.message.contains("2 blobs are not known to the index") == true)
            #expect(error?.message.contains("missing, replaced or older") == true)
            #expect(blobFiles(folder) == before)
        }
    }

    @Test func anOlderIndexRefusesTheStartAndKeepsEveryBlob() async throws {
        let (folder, _) = try await filledFolder(1)
        let backup = try temporaryFolder()
        for name in indexFiles where FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path) {
            try FileManager.default.copyItem(
                at: folder.appendingPathComponent(name), to: backup.appendingPathComponent(name))
        }
        do {
            let (service, _) = try await openArchive(folder)
            _ = await expectStored(service, try Sample.instance())
        }
        let before = blobFiles(folder)
        #expect(before.count == 2)
        for name in indexFiles {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
            try? FileManager.default.copyItem(
                at: backup.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        let error = await #expect(throws: ArchiveError.self) { try await openArchive(folder) }
        #expect(error?.code == .indexMismatch)
        #expect(error?.message.contains("1 blob is not known to the index") == true)
        #expect(blobFiles(folder) == before)
    }

    @Test func anInterruptedStoreIsQuarantinedAndTheArchiveOpens() async throws {
        let (folder, records) = try await filledFolder(1)
        var orphan = ""
        do {
            let (service, _) = try await openArchive(folder)
            // What a crash between the blob write and the index commit leaves behind.
            orphan = service.blobs.newBlobID()
            try await service.index.addPendingBlob(orphan, owner: "1.2.3.4")
            _ = try await service.blobs.put(Data("interrupted".utf8), owner: "1.2.3.4", id: orphan)
        }
        let (service, report) = try await openArchive(folder)
        #expect(report.quarantinedBlobs == 1)
        #expect(report.instances == 1)
        #expect(!(try await service.blobs.exists(orphan)))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("quarantine/\(orphan)").path))
        #expect(try await service.index.pendingBlobIDs().isEmpty)
        #expect(try await service.read(records[0]).count == records[0].blob.size)
    }

    @Test func aCommittedStoreLeavesNoPendingRecord() async throws {
        let folder = try temporaryFolder()
        let (service, _) = try await openArchive(folder)
        _ = await expectStored(service, try Sample.instance())
        #expect(try await service.index.pendingBlobIDs().isEmpty)
    }

    @Test func quarantinedBlobsAreRemovedOnlyAfterTheConfiguredTime() async throws {
        let folder = try temporaryFolder()
        _ = try await openArchive(folder)
        let quarantine = folder.appendingPathComponent("quarantine")
        let old = quarantine.appendingPathComponent("0123456789abcdef0123456789abcdef")
        let recent = quarantine.appendingPathComponent("fedcba9876543210fedcba9876543210")
        try Data("old".utf8).write(to: old)
        try Data("recent".utf8).write(to: recent)
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-8 * 86_400)], ofItemAtPath: old.path)
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-6 * 86_400)], ofItemAtPath: recent.path)
        let (_, report) = try await openArchive(folder, quarantineDays: 7)
        #expect(report.expiredQuarantinedBlobs == 1)
        #expect(!FileManager.default.fileExists(atPath: old.path))
        #expect(FileManager.default.fileExists(atPath: recent.path))
    }

    @Test func anUndecodableRowIsLeftOutAndReportedNotFatal() async throws {
        let (folder, records) = try await filledFolder(2)
        let (bad, good) = (records[0], records[1])
        let queue = try DatabaseQueue(path: folder.appendingPathComponent("index.sqlite").path)
        try await queue.write { db in
            try db.execute(
                sql: "UPDATE instances SET attributes = ? WHERE sop_uid = ?",
                arguments: [Data("not sealed".utf8), bad.sopInstanceUID])
        }
        try queue.close()
        let (service, report) = try await openArchive(folder)
        #expect(report.quarantinedRows == [bad.sopInstanceUID])
        #expect(report.instances == 1)
        #expect(service.index.instance(bad.sopInstanceUID) == nil)
        #expect(try await service.read(#require(service.index.instance(good.sopInstanceUID))).count == good.blob.size)
        // Its blob stays referenced: the next start neither refuses nor quarantines it.
        #expect(try await service.blobs.exists(bad.blob.id))
        #expect(try await service.index.referencedBlobIDs().contains(bad.blob.id))
        #expect(report.quarantinedBlobs == 0)
    }
}

/// An object store whose writes land but whose answers are lost (a timeout after the bytes arrived): what an S3
/// store can do, over the data folder's files.
struct LostAnswerObjectStore: ObjectStore {
    let files: FileObjectStore
    var scratchFolder: URL { files.scratchFolder }
    func put(_ key: String, data: Data) async throws(ArchiveError) {
        try await files.put(key, data: data)
        throw ArchiveError(.unavailable, "the object store cannot be reached")
    }
    func put(_ key: String, file: URL) async throws(ArchiveError) {
        try await files.put(key, file: file)
        throw ArchiveError(.unavailable, "the object store cannot be reached")
    }
    func get(_ key: String, range: Range<Int>) async throws(ArchiveError) -> Data {
        try await files.get(key, range: range)
    }
    func delete(_ key: String) async throws(ArchiveError) { try await files.delete(key) }
    func exists(_ key: String) async throws(ArchiveError) -> Bool { try await files.exists(key) }
    func quarantine(_ key: String) async throws(ArchiveError) { try await files.quarantine(key) }
    func expireQuarantine(before date: Date) async throws(ArchiveError) -> Int {
        try await files.expireQuarantine(before: date)
    }
    /// Never listed, like a bucket.
    func allKeys() async throws(ArchiveError) -> [String]? { nil }
}

@Suite struct UnknownOutcomeTests {
    @Test func aWriteWhoseAnswerWasLostIsQuarantinedAtTheNextStart() async throws {
        let folder = try temporaryFolder()
        do {
            let (service, _) = try await ArchiveService.openEmbedded(
                dataDirectory: folder, objects: LostAnswerObjectStore(files: try FileObjectStore(root: folder)),
                environment: [:])
            let outcome = await service.store(try Sample.instance())
            guard case .failed(_, _, let reason, _, _) = outcome else {
                Issue.record("a store whose blob write was not confirmed must fail")
                return
            }
            #expect(reason == FailureReason.outOfResources)
            // Nothing acknowledged, but the pending record stays: the object may exist.
            #expect(try await service.index.pendingBlobIDs().count == 1)
            #expect(service.index.catalog().instances.isEmpty)
        }
        let (service, report) = try await ArchiveService.openEmbedded(
            dataDirectory: folder, objects: LostAnswerObjectStore(files: try FileObjectStore(root: folder)),
            environment: [:])
        #expect(report.quarantinedBlobs == 1)
        #expect(try await service.index.pendingBlobIDs().isEmpty)
        let quarantined = try FileManager.default.contentsOfDirectory(
            atPath: folder.appendingPathComponent("quarantine").path)
        #expect(quarantined.count == 1)
    }
}

@Suite struct SlotsTests {
    @Test func slotsBoundHoldersAndRefuseBeyondTheQueue() async throws {
        let pool = BlockingPool(threads: 1, queueLimit: 1)
        let slots = pool.objects
        try await slots.acquire(admitted: false)
        let second = Task { try await slots.acquire(admitted: false) }
        // The second waits (the queue holds one); a third, not admitted, is refused at once.
        while slots.waiters < 1 { try await Task.sleep(nanoseconds: 1_000_000) }
        await #expect(throws: BlockingPool.Busy.self) { try await slots.acquire(admitted: false) }
        // An admitted caller waits however long the queue.
        let admitted = Task { try await slots.acquire(admitted: true) }
        slots.release()
        try await second.value
        slots.release()
        try await admitted.value
        slots.release()
        try await slots.acquire(admitted: false)
    }
}

/// An index whose commit lands but whose answer is lost (a database that answered after the deadline).
struct LostAnswerIndex: StudyIndex {
    let inner: SQLiteStudyIndex
    func catalog() -> Catalog { inner.catalog() }
    func instance(_ sopInstanceUID: String) -> InstanceRecord? { inner.instance(sopInstanceUID) }
    var quarantinedRows: [String] { inner.quarantinedRows }
    func commit(_ entry: IndexEntry, allowNewVersion: Bool) async throws(ArchiveError) -> CommitResult {
        _ = try await inner.commit(entry, allowNewVersion: allowNewVersion)
        throw ArchiveError(.unavailable, "the index database did not answer in time")
    }
    func metadataJSON(_ uid: String) async throws(ArchiveError) -> String? { try await inner.metadataJSON(uid) }
    func studyUIDs(patientID: String) async throws(ArchiveError) -> [String] {
        try await inner.studyUIDs(patientID: patientID)
    }
    func studyUIDs(accessionNumber: String) async throws(ArchiveError) -> [String] {
        try await inner.studyUIDs(accessionNumber: accessionNumber)
    }
    func referencedBlobIDs() async throws(ArchiveError) -> Set<String> { try await inner.referencedBlobIDs() }
    func addPendingBlob(_ id: String, owner: String) async throws(ArchiveError) {
        try await inner.addPendingBlob(id, owner: owner)
    }
    func removePendingBlob(_ id: String) async throws(ArchiveError) { try await inner.removePendingBlob(id) }
    func pendingBlobIDs() async throws(ArchiveError) -> Set<String> { try await inner.pendingBlobIDs() }
    func addOriginal(_ original: OriginalFile, to uid: String) async throws(ArchiveError) {
        try await inner.addOriginal(original, to: uid)
    }
    func softDelete(_ uids: [String], why: Deletion) async throws(ArchiveError) -> [InstanceRecord] {
        try await inner.softDelete(uids, why: why)
    }
    func deletions() async throws(ArchiveError) -> [DeletedInstance] { try await inner.deletions() }
    func originals(of uid: String) async throws(ArchiveError) -> [OriginalFile] { try await inner.originals(of: uid) }
}

@Suite struct LostIndexAnswerTests {
    @Test func aCommitWhoseAnswerWasLostKeepsItsBlob() async throws {
        let folder = try temporaryFolder()
        let bytes = try Sample.instance()
        var sop = ""
        do {
            let (keys, _) = try KeyHierarchy.open(
                keyDirectory: folder.appendingPathComponent("keys"), environment: [:])
            let index = try SQLiteStudyIndex(path: folder.appendingPathComponent("index.sqlite"), keys: keys)
            let service = ArchiveService(
                blobs: EncryptedBlobStore(objects: try FileObjectStore(root: folder), keys: keys),
                index: LostAnswerIndex(inner: index),
                audit: try AuditLog(folder: folder.appendingPathComponent("audit"), keys: keys), keys: keys,
                duplicatePolicy: .reject, temporaryDirectory: folder.appendingPathComponent("tmp"))
            guard case .failed(_, let uid, _, _, _) = await service.store(bytes) else {
                Issue.record("a commit whose answer was lost must not be acknowledged")
                return
            }
            sop = try #require(uid)
        }
        // The index did commit: after a restart the instance is there and its blob was not deleted.
        let (service, report) = try await openArchive(folder)
        #expect(report.quarantinedBlobs == 0)
        let record = try #require(service.index.instance(sop))
        #expect(try await service.read(record) == bytes)
    }
}

@Suite struct IndexMigrationTests {
    @Test func theSchemaIsRecordedAndAnArchiveFromBeforeMigrationsOpensUnchanged() async throws {
        let (folder, records) = try await StartUpTests().filledFolder(2)
        let path = folder.appendingPathComponent("index.sqlite").path
        let identifier = "archive v1: studies, series, instances, originals, deletions, pending blobs, audit anchor"
        do {
            let queue = try DatabaseQueue(path: path)
            let applied = try await queue.read { db in
                try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
            }
            #expect(applied.contains(identifier))
            // What an archive made before the migrator existed looks like: the tables, no record of them.
            try await queue.write { db in
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = ?", arguments: [identifier])
            }
        }
        let (service, report) = try await openArchive(folder)
        #expect(report.instances == 2)
        #expect(try await service.read(records[0]).count == records[0].blob.size)
        let queue = try DatabaseQueue(path: path)
        let applied = try await queue.read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
        }
        #expect(applied.contains(identifier))
    }
}
