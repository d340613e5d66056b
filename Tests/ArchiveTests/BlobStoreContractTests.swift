import Foundation
import Testing

@testable import Archive

/// The object stores a test can run against: the data folder always; an S3-compatible store when the test command
/// started one (`FACET_TEST_S3_ENDPOINT`, with `FACET_TEST_S3_BUCKET` and the AWS credentials in the environment).
/// With `FACET_REQUIRE_S3=1` (as `make test` sets it) a missing endpoint fails the suite instead of skipping S3.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case files
    case s3

    var testDescription: String { rawValue }

    static var available: [StoreKind] {
        let environment = ProcessInfo.processInfo.environment
        let s3 = environment["FACET_TEST_S3_ENDPOINT"] != nil || environment["FACET_REQUIRE_S3"] == "1"
        return s3 ? [.files, .s3] : [.files]
    }

    /// A fresh, empty store (a new folder, or a new prefix in the test bucket).
    func make(_ folder: URL) throws -> any ObjectStore {
        switch self {
        case .files:
            return try FileObjectStore(root: folder)
        case .s3:
            return try S3TestStore.make(folder)
        }
    }
}

/// Swaps two objects' bytes through the store's own interface (what an attacker with write access to the storage
/// could do).
func swapObjects(_ objects: any ObjectStore, _ a: String, _ b: String) async throws {
    let bytesA = try await objects.get(a, range: 0..<Int.max)
    let bytesB = try await objects.get(b, range: 0..<Int.max)
    try await objects.delete(a)
    try await objects.delete(b)
    try await objects.put(a, data: bytesB)
    try await objects.put(b, data: bytesA)
}

/// Replaces an object's bytes through the store's interface.
func overwrite(_ objects: any ObjectStore, _ key: String, with data: Data) async throws {
    try await objects.delete(key)
    try await objects.put(key, data: data)
}

/// The contract of `ObjectStore`, run against every implementation.
@Suite struct ObjectStoreContractTests {
    func key() -> String { UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }

    @Test(arguments: StoreKind.available)
    func whatIsPutIsReadBackInRangesClippedAtTheEnd(_ kind: StoreKind) async throws {
        let objects = try kind.make(try temporaryFolder())
        let data = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let k = key()
        try await objects.put(k, data: data)
        #expect(try await objects.exists(k))
        #expect(try await objects.get(k, range: 0..<10_000) == data)
        #expect(try await objects.get(k, range: 100..<200) == data.subdata(in: 100..<200))
        #expect(try await objects.get(k, range: 9_990..<20_000) == data.subdata(in: 9_990..<10_000))
        #expect(try await objects.get(k, range: 0..<Int.max) == data)
        #expect(try await objects.get(k, range: 10_000..<10_010).isEmpty)
    }

    @Test(arguments: StoreKind.available)
    func anEmptyObjectIsStoredAndReadBack(_ kind: StoreKind) async throws {
        let objects = try kind.make(try temporaryFolder())
        let k = key()
        try await objects.put(k, data: Data())
        #expect(try await objects.exists(k))
        #expect(try await objects.get(k, range: 0..<100).isEmpty)
    }

    @Test(arguments: StoreKind.available)
    func aFileIsTakenAndStored(_ kind: StoreKind) async throws {
        let objects = try kind.make(try temporaryFolder())
        let data = Data((0..<300_001).map { UInt8(truncatingIfNeeded: $0 / 3) })
        let file = objects.scratchFolder.appendingPathComponent("upload-\(UUID().uuidString)")
        try data.write(to: file)
        let k = key()
        try await objects.put(k, file: file)
        #expect(!FileManager.default.fileExists(atPath: file.path))
        #expect(try await objects.get(k, range: 0..<Int.max) == data)
    }

