import Foundation
import Testing

@testable import Archive

/// Two archive processes sharing one PostgreSQL database and one bucket, as replicas do: what one stores the other
/// finds and reads; a data folder with a key of its own for the same clinic is refused.
@Suite struct ReplicaTests {
    var enabled: Bool { IndexKind.available.contains(.postgres) && StoreKind.available.contains(.s3) }

    func replica(_ folder: URL, tenant: String, prefix: String, master: String) async throws -> ArchiveService {
        let environment = ProcessInfo.processInfo.environment
        let location = try S3Location.parse(
            "s3://\(environment["FACET_TEST_S3_BUCKET"] ?? "facet-test")/\(prefix)",
            endpoint: try #require(environment["FACET_TEST_S3_ENDPOINT"]), region: "us-east-1",
            environment: environment)
        let objects = try S3ObjectStore(location: location, scratchFolder: folder.appendingPathComponent("tmp"))
        return try await ArchiveService.openEmbedded(
            dataDirectory: folder, objects: objects, database: try await IndexKind.database(), tenant: tenant,
            environment: ["FACET_MASTER_KEY": master]
        ).0
    }

    @Test func whatOneReplicaStoresTheOtherFindsAndReads() async throws {
        guard enabled else { return }
        let tenant = "r\(UUID().uuidString.prefix(10).lowercased())"
        let prefix = "replicas/\(tenant)"
        let master = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let firstFolder = try temporaryFolder()
        let first = try await replica(firstFolder, tenant: tenant, prefix: prefix, master: master)
        let second = try await replica(try temporaryFolder(), tenant: tenant, prefix: prefix, master: master)
        // The data folder keeps the database's key: tools that open the folder (facet users) use the same one.
        let local = try KeyHierarchy.open(
            keyDirectory: firstFolder.appendingPathComponent("keys"), tenant: tenant,
            environment: ["FACET_MASTER_KEY": master]
        ).keys
        #expect(local.hasSameTenantKey(as: first.keys))
        #expect(second.keys.hasSameTenantKey(as: first.keys))
        let bytes = try Sample.instance(patientID: "REPLICA-1")
        guard case .stored(let record, _, _) = await first.store(bytes) else {
            Issue.record("not stored")
            return
        }
        let started = Date()
        while second.index.instance(record.sopInstanceUID) == nil, Date().timeIntervalSince(started) < 30 {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        let seen = try #require(second.index.instance(record.sopInstanceUID))
        #expect(try await second.read(seen) == bytes)
        #expect(try await second.index.studyUIDs(patientID: "REPLICA-1") == [record.studyInstanceUID])
        // The same instance sent to the other replica is the same instance, not a second one.
        guard case .stored(_, let duplicate, _) = await second.store(bytes) else {
            Issue.record("a resend through the other replica must succeed")
            return
        }
        #expect(duplicate)
    }

    @Test func aDataFolderWithAnotherKeyForTheClinicIsRefused() async throws {
        guard enabled else { return }
        let tenant = "r\(UUID().uuidString.prefix(10).lowercased())"
        let master = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        _ = try await replica(try temporaryFolder(), tenant: tenant, prefix: "replicas/\(tenant)", master: master)
        // A data folder that made its own key for the clinic before it was pointed at the database.
        let folder = try temporaryFolder()
        _ = try KeyHierarchy.open(
            keyDirectory: folder.appendingPathComponent("keys"), tenant: tenant,
            environment: ["FACET_MASTER_KEY": master])
        let error = await #expect(throws: ArchiveError.self) {
            _ = try await replica(folder, tenant: tenant, prefix: "replicas/\(tenant)", master: master)
        }
        #expect(error?.message.contains("differs from the one in the index database") == true)
    }
}
