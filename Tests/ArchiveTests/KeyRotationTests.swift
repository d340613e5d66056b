import Crypto
import DICOMCodec
import Foundation
import Testing

@testable import Archive

/// `facet keys rotate` (issue 12 §4): new key-encryption keys re-wrap what they wrap, nothing else changes, the
/// archive reads back everything after a rotation and after one interrupted at any point, and the reminder comes
/// once a key is a year old.
@Suite struct KeyRotationTests {
    /// Stores one instance of a patient and returns its SOP Instance UID.
    func seed(_ folder: URL) async throws -> String {
        let (service, _) = try await openArchive(folder)
        let sop = Sample.uid()
        _ = await expectStored(service, try Sample.instance(sop: sop, patientID: "ROT-1", name: "Rota^Rosa"))
        _ = try service.keys.tokenSigningKey(keyDirectory: folder.appendingPathComponent("keys"))
        return sop
    }

    func readsBack(_ folder: URL, _ sop: String, environment: [String: String] = [:]) async throws -> Bool {
        try Part10.initialize()
        let (service, report) = try await ArchiveService.openEmbedded(dataDirectory: folder, environment: environment)
        guard report.quarantinedRows.isEmpty, let record = service.index.instance(sop) else { return false }
        let bytes = try await service.read(record)
        _ = try service.keys.tokenSigningKey(keyDirectory: folder.appendingPathComponent("keys"))
        return !bytes.isEmpty
    }