    @Test(arguments: StoreKind.available)
    func aLargeFileGoesUpWhole(_ kind: StoreKind) async throws {
        let objects = try kind.make(try temporaryFolder())
        // Over two parts of 5 MiB: a multipart upload on S3.
        let data = Data((0..<(11 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3) })
        let file = objects.scratchFolder.appendingPathComponent("upload-\(UUID().uuidString)")
        try data.write(to: file)
        let k = key()
        try await objects.put(k, file: file)
        #expect(try await objects.get(k, range: 0..<Int.max) == data)
        #expect(
            try await objects.get(k, range: (5 << 20) - 10..<(5 << 20) + 10)
                == data.subdata(in: (5 << 20) - 10..<(5 << 20) + 10))
    }

    @Test(arguments: StoreKind.available)
    func aMissingObjectIsNotFoundAndDeletingItIsNoError(_ kind: StoreKind) async throws {
        let objects = try kind.make(try temporaryFolder())
        let k = key()
        #expect(!(try await objects.exists(k)))
        let error = await #expect(throws: ArchiveError.self) { try await objects.get(k, range: 0..<10) }
        #expect(error?.code == .notFound)
        try await objects.delete(k)
        try await objects.put(k, data: Data("x".utf8))
        try await objects.delete(k)
        #expect(!(try await objects.exists(k)))
    }

    @Test(arguments: StoreKind.available)
    func aQuarantinedObjectLeavesItsKeyAndExpires(_ kind: StoreKind) async throws {
        let objects = try kind.make(try temporaryFolder())
        let k = key()
        try await objects.put(k, data: Data("interrupted".utf8))
        try await objects.quarantine(k)
        #expect(!(try await objects.exists(k)))
        #expect(try await objects.expireQuarantine(before: Date().addingTimeInterval(-3600)) == 0)
        #expect(try await objects.expireQuarantine(before: Date().addingTimeInterval(3600)) == 1)
        #expect(try await objects.expireQuarantine(before: Date().addingTimeInterval(3600)) == 0)
    }

    @Test(arguments: StoreKind.available)
    func keysThatAreNotBlobIDsAreRefused(_ kind: StoreKind) async throws {
        let objects = try kind.make(try temporaryFolder())
        for bad in ["", "../../etc/passwd", "ABCDEF", String(repeating: "g", count: 32)] {
            let error = await #expect(throws: ArchiveError.self) { try await objects.put(bad, data: Data([1])) }
            #expect(error?.code == .notFound)
            #expect(!(try await objects.exists(bad)))
        }
    }
}

/// The at-rest scheme (`EncryptedBlobStore`) over every object store.
@Suite struct BlobStoreContractTests {
    func store(_ kind: StoreKind, chunk: Int = 4096) throws -> (EncryptedBlobStore, URL) {
        let folder = try temporaryFolder()
        let (keys, _) = try KeyHierarchy.open(keyDirectory: folder.appendingPathComponent("keys"), environment: [:])
        return (EncryptedBlobStore(objects: try kind.make(folder), keys: keys, chunkSize: chunk), folder)
    }

