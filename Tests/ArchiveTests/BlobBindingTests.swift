import Foundation
import Testing

@testable import Archive

/// Blob format v2 binds each blob to its id and owner; the spool binds each chunk to its position.
@Suite struct BlobBindingTests {
    func store() throws -> (EncryptedFileBlobStore, URL) {
        let folder = try temporaryFolder()
        let (keys, _) = try KeyHierarchy.open(keyDirectory: folder.appendingPathComponent("keys"), environment: [:])
        return (try EncryptedFileBlobStore(root: folder, keys: keys, chunkSize: 4096), folder)
    }

    func sample(_ count: Int, _ seed: UInt8) -> Data { Data((0..<count).map { UInt8(truncatingIfNeeded: $0) &+ seed }) }

    @Test func swappedBlobFilesAreBothRefused() throws {
        let (store, _) = try store()
        let a = try store.put(sample(10_000, 1), owner: "1.2.3.1")
        let b = try store.put(sample(10_000, 2), owner: "1.2.3.2")
        let pathA = try store.path(a.id)
        let pathB = try store.path(b.id)
        let bytesA = try Data(contentsOf: pathA)
        try Data(contentsOf: pathB).write(to: pathA)
        try bytesA.write(to: pathB)
        for (id, owner) in [(a.id, "1.2.3.1"), (b.id, "1.2.3.2")] {
            let error = #expect(throws: ArchiveError.self) { try store.get(id, owner: owner) }
            #expect(error?.code == .integrity)
        }
    }

    @Test func aBlobReadForAnotherOwnerIsRefused() throws {
        let (store, _) = try store()
        let reference = try store.put(sample(5000, 3), owner: "1.2.3.1")
        #expect(try store.get(reference.id, owner: "1.2.3.1") == sample(5000, 3))
        let error = #expect(throws: ArchiveError.self) { try store.get(reference.id, owner: "1.2.3.2") }
        #expect(error?.code == .integrity)
        #expect(throws: ArchiveError.self) { try store.read(reference.id, owner: "1.2.3.2", range: 0..<10) }
    }

    @Test func aVersionOneBlobIsStillRead() throws {
        let (store, _) = try store()
        let data = sample(9000, 4)
        let reference = try store.put(data, owner: "ignored", id: store.newBlobID(), formatVersion: 1)
        let raw = try Data(contentsOf: try store.path(reference.id))
        #expect(raw[4] == 1)
        // Version 1 bound neither the id nor the owner.
        #expect(try store.get(reference.id, owner: "1.2.3.9") == data)
        #expect(try store.read(reference.id, owner: "1.2.3.9", range: 4000..<5000) == data.subdata(in: 4000..<5000))
    }

    @Test func newBlobsAreWrittenInVersionTwo() throws {
        let (store, _) = try store()
        let reference = try store.put(sample(100, 5), owner: "1.2.3.1")
        #expect(try Data(contentsOf: try store.path(reference.id))[4] == 2)
    }

    @Test func readComparesTheIndexHashWithTheBlob() throws {
        let folder = try temporaryFolder()
        let (service, _) = try openArchive(folder)
        guard let (record, _) = expectStored(service, try Sample.instance()) else { return }
        #expect(try service.read(record).count == record.blob.size)
        var altered = record
        altered.blob.sha256 = String(repeating: "0", count: 64)
        let error = #expect(throws: ArchiveError.self) { try service.read(altered) }
        #expect(error?.code == .integrity)
    }

    @Test func anInstanceBlobMovedToAnotherInstanceIsNotServed() throws {
        let folder = try temporaryFolder()
        let (service, _) = try openArchive(folder)
        guard let (first, _) = expectStored(service, try Sample.instance()),
            let (second, _) = expectStored(service, try Sample.instance())
        else { return }
        let store = try #require(service.blobs as? EncryptedFileBlobStore)
        let pathA = try store.path(first.blob.id)
        let pathB = try store.path(second.blob.id)
        let bytesA = try Data(contentsOf: pathA)
        try Data(contentsOf: pathB).write(to: pathA)
        try bytesA.write(to: pathB)
        for record in [first, second] {
            let error = #expect(throws: ArchiveError.self) { try service.read(record) }
            #expect(error?.code == .integrity)
        }
    }
}

@Suite struct SealedSpoolTests {
    /// Each record is `length (u32 LE) | sealed chunk`.
    func records(_ raw: Data) -> [Data] {
        var out: [Data] = []
        var offset = 0
        while offset + 4 <= raw.count {
            let length = raw[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | Int($1) }
            out.append(raw.subdata(in: offset..<offset + 4 + length))
            offset += 4 + length
        }
        return out
    }

    func filledSpool() throws -> (SealedSpool, Data) {
        let spool = try SealedSpool(folder: try temporaryFolder())
        let data = Data((0..<(5 << 19)).map { UInt8(truncatingIfNeeded: $0 / 7) })
        try spool.append(data)
        try spool.close()
        return (spool, data)
    }

    @Test func aSpoolReadsBackWhatWasWritten() throws {
        let (spool, data) = try filledSpool()
        #expect(try spool.readAll() == data)
    }

    @Test func reorderedChunksAreRefused() throws {
        let (spool, _) = try filledSpool()
        var parts = records(try Data(contentsOf: spool.url))
        #expect(parts.count == 3)
        parts.swapAt(0, 1)
        try parts.reduce(Data(), +).write(to: spool.url)
        let error = #expect(throws: ArchiveError.self) { try spool.readAll() }
        #expect(error?.code == .integrity)
    }

    @Test func aDroppedTrailingChunkIsRefused() throws {
        let (spool, _) = try filledSpool()
        let parts = records(try Data(contentsOf: spool.url))
        try parts.dropLast().reduce(Data(), +).write(to: spool.url)
        let error = #expect(throws: ArchiveError.self) { try spool.readAll() }
        #expect(error?.code == .integrity)
    }
}