    @Test func aMasterRotationWrapsEveryKeyFileAgainAndTheArchiveReadsOn() async throws {
        let folder = try temporaryFolder()
        let keys = folder.appendingPathComponent("keys")
        let sop = try await seed(folder)
        let before = try #require(FileManager.default.contents(atPath: keys.appendingPathComponent("master.key").path))
        let tenantBefore = FileManager.default.contents(atPath: keys.appendingPathComponent("tenant-default.key").path)
        let outcome = try KeyRotation.rotateMaster(keyDirectory: keys, environment: [:])
        let after = try #require(FileManager.default.contents(atPath: keys.appendingPathComponent("master.key").path))
        #expect(after != before && outcome.oldID != outcome.newID)
        #expect(outcome.newID == KeyRotation.keyID(SymmetricKey(data: after)))
        #expect(outcome.rewrapped == 2, "the tenant key and the token signing key")
        #expect(
            FileManager.default.contents(atPath: keys.appendingPathComponent("tenant-default.key").path) != tenantBefore
        )
        // The old master opens none of the new files: the tenant key is wrapped by the new one only.
        #expect(throws: ArchiveError.self) {
            _ = try KeyHierarchy.unwrap(
                try readPrivateFile(keys.appendingPathComponent("tenant-default.key"), expectedLength: nil),
                with: SymmetricKey(data: before), purpose: "tenant:default")
        }
        #expect(KeyRotation.record(keyDirectory: keys).master?.id == outcome.newID)
        #expect(try await readsBack(folder, sop))
        // Twice: the root stays the first master's.
        _ = try KeyRotation.rotateMaster(keyDirectory: keys, environment: [:])
        #expect(try await readsBack(folder, sop))
        #expect(!FileManager.default.fileExists(atPath: keys.appendingPathComponent(".rotation").path))
    }

    @Test func aTenantRotationReWrapsThePatientKeysOnly() async throws {
        let folder = try temporaryFolder()
        let keys = folder.appendingPathComponent("keys")
        let sop = try await seed(folder)
        let ring = keys.appendingPathComponent("patient-keys-default.sqlite")
        let blobsBefore = blobFiles(folder)
        let outcome = try KeyRotation.rotateTenant(keyDirectory: keys, tenant: "default", environment: [:])
        #expect(outcome.rewrapped == 1 && outcome.oldID != outcome.newID)
        #expect(FileManager.default.fileExists(atPath: keys.appendingPathComponent("tenant-default.wrap.key").path))
        #expect(blobFiles(folder) == blobsBefore, "no blob is written again")
        #expect(try await readsBack(folder, sop))
        // A second rotation re-wraps from the first one's key.
        let second = try KeyRotation.rotateTenant(keyDirectory: keys, tenant: "default", environment: [:])
        #expect(second.oldID == outcome.newID)
        #expect(try await readsBack(folder, sop))
        #expect(FileManager.default.fileExists(atPath: ring.path))
        #expect(throws: ArchiveError.self) {
            _ = try KeyRotation.rotateTenant(keyDirectory: keys, tenant: "nobody", environment: [:])
        }
    }

    @Test func anInterruptedRotationEndsWithTheOldKeysOrTheNewOnes() async throws {
        let folder = try temporaryFolder()
        let keys = folder.appendingPathComponent("keys")
        let sop = try await seed(folder)
        let before = try #require(FileManager.default.contents(atPath: keys.appendingPathComponent("master.key").path))
        // Stopped before the commit point: a stage without its marker is discarded, the old keys stay.
        let stage = keys.appendingPathComponent(".rotation")
        try FileManager.default.createDirectory(at: stage, withIntermediateDirectories: true)
        try Data(repeating: 7, count: 32).write(to: stage.appendingPathComponent("master.key"))
        #expect(try await readsBack(folder, sop))
        #expect(!FileManager.default.fileExists(atPath: stage.path))
        #expect(FileManager.default.contents(atPath: keys.appendingPathComponent("master.key").path) == before)
        // Stopped after it: the next start finishes the rotation.
        let outcome = try KeyRotation.rotateMaster(keyDirectory: keys, environment: [:], now: Date(), applying: false)
        #expect(FileManager.default.contents(atPath: keys.appendingPathComponent("master.key").path) == before)
        #expect(try await readsBack(folder, sop))
        let after = try #require(FileManager.default.contents(atPath: keys.appendingPathComponent("master.key").path))
        #expect(KeyRotation.keyID(SymmetricKey(data: after)) == outcome.newID)
    }

    @Test func aMasterKeyOnOtherMediaIsRotatedWhereItIs() async throws {
        let folder = try temporaryFolder()
        let media = try temporaryFolder()
        let external = media.appendingPathComponent("facet-master.key")
        let environment = ["FACET_MASTER_KEY_FILE": external.path]
        try Part10.initialize()
        let sop = Sample.uid()
        do {
            let (service, _) = try await ArchiveService.openEmbedded(dataDirectory: folder, environment: environment)
            _ = await expectStored(service, try Sample.instance(sop: sop, patientID: "EXT-1"))
        }
        #expect(FileManager.default.fileExists(atPath: external.path))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("keys/master.key").path))
        let before = try #require(FileManager.default.contents(atPath: external.path))
        let keys = folder.appendingPathComponent("keys")
        _ = try KeyRotation.rotateMaster(keyDirectory: keys, environment: environment)
        #expect(FileManager.default.contents(atPath: external.path) != before)
        #expect(!FileManager.default.fileExists(atPath: keys.appendingPathComponent("master.key").path))
        #expect(try await readsBack(folder, sop, environment: environment))
        #expect(throws: ArchiveError.self) {
            _ = try KeyRotation.rotateMaster(
                keyDirectory: keys,
                environment: [
                    "FACET_MASTER_KEY": SymmetricKey(size: .bits256).withUnsafeBytes {
                        Data($0).base64EncodedString()
                    }
                ])
        }
        #expect(MasterKeyLocation.describe(dataDirectory: folder, environment: environment).contains(external.path))
    }

    @Test func aMissingMasterKeyIsNeverReplacedByANewOne() async throws {
        let folder = try temporaryFolder()
        let sop = try await seed(folder)
        let master = folder.appendingPathComponent("keys/master.key")
        let saved = try #require(FileManager.default.contents(atPath: master.path))
        try FileManager.default.removeItem(at: master)
        await #expect(throws: ArchiveError.self) { _ = try await openArchive(folder) }
        #expect(!FileManager.default.fileExists(atPath: master.path), "no new master key was made")
        // The key backup packs the master key the server reads (the external file), not a stray copy.
        let media = try temporaryFolder().appendingPathComponent("master.key")
        try saved.write(to: media)
        chmod(media.path, 0o600)
        try Data(repeating: 1, count: 32).write(to: master)
        chmod(master.path, 0o600)
        let sealed = try KeyBackup.make(
            keyDirectory: folder.appendingPathComponent("keys"), masterKeyFile: media, passphrase: "twelve chars ok",
            days: 1)
        #expect(try KeyBackup.open(sealed, passphrase: "twelve chars ok").files["master.key"] == saved)
        try FileManager.default.removeItem(at: master)
        #expect(try await readsBack(folder, sop, environment: ["FACET_MASTER_KEY_FILE": media.path]))
    }

    @Test func theReminderComesOnceAKeyIsAYearOld() async throws {
        let folder = try temporaryFolder()
        let keys = folder.appendingPathComponent("keys")
        _ = try await seed(folder)
        #expect(KeyRotation.reminders(keyDirectory: keys, tenants: ["default"], environment: [:]).isEmpty)
        let nextYear = Date().addingTimeInterval(366 * 86_400)
        let due = KeyRotation.reminders(keyDirectory: keys, tenants: ["default"], environment: [:], now: nextYear)
        #expect(due.count == 2 && due[0].hasPrefix("master key in use since"))
        _ = try KeyRotation.rotateMaster(keyDirectory: keys, environment: [:], now: nextYear)
        _ = try KeyRotation.rotateTenant(keyDirectory: keys, tenant: "default", environment: [:], now: nextYear)
        #expect(
            KeyRotation.reminders(keyDirectory: keys, tenants: ["default"], environment: [:], now: nextYear).isEmpty)
    }
}