    func sample(_ count: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    func raw(_ store: EncryptedBlobStore, _ id: String) async throws -> Data {
        try await store.objects.get(id, range: 0..<Int.max)
    }

    @Test(arguments: StoreKind.available, [0, 1, 4095, 4096, 4097, 50_000])
    func whatIsStoredComesBackIdentical(_ kind: StoreKind, _ size: Int) async throws {
        let (store, _) = try store(kind)
        let data = sample(size)
        let reference = try await store.put(data, owner: "1.2.3")
        #expect(reference.size == size)
        #expect(try await store.get(reference.id, owner: "1.2.3") == data)
    }

    @Test(arguments: StoreKind.available)
    func rangesAreReadAcrossChunks(_ kind: StoreKind) async throws {
        let (store, _) = try store(kind)
        let data = sample(60_000)
        let id = try await store.put(data, owner: "1.2.3").id
        for range in [0..<1, 4000..<4200, 4096..<8192, 59_999..<60_000, 0..<60_000, 100..<100, 41_000..<59_000] {
            #expect(try await store.read(id, owner: "1.2.3", range: range) == data.subdata(in: range))
        }
        await #expect(throws: ArchiveError.self) { try await store.read(id, owner: "1.2.3", range: 59_000..<60_001) }
    }

    @Test(arguments: StoreKind.available)
    func streamingAFileStoresTheSameBytes(_ kind: StoreKind) async throws {
        let (store, folder) = try store(kind)
        let data = sample(130_001)
        let input = folder.appendingPathComponent("input.bin")
        try data.write(to: input)
        let reference = try await store.put(contentsOf: input, owner: "1.2.3")
        #expect(try await store.get(reference.id, owner: "1.2.3") == data)
        #expect(reference.sha256.count == 64)
        #expect(reference.size == data.count)
        #expect(FileManager.default.fileExists(atPath: input.path), "the input stays the caller's")
    }

    @Test(arguments: StoreKind.available)
    func aFlippedByteIsDetectedAndNothingIsServed(_ kind: StoreKind) async throws {
        let (store, _) = try store(kind)
        let id = try await store.put(sample(10_000), owner: "1.2.3").id
        let original = try await raw(store, id)
        for position in [EncryptedBlobStore.headerSize + 10, original.count - 1, 20, 100] {
            var altered = original
            altered[position] ^= 0x01
            try await overwrite(store.objects, id, with: altered)
            let error = await #expect(throws: ArchiveError.self) { try await store.get(id, owner: "1.2.3") }
            #expect(error?.code == .integrity)
        }
        try await overwrite(store.objects, id, with: original.prefix(original.count - 5))
        await #expect(throws: ArchiveError.self) { try await store.get(id, owner: "1.2.3") }
        try await overwrite(store.objects, id, with: original.prefix(50))
        let short = await #expect(throws: ArchiveError.self) { try await store.get(id, owner: "1.2.3") }
        #expect(short?.code == .integrity)
    }

    @Test(arguments: StoreKind.available)
    func nothingIdentifyingIsStoredInTheClear(_ kind: StoreKind) async throws {
        let (store, _) = try store(kind)
        var dicom = Data(count: 128) + Data("DICM".utf8)
        dicom += Data("Müller^Jürgen PATIENT-ID-0042".utf8) + Data([0xFF, 0xD8, 0xFF, 0xE0]) + sample(5000)
        let id = try await store.put(dicom, owner: "1.2.3").id
        let bytes = try await raw(store, id)
        #expect(bytes.count > dicom.count)
        for needle in ["DICM", "Müller", "PATIENT-ID-0042"] {
            #expect(bytes.range(of: Data(needle.utf8)) == nil, "\(needle) in the stored object")
        }
        #expect(bytes.range(of: Data([0xFF, 0xD8, 0xFF])) == nil)
    }

    @Test(arguments: StoreKind.available)
    func unknownIdsAreNotFound(_ kind: StoreKind) async throws {
        let (store, _) = try store(kind)
        for id in ["", "../../etc/passwd", String(repeating: "a", count: 32), "ABCDEF"] {
            let error = await #expect(throws: ArchiveError.self) { try await store.get(id, owner: "1.2.3") }
            #expect(error?.code == .notFound)
        }
    }

    @Test(arguments: StoreKind.available)
    func swappedBlobsAreBothRefused(_ kind: StoreKind) async throws {
        let (store, _) = try store(kind)
        let a = try await store.put(sample(10_000), owner: "1.2.3.1")
        let b = try await store.put(sample(10_000), owner: "1.2.3.2")
        try await swapObjects(store.objects, a.id, b.id)
        for (id, owner) in [(a.id, "1.2.3.1"), (b.id, "1.2.3.2")] {
            let error = await #expect(throws: ArchiveError.self) { try await store.get(id, owner: owner) }
            #expect(error?.code == .integrity)
        }
    }

    @Test(arguments: StoreKind.available)
    func aBlobReadForAnotherOwnerIsRefused(_ kind: StoreKind) async throws {
        let (store, _) = try store(kind)
        let data = sample(5000)
        let reference = try await store.put(data, owner: "1.2.3.1")
        #expect(try await store.get(reference.id, owner: "1.2.3.1") == data)
        let error = await #expect(throws: ArchiveError.self) { try await store.get(reference.id, owner: "1.2.3.2") }
        #expect(error?.code == .integrity)
        await #expect(throws: ArchiveError.self) {
            try await store.read(reference.id, owner: "1.2.3.2", range: 0..<10)
        }
    }

    @Test(arguments: StoreKind.available)
    func aVersionOneBlobIsStillReadAndNewOnesAreVersionTwo(_ kind: StoreKind) async throws {
        let (store, _) = try store(kind)
        let data = sample(9000)
        let old = try await store.put(data, owner: "ignored", id: store.newBlobID(), formatVersion: 1)
        #expect(try await raw(store, old.id)[4] == 1)
        // Version 1 bound neither the id nor the owner.
        #expect(try await store.get(old.id, owner: "1.2.3.9") == data)
        #expect(try await store.read(old.id, owner: "1.2.3.9", range: 4000..<5000) == data.subdata(in: 4000..<5000))
        let new = try await store.put(sample(100), owner: "1.2.3.1")
        #expect(try await raw(store, new.id)[4] == 2)
    }
}

/// The data folder's own duties.
@Suite struct FileObjectStoreTests {
    @Test func objectsAreFilesUnderBlobsAndAKeyIsWrittenOnce() async throws {
        let folder = try temporaryFolder()
        let objects = try FileObjectStore(root: folder)
        let key = "0123456789abcdef0123456789abcdef"
        try await objects.put(key, data: Data("one".utf8))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("blobs/01/23/\(key)").path))
        await #expect(throws: ArchiveError.self) { try await objects.put(key, data: Data("two".utf8)) }
        #expect(try await objects.get(key, range: 0..<10) == Data("one".utf8))
        #expect(try await objects.allKeys() == [key])
    }
}

