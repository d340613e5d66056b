import Foundation
import Testing

@testable import Archive

/// What the archive adds over the blob store: the index's size and SHA-256 are compared with the blob's, and a
/// blob is bound to its instance.
@Suite struct BlobBindingTests {
    @Test func readComparesTheIndexHashWithTheBlob() async throws {
        let folder = try temporaryFolder()
        let (service, _) = try await openArchive(folder)
        guard let (record, _) = await expectStored(service, try Sample.instance()) else { return }
        #expect(try await service.read(record).count == record.blob.size)
        var altered = record
        altered.blob.sha256 = String(repeating: "0", count: 64)
        let error = await #expect(throws: ArchiveError.self) { try await service.read(altered) }
        #expect(error?.code == .integrity)
    }

    @Test func anInstanceBlobMovedToAnotherInstanceIsNotServed() async throws {
        let folder = try temporaryFolder()
        let (service, _) = try await openArchive(folder)
        guard let (first, _) = await expectStored(service, try Sample.instance()),
            let (second, _) = await expectStored(service, try Sample.instance())
        else { return }
        let objects = try #require((service.blobs as? EncryptedBlobStore)?.objects)
        try await swapObjects(objects, first.blob.id, second.blob.id)
        for record in [first, second] {
            let error = await #expect(throws: ArchiveError.self) { try await service.read(record) }
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

    @Test func aSpoolReadsBackWhatWasWritten() async throws {
        let (spool, data) = try filledSpool()
        #expect(try spool.readAll() == data)
    }

    @Test func reorderedChunksAreRefused() async throws {
        let (spool, _) = try filledSpool()
        var parts = records(try Data(contentsOf: spool.url))
        #expect(parts.count == 3)
        parts.swapAt(0, 1)
        try parts.reduce(Data(), +).write(to: spool.url)
        let error = #expect(throws: ArchiveError.self) { try spool.readAll() }
        #expect(error?.code == .integrity)
    }

    @Test func aDroppedTrailingChunkIsRefused() async throws {
        let (spool, _) = try filledSpool()
        let parts = records(try Data(contentsOf: spool.url))
        try parts.dropLast().reduce(Data(), +).write(to: spool.url)
        let error = #expect(throws: ArchiveError.self) { try spool.readAll() }
        #expect(error?.code == .integrity)
    }
}