/// The test bucket: each store a prefix of its own in `FACET_TEST_S3_BUCKET` at `FACET_TEST_S3_ENDPOINT`, with parts
/// of the smallest size S3 allows so that multipart uploads are exercised by small tests.
enum S3TestStore {
    static func make(_ folder: URL) throws -> any ObjectStore {
        let environment = ProcessInfo.processInfo.environment
        guard let endpoint = environment["FACET_TEST_S3_ENDPOINT"] else {
            throw ArchiveError(
                .io, "FACET_REQUIRE_S3=1 but FACET_TEST_S3_ENDPOINT is not set (make test starts SeaweedFS)")
        }
        let bucket = environment["FACET_TEST_S3_BUCKET"] ?? "facet-test"
        let location = try S3Location.parse(
            "s3://\(bucket)/tests/\(UUID().uuidString.lowercased())", endpoint: endpoint, region: "us-east-1",
            environment: environment)
        return try S3ObjectStore(
            location: location, scratchFolder: folder.appendingPathComponent("tmp"), partSize: 5 << 20)
    }
}

/// What only the S3 store does: settings parsed strictly, an unreachable store is `.unavailable` after retries.
@Suite struct S3ObjectStoreTests {
    let credentials = ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"]

    @Test func locationsAreParsedAndBadOnesRefused() throws {
        let location = try S3Location.parse(
            "s3://clinic-archive/facet/a", endpoint: "http://127.0.0.1:8333", region: "eu-central-1",
            environment: credentials)
        #expect(location.bucket == "clinic-archive")
        #expect(location.prefix == "facet/a")
        #expect(location.region == "eu-central-1")
        #expect(!location.virtualHosted)
        let aws = try S3Location.parse(
            "s3://clinic-archive", endpoint: nil, region: "eu-west-1", environment: credentials)
        #expect(aws.endpoint.absoluteString == "https://s3.eu-west-1.amazonaws.com")
        #expect(aws.virtualHosted)
        #expect(aws.prefix.isEmpty)
        for bad in ["http://bucket/x", "s3://", "s3://Upper/x", "s3://ab", "s3://bucket/../x", "s3://bucket/a b"] {
            #expect(throws: ArchiveError.self) {
                try S3Location.parse(bad, endpoint: "http://127.0.0.1:8333", region: nil, environment: credentials)
            }
        }
        #expect(throws: ArchiveError.self) {
            try S3Location.parse("s3://bucket", endpoint: "ftp://host", region: nil, environment: credentials)
        }
        let noCredentials = #expect(throws: ArchiveError.self) {
            try S3Location.parse("s3://bucket", endpoint: "http://127.0.0.1:8333", region: nil, environment: [:])
        }
        #expect(noCredentials?.message.contains("AWS_ACCESS_KEY_ID") == true)
    }

    @Test func keysAreEncodedSegmentBySegment() throws {
        let location = try S3Location.parse(
            "s3://bucket/clinic", endpoint: "http://127.0.0.1:8333", region: nil, environment: credentials)
        let store = try S3ObjectStore(location: location, scratchFolder: try temporaryFolder())
        #expect(
            store.url("clinic/quarantine/a b€%+").absoluteString
                == "http://127.0.0.1:8333/bucket/clinic/quarantine/a%20b%E2%82%AC%25%2B")
        #expect(store.url(nil, query: "list-type=2").absoluteString == "http://127.0.0.1:8333/bucket/?list-type=2")
        let id = "0123456789abcdef0123456789abcdef"
        #expect(try store.objectKey(id) == "clinic/blobs/\(id)")
        #expect(try store.objectKey(id, under: "quarantine") == "clinic/quarantine/\(id)")
    }

    @Test func anUnreachableStoreIsUnavailableAfterItsRetries() async throws {
        let location = try S3Location.parse(
            "s3://bucket/x", endpoint: "http://127.0.0.1:9", region: nil, environment: credentials)
        let store = try S3ObjectStore(
            location: location, scratchFolder: try temporaryFolder(), attempts: 3, timeoutSeconds: 1)
        let started = Date()
        let error = await #expect(throws: ArchiveError.self) {
            try await store.put("0123456789abcdef0123456789abcdef", data: Data([1]))
        }
        #expect(error?.code == .unavailable)
        // Two back-offs (100 ms and 200 ms, plus jitter) happened before giving up.
        #expect(Date().timeIntervalSince(started) >= 0.3)
    }
}
